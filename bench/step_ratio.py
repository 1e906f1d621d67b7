"""The issue 3 figure: our fused step with statistics against torch.optim's fused step without,
on one parameter, timed alternately (ours with stats, ours without, torch fused, torch fused
wrapped in bk.track, round after round, in a new order each round: roofline.time_alternately)
so that the noise of a shared machine hits every case alike. Prints medians and ratios.

    python bench/step_ratio.py [--size 16M] [--dtype float32] [--optimizer adamw] [--rounds 30]
                               [--isa x86-64-v3]

--isa limits our kernels' instruction set (bk.backends.cpu_isas()); to compare with torch's
kernels for the same set, also run with ATEN_CPU_CAPABILITY=avx2 in the environment.
"""

from __future__ import annotations

import argparse

import torch

import bitkernels as bk
from bitkernels import roofline


def parameter(size: int, dtype: torch.dtype) -> torch.nn.Parameter:
    return roofline.parameter(size, dtype, torch.device("cpu"))

OPTIMIZERS = {
    "adamw": (bk.optim.AdamW, torch.optim.AdamW, dict(lr=1e-3)),
    "adam": (bk.optim.Adam, torch.optim.Adam, dict(lr=1e-3)),
    "sgd_momentum": (bk.optim.SGD, torch.optim.SGD, dict(lr=1e-3, momentum=0.9)),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="16M")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--optimizer", default="adamw", choices=list(OPTIMIZERS))
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--isa", default="native", help="our kernels' highest instruction set")
    args = parser.parse_args()
    isa = bk.backends.cpu_isa(args.isa)
    size, dtype = roofline.parse_size(args.size), getattr(torch, args.dtype)
    ours, theirs, kwargs = OPTIMIZERS[args.optimizer]
    cases = {
        "ours, statistics": ours([parameter(size, dtype)], backend="cpu", **kwargs),
        "ours, no statistics": ours([parameter(size, dtype)], backend="cpu", track_bits=False,
                                    **kwargs),
        "torch fused": theirs([parameter(size, dtype)], fused=True, **kwargs),
        # The slower path for optimizers we do not replace: snapshot + bitflip_stats.
        "torch fused, tracked": bk.track(theirs([parameter(size, dtype)], fused=True, **kwargs),
                                         backend="cpu"),
    }
    # roofline's alternate timing: every case once per round, in a new order each round.
    candidates = [roofline.Candidate(name, opt.step) for name, opt in cases.items()]
    roofline.time_alternately(candidates, args.rounds, torch.device("cpu"))
    median = {c.name: c.median for c in candidates}
    print(f"{args.optimizer} {args.dtype} {args.size}, {torch.get_num_threads()} threads, "
          f"{args.rounds} alternating rounds (median ms); ours {isa}, torch "
          f"{torch.backends.cpu.get_cpu_capability()}:")
    for name, m in median.items():
        print(f"  {name:20s} {m * 1e3:8.2f}")
    fused = median["torch fused"]
    print(f"  statistics / torch fused   {median['ours, statistics'] / fused:5.2f}")
    print(f"  no statistics / torch fused {median['ours, no statistics'] / fused:5.2f}")
    print(f"  statistics on / off         "
          f"{median['ours, statistics'] / median['ours, no statistics']:5.2f}")
    print(f"  bk.track(torch fused) / torch fused "
          f"{median['torch fused, tracked'] / fused:5.2f}")


if __name__ == "__main__":
    main()
