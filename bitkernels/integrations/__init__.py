"""Bridges to the tools users already watch training with (each imports its tool lazily)."""
