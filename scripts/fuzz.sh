#!/usr/bin/env bash
# Fuzzes the untrusted-input parsers of the data layer with libFuzzer:
#   fuzz_image: bytes as an image file -> sn_image_read_rgb, sn_label_read
#   fuzz_list:  bytes as a sample list / classes.txt -> the list parsers
# A separate clang build (-fsanitize=fuzzer,address,undefined), not one of
# CMake's targets. Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] (default 60).
# Builds and corpora go to $FUZZ_DIR (default build-fuzz/); crashes are
# written there as crash-* and make the script exit nonzero.
set -euo pipefail

secs=${1:-60}
root=$(cd "$(dirname "$0")/.." && pwd)
out=${FUZZ_DIR:-$root/build-fuzz}
cc=${CC:-clang}
mkdir -p "$out"
cd "$root"

png_libs=$(pkg-config --libs libpng 2>/dev/null || echo -lpng)
common=(-std=c17 -g -O1 -D_GNU_SOURCE -Wall -Wextra -Werror -Iinclude -Isrc -Itests)
fuzz=(-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
image_src=(src/data/image.c src/data/image_io.c src/train/atomic_file.c)
list_src=(src/data/lists.c src/train/atomic_file.c)

echo "building fuzz targets in $out"
"$cc" "${common[@]}" "${fuzz[@]}" fuzz/fuzz_image.c "${image_src[@]}" $png_libs -ljpeg -lm -o "$out/fuzz_image"
"$cc" "${common[@]}" "${fuzz[@]}" fuzz/fuzz_list.c "${list_src[@]}" -o "$out/fuzz_list"
"$cc" "${common[@]}" fuzz/make_seeds.c tests/support/image_files.c $png_libs -ljpeg -lm -o "$out/make_seeds"

"$out/make_seeds" "$out/seeds_image" "$out/seeds_list"
mkdir -p "$out/corpus_image" "$out/corpus_list"

status=0
run() {
    local name=$1 seeds=$2 corpus=$3 max_len=$4
    echo "== $name: ${secs}s"
    # -rss_limit_mb: images are capped at 256 MiB of pixels (SN_IMAGE_MAX_BYTES).
    if ! (cd "$out" && "./$name" -max_total_time="$secs" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
            -print_final_stats=1 "$corpus" "$seeds" 2>"$name.log"); then
        status=1
        echo "$name FAILED (see $out/$name.log and $out/crash-*)"
    fi
    grep -E "^#[0-9]+.*DONE|stat::number_of_executed_units|stat::peak_rss_mb|cov:" "$out/$name.log" | tail -4 || true
}
run fuzz_image "$out/seeds_image" "$out/corpus_image" 65536
run fuzz_list "$out/seeds_list" "$out/corpus_list" 8192
exit $status
