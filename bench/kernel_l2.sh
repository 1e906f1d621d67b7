#!/usr/bin/env bash
# Builds bench/kernel_l2.cpp for one format and runs it (see its header comment):
#     bench/kernel_l2.sh [fp32|bf16|fp16] [adamw|sgd|lion] [elements] [steps per timing]
#         [grad scale]
# The binary goes to build/kernel_l2_<format> (or $KERNEL_L2_DIR). CXX and CXXFLAGS override the
# compiler and add flags (e.g. -DSOME_EXPERIMENT); the kernels' own flags are setup.py's. It runs
# the AVX-512 kernels directly: the CPU must have AVX-512 (x86-64-v4). KERNEL_ISA=v3 runs the
# AVX2 kernels instead (binary kernel_l2_<format>_v3).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
format="${1:-bf16}"
case "$format" in
  fp32) type=Fp32 ;;
  bf16) type=Bf16 ;;
  fp16) type=Fp16 ;;
  *) echo "format: fp32, bf16 or fp16" >&2; exit 2 ;;
esac
shift || true
out_dir="${KERNEL_L2_DIR:-$root/build}"
mkdir -p "$out_dir"
isa_flags=()
binary="$out_dir/kernel_l2_$format"
if [ "${KERNEL_ISA:-v4}" = v3 ]; then
  isa_flags=(-DKERNEL_ISA=v3 -DKERNEL_ISA_LEAST=kX86_64_V3)
  binary="${binary}_v3"
fi
"${CXX:-g++}" -std=c++17 -O3 -fopenmp -ffp-contract=off -fno-trapping-math -fno-math-errno \
  -Wall -Wno-psabi -Wno-maybe-uninitialized -Wno-uninitialized ${CXXFLAGS:-} \
  -I"$root/csrc/include" -I"$root/csrc" -I"$root/csrc/cpu" -DKERNEL_FORMAT="bitkernels::$type" \
  "${isa_flags[@]}" "$root/bench/kernel_l2.cpp" -o "$binary"
"$binary" "$@"
