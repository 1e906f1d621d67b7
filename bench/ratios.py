"""Ratios from one pytest-benchmark JSON run (medians): our step with statistics vs torch
fused, statistics on vs off, and bitflip_stats bandwidth vs the same-run copy.

    pytest bench --benchmark-only --benchmark-json=run.json && python bench/ratios.py run.json
"""

from __future__ import annotations

import json
import re
import sys


def main(path: str) -> None:
    runs = json.load(open(path))
    median = {b["name"]: b["stats"]["median"] for b in runs["benchmarks"]}

    def get(pattern: str):
        return next((v for k, v in median.items() if re.fullmatch(pattern, k)), None)

    print(f"{runs['machine_info']['cpu'].get('brand_raw', '?')}, {runs['datetime']}")
    print("\nfused steps (median ms; ratio = ours / torch fused)")
    for size in ("64K", "1M", "16M"):
        for dtype in ("torch.float32", "torch.bfloat16"):
            for name in ("adamw", "sgd_momentum", "lion"):
                on = get(rf"bench_step_bitkernels\[stats-{name}-{re.escape(dtype)}-{size}\]")
                off = get(rf"bench_step_bitkernels\[nostats-{name}-{re.escape(dtype)}-{size}\]")
                fused = get(rf"bench_step_torch\[fused-{name}-{re.escape(dtype)}-{size}\]")
                if on is None or off is None:
                    continue
                row = f"  {name:13s} {dtype[6:]:9s} {size:>4s}: stats {on * 1e3:7.2f}  " \
                      f"nostats {off * 1e3:7.2f}  on/off {on / off:5.2f}"
                if fused:
                    row += f"  torch fused {fused * 1e3:7.2f}  stats/fused {on / fused:5.2f}"
                print(row)
    print("\nbitflip_stats (reads 2 x numel x itemsize) vs copy (same bytes read + written)")
    for size in ("1M", "16M"):
        for dtype in ("torch.float32", "torch.bfloat16"):
            flips = get(rf"bench_bitflip_stats_cpu\[bits-{re.escape(dtype)}-{size}\]")
            copy = get(rf"bench_copy_baseline\[{re.escape(dtype)}-{size}\]")
            if flips and copy:
                print(f"  {dtype[6:]:9s} {size:>4s}: {flips * 1e3:6.2f} ms,"
                      f" copy {copy * 1e3:6.2f} ms, bandwidth fraction {copy / flips:4.2f}")


if __name__ == "__main__":
    main(sys.argv[1])
