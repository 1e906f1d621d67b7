"""Ratios from one pytest-benchmark JSON run (medians): our step with statistics vs torch fused,
statistics on vs off, and the achieved bandwidth of steps and bitflip_stats against the same-run
copy of as many bytes (extra_info["bytes"]).

    pytest bench --benchmark-only --benchmark-json=run.json && python bench/ratios.py run.json

(`python -m bitkernels bench` measures the same cases alternately, round after round, and
prints these columns itself.)
"""

from __future__ import annotations

import json
import re
import sys


def main(path: str) -> None:
    runs = json.load(open(path))
    bench = {b["name"]: b for b in runs["benchmarks"]}

    def get(pattern: str):
        return next((b for k, b in bench.items() if re.fullmatch(pattern, k)), None)

    def median(b) -> float:
        return b["stats"]["median"]

    def gbps(b) -> float:
        return b["extra_info"]["bytes"] / median(b) / 1e9

    print(f"{runs['machine_info']['cpu'].get('brand_raw', '?')}, {runs['datetime']}")
    print("\nfused steps (median ms; ratio = ours / torch fused; GB/s and fraction of the "
          "same-run copy of our step's bytes)")
    sizes = sorted({m.group(1) for k in bench
                    if (m := re.search(r"bench_step_copy_baseline\[.*-(\w+)\]", k))},
                   key=lambda s: int(s[:-1]) * (1 << (20 if s[-1] == "M" else 10)))
    for dtype in ("torch.float32", "torch.bfloat16", "torch.float16"):
        d = re.escape(dtype)
        for size in sizes:
            copy = get(rf"bench_step_copy_baseline\[{d}-{size}\]")
            for name in ("adamw", "sgd_momentum", "lion"):
                for backend in ("cpu", "cuda", "triton"):
                    on = get(rf"bench_step_bitkernels\[stats-{backend}-{name}-{d}-{size}\]")
                    off = get(rf"bench_step_bitkernels\[nostats-{backend}-{name}-{d}-{size}\]")
                    if on is None or off is None:
                        continue
                    fused = get(rf"bench_step_torch\[fused-{name}-{d}-{size}\]")
                    row = (f"  {name:13s}{backend:>7s} {dtype[6:]:9s} {size:>4s}: stats "
                           f"{median(on) * 1e3:8.3f}  nostats {median(off) * 1e3:8.3f}  on/off "
                           f"{median(on) / median(off):5.2f}  {gbps(on):5.1f} GB/s")
                    if copy:
                        row += f" ({gbps(on) / gbps(copy):4.2f} of copy)"
                    if fused:
                        row += (f"  torch fused {median(fused) * 1e3:8.3f}  stats/fused "
                                f"{median(on) / median(fused):5.2f}")
                    print(row)
    print("\nAdamW under AMP (grad_scale 2^16; median ms)")
    for dtype in ("torch.float32", "torch.bfloat16"):
        d = re.escape(dtype)
        for size, backend in ((size, b) for size in ("1M", "16M") for b in ("cpu", "cuda")):
            on, off, fused = (get(rf"bench_step_amp\[{impl}-{d}-{size}\]")
                              for impl in (f"{backend}-stats", f"{backend}-nostats", "torch-fused"))
            if on and off and fused:
                print(f"  {backend:>5s} {dtype[6:]:9s} {size:>4s}: stats {median(on) * 1e3:8.3f}"
                      f"  nostats {median(off) * 1e3:8.3f}  torch fused "
                      f"{median(fused) * 1e3:8.3f}  stats/fused {median(on) / median(fused):5.2f}"
                      f"  on/off {median(on) / median(off):5.2f}")
    print("\nbitflip_stats (reads 2 x numel x itemsize) vs copy (same bytes read + written)")
    for dtype in ("torch.float32", "torch.bfloat16", "torch.float16"):
        d = re.escape(dtype)
        for size in sizes:
            copy = get(rf"bench_copy_baseline\[{d}-{size}\]")
            for backend in ("cpu", "cuda", "triton"):
                flips = get(rf"bench_bitflip_stats\[bits-{backend}-{d}-{size}\]")
                if flips and copy:
                    print(f"  {backend:>6s} {dtype[6:]:9s} {size:>4s}: {median(flips) * 1e3:7.3f} "
                          f"ms, copy {median(copy) * 1e3:7.3f} ms, bandwidth fraction "
                          f"{median(copy) / median(flips):4.2f}")


if __name__ == "__main__":
    main(sys.argv[1])
