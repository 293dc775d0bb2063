/* PNG (libpng) and JPEG (libjpeg-turbo) reading and PNG writing.
 *
 * A data set is thousands of files from the internet: none is trusted. Both
 * libraries report corrupt data through a callback that must not return, so
 * each decode runs under its own setjmp (per call, hence thread-safe) and
 * every failure becomes a status plus a message naming the file. Sizes are
 * checked against SN_IMAGE_MAX_* before any pixel buffer is allocated, and a
 * PNG that claims more pixels than its file could possibly hold (deflate
 * cannot compress better than 1032:1, zlib's technical notes) is rejected as
 * truncated before decoding starts.
 *
 * State that a longjmp must see lives in a struct owned by the caller of the
 * function that calls setjmp, never in that function's locals (C17 7.13.2.1:
 * non-volatile locals modified after setjmp are indeterminate after it). */
#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jerror.h>
#include <jpeglib.h>

#include "segnas/data.h"
#include "tensor/atomic.h"
#include "tensor/internal.h"

enum { DEFLATE_MAX_RATIO = 1032, PNG_CHUNK_MAX = 64 << 20, PNG_MSG_LEN = 192 };

/* strerror is not guaranteed thread-safe; loads run on loader threads. */
static const char *sys_msg(int e, char *buf, size_t n)
{
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
    return strerror_r(e, buf, n);
#else
    return strerror_r(e, buf, n) == 0 ? buf : "unknown error";
#endif
}

/* ---- opening ---------------------------------------------------------------- */
typedef enum file_kind { KIND_PNG, KIND_JPEG } file_kind;

/* Opens a regular file and tells PNG from JPEG by the magic bytes. */
static int open_image_file(const char *path, FILE **out, file_kind *kind, long long *size, char *err,
                           size_t errlen)
{
    char eb[128];
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return sn_errf(err, errlen, SN_ERR_IO, "%s: cannot open: %s", path, sys_msg(errno, eb, sizeof eb));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return sn_errf(err, errlen, SN_ERR_IO, "%s: not a regular file", path);
    }
    uint8_t magic[8] = {0};
    size_t got = fread(magic, 1, sizeof magic, f);
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (got == 8 && !memcmp(magic, png_sig, 8)) *kind = KIND_PNG;
    else if (got >= 3 && magic[0] == 0xff && magic[1] == 0xd8 && magic[2] == 0xff) *kind = KIND_JPEG;
    else {
        fclose(f);
        return sn_errf(err, errlen, SN_ERR_FORMAT, "%s: not a PNG or JPEG file (%lld bytes, unknown signature)", path,
                    (long long)st.st_size);
    }
    rewind(f);
    *out = f;
    *size = (long long)st.st_size;
    return SN_OK;
}

static int check_dims(const char *path, uint64_t w, uint64_t h, uint64_t bytes_per_px, char *err, size_t errlen)
{
    if (w == 0 || h == 0)
        return sn_errf(err, errlen, SN_ERR_FORMAT, "%s: empty image (%llux%llu)", path, (unsigned long long)w,
                    (unsigned long long)h);
    if (w > SN_IMAGE_MAX_SIDE || h > SN_IMAGE_MAX_SIDE || w * h * bytes_per_px > SN_IMAGE_MAX_BYTES)
        return sn_errf(err, errlen, SN_ERR_FORMAT,
                    "%s: image %llux%llu too large (limits: %d px a side, %llu decoded bytes)", path,
                    (unsigned long long)w, (unsigned long long)h, SN_IMAGE_MAX_SIDE,
                    (unsigned long long)SN_IMAGE_MAX_BYTES);
    return SN_OK;
}

/* ---- PNG reading ----------------------------------------------------------------- */
typedef struct png_state {
    const char *path;
    FILE *f;
    long long file_size;
    bool label;
    png_structp png;
    png_infop info;
    uint8_t *buf;    /* decoded rows when they cannot go straight into out */
    png_bytep *rows; /* row pointers for png_read_image */
    sn_image *out;
    char msg[PNG_MSG_LEN]; /* libpng's error text */
} png_state;

static void on_png_error(png_structp png, png_const_charp msg)
{
    char *buf = png_get_error_ptr(png); /* png_state.msg or png_wstate.msg */
    snprintf(buf, PNG_MSG_LEN, "%s", msg);
    png_longjmp(png, 1);
}

static void on_png_warning(png_structp png, png_const_charp msg)
{
    (void)png, (void)msg; /* benign (e.g. a bad ancillary chunk): ignored */
}

static const char *png_type_name(int t)
{
    switch (t) {
    case PNG_COLOR_TYPE_GRAY: return "grey";
    case PNG_COLOR_TYPE_GRAY_ALPHA: return "grey+alpha";
    case PNG_COLOR_TYPE_RGB: return "RGB";
    case PNG_COLOR_TYPE_RGB_ALPHA: return "RGBA";
    case PNG_COLOR_TYPE_PALETTE: return "palette";
    default: return "unknown";
    }
}

/* Images: everything to 8-bit, palettes to colours; the channel count that
 * results (1..4) is reduced to RGB after decoding. Labels: palette INDICES
 * and grey values are kept (png_set_packing only unpacks 1/2/4-bit samples
 * to bytes, without scaling); 16-bit is kept and checked after decoding. */
static int png_set_transforms(png_state *s, int depth, int ctype, char *err, size_t errlen)
{
    if (!s->label) {
        if (depth == 16) png_set_scale_16(s->png);
        if (ctype == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(s->png);
        if (ctype == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(s->png);
        return SN_OK;
    }
    if ((ctype & PNG_COLOR_MASK_COLOR) && ctype != PNG_COLOR_TYPE_PALETTE)
        return sn_errf(err, errlen, SN_ERR_FORMAT,
                    "%s: %s label PNG; a label must be a palette or greyscale PNG of class indices", s->path,
                    png_type_name(ctype));
    if (depth < 8) png_set_packing(s->png);
    return SN_OK;
}

/* Copies decoded rows (c_in channels, 8 or 16 bit) into the output image. */
static int png_convert(png_state *s, int c_in, int depth, size_t rowbytes, char *err, size_t errlen)
{
    sn_image *o = s->out;
    int bpc = depth == 16 ? 2 : 1;
    for (int y = 0; y < o->h; y++) {
        const uint8_t *r = s->buf + (size_t)y * rowbytes;
        uint8_t *d = o->data + (size_t)y * o->w * o->c;
        for (int x = 0; x < o->w; x++, r += (size_t)c_in * bpc) {
            if (s->label) {
                unsigned v = bpc == 2 ? (unsigned)r[0] << 8 | r[1] : r[0];
                if (v > 255)
                    return sn_errf(err, errlen, SN_ERR_FORMAT,
                                "%s: 16-bit label value %u at pixel (x=%d, y=%d) does not fit a class index (< 256)",
                                s->path, v, x, y);
                d[x] = (uint8_t)v;
            } else if (c_in >= 3) {
                memcpy(d + 3 * x, r, 3);
            } else {
                d[3 * x] = d[3 * x + 1] = d[3 * x + 2] = r[0];
            }
        }
    }
    return SN_OK;
}

/* Everything that can longjmp happens in here. */
static int png_decode(png_state *s, char *err, size_t errlen)
{
    if (setjmp(png_jmpbuf(s->png))) {
        if (feof(s->f))
            return sn_errf(err, errlen, SN_ERR_FORMAT, "%s: truncated PNG (the file ends inside the image data)", s->path);
        return sn_errf(err, errlen, SN_ERR_FORMAT, "%s: corrupt PNG: %s", s->path, s->msg);
    }
    png_init_io(s->png, s->f);
    png_set_user_limits(s->png, SN_IMAGE_MAX_SIDE, SN_IMAGE_MAX_SIDE);
    png_set_chunk_malloc_max(s->png, PNG_CHUNK_MAX);
    png_read_info(s->png, s->info);
    png_uint_32 w, h;
    int depth, ctype, interlace;
    png_get_IHDR(s->png, s->info, &w, &h, &depth, &ctype, &interlace, NULL, NULL);
    int rc = check_dims(s->path, w, h, 1, err, errlen);
    if (rc) return rc;
    /* Filtered rows carry one filter byte each; deflate's best ratio bounds
     * what a file of this size can decode to. */
    uint64_t raw = (uint64_t)h * (1 + png_get_rowbytes(s->png, s->info));
    if (s->file_size >= 0 && (uint64_t)s->file_size * DEFLATE_MAX_RATIO < raw)
        return sn_errf(err, errlen, SN_ERR_FORMAT, "%s: truncated PNG: %lld bytes cannot hold a %ux%u image", s->path,
                    s->file_size, (unsigned)w, (unsigned)h);
    rc = png_set_transforms(s, depth, ctype, err, errlen);
    if (rc) return rc;
    png_set_interlace_handling(s->png);
    png_read_update_info(s->png, s->info);
    int c_in = png_get_channels(s->png, s->info), out_depth = png_get_bit_depth(s->png, s->info);
    size_t rowbytes = png_get_rowbytes(s->png, s->info);
    if (rowbytes != (size_t)w * c_in * (out_depth == 16 ? 2 : 1) || (out_depth != 8 && out_depth != 16))
        return sn_errf(err, errlen, SN_ERR_FORMAT, "%s: unsupported PNG layout (%s, %d-bit)", s->path,
                    png_type_name(ctype), depth);
    rc = check_dims(s->path, w, h, rowbytes / w > 3 ? rowbytes / w : 3, err, errlen);
    if (!rc) rc = sn_image_ensure(s->out, (int)w, (int)h, s->label ? 1 : 3);
    if (rc) return sn_errf(err, errlen, rc, "%s: cannot allocate a %ux%u image", s->path, (unsigned)w, (unsigned)h);
    /* Decode straight into the output when the layout already matches. */
    bool direct = out_depth == 8 && c_in == s->out->c;
    if (!direct && !(s->buf = malloc((size_t)h * rowbytes)))
        return sn_errf(err, errlen, SN_ERR_NOMEM, "%s: out of memory", s->path);
    if (!(s->rows = malloc((size_t)h * sizeof *s->rows)))
        return sn_errf(err, errlen, SN_ERR_NOMEM, "%s: out of memory", s->path);
    for (png_uint_32 y = 0; y < h; y++) s->rows[y] = (direct ? s->out->data : s->buf) + (size_t)y * rowbytes;
    png_read_image(s->png, s->rows);
    png_read_end(s->png, NULL); /* checks the rest of the stream (CRCs, IEND) */
    return direct ? SN_OK : png_convert(s, c_in, out_depth, rowbytes, err, errlen);
}

static int read_png(FILE *f, long long size, const char *path, bool label, sn_image *out, char *err, size_t errlen)
{
    png_state s = {.path = path, .f = f, .file_size = size, .label = label, .out = out};
    s.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, s.msg, on_png_error, on_png_warning);
    if (s.png) s.info = png_create_info_struct(s.png);
    int rc = s.info ? png_decode(&s, err, errlen) : sn_errf(err, errlen, SN_ERR_NOMEM, "%s: out of memory", path);
    png_destroy_read_struct(s.png ? &s.png : NULL, s.info ? &s.info : NULL, NULL);
    free(s.buf);
    free(s.rows);
    return rc;
}

/* ---- JPEG reading ------------------------------------------------------------------ */
typedef struct jpeg_state {
    struct jpeg_error_mgr mgr; /* first: libjpeg passes &mgr as cinfo->err */
    jmp_buf jmp;
    char msg[JMSG_LENGTH_MAX];
    struct jpeg_decompress_struct cinfo;
    const char *path;
    FILE *f;
    sn_image *out;
    uint8_t *row; /* one CMYK scanline */
} jpeg_state;

static void on_jpeg_error(j_common_ptr c)
{
    jpeg_state *s = (jpeg_state *)c->err;
    c->err->format_message(c, s->msg);
    longjmp(s->jmp, 1);
}

/* libjpeg only WARNS about truncated or corrupt entropy data and then
 * returns grey filler: for training data that is an error. Warnings that
 * leave the pixels intact (extra bytes between markers, odd JFIF/Adobe/ICC
 * metadata) are let through. Nothing is ever printed. */
static void on_jpeg_message(j_common_ptr c, int level)
{
    if (level != -1) return;
    switch (c->err->msg_code) {
    case JWRN_EXTRANEOUS_DATA:
    case JWRN_JFIF_MAJOR:
    case JWRN_ADOBE_XFORM:
    case JWRN_BOGUS_ICC: return;
    default: on_jpeg_error(c);
    }
}

/* Adobe CMYK JPEGs store inverted ink values: R = C * K / 255 on them. */
static void cmyk_to_rgb(const uint8_t *src, uint8_t *dst, int w, bool inverted)
{
    for (int x = 0; x < w; x++, src += 4, dst += 3) {
        unsigned k = inverted ? src[3] : 255u - src[3];
        for (int j = 0; j < 3; j++) {
            unsigned v = inverted ? src[j] : 255u - src[j];
            dst[j] = (uint8_t)((v * k + 127) / 255);
        }
    }
}

static int jpeg_decode(jpeg_state *s, char *err, size_t errlen)
{
    if (setjmp(s->jmp)) return sn_errf(err, errlen, SN_ERR_FORMAT, "%s: corrupt or truncated JPEG: %s", s->path, s->msg);
    struct jpeg_decompress_struct *ci = &s->cinfo;
    jpeg_create_decompress(ci);
    ci->mem->max_memory_to_use = (long)(SN_IMAGE_MAX_BYTES * 2);
    jpeg_stdio_src(ci, s->f);
    jpeg_read_header(ci, TRUE);
    int rc = check_dims(s->path, ci->image_width, ci->image_height, 3, err, errlen);
    if (rc) return rc;
    bool cmyk = ci->jpeg_color_space == JCS_CMYK || ci->jpeg_color_space == JCS_YCCK;
    ci->out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    jpeg_start_decompress(ci);
    int w = (int)ci->output_width, h = (int)ci->output_height;
    if (ci->output_components != (cmyk ? 4 : 3))
        return sn_errf(err, errlen, SN_ERR_FORMAT, "%s: unsupported JPEG with %d components", s->path,
                    ci->output_components);
    if ((rc = sn_image_ensure(s->out, w, h, 3)))
        return sn_errf(err, errlen, rc, "%s: cannot allocate a %dx%d image", s->path, w, h);
    if (cmyk && !(s->row = malloc((size_t)w * 4))) return sn_errf(err, errlen, SN_ERR_NOMEM, "%s: out of memory", s->path);
    while (ci->output_scanline < ci->output_height) {
        uint8_t *dst = s->out->data + (size_t)ci->output_scanline * w * 3;
        JSAMPROW r = cmyk ? s->row : dst;
        if (jpeg_read_scanlines(ci, &r, 1) != 1)
            return sn_errf(err, errlen, SN_ERR_FORMAT, "%s: truncated JPEG (row %u of %d)", s->path, ci->output_scanline, h);
        if (cmyk) cmyk_to_rgb(s->row, dst, w, ci->saw_Adobe_marker);
    }
    jpeg_finish_decompress(ci);
    return SN_OK;
}

static int read_jpeg(FILE *f, const char *path, sn_image *out, char *err, size_t errlen)
{
    jpeg_state *s = calloc(1, sizeof *s);
    if (!s) return sn_errf(err, errlen, SN_ERR_NOMEM, "%s: out of memory", path);
    s->path = path, s->f = f, s->out = out;
    s->cinfo.err = jpeg_std_error(&s->mgr);
    s->mgr.error_exit = on_jpeg_error;
    s->mgr.emit_message = on_jpeg_message;
    int rc = jpeg_decode(s, err, errlen);
    jpeg_destroy_decompress(&s->cinfo);
    free(s->row);
    free(s);
    return rc;
}

/* ---- public readers ---------------------------------------------------------------- */
int sn_image_read_rgb(const char *path, sn_image *img, char *err, size_t errlen)
{
    FILE *f;
    file_kind kind;
    long long size;
    int rc = open_image_file(path, &f, &kind, &size, err, errlen);
    if (!rc) {
        rc = kind == KIND_PNG ? read_png(f, size, path, false, img, err, errlen) : read_jpeg(f, path, img, err, errlen);
        fclose(f);
    }
    if (rc) sn_image_free(img);
    return rc;
}

int sn_label_read(const char *path, sn_image *label, char *err, size_t errlen)
{
    FILE *f;
    file_kind kind;
    long long size;
    int rc = open_image_file(path, &f, &kind, &size, err, errlen);
    if (!rc && kind == KIND_JPEG) {
        rc = sn_errf(err, errlen, SN_ERR_FORMAT, "%s: a label must be a PNG (JPEG compression changes class indices)",
                  path);
        fclose(f);
    } else if (!rc) {
        rc = read_png(f, size, path, true, label, err, errlen);
        fclose(f);
    }
    if (rc) sn_image_free(label);
    return rc;
}

/* ---- PNG writing (atomic: train/atomic.h) ---------------------------------------------- */
typedef struct png_wstate {
    const char *path;
    png_structp png;
    png_infop info;
    sn_atomic_file file;
    const sn_image *img;
    int ctype;
    const uint8_t (*palette)[3];
    png_bytep *rows;
    char msg[PNG_MSG_LEN];
} png_wstate;

static int png_encode(png_wstate *s, char *err, size_t errlen)
{
    if (setjmp(png_jmpbuf(s->png))) return sn_errf(err, errlen, SN_ERR_IO, "%s: cannot write PNG: %s", s->path, s->msg);
    const sn_image *im = s->img;
    png_init_io(s->png, s->file.f);
    png_set_IHDR(s->png, s->info, (png_uint_32)im->w, (png_uint_32)im->h, 8, s->ctype, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (s->palette) {
        png_color pal[256];
        for (int i = 0; i < 256; i++) pal[i] = (png_color){s->palette[i][0], s->palette[i][1], s->palette[i][2]};
        png_set_PLTE(s->png, s->info, pal, 256);
    }
    png_write_info(s->png, s->info);
    for (int y = 0; y < im->h; y++) s->rows[y] = im->data + (size_t)y * im->w * im->c;
    png_write_image(s->png, s->rows);
    png_write_end(s->png, NULL);
    return SN_OK;
}

static int png_write_any(const char *path, const sn_image *img, int ctype, const uint8_t (*palette)[3], char *err,
                         size_t errlen)
{
    png_wstate s = {.path = path, .img = img, .ctype = ctype, .palette = palette};
    if (!(s.rows = malloc((size_t)img->h * sizeof *s.rows)))
        return sn_errf(err, errlen, SN_ERR_NOMEM, "%s: out of memory", path);
    int rc = sn_atomic_begin(&s.file, path, err, errlen);
    if (rc) {
        free(s.rows);
        return rc;
    }
    s.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, s.msg, on_png_error, on_png_warning);
    if (s.png) s.info = png_create_info_struct(s.png);
    rc = s.info ? png_encode(&s, err, errlen) : sn_errf(err, errlen, SN_ERR_NOMEM, "%s: out of memory", path);
    png_destroy_write_struct(s.png ? &s.png : NULL, s.info ? &s.info : NULL);
    free(s.rows);
    if (rc) {
        sn_atomic_abort(&s.file);
        return rc;
    }
    return sn_atomic_commit(&s.file, err, errlen);
}

static int check_write(const char *path, const sn_image *img, char *err, size_t errlen)
{
    if (!img || !img->data || !sn_image_size_ok(img->w, img->h, img->c))
        return sn_errf(err, errlen, SN_ERR_ARG, "%s: no image to write (or size %dx%dx%d out of range)", path,
                    img ? img->w : 0, img ? img->h : 0, img ? img->c : 0);
    return SN_OK;
}

int sn_png_write(const char *path, const sn_image *img, char *err, size_t errlen)
{
    int rc = check_write(path, img, err, errlen);
    if (rc) return rc;
    static const int types[5] = {-1, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB,
                                 PNG_COLOR_TYPE_RGB_ALPHA};
    return png_write_any(path, img, types[img->c], NULL, err, errlen);
}

int sn_png_write_palette(const char *path, const sn_image *index, const uint8_t (*palette)[3], char *err,
                         size_t errlen)
{
    int rc = check_write(path, index, err, errlen);
    if (rc) return rc;
    if (index->c != 1 || !palette)
        return sn_errf(err, errlen, SN_ERR_ARG, "%s: a palette PNG needs a 1-channel index image and a palette (got c=%d)",
                    path, index->c);
    return png_write_any(path, index, PNG_COLOR_TYPE_PALETTE, palette, err, errlen);
}
