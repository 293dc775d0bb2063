/* Checkpoints: safetensors round trip with metadata, the exact bytes of a
 * tiny file, every kind of malformed file rejected with a message naming the
 * file and the tensor, atomic replacement (the old file survives a failed
 * write), and 500 loads of randomly corrupted files (run under ASan). */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "segnas/train.h"
#include "support/check.h"

static char dir[64];
static char err[512];

static const char *path_in(const char *name)
{
    static char buf[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static sn_tensor *named(sn_ctx *ctx, const char *name, int ndim, const int64_t *shape, uint64_t seed)
{
    sn_tensor *t = sn_buffer_new(ctx, name, ndim, shape);
    fill_normal(t, seed, 1.0f);
    return t;
}

/* A raw file: length prefix + header text + data bytes. */
static void write_raw(const char *path, const char *header, const void *data, size_t data_len)
{
    FILE *f = fopen(path, "wb");
    uint64_t n = strlen(header);
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(n >> (8 * i));
    fwrite(len8, 1, 8, f);
    fwrite(header, 1, n, f);
    if (data_len) fwrite(data, 1, data_len, f);
    fclose(f);
}

static unsigned char *slurp(const char *path, size_t *len)
{
    char *data = NULL;
    if (sn_read_file(path, (size_t)1 << 30, &data, len, err, sizeof err)) return NULL;
    return (unsigned char *)data;
}

static int count_files(void)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static void test_round_trip(sn_ctx *ctx)
{
    int64_t s0[4] = {3, 3, 4, 5}, s1[1] = {7}, s2[2] = {2, 9};
    sn_tensor *t[3] = {named(ctx, "stem.conv.weight", 4, s0, 1), named(ctx, "bn.mean", 1, s1, 2),
                       named(ctx, "optim.weights.w\"q\\.m", 2, s2, 3)};
    const char *meta = "{\"epoch\":\"3\",\"step\":120,\"arch\":{\"F\":8}}";
    const char *path = path_in("rt.safetensors");
    CHECK(sn_checkpoint_save(path, t, 3, meta, err, sizeof err) == SN_OK, "save: %s", err);
    sn_tensor *u[3] = {sn_buffer_new(ctx, "optim.weights.w\"q\\.m", 2, s2), sn_buffer_new(ctx, "stem.conv.weight", 4, s0),
                       sn_buffer_new(ctx, "bn.mean", 1, s1)};
    char *meta_out = NULL;
    CHECK(sn_checkpoint_load(path, u, 3, true, &meta_out, err, sizeof err) == SN_OK, "load: %s", err);
    CHECK(!memcmp(u[1]->data, t[0]->data, (size_t)t[0]->numel * 4) && !memcmp(u[2]->data, t[1]->data, 28) &&
              !memcmp(u[0]->data, t[2]->data, 72),
          "tensors come back bit-exact, by name, in any order");
    CHECK(meta_out && !strcmp(meta_out, "{\"epoch\":\"3\",\"step\":\"120\",\"arch\":\"{\\\"F\\\":8}\"}"),
          "metadata as strings: %s", meta_out ? meta_out : "(null)");
    free(meta_out);
    size_t len;
    unsigned char *b = slurp(path, &len);
    uint64_t hlen = 0;
    for (int i = 7; b && i >= 0; i--) hlen = hlen << 8 | b[i];
    CHECK(b && (8 + hlen) % 8 == 0 && len == 8 + hlen + 4 * (180 + 7 + 18), "data 8-byte aligned, sizes add up");
    free(b);
    CHECK(sn_checkpoint_save(path, t, 3, NULL, err, sizeof err) == SN_OK, "save without metadata");
    CHECK(sn_checkpoint_load(path, u, 3, true, &meta_out, err, sizeof err) == SN_OK && !strcmp(meta_out, "{}"),
          "absent metadata reads as {}");
    free(meta_out);
    CHECK(sn_checkpoint_save(path, t, 3, "[1,2]", err, sizeof err) == SN_ERR_ARG, "metadata must be an object");
    sn_tensor *dup[2] = {t[0], t[0]};
    CHECK(sn_checkpoint_save(path, dup, 2, NULL, err, sizeof err) == SN_ERR_ARG && strstr(err, "stem.conv.weight"),
          "duplicate names refused: %s", err);
}

/* {"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}} is 54 bytes, padded
 * with 2 spaces to 56 so the data starts at byte 64. */
static void test_exact_bytes(sn_ctx *ctx)
{
    int64_t s[1] = {2};
    sn_tensor *a = sn_buffer_new(ctx, "a", 1, s);
    a->data[0] = 1.0f, a->data[1] = -2.0f;
    const char *path = path_in("tiny.safetensors");
    CHECK(sn_checkpoint_save(path, &a, 1, NULL, err, sizeof err) == SN_OK, "save tiny: %s", err);
    static const unsigned char want[] = {
        56, 0, 0, 0, 0, 0, 0, 0,
        '{', '"', 'a', '"', ':', '{', '"', 'd', 't', 'y', 'p', 'e', '"', ':', '"', 'F', '3', '2', '"', ',',
        '"', 's', 'h', 'a', 'p', 'e', '"', ':', '[', '2', ']', ',',
        '"', 'd', 'a', 't', 'a', '_', 'o', 'f', 'f', 's', 'e', 't', 's', '"', ':', '[', '0', ',', '8', ']',
        '}', '}', ' ', ' ',
        0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0};
    size_t len = 0;
    unsigned char *got = slurp(path, &len);
    CHECK(got && len == sizeof want && !memcmp(got, want, sizeof want), "tiny file is byte-exact (%zu bytes)", len);
    free(got);
}

/* Loads `path` into a {2} tensor "a" expecting failure with `status` and a
 * message containing both `what` and the file name. */
static void expect_fail(sn_ctx *ctx, const char *path, int status, const char *what, const char *label)
{
    int64_t s[1] = {2};
    sn_tensor *a = sn_buffer_new(ctx, "a", 1, s);
    a->data[0] = 42.0f;
    err[0] = '\0';
    int rc = sn_checkpoint_load(path, &a, 1, true, NULL, err, sizeof err);
    CHECK(rc == status && strstr(err, what) && strstr(err, path), "%s: status %d, message \"%s\"", label, rc, err);
    CHECK(a->data[0] == 42.0f, "%s: tensor untouched", label);
}

static void test_bad_files(sn_ctx *ctx)
{
    float d2[2] = {1, 2}, d4[4] = {1, 2, 3, 4};
    const char *p = path_in("bad.safetensors");
    const char *good = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    write_raw(p, good, d2, 8);
    int64_t s[1] = {2};
    sn_tensor *a = sn_buffer_new(ctx, "a", 1, s);
    CHECK(sn_checkpoint_load(p, &a, 1, true, NULL, err, sizeof err) == SN_OK && a->data[1] == 2.0f,
          "hand-written file (no padding) loads: %s", err);

    write_raw(p, good, d2, 4);
    expect_fail(ctx, p, SN_ERR_FORMAT, "outside the 4 data bytes", "truncated data");
    write_raw(p, good, d2, 0);
    FILE *f = fopen(p, "r+b");
    CHECK(ftruncate(fileno(f), 20) == 0, "truncate");
    fclose(f);
    expect_fail(ctx, p, SN_ERR_FORMAT, "header length 54", "truncated header");
    f = fopen(p, "wb");
    fwrite("abc", 1, 3, f);
    fclose(f);
    expect_fail(ctx, p, SN_ERR_FORMAT, "too short", "3-byte file");

    write_raw(p, "{\"a\":{\"dtype\":\"F32\",", d2, 8);
    expect_fail(ctx, p, SN_ERR_FORMAT, "not valid JSON", "bad JSON");
    write_raw(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}} x", d2, 8);
    expect_fail(ctx, p, SN_ERR_FORMAT, "junk", "junk after JSON");
    write_raw(p, "[1,2]", NULL, 0);
    expect_fail(ctx, p, SN_ERR_FORMAT, "not a JSON object", "array header");
    write_raw(p, "{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}", d2, 4);
    expect_fail(ctx, p, SN_ERR_FORMAT, "F16", "wrong dtype");
    write_raw(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,16]}}", d2, 8);
    expect_fail(ctx, p, SN_ERR_FORMAT, "outside", "offsets out of range");
    write_raw(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", d2, 8);
    expect_fail(ctx, p, SN_ERR_FORMAT, "outside", "reversed offsets");
    write_raw(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", d2, 8);
    expect_fail(ctx, p, SN_ERR_FORMAT, "needs 12", "offsets inconsistent with shape");
    write_raw(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", d4, 12);
    expect_fail(ctx, p, SN_ERR_FORMAT, "overlap", "overlapping tensors");
    write_raw(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]}}", d4, 16);
    expect_fail(ctx, p, SN_ERR_FORMAT, "gap", "gap between tensors");
    write_raw(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", d4, 16);
    expect_fail(ctx, p, SN_ERR_FORMAT, "twice", "duplicate name");
    write_raw(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", d2, 8);
    expect_fail(ctx, p, SN_ERR_FORMAT, "dimension", "negative dimension");
    write_raw(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", d2, 8);
    expect_fail(ctx, p, SN_ERR_FORMAT, "larger", "overflowing shape");
    write_raw(p, "{\"__metadata__\":{\"epoch\":3},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", d2, 8);
    expect_fail(ctx, p, SN_ERR_FORMAT, "epoch", "non-string metadata");

    write_raw(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,2],\"data_offsets\":[0,8]}}", d2, 8);
    expect_fail(ctx, p, SN_ERR_SHAPE, "1x2 in the file, expected 2", "shape mismatch");
    write_raw(p, "{\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", d2, 8);
    expect_fail(ctx, p, SN_ERR_FORMAT, "tensor a is missing", "missing tensor");
    a->data[0] = 42.0f;
    CHECK(sn_checkpoint_load(p, &a, 1, false, NULL, err, sizeof err) == SN_OK && a->data[0] == 42.0f,
          "missing tensor allowed without require_all: %s", err);
    expect_fail(ctx, path_in("nonexistent"), SN_ERR_IO, "No such file", "missing file");
    expect_fail(ctx, dir, SN_ERR_IO, "not a regular file", "a directory");
}

/* A mismatch in the second tensor leaves the first untouched. */
static void test_all_or_nothing(sn_ctx *ctx)
{
    int64_t s1[1] = {4}, s2[1] = {3}, s3[1] = {5};
    sn_tensor *t[2] = {named(ctx, "x", 1, s1, 5), named(ctx, "y", 1, s2, 6)};
    const char *p = path_in("aon.safetensors");
    sn_checkpoint_save(p, t, 2, NULL, err, sizeof err);
    sn_tensor *u[2] = {sn_buffer_new(ctx, "x", 1, s1), sn_buffer_new(ctx, "y", 1, s3)};
    u[0]->data[0] = 7.0f;
    CHECK(sn_checkpoint_load(p, u, 2, true, NULL, err, sizeof err) == SN_ERR_SHAPE && u[0]->data[0] == 7.0f,
          "validated before anything is written: %s", err);
}

static void test_atomic(sn_ctx *ctx)
{
    int64_t s[1] = {3};
    sn_tensor *v = named(ctx, "v", 1, s, 9);
    const char *p = path_in("atomic.safetensors");
    float first = v->data[0];
    CHECK(sn_checkpoint_save(p, &v, 1, NULL, err, sizeof err) == SN_OK, "first save");
    int files = count_files();
    /* Make the temporary un-creatable: a directory sits at its path. */
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", p, (long)getpid());
    mkdir(tmp, 0700);
    v->data[0] = first + 1;
    CHECK(sn_checkpoint_save(p, &v, 1, NULL, err, sizeof err) == SN_ERR_IO && strstr(err, p),
          "failed write reported: %s", err);
    rmdir(tmp);
    sn_tensor *u = sn_buffer_new(ctx, "v", 1, s);
    CHECK(sn_checkpoint_load(p, &u, 1, true, NULL, err, sizeof err) == SN_OK && u->data[0] == first,
          "old file intact after a failed write");
    /* Target is a directory: the rename fails, the temporary is cleaned up. */
    const char *d = path_in("adir");
    mkdir(d, 0700);
    CHECK(sn_checkpoint_save(d, &v, 1, NULL, err, sizeof err) == SN_ERR_IO && strstr(err, "adir"),
          "saving over a directory fails: %s", err);
    CHECK(count_files() == files + 1, "no temporary left behind (%d files)", count_files());
    rmdir(d);
    CHECK(sn_checkpoint_save(path_in("no/such/dir.safetensors"), &v, 1, NULL, err, sizeof err) == SN_ERR_IO,
          "missing directory: %s", err);
    CHECK(sn_checkpoint_save(p, &v, 1, NULL, err, sizeof err) == SN_OK, "second save");
    CHECK(sn_checkpoint_load(p, &u, 1, true, NULL, err, sizeof err) == SN_OK && u->data[0] == first + 1,
          "second save replaced the file");

    const char *side = path_in("atomic.safetensors.json");
    const char *json = "{\"epoch\":4,\"rng\":[1,2,3,4]}\n";
    CHECK(sn_write_file_atomic(side, json, strlen(json), err, sizeof err) == SN_OK, "sidecar: %s", err);
    char *back = NULL;
    size_t len = 0;
    CHECK(sn_read_file(side, 1 << 20, &back, &len, err, sizeof err) == SN_OK && len == strlen(json) &&
              !strcmp(back, json),
          "sidecar round trip");
    free(back);
    CHECK(sn_read_file(side, 4, &back, &len, err, sizeof err) == SN_ERR_FORMAT && !back, "read limit: %s", err);
}

/* Flips random bytes (mostly in the header) of a valid file and loads it:
 * every outcome must be a clean status, never a crash (ASan build). */
static void test_fuzz(sn_ctx *ctx)
{
    int64_t s0[2] = {3, 4}, s1[1] = {5}, s2[3] = {2, 1, 3};
    sn_tensor *t[3] = {named(ctx, "conv.w", 2, s0, 11), named(ctx, "bn.b", 1, s1, 12), named(ctx, "alpha", 3, s2, 13)};
    const char *p = path_in("fuzz.safetensors"), *q = path_in("fuzzed.safetensors");
    sn_checkpoint_save(p, t, 3, "{\"epoch\":\"1\",\"note\":\"fuzz\"}", err, sizeof err);
    size_t len = 0;
    unsigned char *orig = slurp(p, &len), *buf = malloc(len);
    size_t hend = 8 + ((size_t)orig[0] | (size_t)orig[1] << 8);
    sn_rng rng;
    sn_rng_seed(&rng, 2024);
    int ok = 0, failed = 0, bad_status = 0;
    for (int it = 0; it < 500; it++) {
        memcpy(buf, orig, len);
        int flips = 1 + (int)sn_rng_below(&rng, 4);
        for (int k = 0; k < flips; k++) {
            size_t at = sn_rng_uniform(&rng) < 0.9 ? (size_t)sn_rng_below(&rng, hend) : (size_t)sn_rng_below(&rng, len);
            static const char pick[] = "{}[]\",:0123456789-eE. \\ntruefalsnul";
            buf[at] = sn_rng_uniform(&rng) < 0.5 ? (unsigned char)sn_rng_below(&rng, 256)
                                                  : (unsigned char)pick[sn_rng_below(&rng, sizeof pick - 1)];
        }
        size_t cut = sn_rng_uniform(&rng) < 0.1 ? (size_t)sn_rng_below(&rng, len) : len;
        FILE *f = fopen(q, "wb");
        fwrite(buf, 1, cut, f);
        fclose(f);
        sn_tensor *u[3] = {sn_buffer_new(ctx, "conv.w", 2, s0), sn_buffer_new(ctx, "bn.b", 1, s1),
                           sn_buffer_new(ctx, "alpha", 3, s2)};
        char *meta = NULL;
        err[0] = '\0';
        int rc = sn_checkpoint_load(q, u, 3, it % 2 == 0, &meta, err, sizeof err);
        if (rc == SN_OK) ok++;
        else failed++;
        if (rc != SN_OK && (rc != SN_ERR_FORMAT && rc != SN_ERR_SHAPE && rc != SN_ERR_IO)) bad_status++;
        if (rc != SN_OK && !strstr(err, q)) bad_status++;
        free(meta);
    }
    printf("fuzz: %d of 500 corrupted files loaded, %d rejected\n", ok, failed);
    CHECK(bad_status == 0, "fuzz: every failure is FORMAT/SHAPE/IO with the file named (%d bad)", bad_status);
    CHECK(failed > 250, "fuzz: most corruptions detected (%d ok, %d failed)", ok, failed);
    free(orig), free(buf);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/sn_ckpt_XXXXXX");
    if (!mkdtemp(dir)) return 1;
    sn_ctx *ctx = test_ctx();
    test_round_trip(ctx);
    test_exact_bytes(ctx);
    test_bad_files(ctx);
    test_all_or_nothing(ctx);
    test_atomic(ctx);
    test_fuzz(ctx);
    sn_ctx_destroy(ctx);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return check_summary("checkpoint");
}
