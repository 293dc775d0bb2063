/* Streaming atomic file writer (checkpoints, genotypes, PNGs): data goes
 * to "<path>.tmp.<pid>" and replaces `path` only when all of it is on disk. */
#ifndef SEGNAS_TENSOR_ATOMIC_H
#define SEGNAS_TENSOR_ATOMIC_H

#include <stddef.h>
#include <stdio.h>

typedef struct sn_atomic_file {
    FILE *f;
    char *tmp;        /* malloc'ed temporary path */
    const char *path; /* the target (borrowed) */
} sn_atomic_file;

/* Each returns 0 or an sn_status with a message naming the file in err.
 * After a failure of write or commit the temporary is already removed. */
int sn_atomic_begin(sn_atomic_file *a, const char *path, char *err, size_t errlen);
int sn_atomic_write(sn_atomic_file *a, const void *data, size_t len, char *err, size_t errlen);
/* fflush + fsync + close, rename over the target, fsync the directory. */
int sn_atomic_commit(sn_atomic_file *a, char *err, size_t errlen);
/* Gives up: closes and removes the temporary. Safe after a failed call. */
void sn_atomic_abort(sn_atomic_file *a);


#endif
