#!/usr/bin/env bash
# segnas train / eval / predict end to end on a tiny network: a run stopped
# midway and resumed ends bitwise identical to an uninterrupted run
# (--threads 1), eval agrees with the training's own final validation,
# predict writes masks of the image's size, and bad usage exits 2.
# Usage: cli_train.sh SEGNAS_BINARY
set -euo pipefail
segnas=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
common=(--arch autodeeplab -F 2 --synth-size 32 --synth-train 16 --synth-val 4 --batch 2 --steps 6
        --val-every 4 --val-samples 4 --checkpoint-every 2 --threads 1 --seed 3 --drop-path-keep 0.8)
fail() { echo "FAIL: $*"; echo "0 passed, 1 failed"; exit 1; }
passed=0
ok() { passed=$((passed + 1)); }

"$segnas" train --run "$dir/full" "${common[@]}" > "$dir/full.out" 2>&1 || fail "train: $(tail -3 "$dir/full.out")"
ok
"$segnas" train --run "$dir/part" "${common[@]}" --stop-after 3 > "$dir/part.out" 2>&1 || fail "stopped train"
grep -q "stopped (--stop-after)" "$dir/part.out" || fail "no stop message"
ok
"$segnas" train --run "$dir/part" "${common[@]}" --resume > "$dir/resume.out" 2>&1 ||
    fail "resume: $(tail -3 "$dir/resume.out")"
grep -q "resumed at step 3" "$dir/resume.out" || fail "resume position: $(grep resumed "$dir/resume.out")"
ok
cmp -s "$dir/full/train.safetensors" "$dir/part/train.safetensors" || fail "resumed run differs from the uninterrupted one"
ok
[ "$(grep -c '"event":"step"' "$dir/full/log.jsonl")" = 6 ] || fail "log has not 6 step lines"
[ "$(grep -c '"event":"val"' "$dir/full/log.jsonl")" = 2 ] || fail "log has not 2 validation lines"
ok
# The default weight decay on the synthetic set is 5e-3 (train.c,
# resolve_weight_decay); an explicit value is kept.
grep -q '"weight_decay":[[:space:]]*0.005' "$dir/full/train.safetensors.json" || fail "synthetic default weight decay is not 5e-3"
"$segnas" train --run "$dir/wd0" "${common[@]}" --steps 1 --weight-decay 0 > "$dir/wd0.out" 2>&1 || fail "train --weight-decay 0"
grep -q '"weight_decay":[[:space:]]*0[,}]' "$dir/wd0/train.safetensors.json" || fail "--weight-decay 0 not kept"
ok

# The final validation of train and a whole-image single-scale eval see the
# same 4 images with the same network: the same mIoU.
train_miou=$(grep '"event":"val"' "$dir/full/log.jsonl" | tail -1 | sed 's/.*"val_miou":\([^,}]*\).*/\1/')
"$segnas" eval "$dir/full/train.safetensors" --synth-size 32 --synth-val 4 --threads 1 > "$dir/eval.out" 2>&1 ||
    fail "eval: $(tail -3 "$dir/eval.out")"
eval_miou=$(grep -o '"miou":[^,]*' "$dir/full/eval.json" | head -1 | cut -d: -f2)
awk -v a="$train_miou" -v b="$eval_miou" 'BEGIN { d = a - b; exit !(d < 1e-5 && d > -1e-5) }' ||
    fail "eval mIoU $eval_miou differs from the training's validation $train_miou"
ok
"$segnas" eval "$dir/full/train.safetensors" --synth-size 32 --synth-val 2 --scales 0.75,1.25 --flip \
    --crop-eval 24x24 --out "$dir/ms.json" > /dev/null 2>&1 || fail "multi-scale sliding-window eval"
grep -q '"scales":' "$dir/ms.json" || fail "multi-scale eval JSON"
ok

"$segnas" data synth --out "$dir/imgs" --n 2 --size 40 > /dev/null 2>&1 || fail "data synth"
"$segnas" predict "$dir/full/train.safetensors" "$dir/imgs/images/train_000000.png" --out "$dir/pred" --overlay \
    > /dev/null 2>&1 || fail "predict"
for f in train_000000_mask.png train_000000_overlay.png; do
    [ -s "$dir/pred/$f" ] || fail "predict wrote no $f"
    # PNG IHDR: width and height, big-endian, at bytes 16..23.
    [ "$(od -An -tx1 -j16 -N8 "$dir/pred/$f" | tr -d ' \n')" = 0000002800000028 ] || fail "$f is not 40x40"
done
ok

set +e
"$segnas" train --steps 0 > /dev/null 2>&1; [ $? = 2 ] || fail "bad flag value must exit 2"
"$segnas" train --head bogus > /dev/null 2>&1; [ $? = 2 ] || fail "unknown head must exit 2"
"$segnas" train --weight-decay -2 > /dev/null 2>&1; [ $? = 2 ] || fail "negative weight decay must exit 2"
"$segnas" eval > /dev/null 2>&1; [ $? = 2 ] || fail "eval without a checkpoint must exit 2"
"$segnas" eval "$dir/none.safetensors" > /dev/null 2>&1; [ $? = 1 ] || fail "missing checkpoint must exit 1"
"$segnas" predict "$dir/full/train.safetensors" "$dir/none.png" --out "$dir/p2" > /dev/null 2>&1
[ $? = 1 ] || fail "missing image must exit 1"
ok
echo "cli_train: $passed passed, 0 failed"
