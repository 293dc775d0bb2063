/* libFuzzer target: arbitrary bytes as a sample id list (VOC ImageSets,
 * a folder's <split>.txt) and as classes.txt. Every accepted name must be
 * non-empty, bounded and free of control bytes; ids (they become file
 * names) are never "." or "..". */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data/readers.h"

static void check_names(const sn_name_list *l, size_t max_len, int64_t max_n, bool ids)
{
    if (l->n > max_n) abort();
    for (int64_t i = 0; i < l->n; i++) {
        size_t n = strlen(l->items[i]);
        if (n == 0 || n > max_len) abort();
        if (ids && (!strcmp(l->items[i], ".") || !strcmp(l->items[i], ".."))) abort();
        for (size_t k = 0; k < n; k++)
            if ((unsigned char)l->items[i][k] < 0x20 || l->items[i][k] == 0x7f) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sn_name_list l;
    char err[256];
    if (sn_parse_id_list((const char *)data, size, "fuzz.txt", &l, err, sizeof err) == 0) {
        check_names(&l, 255, (int64_t)size, true);
        for (int64_t i = 0; i < l.n; i++)
            if (strchr(l.items[i], '/') || strchr(l.items[i], ' ')) abort();
        sn_name_list_free(&l);
    }
    if (sn_parse_class_names((const char *)data, size, "classes.txt", &l, err, sizeof err) == 0) {
        check_names(&l, 127, 255, false);
        if (l.n < 1) abort();
        sn_name_list_free(&l);
    }
    return 0;
}
