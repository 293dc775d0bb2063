/* Checkpoints as safetensors (https://github.com/huggingface/safetensors,
 * "Format"): an 8-byte little-endian header length N, N bytes of JSON
 * {"__metadata__": {str: str}, "<name>": {"dtype": "F32", "shape": [...],
 * "data_offsets": [begin, end]}, ...} padded with spaces so the data starts
 * 8-byte aligned, then the raw little-endian tensor bytes; offsets are
 * relative to the data and must tile it exactly. Files written here load in
 * Python with safetensors.numpy.load_file.
 *
 * A loaded file is never trusted (STYLE.md, SQLite): every length and offset
 * is checked before it is used, and nothing is written into a tensor until
 * the whole header has been validated. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "segnas/train.h"
#include "tensor/atomic.h"
#include "tensor/internal.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; add byte swapping for this target"
#endif

/* safetensors' own limit on the header (100 MB): refuse larger ones before
 * allocating anything. */
#define HEADER_MAX ((uint64_t)100000000)
/* Integers in JSON numbers are exact up to 2^53. */
#define JSON_INT_MAX 9007199254740992.0

/* ---- a growable string for the header ----------------------------------- */
typedef struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

/* A JSON string literal: quotes, backslashes and control bytes escaped. */
static void sb_json_string(sbuf *b, const char *s)
{
    sb_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c;
            sb_put(b, esc, 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            sb_put(b, esc, 6);
        } else {
            sb_put(b, s, 1);
        }
    }
    sb_put(b, "\"", 1);
}

/* ---- saving -------------------------------------------------------------- */
static int check_names(const char *path, sn_tensor *const *t, int n, char *err, size_t errlen)
{
    for (int i = 0; i < n; i++) {
        if (!t[i] || !t[i]->name || !t[i]->name[0])
            return sn_errf(err, errlen, SN_ERR_ARG, "%s: tensor %d has no name", path, i);
        if (!strcmp(t[i]->name, "__metadata__"))
            return sn_errf(err, errlen, SN_ERR_ARG, "%s: \"__metadata__\" is reserved", path);
        for (int j = 0; j < i; j++)
            if (!strcmp(t[i]->name, t[j]->name))
                return sn_errf(err, errlen, SN_ERR_ARG, "%s: two tensors named %s", path, t[i]->name);
    }
    return SN_OK;
}

/* "__metadata__": the caller's JSON object with every value as a string. */
static int put_metadata(sbuf *b, const char *path, const char *json, char *err, size_t errlen)
{
    cJSON *root = cJSON_Parse(json);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return sn_errf(err, errlen, SN_ERR_ARG, "%s: metadata is not a JSON object", path);
    }
    sb_str(b, "\"__metadata__\":{");
    int k = 0;
    for (cJSON *it = root->child; it; it = it->next, k++) {
        if (k) sb_put(b, ",", 1);
        sb_json_string(b, it->string ? it->string : "");
        sb_put(b, ":", 1);
        if (cJSON_IsString(it)) {
            sb_json_string(b, it->valuestring);
        } else {
            char *text = cJSON_PrintUnformatted(it);
            if (!text) b->oom = true;
            else sb_json_string(b, text);
            free(text);
        }
    }
    sb_put(b, "}", 1);
    cJSON_Delete(root);
    return SN_OK;
}

static void put_tensor(sbuf *b, const sn_tensor *t, uint64_t begin)
{
    char num[48];
    sb_json_string(b, t->name);
    sb_str(b, ":{\"dtype\":\"F32\",\"shape\":[");
    for (int d = 0; d < t->ndim; d++) {
        snprintf(num, sizeof num, d ? ",%" PRId64 : "%" PRId64, t->shape[d]);
        sb_str(b, num);
    }
    snprintf(num, sizeof num, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", begin,
             begin + (uint64_t)t->numel * sizeof(float));
    sb_str(b, num);
}

/* The header JSON, padded with spaces so that 8 + length is a multiple of 8. */
static int build_header(sbuf *b, const char *path, sn_tensor *const *t, int n, const char *meta,
                        char *err, size_t errlen)
{
    sb_put(b, "{", 1);
    if (meta) {
        int rc = put_metadata(b, path, meta, err, errlen);
        if (rc) return rc;
    }
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        if (meta || i) sb_put(b, ",", 1);
        put_tensor(b, t[i], off);
        off += (uint64_t)t[i]->numel * sizeof(float);
    }
    sb_put(b, "}", 1);
    while (!b->oom && (8 + b->len) % 8) sb_put(b, " ", 1);
    if (b->oom) return sn_errf(err, errlen, SN_ERR_NOMEM, "%s: out of memory for the header", path);
    return SN_OK;
}

int sn_checkpoint_save(const char *path, sn_tensor *const *tensors, int n, const char *metadata_json,
                       char *err, size_t errlen)
{
    if (n < 0 || (n > 0 && !tensors))
        return sn_errf(err, errlen, SN_ERR_ARG, "%s: bad tensor list (n = %d)", path, n);
    int rc = check_names(path, tensors, n, err, errlen);
    if (rc) return rc;
    sbuf hdr = {0};
    rc = build_header(&hdr, path, tensors, n, metadata_json, err, errlen);
    if (rc) {
        free(hdr.p);
        return rc;
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)hdr.len >> (8 * i));
    sn_atomic_file f;
    rc = sn_atomic_begin(&f, path, err, errlen);
    if (!rc) rc = sn_atomic_write(&f, len8, 8, err, errlen);
    if (!rc) rc = sn_atomic_write(&f, hdr.p, hdr.len, err, errlen);
    for (int i = 0; i < n && !rc; i++)
        rc = sn_atomic_write(&f, tensors[i]->data, (size_t)tensors[i]->numel * sizeof(float), err, errlen);
    if (!rc) rc = sn_atomic_commit(&f, err, errlen);
    free(hdr.p);
    return rc;
}

/* ---- loading: parse and validate the header ------------------------------ */
typedef struct entry {
    const char *name; /* owned by the cJSON tree */
    int ndim;         /* may exceed SN_MAX_DIMS: such a tensor matches nothing */
    int64_t shape[SN_MAX_DIMS];
    uint64_t begin, end;
} entry;

typedef struct header {
    cJSON *root;
    const cJSON *meta;
    entry *e;
    const entry **by_name; /* e sorted by name */
    int n;
    uint64_t data_len;
    long data_start;
} header;

static bool json_uint(const cJSON *x, double *v)
{
    if (!cJSON_IsNumber(x)) return false;
    *v = x->valuedouble;
    return *v >= 0 && *v <= JSON_INT_MAX && *v == floor(*v);
}

static int parse_shape(const char *path, const char *name, const cJSON *shape, entry *e,
                       uint64_t *bytes, uint64_t data_len, char *err, size_t errlen)
{
    if (!cJSON_IsArray(shape))
        return sn_errf(err, errlen, SN_ERR_FORMAT, "%s: tensor %s: \"shape\" is not an array", path, name);
    uint64_t numel = 1;
    e->ndim = 0;
    for (const cJSON *d = shape->child; d; d = d->next, e->ndim++) {
        double v;
        if (!json_uint(d, &v))
            return sn_errf(err, errlen, SN_ERR_FORMAT, "%s: tensor %s: bad dimension in \"shape\"", path, name);
        if (e->ndim < SN_MAX_DIMS) e->shape[e->ndim] = (int64_t)v;
        /* Any tensor larger than the data is an error: stop before overflow. */
        if (v > 0 && numel > data_len / 4 / (uint64_t)v + 1)
            return sn_errf(err, errlen, SN_ERR_FORMAT, "%s: tensor %s: shape larger than the file's data",
                                 path, name);
        numel *= (uint64_t)v;
    }
    *bytes = numel * 4;
    return SN_OK;
}

static int parse_entry(const char *path, const cJSON *it, entry *e, uint64_t data_len, char *err,
                       size_t errlen)
{
    const char *name = it->string;
    e->name = name;
    if (!cJSON_IsObject(it))
        return sn_errf(err, errlen, SN_ERR_FORMAT, "%s: tensor %s: entry is not an object", path, name);
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(it, "dtype");
    if (!cJSON_IsString(dtype))
        return sn_errf(err, errlen, SN_ERR_FORMAT, "%s: tensor %s: missing \"dtype\"", path, name);
    if (strcmp(dtype->valuestring, "F32"))
        return sn_errf(err, errlen, SN_ERR_FORMAT, "%s: tensor %s: dtype %.16s, only F32 is supported",
                             path, name, dtype->valuestring);
    uint64_t bytes = 0;
    int rc = parse_shape(path, name, cJSON_GetObjectItemCaseSensitive(it, "shape"), e, &bytes, data_len,
                         err, errlen);
    if (rc) return rc;
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
    double b, en;
    if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2 || !json_uint(off->child, &b) ||
        !json_uint(off->child->next, &en))
        return sn_errf(err, errlen, SN_ERR_FORMAT,
                             "%s: tensor %s: \"data_offsets\" must be two non-negative integers", path, name);
    e->begin = (uint64_t)b;
    e->end = (uint64_t)en;
    if (e->begin > e->end || e->end > data_len)
        return sn_errf(err, errlen, SN_ERR_FORMAT,
                             "%s: tensor %s: data_offsets [%" PRIu64 ", %" PRIu64 "] outside the %" PRIu64
                             " data bytes",
                             path, name, e->begin, e->end, data_len);
    if (e->end - e->begin != bytes)
        return sn_errf(err, errlen, SN_ERR_FORMAT,
                             "%s: tensor %s: data_offsets span %" PRIu64 " bytes, its shape needs %" PRIu64,
                             path, name, e->end - e->begin, bytes);
    return SN_OK;
}

static int by_begin(const void *pa, const void *pb)
{
    const entry *a = pa, *b = pb;
    if (a->begin != b->begin) return a->begin < b->begin ? -1 : 1;
    return a->end < b->end ? -1 : a->end > b->end;
}

/* The tensors must tile the data exactly: no overlap, no gap, nothing left. */
static int check_tiling(const char *path, header *h, char *err, size_t errlen)
{
    qsort(h->e, (size_t)h->n, sizeof *h->e, by_begin);
    uint64_t at = 0;
    for (int i = 0; i < h->n; i++) {
        const entry *e = &h->e[i];
        if (e->begin < at)
            return sn_errf(err, errlen, SN_ERR_FORMAT, "%s: tensors %s and %s overlap", path,
                                 h->e[i - 1].name, e->name);
        if (e->begin > at)
            return sn_errf(err, errlen, SN_ERR_FORMAT, "%s: gap of %" PRIu64 " bytes before tensor %s",
                                 path, e->begin - at, e->name);
        at = e->end;
    }
    if (at != h->data_len)
        return sn_errf(err, errlen, SN_ERR_FORMAT,
                             "%s: tensors cover %" PRIu64 " of the %" PRIu64 " data bytes", path, at, h->data_len);
    return SN_OK;
}

static int check_metadata(const char *path, const cJSON *meta, char *err, size_t errlen)
{
    if (!cJSON_IsObject(meta))
        return sn_errf(err, errlen, SN_ERR_FORMAT, "%s: \"__metadata__\" is not an object", path);
    for (const cJSON *m = meta->child; m; m = m->next)
        if (!cJSON_IsString(m))
            return sn_errf(err, errlen, SN_ERR_FORMAT, "%s: metadata %s is not a string", path, m->string);
    return SN_OK;
}

static int parse_entries(const char *path, header *h, char *err, size_t errlen)
{
    int count = cJSON_GetArraySize(h->root);
    h->e = calloc((size_t)(count ? count : 1), sizeof *h->e);
    if (!h->e) return sn_errf(err, errlen, SN_ERR_NOMEM, "%s: out of memory", path);
    for (const cJSON *it = h->root->child; it; it = it->next) {
        if (!strcmp(it->string, "__metadata__")) {
            if (h->meta)
                return sn_errf(err, errlen, SN_ERR_FORMAT, "%s: \"__metadata__\" appears twice", path);
            h->meta = it;
            int rc = check_metadata(path, it, err, errlen);
            if (rc) return rc;
            continue;
        }
        int rc = parse_entry(path, it, &h->e[h->n], h->data_len, err, errlen);
        if (rc) return rc;
        h->n++;
    }
    return check_tiling(path, h, err, errlen);
}

static int by_name(const void *pa, const void *pb)
{
    return strcmp((*(const entry *const *)pa)->name, (*(const entry *const *)pb)->name);
}

/* Names sorted for lookup; a name given twice is an error (which one would
 * be meant?). Sorting keeps a hostile header with many keys O(n log n). */
static int index_names(const char *path, header *h, char *err, size_t errlen)
{
    h->by_name = malloc((size_t)(h->n ? h->n : 1) * sizeof *h->by_name);
    if (!h->by_name) return sn_errf(err, errlen, SN_ERR_NOMEM, "%s: out of memory", path);
    for (int i = 0; i < h->n; i++) h->by_name[i] = &h->e[i];
    qsort(h->by_name, (size_t)h->n, sizeof *h->by_name, by_name);
    for (int i = 1; i < h->n; i++)
        if (!strcmp(h->by_name[i]->name, h->by_name[i - 1]->name))
            return sn_errf(err, errlen, SN_ERR_FORMAT, "%s: tensor %s appears twice", path,
                                 h->by_name[i]->name);
    return SN_OK;
}

/* Parses the JSON text: one object, only whitespace after it, no NUL bytes
 * (which would cut names short). */
static int parse_json(const char *path, const char *text, size_t len, header *h, char *err, size_t errlen)
{
    if (memchr(text, '\0', len))
        return sn_errf(err, errlen, SN_ERR_FORMAT, "%s: header contains a NUL byte", path);
    const char *end = NULL;
    h->root = cJSON_ParseWithLengthOpts(text, len, &end, false);
    if (!h->root)
        return sn_errf(err, errlen, SN_ERR_FORMAT, "%s: header is not valid JSON (near byte %td)", path,
                             end ? end - text : (ptrdiff_t)0);
    for (const char *p = end; p < text + len; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            return sn_errf(err, errlen, SN_ERR_FORMAT, "%s: junk after the header JSON at byte %td", path,
                                 p - text);
    if (!cJSON_IsObject(h->root))
        return sn_errf(err, errlen, SN_ERR_FORMAT, "%s: header is not a JSON object", path);
    int rc = parse_entries(path, h, err, errlen);
    return rc ? rc : index_names(path, h, err, errlen);
}

static int read_header(FILE *f, const char *path, header *h, char *err, size_t errlen)
{
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode))
        return sn_errf(err, errlen, SN_ERR_IO, "%s: not a regular file", path);
    uint64_t size = (uint64_t)st.st_size;
    unsigned char len8[8];
    if (size < 8 || fread(len8, 1, 8, f) != 8)
        return sn_errf(err, errlen, SN_ERR_FORMAT, "%s: %" PRIu64 " bytes, too short for a safetensors file",
                             path, size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | len8[i];
    if (hlen < 2 || hlen > size - 8 || hlen > HEADER_MAX)
        return sn_errf(err, errlen, SN_ERR_FORMAT,
                             "%s: header length %" PRIu64 " does not fit the file size %" PRIu64, path, hlen, size);
    char *text = malloc((size_t)hlen);
    if (!text) return sn_errf(err, errlen, SN_ERR_NOMEM, "%s: out of memory for the header", path);
    int rc = SN_OK;
    if (fread(text, 1, (size_t)hlen, f) != hlen)
        rc = sn_errf(err, errlen, SN_ERR_IO, "%s: short read of the header", path);
    h->data_len = size - 8 - hlen;
    h->data_start = (long)(8 + hlen);
    if (!rc) rc = parse_json(path, text, (size_t)hlen, h, err, errlen);
    free(text);
    return rc;
}

/* ---- loading: match and fill --------------------------------------------- */
static const entry *find_entry(const header *h, const char *name)
{
    entry key = {.name = name};
    const entry *pkey = &key;
    const entry **hit = bsearch(&pkey, h->by_name, (size_t)h->n, sizeof *h->by_name, by_name);
    return hit ? *hit : NULL;
}

static void entry_shape_str(const entry *e, char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = '\0';
    if (e->ndim == 0) snprintf(buf, len, "scalar");
    for (int d = 0; d < e->ndim && d < SN_MAX_DIMS && off < len; d++)
        off += (size_t)snprintf(buf + off, len - off, d ? "x%" PRId64 : "%" PRId64, e->shape[d]);
    if (e->ndim > SN_MAX_DIMS && off < len) snprintf(buf + off, len - off, "x... (%d dims)", e->ndim);
}

static bool same_shape(const entry *e, const sn_tensor *t)
{
    if (e->ndim != t->ndim) return false;
    for (int d = 0; d < t->ndim; d++)
        if (e->shape[d] != t->shape[d]) return false;
    return true;
}

/* Checks every requested tensor before any is written. */
static int match_all(const char *path, const header *h, sn_tensor *const *t, int n, bool require_all,
                     const entry **match, char *err, size_t errlen)
{
    for (int i = 0; i < n; i++) {
        if (!t[i] || !t[i]->name)
            return sn_errf(err, errlen, SN_ERR_ARG, "%s: requested tensor %d has no name", path, i);
        match[i] = find_entry(h, t[i]->name);
        if (!match[i]) {
            if (require_all)
                return sn_errf(err, errlen, SN_ERR_FORMAT, "%s: tensor %s is missing from the file", path,
                                     t[i]->name);
            continue;
        }
        if (!same_shape(match[i], t[i])) {
            char fs[96], ts[96];
            entry_shape_str(match[i], fs, sizeof fs);
            return sn_errf(err, errlen, SN_ERR_SHAPE, "%s: tensor %s has shape %s in the file, expected %s",
                                 path, t[i]->name, fs, sn_shape_str(t[i], ts, sizeof ts));
        }
    }
    return SN_OK;
}

static int fill(FILE *f, const char *path, const header *h, sn_tensor *const *t, int n, const entry **match,
                char *err, size_t errlen)
{
    for (int i = 0; i < n; i++) {
        if (!match[i]) continue;
        size_t bytes = (size_t)(match[i]->end - match[i]->begin);
        if (fseeko(f, (off_t)h->data_start + (off_t)match[i]->begin, SEEK_SET) != 0 ||
            fread(t[i]->data, 1, bytes, f) != bytes)
            return sn_errf(err, errlen, SN_ERR_IO, "%s: short read of tensor %s", path, t[i]->name);
    }
    return SN_OK;
}

static int export_metadata(const char *path, const header *h, char **out, char *err, size_t errlen)
{
    *out = h->meta ? cJSON_PrintUnformatted(h->meta) : strdup("{}");
    if (!*out) return sn_errf(err, errlen, SN_ERR_NOMEM, "%s: out of memory for the metadata", path);
    return SN_OK;
}

int sn_checkpoint_load(const char *path, sn_tensor *const *tensors, int n, bool require_all,
                       char **metadata_out, char *err, size_t errlen)
{
    if (metadata_out) *metadata_out = NULL;
    if (n < 0 || (n > 0 && !tensors))
        return sn_errf(err, errlen, SN_ERR_ARG, "%s: bad tensor list (n = %d)", path, n);
    FILE *f = fopen(path, "rb");
    if (!f) return sn_errf(err, errlen, SN_ERR_IO, "%s: %s", path, strerror(errno));
    header h = {0};
    const entry **match = calloc((size_t)(n ? n : 1), sizeof *match);
    int rc = match ? SN_OK : sn_errf(err, errlen, SN_ERR_NOMEM, "%s: out of memory", path);
    if (!rc) rc = read_header(f, path, &h, err, errlen);
    if (!rc) rc = match_all(path, &h, tensors, n, require_all, match, err, errlen);
    if (!rc) rc = fill(f, path, &h, tensors, n, match, err, errlen);
    if (!rc && metadata_out) rc = export_metadata(path, &h, metadata_out, err, errlen);
    free(match);
    free(h.by_name);
    free(h.e);
    cJSON_Delete(h.root);
    fclose(f);
    return rc;
}
