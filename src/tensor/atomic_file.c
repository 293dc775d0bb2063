/* Atomic file replacement (DESIGN.md: "Writes are atomic"): a crash or a
 * full disk in the middle of a checkpoint must leave the previous checkpoint
 * readable. The data is written to "<path>.tmp.<pid>", flushed and fsync'ed,
 * renamed over the target (atomic on POSIX file systems) and the directory
 * fsync'ed so the rename itself survives a power cut. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "segnas/tensor.h"
#include "tensor/atomic.h"
#include "tensor/internal.h"

int sn_errf(char *err, size_t errlen, int status, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return status;
}

/* O_EXCL + O_NOFOLLOW: never write through a stale link at the temporary
 * path; a stale temporary (a crashed run with the same pid) is removed once. */
static int open_tmp(const char *tmp)
{
    int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
    int fd = open(tmp, flags, 0666);
    if (fd < 0 && errno == EEXIST && unlink(tmp) == 0) fd = open(tmp, flags, 0666);
    return fd;
}

int sn_atomic_begin(sn_atomic_file *a, const char *path, char *err, size_t errlen)
{
    memset(a, 0, sizeof *a);
    a->path = path;
    size_t len = strlen(path) + 32;
    a->tmp = malloc(len);
    if (!a->tmp) return sn_errf(err, errlen, SN_ERR_NOMEM, "%s: out of memory", path);
    snprintf(a->tmp, len, "%s.tmp.%ld", path, (long)getpid());
    int fd = open_tmp(a->tmp);
    if (fd < 0) {
        int e = errno;
        free(a->tmp);
        a->tmp = NULL;
        return sn_errf(err, errlen, SN_ERR_IO, "%s: cannot create temporary file: %s", path,
                             strerror(e));
    }
    a->f = fdopen(fd, "wb");
    if (!a->f) {
        int e = errno;
        close(fd);
        sn_atomic_abort(a);
        return sn_errf(err, errlen, SN_ERR_IO, "%s: %s", path, strerror(e));
    }
    return SN_OK;
}

void sn_atomic_abort(sn_atomic_file *a)
{
    if (a->f) fclose(a->f);
    if (a->tmp) unlink(a->tmp);
    free(a->tmp);
    a->f = NULL;
    a->tmp = NULL;
}

int sn_atomic_write(sn_atomic_file *a, const void *data, size_t len, char *err, size_t errlen)
{
    if (len && fwrite(data, 1, len, a->f) != len) {
        int e = errno;
        sn_atomic_abort(a);
        return sn_errf(err, errlen, SN_ERR_IO, "%s: write failed: %s", a->path, strerror(e));
    }
    return SN_OK;
}

/* fsync of the containing directory makes the new name durable. File
 * systems that cannot sync a directory answer EINVAL: nothing to do then. */
static int sync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir) return ENOMEM;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0) return errno;
    int rc = fsync(fd) == 0 || errno == EINVAL ? 0 : errno;
    close(fd);
    return rc;
}

int sn_atomic_commit(sn_atomic_file *a, char *err, size_t errlen)
{
    FILE *f = a->f;
    a->f = NULL;
    int bad = fflush(f) != 0 || fsync(fileno(f)) != 0;
    int e = errno;
    if (fclose(f) != 0 && !bad) bad = 1, e = errno;
    if (bad) {
        sn_atomic_abort(a);
        return sn_errf(err, errlen, SN_ERR_IO, "%s: write failed: %s", a->path, strerror(e));
    }
    if (rename(a->tmp, a->path) != 0) {
        e = errno;
        sn_atomic_abort(a);
        return sn_errf(err, errlen, SN_ERR_IO, "%s: cannot replace the file: %s", a->path,
                             strerror(e));
    }
    free(a->tmp);
    a->tmp = NULL;
    if ((e = sync_dir(a->path)) != 0)
        return sn_errf(err, errlen, SN_ERR_IO, "%s: written, but syncing its directory failed: %s",
                             a->path, strerror(e));
    return SN_OK;
}

int sn_write_file_atomic(const char *path, const void *data, size_t len, char *err, size_t errlen)
{
    sn_atomic_file a;
    int rc = sn_atomic_begin(&a, path, err, errlen);
    if (!rc) rc = sn_atomic_write(&a, data, len, err, errlen);
    if (!rc) rc = sn_atomic_commit(&a, err, errlen);
    return rc;
}

int sn_read_file(const char *path, size_t max_len, char **data, size_t *len, char *err, size_t errlen)
{
    *data = NULL;
    if (len) *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return sn_errf(err, errlen, SN_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return sn_errf(err, errlen, SN_ERR_IO, "%s: not a regular file", path);
    }
    if ((uintmax_t)st.st_size > max_len) {
        fclose(f);
        return sn_errf(err, errlen, SN_ERR_FORMAT, "%s: %jd bytes, more than the %zu allowed", path,
                             (intmax_t)st.st_size, max_len);
    }
    size_t n = (size_t)st.st_size;
    char *buf = malloc(n + 1);
    if (!buf) {
        fclose(f);
        return sn_errf(err, errlen, SN_ERR_NOMEM, "%s: out of memory for %zu bytes", path, n);
    }
    size_t got = fread(buf, 1, n, f);
    fclose(f);
    if (got != n) {
        free(buf);
        return sn_errf(err, errlen, SN_ERR_IO, "%s: short read (%zu of %zu bytes)", path, got, n);
    }
    buf[n] = '\0';
    *data = buf;
    if (len) *len = n;
    return SN_OK;
}
