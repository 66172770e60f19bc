/* Decoding JPEG (libjpeg) and PNG (libpng) files to 8-bit RGB, whatever their colour model:
 * grayscale is replicated, palettes expanded, 16-bit samples scaled to 8 bits, alpha dropped
 * (as PIL's convert("RGB"), which torchvision's loader uses), CMYK converted as
 * R = (255 - C)(255 - K) / 255 (Adobe files, which store CMYK inverted, as PIL reads them).
 * The format is taken from the file's first bytes, not its name. */
#include "image_decode.h"

#include <stdio.h> /* before jpeglib.h, which uses FILE */

#include <jerror.h>
#include <jpeglib.h>
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- JPEG */

typedef struct {
    struct jpeg_error_mgr base;
    jmp_buf jump;
    char *err;
    size_t cap;
} JpegErr;

static void jpeg_fail(j_common_ptr cinfo)
{
    JpegErr *e = (JpegErr *)cinfo->err;
    char msg[JMSG_LENGTH_MAX];
    e->base.format_message(cinfo, msg);
    snprintf(e->err, e->cap, "JPEG: %s", msg);
    longjmp(e->jump, 1);
}

/* Warnings are ignored (real photo collections have many harmless ones), except a file that
 * ends early: its missing rows would be filled with grey. */
static void jpeg_message(j_common_ptr cinfo, int level)
{
    if (level == -1 && cinfo->err->msg_code == JWRN_JPEG_EOF)
        jpeg_fail(cinfo);
}

static int decode_jpeg(const uint8_t *data, size_t size, Image *img, char *err, size_t cap)
{
    struct jpeg_decompress_struct cinfo;
    JpegErr e;
    uint8_t *volatile row = NULL;
    memset(img, 0, sizeof *img);
    cinfo.err = jpeg_std_error(&e.base);
    e.base.error_exit = jpeg_fail;
    e.base.emit_message = jpeg_message;
    e.err = err;
    e.cap = cap;
    if (setjmp(e.jump)) {
        jpeg_destroy_decompress(&cinfo);
        free(row);
        free(img->rgb);
        memset(img, 0, sizeof *img);
        return -1;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    /* the size before jpeg_start_decompress, which allocates for it (a multi-scan file buffers
     * every coefficient: 201 bytes declaring 63746 x 64772 asked for 12 GB) */
    if ((size_t)cinfo.image_width * (size_t)cinfo.image_height > IMAGE_MAX_PIXELS ||
        cinfo.image_width > IMAGE_MAX_SIDE || cinfo.image_height > IMAGE_MAX_SIDE) {
        snprintf(err, cap, "JPEG: unsupported size %ux%u", (unsigned)cinfo.image_width,
                 (unsigned)cinfo.image_height);
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    const int cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    const int inverted = cmyk && cinfo.saw_Adobe_marker;
    cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB; /* libjpeg-turbo expands grayscale */
    jpeg_start_decompress(&cinfo);
    const int w = (int)cinfo.output_width, h = (int)cinfo.output_height;
    const int comps = cinfo.output_components;
    if (w < 1 || h < 1 || w > IMAGE_MAX_SIDE || h > IMAGE_MAX_SIDE || (comps != 3 && comps != 4) ||
        (size_t)w * (size_t)h > IMAGE_MAX_PIXELS) {
        snprintf(err, cap, "JPEG: unsupported size %dx%d or %d components", w, h, comps);
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    img->rgb = malloc((size_t)w * (size_t)h * 3);
    row = malloc((size_t)w * (size_t)comps);
    if (!img->rgb || !row) {
        snprintf(err, cap, "out of memory for a %dx%d image", w, h);
        jpeg_destroy_decompress(&cinfo);
        free(row);
        free(img->rgb);
        img->rgb = NULL;
        return -1;
    }
    img->w = w;
    img->h = h;
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW r = row;
        uint8_t *out = img->rgb + (size_t)cinfo.output_scanline * (size_t)w * 3;
        jpeg_read_scanlines(&cinfo, &r, 1);
        if (comps == 3) {
            memcpy(out, row, (size_t)w * 3);
            continue;
        }
        for (int x = 0; x < w; x++) {
            const uint8_t *p = row + 4 * (size_t)x;
            int k = inverted ? p[3] : 255 - p[3];
            for (int ch = 0; ch < 3; ch++) {
                int c = inverted ? p[ch] : 255 - p[ch]; /* 255 - C */
                out[3 * x + ch] = (uint8_t)((c * k + 127) / 255);
            }
        }
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    free(row);
    return 0;
}

/* ---------------------------------------------------------------- PNG */

typedef struct {
    const uint8_t *data;
    size_t size, pos;
    char *err;
    size_t cap;
} PngSrc;

static void png_read_mem(png_structp png, png_bytep out, png_size_t n)
{
    PngSrc *s = png_get_io_ptr(png);
    if (n > s->size - s->pos)
        png_error(png, "file ends early (truncated)");
    memcpy(out, s->data + s->pos, n);
    s->pos += n;
}

static void png_fail(png_structp png, png_const_charp msg)
{
    PngSrc *s = png_get_error_ptr(png);
    snprintf(s->err, s->cap, "PNG: %s", msg);
    png_longjmp(png, 1);
}

static void png_warn(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg; /* e.g. unknown chunks, bad gamma: the pixels are still right */
}

static int decode_png(const uint8_t *data, size_t size, Image *img, char *err, size_t cap)
{
    PngSrc src = {data, size, 0, err, cap};
    memset(img, 0, sizeof *img);
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_fail, png_warn);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    png_bytep *volatile rows = NULL;
    if (!png || !info) {
        snprintf(err, cap, "out of memory for libpng");
        png_destroy_read_struct(png ? &png : NULL, NULL, NULL);
        return -1;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        free(rows);
        free(img->rgb);
        memset(img, 0, sizeof *img);
        return -1;
    }
    png_set_read_fn(png, &src, png_read_mem);
    png_read_info(png, info);
    const png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    const int type = png_get_color_type(png, info);
    if (w < 1 || h < 1 || w > IMAGE_MAX_SIDE || h > IMAGE_MAX_SIDE ||
        (size_t)w * (size_t)h > IMAGE_MAX_PIXELS)
        png_error(png, "unsupported image size");
    png_set_expand(png);            /* palette -> RGB, gray < 8 bits -> 8, tRNS -> alpha */
    png_set_scale_16(png);          /* 16-bit samples rounded to 8 bits */
    if (type == PNG_COLOR_TYPE_GRAY || type == PNG_COLOR_TYPE_GRAY_ALPHA)
        png_set_gray_to_rgb(png);
    png_set_strip_alpha(png);       /* alpha dropped, not composited */
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if (png_get_channels(png, info) != 3 || png_get_bit_depth(png, info) != 8 ||
        png_get_rowbytes(png, info) != (size_t)w * 3)
        png_error(png, "cannot convert this colour type to 8-bit RGB");
    img->rgb = malloc((size_t)w * (size_t)h * 3);
    rows = malloc(sizeof(png_bytep) * h);
    if (!img->rgb || !rows)
        png_error(png, "out of memory");
    for (png_uint_32 y = 0; y < h; y++)
        rows[y] = img->rgb + (size_t)y * (size_t)w * 3;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    img->w = (int)w;
    img->h = (int)h;
    return 0;
}

/* ---------------------------------------------------------------- files */

int image_decode_file(const char *path, Image *img, char *err, size_t cap)
{
    memset(img, 0, sizeof *img);
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, cap, "cannot open it");
        return -1;
    }
    uint8_t *data = NULL;
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0)
        size = ftell(f);
    if (size > 0 && fseek(f, 0, SEEK_SET) == 0)
        data = malloc((size_t)size);
    int ok = data && fread(data, 1, (size_t)size, f) == (size_t)size;
    fclose(f);
    int rc = -1;
    if (!ok)
        snprintf(err, cap, size == 0 ? "empty file" : "cannot read it");
    else if (size >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff)
        rc = decode_jpeg(data, (size_t)size, img, err, cap);
    else if (size >= 8 && !png_sig_cmp(data, 0, 8))
        rc = decode_png(data, (size_t)size, img, err, cap);
    else
        snprintf(err, cap, "neither a JPEG nor a PNG file");
    free(data);
    return rc;
}

void image_free(Image *img)
{
    free(img->rgb);
    memset(img, 0, sizeof *img);
}
