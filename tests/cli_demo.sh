#!/usr/bin/env bash
# segnas demo --quick end to end: the whole pipeline (search, decode, train,
# eval, plot) on tiny sizes leaves every file the results folder promises,
# non-empty and of the right kind, and commands.txt really reproduces them
# (its decode line, re-run, writes the same genotype). Usage: cli_demo.sh SEGNAS_BINARY
set -euo pipefail
segnas=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
pass=0
fail() { echo "FAIL: $*"; echo "cli_demo: $pass passed, 1 failed"; exit 1; }
ok() { pass=$((pass + 1)); }

out=$dir/results
"$segnas" demo --quick --threads 2 --out "$out" > "$dir/demo.out" 2>&1 || fail "demo --quick: $(tail -5 "$dir/demo.out")"
ok
for f in genotype.json genotype.svg eval.json eval.txt grid.png commands.txt README.md search/log.jsonl \
         search/search.safetensors train/log.jsonl train/train.safetensors; do
    [ -s "$out/$f" ] || fail "$f missing or empty"
    ok
done
grep -q '"format"' "$out/genotype.json" || fail "genotype.json is not a genotype"
grep -q '<svg' "$out/genotype.svg" || fail "genotype.svg is not an SVG"
grep -q '"miou"' "$out/eval.json" || fail "eval.json has no mIoU"
grep -qi 'miou' "$out/eval.txt" || fail "eval.txt has no mIoU"
[ "$(head -c 8 "$out/grid.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] || fail "grid.png is not a PNG"
ok
# The curves issue 7 asks for: losses, mIoU, alpha and beta over the search.
for f in search_loss search_val_miou search_alpha search_beta train_loss train_val_miou; do
    [ -s "$out/$f.svg" ] || fail "$f.svg (segnas plot) missing or empty"
    grep -q "$f.svg" "$out/README.md" || fail "README.md does not list $f.svg"
done
for f in $(find "$out" -maxdepth 1 -name '*.svg'); do grep -q '<svg' "$f" || fail "$f is not an SVG"; done
ok
for c in search decode train eval plot; do
    grep -q "^segnas $c " "$out/commands.txt" || fail "commands.txt has no '$c' command"
done
grep -q "\[5/5\] segnas plot" "$dir/demo.out" || fail "the demo does not print its commands"
grep -q "results: $out/" "$dir/demo.out" || fail "the demo does not say where the results are"
ok
# The recorded decode command, re-run into a copy, writes the same genotype.
line=$(grep '^segnas decode ' "$out/commands.txt")
eval "args=(${line#segnas })"
args=("${args[@]/#$out\/genotype.json/$dir/again.json}")
"$segnas" "${args[@]}" > /dev/null || fail "re-running '$line'"
cmp -s "$out/genotype.json" "$dir/again.json" || fail "commands.txt's decode does not reproduce genotype.json"
ok

set +e
"$segnas" demo --no-such-flag > /dev/null 2>&1; [ $? = 2 ] || fail "unknown flag must exit 2"
"$segnas" demo --quick --out /dev/null/results > "$dir/bad.out" 2>&1; [ $? = 1 ] || fail "unwritable --out must exit 1"
ok
echo "cli_demo: $pass passed, 0 failed"
