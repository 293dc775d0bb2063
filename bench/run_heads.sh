#!/usr/bin/env bash
# Every context / graph-reasoning head against an independent PyTorch
# implementation (bench/heads_torch.py), issue 6 bar "a reference check of
# each head's forward against your own PyTorch implementation of it with the
# same weights", in ONE invocation. Builds nothing.
#
# bench_heads dumps, per head (aspp, ppm, glore, a2, gcu, sgr, nonlocal),
# its weights and BN buffers (segnas names), a random input, the eval-mode
# output, the training-mode output, the updated running statistics and every
# gradient of a backward from a random upstream gradient; heads_torch.py
# rebuilds each head from its own construction, loads the weights, recomputes
# everything in float64 (and float32, the noise floor shown in brackets) and
# gates on max|segnas - torch64| / max|torch64| < TOL per tensor. Two shapes:
#   proj      batch 3, 24x24, 64 -> 48 channels (residual through the 1x1
#             projection), 8 classes;
#   identity  batch 2, 20x28, 64 -> 64 (identity residual; 20 and 28 are not
#             multiples of PPM's 3 and 6 bins: overlapping adaptive bins), 5
#             classes.
#
# Usage: bench/run_heads.sh
# Environment: BUILD (dir holding bench_heads; default <repo>/build),
#   THREADS (2), TOL (1e-4), PY (/usr/bin/python3), SEED (2).
# Seed 1 puts two of ASPP's outputs within 1.2e-6 of its final ReLU's kink
# since the engine's rounding changed (oneDNN team sizes, 2026-12-07): segnas
# and float64 land on different sides, and the gradients differ by 5e-2
# (heads_torch.py names such elements). Seeds 2 and 3 have none.
# Exit status: 0 every head within TOL; 1 a head missed it or a run failed;
#   2 missing build or PyTorch, or a construction mismatch.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
BUILD=${BUILD:-$root/build}
THREADS=${THREADS:-2}
TOL=${TOL:-1e-4}
PY=${PY:-/usr/bin/python3}
SEED=${SEED:-2}

if [[ $# -gt 0 ]]; then
  echo "usage: $0   (env: BUILD THREADS TOL PY SEED)" >&2
  exit 2
fi
bench=$BUILD/bench_heads
if [[ ! -x $bench ]]; then
  echo "run_heads.sh: $bench not found; build it first (cmake --build <build> --target bench_heads) or set BUILD" >&2
  exit 2
fi
if [[ ! -x $PY ]] || ! "$PY" -c "import torch" 2>/dev/null; then
  echo "run_heads.sh: PyTorch is missing for $PY; run scripts/install-deps.sh --bench (installs python3-torch)." >&2
  exit 2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0

check() { # label, bench_heads options...
  local label=$1; shift
  echo "== $label ($*)"
  mkdir -p "$work/$label"
  if ! "$bench" dump "$work/$label" --threads "$THREADS" --seed "$SEED" "$@" >/dev/null; then
    echo "run_heads.sh: bench_heads dump failed" >&2
    status=1
    return
  fi
  "$PY" "$here/heads_torch.py" check "$work/$label"/*.safetensors --tol "$TOL" --threads "$THREADS"
  local rc=$?
  if [[ $rc -gt $status ]]; then status=$rc; fi
}

check proj --batch 3 --height 24 --width 24 --c-in 64 --c-out 48 --classes 8
check identity --batch 2 --height 20 --width 28 --c-in 64 --c-out 64 --classes 5
if [[ $status == 0 ]]; then echo "run_heads.sh: PASS (every head, both shapes, within $TOL)"
else echo "run_heads.sh: FAIL (status $status)"; fi
exit $status
