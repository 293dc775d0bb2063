#include "cli/args.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void print_default(const arg_spec *s)
{
    switch (s->kind) {
    case ARG_INT: printf(" (default %d)", *(int *)s->dest); break;
    case ARG_INT64: printf(" (default %lld)", (long long)*(int64_t *)s->dest); break;
    case ARG_FLOAT: printf(" (default %g)", (double)*(float *)s->dest); break;
    case ARG_DOUBLE: printf(" (default %g)", *(double *)s->dest); break;
    case ARG_STRING:
        if (*(const char **)s->dest) printf(" (default %s)", *(const char **)s->dest);
        break;
    case ARG_BOOL: break;
    }
}

static void print_help(const char *usage, const arg_spec *specs, int n)
{
    printf("usage: %s\n\noptions:\n", usage);
    for (int i = 0; i < n; i++) {
        char left[64];
        snprintf(left, sizeof left, "%s%s%s", specs[i].name[1] ? "--" : "-", specs[i].name,
                 specs[i].kind == ARG_BOOL ? "" : " V");
        printf("  %-24s %s", left, specs[i].help);
        print_default(&specs[i]);
        printf("\n");
    }
    printf("  %-24s %s\n", "--help", "show this help");
}

static int bad(const char *flag, const char *value, const char *why)
{
    fprintf(stderr, "segnas: --%s %s: %s\n", flag, value ? value : "", why);
    return ARGS_BAD;
}

static int set_value(const arg_spec *s, const char *v)
{
    char *end = NULL;
    errno = 0;
    switch (s->kind) {
    case ARG_INT: {
        long x = strtol(v, &end, 10);
        if (end == v || *end || errno || x < INT_MIN || x > INT_MAX) return bad(s->name, v, "not an integer");
        *(int *)s->dest = (int)x;
        return ARGS_OK;
    }
    case ARG_INT64: {
        long long x = strtoll(v, &end, 10);
        if (end == v || *end || errno) return bad(s->name, v, "not an integer");
        *(int64_t *)s->dest = x;
        return ARGS_OK;
    }
    case ARG_FLOAT:
    case ARG_DOUBLE: {
        double x = strtod(v, &end);
        if (end == v || *end || errno || !isfinite(x)) return bad(s->name, v, "not a finite number");
        if (s->kind == ARG_FLOAT) *(float *)s->dest = (float)x;
        else *(double *)s->dest = x;
        return ARGS_OK;
    }
    case ARG_STRING: *(const char **)s->dest = v; return ARGS_OK;
    case ARG_BOOL: {
        if (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes")) *(bool *)s->dest = true;
        else if (!strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "no")) *(bool *)s->dest = false;
        else return bad(s->name, v, "expected true or false");
        return ARGS_OK;
    }
    }
    return ARGS_BAD;
}

int args_parse(const char *usage, const arg_spec *specs, int n_specs, int argc, char **argv,
               const char **positional, int *n_positional, int max_positional)
{
    int n_pos = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            print_help(usage, specs, n_specs);
            return ARGS_HELP;
        }
        /* "-o" is the short form of a one-letter option "--o". */
        bool short_opt = a[0] == '-' && a[1] && a[1] != '-' && !a[2];
        if (!short_opt && (strncmp(a, "--", 2) != 0 || !a[2])) {
            if (n_pos >= max_positional) {
                fprintf(stderr, "segnas: unexpected argument '%s' (usage: %s)\n", a, usage);
                return ARGS_BAD;
            }
            positional[n_pos++] = a;
            continue;
        }
        const char *name = short_opt ? a + 1 : a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const arg_spec *s = NULL;
        for (int k = 0; k < n_specs && !s; k++)
            if (strlen(specs[k].name) == len && !strncmp(specs[k].name, name, len)) s = &specs[k];
        if (!s) {
            fprintf(stderr, "segnas: unknown option '%.*s' (usage: %s)\n", (int)(len + (short_opt ? 1 : 2)), a, usage);
            return ARGS_BAD;
        }
        const char *v = eq ? eq + 1 : NULL;
        if (!v && s->kind == ARG_BOOL) {
            *(bool *)s->dest = true;
            continue;
        }
        if (!v) {
            if (i + 1 >= argc) return bad(s->name, NULL, "needs a value");
            v = argv[++i];
        }
        int rc = set_value(s, v);
        if (rc) return rc;
    }
    if (n_positional) *n_positional = n_pos;
    return ARGS_OK;
}
