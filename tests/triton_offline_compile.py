"""Compiles the Triton kernels for a CUDA architecture without a GPU (run by
test_triton_compile.py in a fresh interpreter: TRITON_INTERPRET must be unset when the kernels
are decorated). The interpreter runs the kernels' Python, not Triton's compiler, so errors
that only compilation raises (a global that is not a tl.constexpr, a type the code generator
rejects) would otherwise first show on a GPU machine.

    python tests/triton_offline_compile.py 90      # prints one line per kernel variant
    python tests/triton_offline_compile.py 90 --ptxas   # with registers and spills, from the
                                                        # ptxas that ships in Triton's wheel
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile

os.environ.pop("TRITON_INTERPRET", None)

import torch  # noqa: E402
import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

from bitkernels.backends import triton as kernels  # noqa: E402
from bitkernels.formats import FORMATS  # noqa: E402


def compile_kernel(fn, pointers: dict[str, str], constexprs: dict, arch: int) -> str:
    names = list(fn.arg_names)  # the signature is positional: in the kernel's order
    assert set(names) == set(pointers) | set(constexprs), (fn.__name__, names)
    signature = {name: pointers.get(name, "constexpr") for name in names}
    source = ASTSource(fn=fn, signature=signature,
                       constexprs={(names.index(k),): v for k, v in constexprs.items()})
    compiled = triton.compile(source, target=GPUTarget("cuda", arch, 32),
                              options={"enable_fp_fusion": False})
    return ptxas_report(compiled.asm["ptx"], arch) if "--ptxas" in sys.argv else ""


def ptxas_report(ptx: str, arch: int) -> str:
    """Registers and spills, as `ptxas -v` gives them for the kernel's PTX."""
    bin_dir = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin")
    # The PTX's ISA version may be newer than the CUDA 12 ptxas; Triton ships a newer one too.
    for name in ("ptxas-blackwell", "ptxas"):
        ptxas = os.path.join(bin_dir, name)
        if not os.path.exists(ptxas):
            continue
        with tempfile.TemporaryDirectory() as tmp:
            source = os.path.join(tmp, "kernel.ptx")
            with open(source, "w") as f:
                f.write(ptx)
            out = subprocess.run([ptxas, f"-arch=sm_{arch}{'a' if arch >= 90 else ''}", "-v",
                                  source, "-o", os.path.join(tmp, "kernel.cubin")],
                                 capture_output=True, text=True)
        registers = re.search(r"Used (\d+) registers", out.stderr)
        spills = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", out.stderr)
        if registers and spills:
            return (f": {registers.group(1)} registers, spills {spills.group(1)} B stored, "
                    f"{spills.group(2)} B loaded")
    return ": (no ptxas report)"


def format_constexprs(dtype) -> dict:
    fmt = FORMATS[dtype]
    return dict(WIDTH=fmt.width, MANTISSA=fmt.mantissa_bits, EXPONENT=fmt.exponent_bits,
                BIAS=fmt.bias)


def step_variants():
    """(name, constexprs): each rule with and without statistics, and the options."""
    plain = dict(FLAG_0=False, FLAG_1=False, FLAG_2=False, FLAG_3=False, MAXIMIZE=False,
                 STOCHASTIC=False, KAHAN=False, TRACK=True, HAS_SCALE=False, HAS_FOUND_INF=False)
    rules = {"sgd_momentum": dict(RULE=0, FLAG_0=True), "adamw": dict(RULE=1, FLAG_2=True),
             "lion": dict(RULE=2)}
    for dtype in (torch.float32, torch.bfloat16):
        for rule, flags in rules.items():
            for track in (True, False):
                yield (f"step {rule} {dtype} track={track}",
                       {**plain, **flags, "TRACK": track, **format_constexprs(dtype)})
    everything = dict(FLAG_0=True, FLAG_1=True, FLAG_2=True, FLAG_3=True, MAXIMIZE=True,
                      STOCHASTIC=True, KAHAN=True, TRACK=True, HAS_SCALE=True,
                      HAS_FOUND_INF=True)
    for dtype in (torch.float16, torch.bfloat16):
        for rule in (0, 1, 2):
            yield (f"step rule {rule} {dtype} every option",
                   {**everything, "RULE": rule, **format_constexprs(dtype)})


def main(arch: int) -> None:
    tables = {"chunks": "*i64", "ptrs": "*i64", "meta": "*i64", "adam_scalars": "*fp32",
              "hyper": "*fp32", "counters": "*i64", "sums": "*fp64", "grad_scale_ptr": "*fp32",
              "found_inf_ptr": "*fp32"}
    for name, constexprs in step_variants():
        report = compile_kernel(kernels.step_kernel, tables,
                                {**constexprs, "BLOCK": kernels.BLOCK, "TILES": kernels.TILES},
                                arch)
        print("compiled", name + report, flush=True)
    for dtype in (torch.float32, torch.bfloat16):
        bits = "*i32" if FORMATS[dtype].width == 32 else "*i16"
        for has_update in (True, False):
            pointers = {"old_ptr": bits, "new_ptr": bits, "update_ptr": "*i32" if has_update
                        else bits, "counters_ptr": "*i64", "sums_ptr": "*fp64", "n": "i32"}
            report = compile_kernel(kernels.bitflip_stats_kernel, pointers,
                                    {**format_constexprs(dtype), "HAS_UPDATE": has_update,
                                     "BLOCK": kernels.BLOCK, "TILES": kernels.TILES}, arch)
            print(f"compiled bitflip_stats {dtype} update={has_update}{report}", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]))
