#!/usr/bin/env bash
# segnas against PyTorch (as shipped, and tuned) on DESIGN.md's layers a-e
# (forward + backward data + backward weights, batch 2) and on the tiny-op
# chain of the framework-overhead bar, in ONE invocation. Builds nothing.
#
# Noise between processes is up to 30% here (DESIGN.md), so each side runs in
# PROCS separate processes, interleaved (segnas, torch shipped, torch tuned,
# segnas, ...), and the table shows the median over processes of each
# process's median.
#
# A machine probe (bench_ops --probe-only) runs before every process, to
# show slow phases of the VM, which no CPU counter reveals (see bench_ops.c).
#
# Usage: bench/run_ops.sh [--breakdown]
#   --breakdown  also times fwd / bwd data / bwd weights of every convolution
#                of every layer alone (one more segnas process).
# Environment: BUILD (build dir holding bench_ops; default <repo>/build),
#   THREADS (2), PROCS (3), REPS (50 per process), PY (/usr/bin/python3).
# Exit status: 0 all bars met; 1 a bar missed or a benchmark failed (e.g. a
#   "ref" oneDNN implementation); 2 missing build or missing PyTorch.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
BUILD=${BUILD:-$root/build}
THREADS=${THREADS:-2}
PROCS=${PROCS:-3}
REPS=${REPS:-50}
PY=${PY:-/usr/bin/python3}
TUNABLES="glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824"

breakdown=0
for a in "$@"; do
  case $a in
    --breakdown) breakdown=1 ;;
    *) echo "usage: $0 [--breakdown]   (env: BUILD THREADS PROCS REPS PY)" >&2; exit 2 ;;
  esac
done

bench=$BUILD/bench_ops
if [[ ! -x $bench ]]; then
  echo "run_ops.sh: $bench not found; build it first (cmake --build <build> --target bench_ops) or set BUILD" >&2
  exit 2
fi
if [[ ! -x $PY ]] || ! "$PY" -c "import torch" 2>/dev/null; then
  echo "run_ops.sh: PyTorch is missing for $PY; run scripts/install-deps.sh --bench (installs python3-torch)." >&2
  echo "            Debian's torch runs under /usr/bin/python3 (the first python3 on PATH may have none)." >&2
  exit 2
fi

# OpenMP teams of THREADS on a machine with few cores degrade by 10x and more
# when another process holds a core (barriers wait for a descheduled thread):
# say so, since such numbers are not worth comparing.
check_load() {
  local load
  read -r load _ </proc/loadavg
  if awk -v l="$load" 'BEGIN { exit !(l > 0.5) }'; then
    echo "run_ops.sh: WARNING: load average $load $1: other processes use the CPU; timings are unreliable" >&2
  fi
}
check_load "before the run"

# CPU time (clock ticks) all processes / this script's finished children used.
busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }
own_ticks() { awk '{ print $16 + $17 }' "/proc/$$/stat"; }
busy0=$(busy_ticks); own0=$(own_ticks); t0=$(date +%s.%N)

out=$(mktemp)
trap 'rm -f "$out"' EXIT
common=(--json --threads "$THREADS" --reps "$REPS")

run() { # label, command...: appends JSON lines, stops the script on failure
  local label=$1; shift
  if ! "$@" >>"$out"; then
    echo "run_ops.sh: $label failed: $*" >&2
    exit 1
  fi
}

echo "running $PROCS x (segnas, torch shipped, torch tuned), $THREADS threads, $REPS reps each ..." >&2
for ((p = 1; p <= PROCS; p++)); do
  run segnas "$bench" "${common[@]}"
  run probe "$bench" --probe-only --json --threads "$THREADS"
  run "torch shipped" "$PY" "$here/torch_ops.py" --mode shipped "${common[@]}"
  run probe "$bench" --probe-only --json --threads "$THREADS"
  run "torch tuned" env -u OPENBLAS_CORETYPE GLIBC_TUNABLES="$TUNABLES" OPENBLAS_NUM_THREADS="$THREADS" \
    "$PY" "$here/torch_ops.py" --mode tuned "${common[@]}"
done
if ((breakdown)); then
  run "segnas breakdown" "$bench" "${common[@]}" --breakdown --no-overhead
fi

# CPU time that other processes took during the run, as a share of the
# machine: above a few percent the comparison is not trustworthy.
foreign=$(awk -v b="$(( $(busy_ticks) - busy0 ))" -v o="$(( $(own_ticks) - own0 ))" -v t0="$t0" \
  -v t1="$(date +%s.%N)" -v hz="$(getconf CLK_TCK)" -v n="$(nproc)" \
  'BEGIN { f = 100 * (b - o) / hz / ((t1 - t0) * n); printf "%.1f", f < 0 ? 0 : f }')
echo "other processes used ${foreign}% of the machine's CPU time during the run" >&2
if awk -v f="$foreign" 'BEGIN { exit !(f > 5) }'; then
  echo "run_ops.sh: WARNING: that is more than 5%: timings are unreliable; run again on a quiet machine" >&2
fi

# The table needs only the Python that torch needs anyway (checked above).
"$PY" - "$out" "$PROCS" "$THREADS" <<'EOF'
import json, statistics, sys

path, procs, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
layers, overhead, impls, whats, breakdown, seeds, probes = {}, {}, {}, {}, {}, {}, []
for line in open(path):
    if not line.startswith("{"):
        continue
    r = json.loads(line)
    if r["bench"] == "layer":
        layers.setdefault((r["impl"], r["layer"]), []).append(r["ms"])
        whats[r["layer"]] = r["what"]
        if r["impl"] == "segnas":
            impls.setdefault(r["layer"], r["impls"])
            seeds.setdefault(r["layer"], []).append(r["seed_ms"])
    elif r["bench"] == "overhead":
        overhead.setdefault(r["impl"], []).append(r)
    elif r["bench"] == "probe":
        probes.append(r)
    elif r["bench"] == "breakdown":
        breakdown.setdefault(r["layer"], []).append(r)

med = statistics.median
ids = sorted({lid for (_, lid) in layers})
sides = ["segnas", "torch_shipped", "torch_tuned"]
ms = {(s, l): med(layers[(s, l)]) for s in sides for l in ids if (s, l) in layers}
missing = [(s, l) for s in sides for l in ids if (s, l) not in ms]
if missing:
    sys.exit("run_ops.sh: no result for %s" % missing)

def spread(s, l):
    v = layers[(s, l)]
    return 100.0 * (max(v) - min(v)) / med(v)

print("\nfwd + bwd data + bwd weights, batch 2, %d threads; ms = median over %d processes "
      "(max-min spread across processes in %%)\nseed: part of the segnas time spent by sn_backward_from seeding "
      "the output gradient (borrowed, not copied)" % (threads, procs))
hdr = "%-3s %-32s %15s %6s %17s %17s %9s %9s" % ("", "layer", "segnas ms", "seed", "torch shipped",
                                                 "torch tuned", "shipped/", "tuned/")
print(hdr + "\n" + "%-3s %-32s %15s %6s %17s %17s %9s %9s" % ("", "", "", "", "(NCHW) ms", "(ch.-last) ms",
                                                               "segnas", "segnas"))
for l in ids:
    a, b, c = ms[("segnas", l)], ms[("torch_shipped", l)], ms[("torch_tuned", l)]
    print("%-3s %-32s %8.3f (%3.0f%%) %6.3f %10.3f (%3.0f%%) %10.3f (%3.0f%%) %8.2fx %8.2fx" %
          (l, whats[l], a, spread("segnas", l), med(seeds[l]), b, spread("torch_shipped", l), c,
           spread("torch_tuned", l), b / a, c / a))
tot = {s: sum(ms[(s, l)] for l in ids) for s in sides}
print("%-3s %-32s %15.3f %6.3f %17.3f %17.3f %8.2fx %8.2fx" %
      ("", "sum", tot["segnas"], sum(med(seeds[l]) for l in ids), tot["torch_shipped"], tot["torch_tuned"],
       tot["torch_shipped"] / tot["segnas"], tot["torch_tuned"] / tot["segnas"]))

print("\noneDNN implementations (segnas:nhwc_dw = our own depthwise kernels):")
for l in ids:
    print("  %s: %s" % (l, ", ".join("%s=%s" % kv for kv in impls[l].items())))

if breakdown:
    print("\nbreakdown, each convolution alone (ms; backward with the seed subtracted):")
    for l in ids:
        for r in breakdown.get(l, []):
            print("  %s %-4s %dx%d  fwd %.3f  bwd data %.3f  bwd weights %.3f  (seed %.3f, all %.3f)" %
                  (l, r["kind"], r["k"], r["k"], r["fwd_ms"], r["bwd_data_ms"], r["bwd_weights_ms"],
                   r["seed_ms"], r["total_ms"]))

ov = overhead.get("segnas", [])
over = med([r["overhead_per_op_us"] for r in ov]) if ov else float("nan")
if ov:
    print("\ntiny-op chain, 1000 ops (1x1 conv 8->8 / batch norm / ReLU at 10x10x8), fwd + bwd, per op:")
    print("  segnas        %6.2f us (kernels alone %.2f us) -> overhead per op: %.2f us" %
          (med([r["per_op_us"] for r in ov]), med([r["kernel_per_op_us"] for r in ov]), over))
    re, rl = med([r["relu_per_op_us"] for r in ov]), med([r["relu_loop_per_op_us"] for r in ov])
    print("  cross-check, 1000 ReLUs: engine %.2f us, loops alone %.2f us -> %.2f us per op" % (re, rl, re - rl))
    for s in ("torch_shipped", "torch_tuned"):
        if s in overhead:
            print("  %-13s %6.2f us" % (s, med([r["per_op_us"] for r in overhead[s]])))

if probes:
    # A slow phase of the VM shows as a process whose probe is far below the rest.
    print("\nmachine probe in run order, GB/s of a cache-resident b += a (1 thread / all threads):")
    print("  " + " ".join("%.0f/%.0f" % (r["gbs_1"], r["gbs_all"]) for r in probes))
    lo, hi = min(r["gbs_all"] for r in probes), max(r["gbs_all"] for r in probes)
    if lo < 0.7 * hi:
        print("  WARNING: the machine was much slower during part of the run (%.0f vs %.0f GB/s): "
              "compare with care, run again" % (lo, hi))

bars = []
for l in ids:
    bars.append(("segnas faster than torch tuned on layer %s" % l, ms[("torch_tuned", l)] / ms[("segnas", l)], 1.0))
bars.append(("segnas faster than torch tuned on the sum", tot["torch_tuned"] / tot["segnas"], 1.0))
if "c" in ids:
    bars.append((">= 4x vs torch tuned on layer c", ms[("torch_tuned", "c")] / ms[("segnas", "c")], 4.0))
bars.append((">= 5x vs torch shipped on the sum", tot["torch_shipped"] / tot["segnas"], 5.0))
print("\nbars:")
failed = 0
for name, ratio, need in bars:
    ok = ratio > need if need == 1.0 else ratio >= need
    failed += not ok
    print("  %-4s %-46s %7.3fx (need %s%.0fx)" % ("PASS" if ok else "FAIL", name, ratio,
                                                   ">" if need == 1.0 else ">=", need))
if ov:
    ok = over <= 5.0
    failed += not ok
    print("  %-4s %-46s %7.3f us (need <= 5 us)" % ("PASS" if ok else "FAIL", "framework overhead per op", over))
sys.exit(1 if failed else 0)
EOF
