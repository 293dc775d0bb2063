#include "cli/common.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void cli_data_flags_default(cli_data_flags *f)
{
    sn_synth_config c;
    sn_synth_config_default(&c);
    *f = (cli_data_flags){.root = NULL, .format = NULL, .synth_size = c.height, .synth_train = c.train_count,
                          .synth_val = c.val_count, .synth_seed = (int64_t)c.seed};
}

int cli_open_data(const cli_data_flags *f, const char *split, sn_dataset **out)
{
    char err[512] = "";
    int rc;
    if (!f->root) {
        sn_synth_config c;
        sn_synth_config_default(&c);
        c.height = c.width = f->synth_size;
        c.train_count = f->synth_train;
        c.val_count = f->synth_val;
        c.seed = (uint64_t)f->synth_seed;
        rc = sn_synth_dataset_open(out, &c, split, err, sizeof err);
    } else {
        int format = sn_data_format_parse(f->format ? f->format : "folder");
        if (format < 0) {
            fprintf(stderr, "segnas: --data-format %s: expected cityscapes, voc, ade20k, folder or synth\n", f->format);
            return 2;
        }
        rc = sn_dataset_open(out, (sn_data_format)format, f->root, split, err, sizeof err);
    }
    if (rc) fprintf(stderr, "segnas: %s\n", err[0] ? err : sn_status_name(rc));
    return rc ? 1 : 0;
}

int cli_mkdir_p(const char *path)
{
    char buf[4096];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof buf) {
        fprintf(stderr, "segnas: bad folder name '%s'\n", path);
        return 1;
    }
    memcpy(buf, path, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != '\0') continue;
        char c = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0777) && errno != EEXIST) {
            fprintf(stderr, "segnas: cannot create folder %s: %s\n", buf, strerror(errno));
            return 1;
        }
        buf[i] = c;
    }
    return 0;
}

double cli_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void cli_progress_start(cli_progress *p, const char *label, int64_t total)
{
    *p = (cli_progress){.label = label, .total = total, .start = cli_now(), .tty = isatty(2)};
}

static void format_duration(double s, char *buf, size_t len)
{
    if (!(s >= 0) || s > 1e7) snprintf(buf, len, "?");
    else if (s >= 3600) snprintf(buf, len, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
    else snprintf(buf, len, "%dm%02ds", (int)(s / 60), (int)s % 60);
}

void cli_progress_update(cli_progress *p, int64_t done, const char *extra)
{
    p->done = done;
    if (!p->tty) return;
    double frac = p->total > 0 ? (double)done / (double)p->total : 0, elapsed = cli_now() - p->start;
    char bar[31], eta[32];
    int fill = (int)(frac * 30);
    for (int i = 0; i < 30; i++) bar[i] = i < fill ? '=' : (i == fill ? '>' : ' ');
    bar[30] = '\0';
    format_duration(done > 0 ? elapsed * (double)(p->total - done) / (double)done : -1, eta, sizeof eta);
    fprintf(stderr, "\r%s [%s] %3d%% %lld/%lld %s ETA %s\033[K", p->label, bar, (int)(frac * 100), (long long)done,
            (long long)p->total, extra ? extra : "", eta);
    fflush(stderr);
}

void cli_progress_end(cli_progress *p)
{
    if (p->tty) fprintf(stderr, "\n");
}

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    if (interrupted) _exit(128 + sig);
    interrupted = 1;
}

void cli_install_interrupt(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

bool cli_interrupted(void) { return interrupted != 0; }

int cli_log_line(FILE *log, const char *json)
{
    if (!log) return 0;
    if (fputs(json, log) < 0 || fputc('\n', log) == EOF || fflush(log)) return 1;
    return 0;
}

int cli_next_batch(sn_loader *l, sn_batch *b)
{
    char err[512];
    int rc = sn_loader_next(l, b, err, sizeof err);
    if (rc) fprintf(stderr, "segnas: %s\n", err);
    return rc;
}
