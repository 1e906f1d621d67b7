"""Builds bitkernels._C (CPU kernels + op schemas) and, where possible, bitkernels._C_cuda.

Environment:
  BITKERNELS_CUDA=0/1        force the CUDA extension off/on (default: on when torch is a CUDA
                             build and nvcc is found)
  BITKERNELS_CUDA_ARCHS      semicolon list of SM versions, default "80;90" (plus PTX of the
                             newest, so later GPUs can JIT it)
  BITKERNELS_DEBUG=1         -O0 -g builds
  BITKERNELS_SANITIZE=1      AddressSanitizer + UndefinedBehaviorSanitizer in the C++ (run with
                             libasan/libubsan preloaded: `make test-sanitize` does it all)
"""

import os
import sys
from pathlib import Path

from setuptools import setup

try:
    import torch
    from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension
except ImportError:  # torch is not a build requirement on purpose: see README
    sys.exit("bitkernels builds against the installed torch: install torch first, then "
             "`pip install --no-build-isolation -e .`")

ROOT = Path(__file__).parent
CSRC = ROOT / "csrc"
DEBUG = os.environ.get("BITKERNELS_DEBUG") == "1"
SANITIZE = os.environ.get("BITKERNELS_SANITIZE") == "1"
# Sanitized builds at -O1: the instrumented AVX-512 kernels took 10 minutes to build at -O3 on two
# cores, and -O1 keeps the code close to the source the reports point at.
#
# Release builds without debug information: Python's own CFLAGS carry -g (torch's cpp_extension
# passes them first), and with it the six sources took 500 s of compiling on one of this 2-core
# machine's cores (adam_step.cpp 186 s); with -g0 adam_step.cpp takes 107 s and the whole build
# 163 s on both cores.
OPT = ["-O0", "-g"] if DEBUG else ["-O1"] if SANITIZE else ["-O3"]
NO_DEBUG_INFO = [] if DEBUG or SANITIZE else ["-g0"]  # the host compiler's only: nvcc has no -g0
# Any error is fatal (no recovery), so a test run fails on it instead of printing and going on.
# -g1: the line tables the reports' stack traces need (file:line), without the rest of the debug
# information, which took a third of the sanitized build's time (adam_step.cpp 539 -> 368 s).
SANITIZERS = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all",
              "-fno-omit-frame-pointer", "-g1"] if SANITIZE else []


def rel(paths):
    return sorted(str(p.relative_to(ROOT)) for p in paths)


def want_cuda():
    flag = os.environ.get("BITKERNELS_CUDA")
    if flag is not None:
        return flag == "1"
    return torch.version.cuda is not None and CUDA_HOME is not None


def cuda_gencode():
    listed = os.environ.get("BITKERNELS_CUDA_ARCHS", "80;90").split(";")
    archs = [a.strip() for a in listed if a.strip()]
    flags = [f"-gencode=arch=compute_{a},code=sm_{a}" for a in archs]
    flags.append(f"-gencode=arch=compute_{archs[-1]},code=compute_{archs[-1]}")
    return flags


# No FP contraction anywhere: the CPU, the Triton interpreter and the reference must round the
# same way (DESIGN.md, update rules). The C++ standard is left to torch's cpp_extension (C++20
# for recent torch); our own sources and headers stay C++17-clean (nvcc tests compile them so).
# -fno-trapping-math / -fno-math-errno change no result (no reassociation, no contraction): they
# let the vectorizer compute both sides of a select and call sqrt without errno, which the
# kernels' branch-free element code relies on to vectorize.
CXX_FLAGS = ["-fopenmp", "-ffp-contract=off", "-fno-trapping-math", "-fno-math-errno", "-Wall",
             *OPT, *NO_DEBUG_INFO]
# GCC 12.2 warns about its own AVX-512 intrinsics (their _mm512_undefined_* placeholders, GCC bug
# 105593, fixed in 12.3): hundreds of false positives would bury real warnings.
CXX_FLAGS += ["-Wno-maybe-uninitialized", "-Wno-uninitialized"]
# The base ISA's 8-lane vectors (u32x8) go in and out of always-inlined helpers: GCC's note that
# passing 32-byte vectors without AVX changes the calling convention is about calls that are
# never made, and no function of the extension's interface takes or returns a vector.
CXX_FLAGS += ["-Wno-psabi"]

extensions = [
    CppExtension(
        "bitkernels._C",
        sources=rel([CSRC / "ops.cpp", *(CSRC / "cpu").glob("*.cpp")]),
        include_dirs=[str(CSRC / "include"), str(CSRC)],
        extra_compile_args={"cxx": CXX_FLAGS + SANITIZERS},
        extra_link_args=["-fopenmp", *SANITIZERS],
    )
]

if want_cuda():
    extensions.append(
        CUDAExtension(
            "bitkernels._C_cuda",
            sources=rel([*(CSRC / "cuda").glob("*.cu"), *(CSRC / "cuda").glob("*.cpp")]),
            include_dirs=[str(CSRC / "include"), str(CSRC)],
            extra_compile_args={
                "cxx": ["-ffp-contract=off", *OPT, *NO_DEBUG_INFO],
                "nvcc": ["--fmad=false", "-lineinfo", *OPT, *cuda_gencode()],
            },
        )
    )

setup(ext_modules=extensions, cmdclass={"build_ext": BuildExtension})
