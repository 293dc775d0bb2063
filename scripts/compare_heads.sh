#!/usr/bin/env bash
# The context-head comparison of issue 6 in ONE command: every head (aspp,
# ppm, glore, a2, gcu, sgr, nonlocal) on the same backbone (the Auto-DeepLab
# genotype, F = 8), the embedded synthetic data set with its defaults (64x64
# images, 2000 train / 500 val, 8 classes), trained with `segnas train` for
# the same steps, batch and seed, then
#   mIoU, pixel accuracy   `segnas eval` over the whole val split (eval.json)
#   params, Multi-Adds     `segnas stats --head H --json` at the val image
#                          size (network and head alone)
#   inference ms           eval.json's "ms_per_image" (the network's forward
#                          per image at batch 1, EVAL_THREADS threads; if the
#                          field is missing, the wall time of `segnas eval`
#                          divided by the images)
# and prints a markdown table to stdout and to $WORK/heads.md.
#
# SGR gets its prior adjacency from the training split: `segnas data inspect
# --data-format synth --cooccurrence` (--cooccurrence of segnas train); the
# other heads need none.
#
# Trainings run JOBS at a time with THREADS threads each (default 2 x 1 on a
# 2-core machine: separate processes scale better than oversubscribed
# OpenMP); the evaluations run one at a time after all trainings, so the
# inference timings do not compete with each other. They use one thread by
# default: at batch 1 on 64x64 images every op is small, and a second
# OpenMP thread on a busy core makes timings swing by 10x and more. Default (2000 steps of
# batch 4): about 20 minutes on 2 otherwise idle cores.
#
# Usage: scripts/compare_heads.sh [--quick] [--steps N] [--heads "aspp a2 ..."]
#   --quick   end-to-end check of the script: 20 steps, 50 val images
# Environment: SEGNAS (binary; default <repo>/build/segnas), WORK (run folder,
#   default run/compare_heads), ARCH (autodeeplab, or a genotype JSON such as
#   results/genotype.json of the demo: the paper's 12-cell network sits on a
#   plateau for its first ~1000 steps on the synthetic set, README),
#   STEPS (2000), F (8), BATCH (4), SEED (1),
#   JOBS (2), THREADS (1, per training), EVAL_THREADS (1), EVAL_IMAGES (0 =
#   the whole val split), HEADS (all seven), NO_DECODER (1: logits from the
#   head directly, no DeepLabv3+ decoder: about 3x faster steps at 64x64,
#   where the decoder's 256-channel convs are most of the network's work).
# Exit status: 0 table written; 1 a training, evaluation or count failed; 2
#   usage or missing binary.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
SEGNAS=${SEGNAS:-$root/build/segnas}
WORK=${WORK:-run/compare_heads}
STEPS=${STEPS:-2000}
F=${F:-8}
ARCH=${ARCH:-autodeeplab}
BATCH=${BATCH:-4}
SEED=${SEED:-1}
JOBS=${JOBS:-2}
THREADS=${THREADS:-1}
EVAL_THREADS=${EVAL_THREADS:-1}
EVAL_IMAGES=${EVAL_IMAGES:-0}
HEADS=${HEADS:-aspp ppm glore a2 gcu sgr nonlocal}
NO_DECODER=${NO_DECODER:-0}
decoder_flag=()
[[ $NO_DECODER == 1 ]] && decoder_flag=(--no-decoder)

usage() {
  echo "usage: $0 [--quick] [--steps N] [--heads \"aspp ppm ...\"]   (env: SEGNAS WORK STEPS F BATCH SEED JOBS" \
       "THREADS EVAL_THREADS EVAL_IMAGES HEADS NO_DECODER)" >&2
  exit 2
}
while [[ $# -gt 0 ]]; do
  case $1 in
    --quick) STEPS=20 EVAL_IMAGES=50 ;;
    --steps) [[ $# -ge 2 ]] || usage; STEPS=$2; shift ;;
    --steps=*) STEPS=${1#--steps=} ;;
    --heads) [[ $# -ge 2 ]] || usage; HEADS=$2; shift ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) usage ;;
  esac
  shift
done
for v in STEPS F BATCH JOBS THREADS EVAL_THREADS EVAL_IMAGES; do
  if ! [[ ${!v} =~ ^[0-9]+$ ]] || { [[ $v != EVAL_IMAGES ]] && (( ${!v} < 1 )); }; then
    echo "compare_heads.sh: $v=${!v}: expected a positive integer" >&2
    exit 2
  fi
done
if [[ ! -x $SEGNAS ]]; then
  echo "compare_heads.sh: $SEGNAS not found; build it (cmake --build build --target segnas) or set SEGNAS" >&2
  exit 2
fi
mkdir -p "$WORK" || exit 2
read -r load _ </proc/loadavg
if awk -v l="$load" 'BEGIN { exit !(l > 0.5) }'; then
  echo "compare_heads.sh: WARNING: load average $load: other processes use the CPU; inference timings are unreliable" >&2
fi

started=$(date +%s)
trap 'for p in $(jobs -pr); do kill "$p" 2>/dev/null; done' EXIT
trap 'exit 130' INT TERM

# ---- the SGR prior: class co-occurrence of the training split --------------
cooc=$WORK/cooccurrence.json
if ! "$SEGNAS" data inspect --data-format synth --split train --cooccurrence "$cooc" >"$WORK/inspect.txt"; then
  echo "compare_heads.sh: segnas data inspect failed (see $WORK/inspect.txt)" >&2
  exit 1
fi

# ---- training, JOBS at a time -------------------------------------------------
train_one() { # head
  local h=$1 dir=$WORK/$1 extra=()
  [[ $h == sgr ]] && extra=(--cooccurrence "$cooc")
  rm -rf "$dir" && mkdir -p "$dir"
  "$SEGNAS" train --arch "$ARCH" -F "$F" --head "$h" --steps "$STEPS" --batch "$BATCH" --seed "$SEED" \
    --threads "$THREADS" --val-every 0 --val-samples 50 --checkpoint-every "$STEPS" --run "$dir" "${extra[@]}" \
    "${decoder_flag[@]}" \
    >"$dir/train.out" 2>"$dir/train.log"
  echo $? >"$dir/train.rc"
}

echo "compare_heads.sh: training ${HEADS// /, } for $STEPS steps (batch $BATCH, F $F, seed $SEED), $JOBS at a time" \
     "with $THREADS thread(s) each; logs in $WORK/<head>/train.log" >&2
for h in $HEADS; do
  while (( $(jobs -pr | wc -l) >= JOBS )); do wait -n; done
  train_one "$h" &
done
wait
status=0
for h in $HEADS; do
  rc=$(cat "$WORK/$h/train.rc" 2>/dev/null || echo 1)
  if [[ $rc != 0 ]]; then
    echo "compare_heads.sh: training $h failed (exit $rc):" >&2
    tail -3 "$WORK/$h/train.log" >&2
    status=1
  fi
done
(( status == 0 )) || exit 1

# ---- evaluation, counts -------------------------------------------------------------
json_number() { # file, key: the number of the first "key": value
  sed -n "s/.*\"$2\":[[:space:]]*\(-\{0,1\}[0-9][0-9.eE+-]*\).*/\1/p" "$1" | head -1
}
fmt() { # awk printf format, number (empty or null stays "-")
  if [[ -z $2 ]]; then echo "-"; else awk -v v="$2" "BEGIN { printf \"$1\", v }"; fi
}

rows=()
size=""
for h in $HEADS; do
  dir=$WORK/$h
  echo "compare_heads.sh: evaluating $h" >&2
  t0=$(date +%s.%N)
  if ! "$SEGNAS" eval "$dir/train.safetensors" --threads "$EVAL_THREADS" --max-images "$EVAL_IMAGES" \
       --out "$dir/eval.json" >"$dir/eval.out" 2>"$dir/eval.log"; then
    echo "compare_heads.sh: segnas eval of $h failed:" >&2
    tail -3 "$dir/eval.log" >&2
    status=1
    continue
  fi
  wall=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
  miou=$(json_number "$dir/eval.json" miou)
  acc=$(json_number "$dir/eval.json" pixel_accuracy)
  images=$(json_number "$dir/eval.json" images)
  ms=$(json_number "$dir/eval.json" ms_per_image)
  ms_note=""
  if [[ -z $ms && -n $images && $images != 0 ]]; then
    ms=$(awk -v w="$wall" -v n="$images" 'BEGIN { print 1000 * w / n }')
    ms_note=" (wall)"
  fi
  # The val images' size and the classes, as trained (the stats count one
  # image of that size).
  if [[ -z $size ]]; then
    size=$(sed -n 's/.* of [0-9]* x \([0-9]*x[0-9]*\),.*/\1/p' "$dir/train.log" | head -1)
    classes=$(sed -n 's/.* \([0-9]*\) classes,.*/\1/p' "$dir/train.log" | head -1)
  fi
  if ! "$SEGNAS" stats --arch "$ARCH" -F "$F" --head "$h" --classes "${classes:-8}" --size "${size:-64x64}" --json \
       "${decoder_flag[@]}" \
       >"$dir/stats.json"; then
    echo "compare_heads.sh: segnas stats --head $h failed" >&2
    status=1
    continue
  fi
  params=$(json_number "$dir/stats.json" params)
  madds=$(json_number "$dir/stats.json" madds)
  hparams=$(json_number "$dir/stats.json" head_params)
  hmadds=$(json_number "$dir/stats.json" head_madds)
  rows+=("| $h | $(fmt %.2f "$(awk -v v="$miou" 'BEGIN { print 100 * v }')") | $(fmt %.2f \
"$(awk -v v="$acc" 'BEGIN { print 100 * v }')") | $(fmt %.3f "$(awk -v v="$params" 'BEGIN { print v / 1e6 }')") | \
$(fmt %.1f "$(awk -v v="$madds" 'BEGIN { print v / 1e6 }')") | $(fmt %.4f "$(awk -v v="$hparams" 'BEGIN { print v / 1e6 }')") | \
$(fmt %.2f "$(awk -v v="$hmadds" 'BEGIN { print v / 1e6 }')") | $(fmt %.2f "$ms")$ms_note |")
done

# ---- the table -------------------------------------------------------------------------
out=$WORK/heads.md
{
  echo "Context heads on the backbone $ARCH (F = $F$( ((NO_DECODER)) && echo ", no decoder")), synthetic data (defaults: ${classes:-?} classes," \
       "${size:-?} images), $STEPS steps of batch $BATCH, seed $SEED; mIoU over $( ((EVAL_IMAGES)) && echo \
       "the first $EVAL_IMAGES" || echo "all") val images at one scale. Params and Multi-Adds: segnas stats" \
       "(one ${size:-?} image; convolutions and the heads' matrix products); inference: ms per image, batch 1," \
       "$EVAL_THREADS thread(s). $("$SEGNAS" --version 2>/dev/null | head -1), $(date -u +%Y-%m-%d)," \
       "load average at start $load."
  echo
  echo "| head | mIoU (%) | pixel acc. (%) | params (M) | Multi-Adds (M) | head params (M) | head Multi-Adds (M) | inference (ms) |"
  echo "|------|---------:|---------------:|-----------:|---------------:|----------------:|--------------------:|---------------:|"
  printf '%s\n' "${rows[@]}"
} | tee "$out"
echo "compare_heads.sh: wrote $out ($(( $(date +%s) - started )) s)" >&2
exit $status
