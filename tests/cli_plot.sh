#!/usr/bin/env bash
# segnas plot and eval's extra outputs end to end: a tiny search and a tiny
# training are plotted from their log.jsonl (each folder, then the parent
# folder scanned into one --out), a log with nan values and a torn line
# still plots, broken logs fail with status 1 and bad usage with 2; eval
# writes ms_per_image, eval.txt and a --grid PNG of the expected size.
# No python here: SVGs are checked with grep. Usage: cli_plot.sh SEGNAS_BINARY
set -euo pipefail
segnas=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
passed=0
fail() { echo "FAIL: $*"; echo "cli_plot: $passed passed, 1 failed"; exit 1; }
ok() { passed=$((passed + 1)); }

# A complete SVG with at least one line of data.
check_svg() {
    [ -s "$1" ] || fail "$1 missing"
    grep -q "<svg" "$1" && grep -q "</svg>" "$1" || fail "$1 is not a complete SVG"
    grep -q "<polyline" "$1" || fail "$1 has no curve"
}

"$segnas" search --run "$dir/runs/search" --layers 3 --filter-multiplier 2 --stem-channels 4 --blocks 3 \
    --synth-size 32 --synth-train 16 --synth-val 2 --batch 2 --epochs 2 --steps-per-epoch 3 --arch-start 1 \
    --val-samples 2 --threads 1 > "$dir/search.out" 2>&1 || fail "search: $(tail -3 "$dir/search.out")"
"$segnas" train --arch autodeeplab -F 2 --steps 4 --batch 2 --synth-size 32 --synth-train 8 --synth-val 3 \
    --val-samples 2 --val-every 2 --threads 1 --run "$dir/runs/train" > "$dir/train.out" 2>&1 ||
    fail "train: $(tail -3 "$dir/train.out")"

# Each run folder: the files go next to its log.
"$segnas" plot "$dir/runs/search" "$dir/runs/train" > /dev/null 2>&1 || fail "plot of two run folders"
for f in loss val_miou alpha beta; do check_svg "$dir/runs/search/$f.svg"; done
for f in loss val_miou; do check_svg "$dir/runs/train/$f.svg"; done
grep -q "sep_conv_3x3" "$dir/runs/search/alpha.svg" || fail "alpha legend has no operator names"
grep -q "<svg" "$dir/runs/search/genotype.svg" || fail "no genotype picture"
[ ! -e "$dir/runs/train/alpha.svg" ] || fail "a training has no alpha"
ok

# The parent folder is scanned; with --out the run names prefix the files.
"$segnas" plot "$dir/runs" --out "$dir/plots" > /dev/null 2>&1 || fail "plot of the parent folder"
for f in search_loss search_val_miou search_alpha search_beta train_loss train_val_miou; do
    check_svg "$dir/plots/$f.svg"
done
ok

# NaN-safe: nan/inf values (not JSON) and a torn last line are skipped.
mkdir -p "$dir/badvalues"
{
    head -n 3 "$dir/runs/train/log.jsonl"
    echo '{"event":"step","step":3,"loss":nan,"lr":-nan}'
    echo '{"event":"step","step":4,"loss":inf,"lr":0.01}'
    echo '{"event":"val","step":4,"val_miou":nan,"val_pixel_accuracy":0.5}'
    printf '{"event":"step","st'
} > "$dir/badvalues/log.jsonl"
"$segnas" plot "$dir/badvalues" > "$dir/badvalues.out" 2>&1 || fail "log with nan values: $(cat "$dir/badvalues.out")"
grep -q "skipped 1 unreadable" "$dir/badvalues.out" || fail "the torn line is not reported"
check_svg "$dir/badvalues/loss.svg"
grep -Eiq "(points|x|y|cx|cy|x1|y1)='[^']*(nan|inf)" "$dir/badvalues/loss.svg" && fail "NaN leaked into the SVG"
ok

# Broken logs: status 1 and one line naming the problem.
mkdir -p "$dir/empty" "$dir/garbled"
: > "$dir/empty/log.jsonl"
printf 'not json\n{"a":\n' > "$dir/garbled/log.jsonl"
set +e
"$segnas" plot "$dir/empty" > /dev/null 2> "$dir/err"; [ $? = 1 ] || fail "empty log must exit 1"
grep -q "empty" "$dir/err" || fail "empty log: $(cat "$dir/err")"
"$segnas" plot "$dir/garbled" > /dev/null 2> "$dir/err"; [ $? = 1 ] || fail "garbled log must exit 1"
[ "$(wc -l < "$dir/err")" = 1 ] || fail "garbled log: expected one error line, got: $(cat "$dir/err")"
"$segnas" plot "$dir/nowhere" > /dev/null 2>&1; [ $? = 1 ] || fail "missing folder must exit 1"
"$segnas" plot > /dev/null 2>&1; [ $? = 2 ] || fail "no run folder must exit 2"
"$segnas" plot "$dir/runs" --no-such-flag > /dev/null 2>&1; [ $? = 2 ] || fail "unknown flag must exit 2"
"$segnas" eval "$dir/runs/train/train.safetensors" --grid "$dir/g.png" --grid-n 0 > /dev/null 2>&1
[ $? = 2 ] || fail "--grid-n 0 must exit 2"
set -e
ok

# eval: timing, the text table and a 2-row grid of 32x32 panels:
# (3 * 32 + 2 * 4) x (2 * 32 + 4) = 104 x 68.
"$segnas" eval "$dir/runs/train/train.safetensors" --synth-size 32 --synth-val 3 --threads 1 --grid "$dir/g.png" \
    --grid-n 2 > "$dir/eval.out" 2>&1 || fail "eval --grid: $(tail -3 "$dir/eval.out")"
grep -q '"ms_per_image"' "$dir/runs/train/eval.json" || fail "no ms_per_image in eval.json"
grep -q "ms per image" "$dir/eval.out" || fail "no timing in the printed summary"
grep -q "^mIoU" "$dir/runs/train/eval.txt" || fail "no eval.txt table"
[ "$(od -An -tx1 -N8 "$dir/g.png" | tr -d ' \n')" = 89504e470d0a1a0a ] || fail "grid is not a PNG"
read -r w0 w1 w2 w3 h0 h1 h2 h3 < <(od -An -tu1 -j16 -N8 "$dir/g.png")
w=$(((w0 << 24) | (w1 << 16) | (w2 << 8) | w3)) h=$(((h0 << 24) | (h1 << 16) | (h2 << 8) | h3))
[ "$w" = 104 ] && [ "$h" = 68 ] || fail "grid is ${w}x${h}, expected 104x68"
ok

echo "cli_plot: $passed passed, 0 failed"
