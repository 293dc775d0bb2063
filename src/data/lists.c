/* Name lists and the two text formats data sets use: sample id lists and
 * class names. Both parsers take a buffer and its length (no terminator
 * needed) so that fuzz/fuzz_list.c can drive them with arbitrary bytes;
 * every line is bounded and checked before it becomes a name. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/readers.h"
#include "segnas/train.h"

enum { MAX_NAME = 255, MAX_CLASS_NAME = 127, MAX_LIST_FILE = 64 << 20 };

void sn_name_list_free(sn_name_list *l)
{
    if (!l) return;
    for (int64_t i = 0; i < l->n; i++) free(l->items[i]);
    free(l->items);
    *l = (sn_name_list){0};
}

int sn_name_list_take(sn_name_list *l, char *s)
{
    if (!s) return SN_ERR_NOMEM;
    if (l->n == l->cap) {
        int64_t cap = l->cap ? l->cap * 2 : 64;
        char **p = realloc(l->items, (size_t)cap * sizeof *p);
        if (!p) {
            free(s);
            return SN_ERR_NOMEM;
        }
        l->items = p, l->cap = cap;
    }
    l->items[l->n++] = s;
    return SN_OK;
}

int sn_name_list_push(sn_name_list *l, const char *s, ptrdiff_t len)
{
    return sn_name_list_take(l, len < 0 ? strdup(s) : strndup(s, (size_t)len));
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

void sn_name_list_sort(sn_name_list *l)
{
    if (l->n > 1) qsort(l->items, (size_t)l->n, sizeof *l->items, cmp_str);
}

int sn_read_text_file(const char *path, char **buf, size_t *len, char *err, size_t errlen)
{
    return sn_read_file(path, MAX_LIST_FILE, buf, len, err, errlen);
}

/* ---- line iteration ------------------------------------------------------------------ */
typedef struct line_iter {
    const char *p, *end;
    int64_t number; /* 1-based number of the line last returned */
} line_iter;

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

/* Next line without its newline, trimmed of blanks at both ends. */
static bool next_line(line_iter *it, const char **s, size_t *n)
{
    if (it->p >= it->end) return false;
    const char *nl = memchr(it->p, '\n', (size_t)(it->end - it->p));
    const char *a = it->p, *b = nl ? nl : it->end;
    it->p = nl ? nl + 1 : it->end;
    it->number++;
    while (a < b && is_space(*a)) a++;
    while (b > a && is_space(b[-1])) b--;
    *s = a, *n = (size_t)(b - a);
    return true;
}

/* Printable name: no control bytes (NUL included); UTF-8 bytes >= 0x80 pass. */
static int check_chars(const char *s, size_t n, const char *what, int64_t line, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return sn_errf(err, errlen, SN_ERR_FORMAT, "%s line %lld: control character 0x%02x", what,
                                (long long)line, (unsigned char)s[i]);
    return SN_OK;
}

/* "dir/2008_000002.jpg" -> "2008_000002": the SBD list form names files. */
static void id_from_token(const char **s, size_t *n)
{
    const char *t = *s, *slash = NULL;
    for (size_t i = 0; i < *n; i++)
        if (t[i] == '/') slash = t + i;
    if (!slash) return;
    size_t m = *n - (size_t)(slash + 1 - t);
    const char *base = slash + 1, *dot = NULL;
    for (size_t i = 0; i < m; i++)
        if (base[i] == '.') dot = base + i;
    *s = base;
    *n = dot && dot > base ? (size_t)(dot - base) : m;
}

int sn_parse_id_list(const char *buf, size_t len, const char *what, sn_name_list *out, char *err,
                     size_t errlen)
{
    *out = (sn_name_list){0};
    line_iter it = {buf, buf + len, 0};
    const char *s;
    size_t n;
    while (next_line(&it, &s, &n)) {
        if (n == 0) continue;
        size_t tok = 0;
        while (tok < n && !is_space(s[tok])) tok++;
        id_from_token(&s, &tok);
        int rc = SN_OK;
        if (tok == 0 || tok > MAX_NAME)
            rc = sn_errf(err, errlen, SN_ERR_FORMAT, "%s line %lld: id of %zu characters (1..%d allowed)", what,
                              (long long)it.number, tok, MAX_NAME);
        else if ((tok == 1 && s[0] == '.') || (tok == 2 && s[0] == '.' && s[1] == '.'))
            rc = sn_errf(err, errlen, SN_ERR_FORMAT, "%s line %lld: '%.*s' is not a sample id", what,
                              (long long)it.number, (int)tok, s);
        if (!rc) rc = check_chars(s, tok, what, it.number, err, errlen);
        if (!rc && sn_name_list_push(out, s, (ptrdiff_t)tok))
            rc = sn_errf(err, errlen, SN_ERR_NOMEM, "%s: out of memory", what);
        if (rc) {
            sn_name_list_free(out);
            return rc;
        }
    }
    return SN_OK;
}

static int add_class(sn_name_list *out, const char *s, size_t n, const char *what, int64_t line, char *err,
                     size_t errlen)
{
    if (n > MAX_CLASS_NAME)
        return sn_errf(err, errlen, SN_ERR_FORMAT, "%s line %lld: class name of %zu characters (at most %d)",
                            what, (long long)line, n, MAX_CLASS_NAME);
    int rc = check_chars(s, n, what, line, err, errlen);
    if (rc) return rc;
    if (out->n >= 255)
        return sn_errf(err, errlen, SN_ERR_FORMAT, "%s: more than 255 classes (label 255 means ignore)", what);
    for (int64_t k = 0; k < out->n; k++)
        if (strlen(out->items[k]) == n && !memcmp(out->items[k], s, n))
            return sn_errf(err, errlen, SN_ERR_FORMAT, "%s line %lld: class '%.*s' already named on line %lld",
                                what, (long long)line, (int)n, s, (long long)k + 1);
    if (sn_name_list_push(out, s, (ptrdiff_t)n)) return sn_errf(err, errlen, SN_ERR_NOMEM, "%s: out of memory", what);
    return SN_OK;
}

int sn_parse_class_names(const char *buf, size_t len, const char *what, sn_name_list *out, char *err,
                         size_t errlen)
{
    *out = (sn_name_list){0};
    line_iter it = {buf, buf + len, 0};
    const char *s;
    size_t n;
    int64_t blank_line = 0; /* a blank line is fine only after the last name */
    int rc = SN_OK;
    while (!rc && next_line(&it, &s, &n)) {
        if (n == 0) {
            if (!blank_line) blank_line = it.number;
            continue;
        }
        if (blank_line)
            rc = sn_errf(err, errlen, SN_ERR_FORMAT,
                              "%s line %lld: empty line between class names (one name per line, class i on line i+1)",
                              what, (long long)blank_line);
        else
            rc = add_class(out, s, n, what, it.number, err, errlen);
    }
    if (!rc && out->n == 0) rc = sn_errf(err, errlen, SN_ERR_FORMAT, "%s: no class names", what);
    if (rc) sn_name_list_free(out);
    return rc;
}
