#!/usr/bin/env bash
# segnas bench infer: times a discrete network and, with --save, leaves what
# bench/discrete_torch.py rebuilds it from (weights with the training
# checkpoint's names, input, logits, config); bad flags are usage errors.
# Usage: cli_bench_infer.sh SEGNAS_BINARY
set -euo pipefail
segnas=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
pass=0
fail() { echo "FAIL: $*"; echo "cli_bench_infer: $pass passed, 1 failed"; exit 1; }
ok() { pass=$((pass + 1)); }

cat >"$dir/g.json" <<'EOF'
{"format":"segnas-genotype","version":1,"F":4,"levels":4,"path":[0,1,0],
 "cell":[[[0,"sep_conv_3x3"],[1,"skip_connect"]],[[2,"atrous_3x3"],[1,"max_pool_3x3"]]]}
EOF
"$segnas" bench infer --arch "$dir/g.json" --size 40x32 --classes 5 --reps 2 --threads 1 --json \
    --save "$dir/out" >"$dir/line" 2>"$dir/err" || fail "bench infer: $(cat "$dir/err")"
ok
for key in '"impl": "segnas"' '"height": 40' '"width": 32' '"images_per_s"' '"peak_rss_mib"' '"cpu_ms_per_image"'; do
    grep -qF "$key" "$dir/line" || fail "JSON line lacks $key: $(cat "$dir/line")"
done
ok
for f in weights.safetensors input.safetensors output.safetensors config.json; do
    [ -s "$dir/out/$f" ] || fail "$f missing or empty"
done
ok
# (headers read into files: with pipefail, `head | grep -q` fails when grep stops early)
head -c 200000 "$dir/out/weights.safetensors" >"$dir/wh"
head -c 4096 "$dir/out/output.safetensors" >"$dir/oh"
head -c 4096 "$dir/out/input.safetensors" >"$dir/ih"
for name in stem0.conv.weight cell1.pre_prev_prev.bn.running_var cell0.block0.left.sep_conv_3x3.dw1.conv.weight \
            cell1.block0.right.skip_connect.conv.weight aspp.concat_projection.bn.gamma decoder.logits.bias; do
    grep -qaF "\"$name\"" "$dir/wh" || fail "weights lack $name"
done
grep -qaF '"shape":[1,40,32,5]' "$dir/oh" || fail "logits are not {1,40,32,5}"
grep -qaF '"shape":[1,40,32,3]' "$dir/ih" || fail "input is not {1,40,32,3}"
grep -qF '"classes": 5' "$dir/out/config.json" && grep -qF '"segnas-genotype"' "$dir/out/config.json" ||
    fail "config.json: $(cat "$dir/out/config.json")"
ok
# Same seed, same logits: the file is deterministic.
"$segnas" bench infer --arch "$dir/g.json" --size 40x32 --classes 5 --reps 1 --threads 1 --save "$dir/out2" \
    >/dev/null 2>&1 || fail "second run"
cmp -s "$dir/out/output.safetensors" "$dir/out2/output.safetensors" || fail "logits differ between two runs"
ok
usage() { # expected status, args...
    local want=$1; shift
    set +e; "$segnas" bench infer "$@" >/dev/null 2>"$dir/err"; local rc=$?; set -e
    [ $rc = "$want" ] || fail "bench infer $* exited $rc (expected $want)"
    [ -s "$dir/err" ] || fail "bench infer $* printed no message"
}
usage 2 --size 8x8
usage 2 --size 64y64
usage 2 --head nosuch
usage 2 --reps 0
usage 2 -F 20 --variant M
usage 1 --arch "$dir/missing.json" --size 32
ok
echo "cli_bench_infer: $pass passed, 0 failed"
