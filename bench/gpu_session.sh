#!/usr/bin/env bash
# The GPU work of a task that is lent an H100/H200 (the device tool), in one or two calls. That
# machine has torch, triton, nvcc, pytest, hypothesis, pytest-benchmark, rich and matplotlib,
# and nothing can be downloaded there, so this uses its python3 as it is: it builds bitkernels
# in place with the CUDA extension (sm_90 only; the test suite compiles every .cu for sm_80 and
# sm_90 itself), then, in the order given:
#   goals  `python -m bitkernels bench --goals --device cuda`: issue 5's GPU goals (AdamW fp32
#          64M against the copy and torch fused, on/off; GPT-2 small), each met or missed
#   test   the whole test suite, the cases on the GPU first, and the benchmark smoke run
#   bench  `python -m bitkernels bench --full --device cuda`: every size 4K..64M, both GPU
#          backends, torch fused and foreach, copy bandwidth, GPT-2 small's parameter list
#   all    goals, test, bench (more than the 10 minutes one call may take)
# Usage: bench/gpu_session.sh [goals|test|bench|all ...] [OUT]   (default: all; OUT defaults to
# $OUT, else bench/gpu-out). A task gets 15 minutes of device time, start included: `goals
# test` in the first call, `bench` in a second if time is left.
# Full logs, JSON and the Markdown tables go to OUT; the console gets the summaries only.
# BENCH_ARGS and GOALS_ARGS replace the runner's arguments; with BITKERNELS_CUDA=0 and CPU plans
# in them the script runs on a machine without a GPU too (a dry run of this script).
set -uo pipefail
cd "$(dirname "$0")/.."
what=()
out=${OUT:-bench/gpu-out}
for arg in "$@"; do
  case $arg in
    goals | test | bench) what+=("$arg") ;;
    all) what+=(goals test bench) ;;
    -*) echo "usage: $0 [goals|test|bench|all ...] [OUT]" >&2; exit 2 ;;
    *) out=$arg ;;
  esac
done
[[ ${#what[@]} -gt 0 ]] || what=(goals test bench)
mkdir -p "$out"
py=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" MAX_JOBS=${MAX_JOBS:-$(nproc)}

{
  date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem \
    --format=csv 2>&1
  nvcc --version 2>&1 | tail -2
  $py -c 'import sys, torch, triton
print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda,
      "triton", triton.__version__)'
  lscpu 2>/dev/null | grep "Model name"
} 2>&1 | tee "$out/env.txt"

start=$SECONDS
if ! BITKERNELS_CUDA=${BITKERNELS_CUDA:-1} BITKERNELS_CUDA_ARCHS=${BITKERNELS_CUDA_ARCHS:-90} \
    $py setup.py build_ext --inplace >"$out/build.log" 2>&1; then
  tail -40 "$out/build.log"
  echo "build failed after $((SECONDS - start)) s (log: $out/build.log)"
  exit 1
fi
echo "built in $((SECONDS - start)) s"
$py -m bitkernels backends 2>&1 | tee "$out/backends.txt"

status=0
for step in "${what[@]}"; do
  start=$SECONDS
  case $step in
    goals)
      # shellcheck disable=SC2086  # GOALS_ARGS is a list of words
      $py -m bitkernels bench --goals ${GOALS_ARGS:---device cuda} --json "$out/goals.json" \
        --markdown "$out/goals.md" >"$out/goals.log" 2>&1 || status=1
      if [[ -s $out/goals.md ]]; then cat "$out/goals.md"; else tail -40 "$out/goals.log"; fi
      ;;
    test)
      # The cases that need the GPU first (their ids say cuda), so that a call cut short by its
      # time limit has run them; then the rest, which CI runs on every commit anyway.
      $py -m pytest tests -q -p no:cacheprovider -rfE --maxfail=30 -k cuda \
        >"$out/tests_cuda.log" 2>&1 || status=1
      tail -40 "$out/tests_cuda.log"
      $py -m pytest tests -q -p no:cacheprovider -rfE --maxfail=30 -k "not cuda" \
        >"$out/tests_rest.log" 2>&1 || status=1
      tail -15 "$out/tests_rest.log"
      $py -m pytest bench --benchmark-disable -q -p no:cacheprovider >"$out/bench_smoke.log" \
        2>&1 || status=1
      tail -3 "$out/bench_smoke.log"
      ;;
    bench)
      # shellcheck disable=SC2086  # BENCH_ARGS is a list of words
      $py -m bitkernels bench ${BENCH_ARGS:---full --device cuda} --json "$out/roofline.json" \
        --markdown "$out/roofline.md" >"$out/roofline.log" 2>&1 || status=1
      if [[ -s $out/roofline.md ]]; then cat "$out/roofline.md"; else tail -40 "$out/roofline.log"; fi
      ;;
  esac
  echo "$step took $((SECONDS - start)) s"
done
exit $status
