#!/usr/bin/env bash
# segnas search end to end on a tiny supernet: a run stopped midway and
# resumed ends bitwise identical to an uninterrupted run (--threads 1), a
# second run with the same seed is identical too, and decode writes the
# genotype and its picture. Usage: cli_search_resume.sh SEGNAS_BINARY
set -euo pipefail
segnas=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
common=(--layers 3 --filter-multiplier 2 --stem-channels 4 --blocks 3 --synth-size 32 --synth-train 40
        --synth-val 4 --batch 2 --epochs 2 --steps-per-epoch 5 --arch-start 1 --val-samples 2 --threads 1
        --checkpoint-every 3 --seed 7)
fail() { echo "FAIL: $*"; echo "0 passed, 1 failed"; exit 1; }

"$segnas" search --run "$dir/full" "${common[@]}" > "$dir/full.out" 2>&1 || fail "uninterrupted search: $(tail -3 "$dir/full.out")"
"$segnas" search --run "$dir/again" "${common[@]}" > /dev/null 2>&1 || fail "second search"
"$segnas" search --run "$dir/part" "${common[@]}" --stop-after 7 > "$dir/part.out" 2>&1 || fail "stopped search"
grep -q "stopped (--stop-after)" "$dir/part.out" || fail "no stop message"
"$segnas" search --run "$dir/part" "${common[@]}" --resume > "$dir/resume.out" 2>&1 || fail "resume: $(tail -3 "$dir/resume.out")"
grep -q "resumed at epoch 2, step 2" "$dir/resume.out" || fail "resume position: $(grep resumed "$dir/resume.out")"

cmp -s "$dir/full/search.safetensors" "$dir/again/search.safetensors" || fail "same seed, different result"
cmp -s "$dir/full/search.safetensors" "$dir/part/search.safetensors" || fail "resumed run differs from the uninterrupted one"
cmp -s "$dir/full/genotype.json" "$dir/part/genotype.json" || fail "resumed genotype differs"

"$segnas" decode "$dir/full/search.safetensors" -o "$dir/arch.json" > /dev/null || fail "decode"
cmp -s "$dir/arch.json" "$dir/full/genotype.json" || fail "decode differs from the search's own decoding"
grep -q "<svg" "$dir/arch.svg" || fail "no SVG picture"
grep -q "<svg" "$dir/full/genotype.svg" || fail "the search draws no SVG"
[ "$(grep -c '"event":"epoch"' "$dir/full/log.jsonl")" = 2 ] || fail "log has no epoch lines"

set +e
"$segnas" search --epochs 0 > /dev/null 2>&1; [ $? = 2 ] || fail "bad flag value must exit 2"
"$segnas" search --no-such-flag > /dev/null 2>&1; [ $? = 2 ] || fail "unknown flag must exit 2"
"$segnas" decode "$dir/none.safetensors" > /dev/null 2>&1; [ $? = 1 ] || fail "missing checkpoint must exit 1"
echo "cli_search_resume: 13 passed, 0 failed"
