#!/usr/bin/env bash
# The searched architecture against random ones from the same space (issue
# 7): N architectures drawn by `segnas sample-arch` (seeds 1..N) with the
# searched genotype's L, B and F, each trained by exactly the `segnas train`
# command of RESULTS_DIR/commands.txt (same data, steps, batch, seed) and
# evaluated by its `segnas eval` command, only the genotype and the output
# paths changed. Prints a markdown table (also written to
# RESULTS_DIR/compare_random.md); the random runs go to RESULTS_DIR/random/.
#
# Usage: scripts/compare_random.sh RESULTS_DIR [N=3]
#   RESULTS_DIR  a folder written by `segnas demo` (commands.txt, genotype.json, eval.json)
#   SEGNAS       the binary (default: build/segnas)
# The default demo's training takes ~8 minutes per architecture on 2 cores;
# `segnas demo --quick` results give a seconds-scale check of this script.
set -euo pipefail
usage="usage: scripts/compare_random.sh RESULTS_DIR [N=3]"
results=${1:?$usage}
n=${2:-3}
segnas=${SEGNAS:-build/segnas}
[[ $n =~ ^[0-9]+$ ]] || { echo "$usage (N must be a number)" >&2; exit 2; }
[ -x "$segnas" ] || { echo "compare_random: no segnas binary at $segnas (build it, or set SEGNAS)" >&2; exit 2; }
cmds=$results/commands.txt
[ -s "$cmds" ] || { echo "compare_random: $cmds missing: run segnas demo --out $results first" >&2; exit 2; }

# commands.txt is written by segnas demo with shell quoting: read it back with
# the shell's own word splitting.
train_line=$(grep -m1 '^segnas train ' "$cmds") || { echo "compare_random: no train command in $cmds" >&2; exit 2; }
eval_line=$(grep -m1 '^segnas eval ' "$cmds") || { echo "compare_random: no eval command in $cmds" >&2; exit 2; }
eval "train_cmd=(${train_line#segnas })"
eval "eval_cmd=(${eval_line#segnas })"

# The value after `flag` in the named array ("" if absent).
flag_value() {
    local -n a=$1
    local i
    for ((i = 0; i + 1 < ${#a[@]}; i++)); do
        [ "${a[i]}" = "$2" ] && { echo "${a[i + 1]}"; return; }
    done
    echo ""
}
# Sets the value after `flag` in the named array (the flag must be there).
set_flag() {
    local -n a=$1
    local i
    for ((i = 0; i + 1 < ${#a[@]}; i++)); do
        [ "${a[i]}" = "$2" ] && { a[i + 1]=$3; return; }
    done
    echo "compare_random: the recorded command has no $2" >&2
    exit 1
}

genotype=$(flag_value train_cmd --arch)
size=$(flag_value train_cmd --synth-size)
searched_eval=$(flag_value eval_cmd --out)
[ -s "$genotype" ] && [ -s "$searched_eval" ] || { echo "compare_random: $genotype or $searched_eval missing" >&2; exit 2; }
# classes: the members of eval.json's "iou" object, one per line.
classes=$(awk '/"iou"/ {f = 1; next} f && /}/ {exit} f {c++} END {print c + 0}' "$searched_eval")
[ "${classes:-0}" -ge 1 ] || classes=8

# params (M) and Multi-Adds (B) at the training size: the "total" row of segnas stats.
cost() { "$segnas" stats --arch "$1" --size "${size:-64}x${size:-64}" --classes "$classes" | awk '$1 == "total" {print $2 "M | " $3 "B"}'; }
miou() { grep -o '"miou":[^,}]*' "$1" | head -1 | sed 's/.*:[[:space:]]*//' | awk '{printf "%.2f%%", 100 * $1}'; }

# L, B and F of the searched genotype (the first line of segnas stats).
arch_line=$("$segnas" stats --arch "$genotype" --size 64x64 --classes "$classes" | head -1)
layers=$(sed -n 's/^architecture: \([0-9]*\) cells.*/\1/p' <<< "$arch_line")
blocks=$(sed -n 's/.*B = \([0-9]*\),.*/\1/p' <<< "$arch_line")
filters=$(sed -n 's/.*F = \([0-9]*\),.*/\1/p' <<< "$arch_line")
[ -n "$layers" ] && [ -n "$blocks" ] && [ -n "$filters" ] || { echo "compare_random: cannot read L, B, F from: $arch_line" >&2; exit 1; }

# Prints the command (as commands.txt writes it) on the terminal, then runs
# it with its output in the log file $1.
run() {
    local log=$1
    shift
    echo "+ segnas $*" >&2
    "$segnas" "$@" > "$log" 2>&1
}

table="| architecture | mIoU | params | Multi-Adds |
|---|---|---|---|
| searched | $(miou "$searched_eval") | $(cost "$genotype") |"
for ((k = 1; k <= n; k++)); do
    dir=$results/random/seed$k
    mkdir -p "$dir"
    run "$dir/sample.log" sample-arch --layers "$layers" --blocks "$blocks" -F "$filters" --seed "$k" --out "$dir/genotype.json" ||
        { echo "compare_random: sample-arch failed (see $dir/sample.log)" >&2; exit 1; }
    t=("${train_cmd[@]}")
    set_flag t --arch "$dir/genotype.json"
    set_flag t --run "$dir/train"
    run "$dir/train.log" "${t[@]}" || { echo "compare_random: training seed $k failed (see $dir/train.log)" >&2; exit 1; }
    e=("${eval_cmd[@]}")
    e[1]=$dir/train/train.safetensors
    set_flag e --out "$dir/eval.json"
    [ -n "$(flag_value e --grid)" ] && set_flag e --grid "$dir/grid.png"
    run "$dir/eval.log" "${e[@]}" || { echo "compare_random: evaluating seed $k failed (see $dir/eval.log)" >&2; exit 1; }
    m=$(miou "$dir/eval.json")
    sum=$(awk -v a="${sum:-0}" -v b="${m%\%}" 'BEGIN {print a + b}')
    table+="
| random seed $k | $m | $(cost "$dir/genotype.json") |"
done
[ "$n" -gt 1 ] && table+="
| random, mean of $n | $(awk -v s="$sum" -v n="$n" 'BEGIN {printf "%.2f%%", s / n}') | | |"
echo "$table" | tee "$results/compare_random.md"
