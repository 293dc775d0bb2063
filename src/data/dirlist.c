/* Folder walking for the readers: opendir/readdir, bounded depth, sorted
 * output so that sample i is the same file on every run and machine
 * (readdir order is whatever the file system likes). */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "data/readers.h"

char *sn_pathf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return NULL;
    char *s = malloc((size_t)n + 1);
    if (!s) return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

bool sn_is_dir(const char *path)
{
    struct stat st;
    return path && stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

bool sn_is_file(const char *path)
{
    struct stat st;
    return path && stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int sn_check_split_name(const char *format, const char *split, char *err, size_t errlen)
{
    size_t n = split ? strlen(split) : 0;
    bool ok = n > 0 && n < 64;
    for (size_t i = 0; ok && i < n; i++) {
        char c = split[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    }
    if (!ok)
        return sn_errf(err, errlen, SN_ERR_ARG, "%s: bad split name '%s' (letters, digits, '_' and '-' only)",
                            format, split ? split : "(none)");
    return SN_OK;
}

static bool has_suffix(const char *name, const char *const *suffixes)
{
    size_t n = strlen(name);
    for (int i = 0; suffixes[i]; i++) {
        size_t m = strlen(suffixes[i]);
        if (n > m && !strcasecmp(name + n - m, suffixes[i])) return true;
    }
    return false;
}

/* d_type is DT_UNKNOWN on some file systems: ask stat then. Links are
 * followed (data sets are often trees of symlinks). */
static int entry_kind(const char *dir, const struct dirent *e)
{
    if (e->d_type == DT_DIR) return 'd';
    if (e->d_type == DT_REG) return 'f';
    char *p = sn_pathf("%s/%s", dir, e->d_name);
    struct stat st;
    int k = p && stat(p, &st) == 0 ? (S_ISDIR(st.st_mode) ? 'd' : S_ISREG(st.st_mode) ? 'f' : 0) : 0;
    free(p);
    return k;
}

static int walk(const char *root, const char *rel, const char *const *suffixes, int depth, sn_name_list *out,
                char *err, size_t errlen)
{
    char *dir = rel ? sn_pathf("%s/%s", root, rel) : strdup(root);
    if (!dir) return sn_errf(err, errlen, SN_ERR_NOMEM, "%s: out of memory", root);
    DIR *d = opendir(dir);
    if (!d) {
        int e = errno;
        int rc = sn_errf(err, errlen, SN_ERR_IO, "cannot open folder %s: %s", dir,
                              e == ENOENT ? "no such folder" : e == ENOTDIR ? "not a folder" : "permission or I/O error");
        free(dir);
        return rc;
    }
    int rc = SN_OK;
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        int kind = entry_kind(dir, e);
        char *sub = NULL;
        if ((kind == 'd' && depth > 0) || (kind == 'f' && has_suffix(e->d_name, suffixes))) {
            sub = rel ? sn_pathf("%s/%s", rel, e->d_name) : strdup(e->d_name);
            if (!sub) rc = sn_errf(err, errlen, SN_ERR_NOMEM, "%s: out of memory", dir);
        }
        if (!sub) continue;
        if (kind == 'd') {
            rc = walk(root, sub, suffixes, depth - 1, out, err, errlen);
            free(sub);
        } else if (sn_name_list_take(out, sub)) {
            rc = sn_errf(err, errlen, SN_ERR_NOMEM, "%s: out of memory", dir);
        }
    }
    closedir(d);
    free(dir);
    return rc;
}

int sn_list_files(const char *dir, const char *const *suffixes, int depth, sn_name_list *out, char *err,
                  size_t errlen)
{
    *out = (sn_name_list){0};
    int rc = walk(dir, NULL, suffixes, depth, out, err, errlen);
    if (rc) sn_name_list_free(out);
    else sn_name_list_sort(out);
    return rc;
}
