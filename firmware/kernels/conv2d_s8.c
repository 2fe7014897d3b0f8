/*
 * CONV_2D, int8 activations, per-channel int8 weights, int32 bias.
 *
 * A matrix multiply over columns, as the fast Cortex-M libraries do it. For each
 * output pixel the receptive field is gathered into one column (k_h*k_w*in_c
 * bytes in the filter's HWI order); taps outside the input hold the input zero
 * point, which the offset turns into 0, so they add nothing, exactly as the
 * reference skips them. The column is widened once to 16-bit lanes with the
 * input offset added, and then serves every output channel: two pixels times
 * two channels per pass, eight SMLADs per four column entries.
 *
 * The widened column stores each group of four entries as (x0, x2), (x1, x3):
 * the order SXTB16 and SXTB16 ROR #8 give the weights in, so the weights are
 * used as the .tflite holds them. Integer sums are exact in any order: every
 * output byte equals the reference's.
 *
 * scratch, 4-byte aligned, K = k_h*k_w*in_c: two widened columns of K rounded up
 * to even 16-bit lanes each, plus K rounded up to 4 bytes for gathering when
 * in_c is not a multiple of 4 (and the layer is not an unpadded 1x1). The
 * code generator sizes it (codegen/emit.py, conv_scratch_bytes) and the arena
 * plan gives each convolution its own span for the length of the call.
 */
#include "mq_nn.h"

static int column_length(const mq_conv_params_t *p)
{
    return p->k_h * p->k_w * p->in_c;
}

/* 16-bit lanes per column, rounded up so the next column stays word aligned. */
static int column_stride(const mq_conv_params_t *p)
{
    return (column_length(p) + 1) & ~1;
}

static int pointwise(const mq_conv_params_t *p)
{
    return p->k_h == 1 && p->k_w == 1 && p->pad_top == 0 && p->pad_left == 0;
}

/* x + offset in 16-bit lanes, groups of four as (x0, x2), (x1, x3); the tail in order. */
static void widen(const int8_t *x, int n, int32_t offset, int16_t *out)
{
    const uint32_t offset2 = mq_dup16(offset);
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        const uint32_t x4 = mq_load32(x + i);
        mq_store32(out + i, mq_sadd16(mq_sxtb16(x4), offset2));
        mq_store32(out + i + 2, mq_sadd16(mq_sxtb16_ror8(x4), offset2));
    }
    for (; i < n; ++i) {
        out[i] = (int16_t)(x[i] + offset);
    }
}

/*
 * The widened receptive field of output pixel `pixel`: k_h*k_w*in_c lanes in the
 * filter's HWI order. With in_c a multiple of 4 every tap starts a group of
 * four, so taps are widened straight from the input and taps outside it are
 * zeros (x + offset for x at the zero point). Otherwise (an RGB stem) the bytes
 * are gathered first, outside taps holding the zero point, and widened as one.
 */
static void fill_column(const mq_conv_params_t *p, const int8_t *input, int pixel,
                        int8_t *gathered, int16_t *column)
{
    const int oy = pixel / p->out_w, ox = pixel % p->out_w;
    const int iy0 = oy * p->stride_h - p->pad_top, ix0 = ox * p->stride_w - p->pad_left;
    const int in_c = p->in_c;
    const int32_t offset = p->input_offset;
    if (pointwise(p)) {
        widen(input + ((int32_t)iy0 * p->in_w + ix0) * in_c, in_c, offset, column);
        return;
    }
    const int direct = (in_c & 3) == 0;
    const int8_t zero_point = (int8_t)(-offset);
    int8_t *bytes = gathered;
    int16_t *lanes = column;
    for (int ky = 0; ky < p->k_h; ++ky) {
        const int iy = iy0 + ky * p->dil_h;
        for (int kx = 0; kx < p->k_w; ++kx, bytes += in_c, lanes += in_c) {
            const int ix = ix0 + kx * p->dil_w;
            const int inside = iy >= 0 && iy < p->in_h && ix >= 0 && ix < p->in_w;
            const int8_t *src = input + ((int32_t)iy * p->in_w + ix) * in_c;
            if (direct && inside) {
                widen(src, in_c, offset, lanes);
            } else if (direct) {
                for (int i = 0; i < in_c; i += 2) {
                    mq_store32(lanes + i, 0u);
                }
            } else {
                for (int i = 0; i < in_c; ++i) {
                    bytes[i] = inside ? src[i] : zero_point;
                }
            }
        }
    }
    if (!direct) {
        widen(gathered, column_length(p), offset, column);
    }
}

/* sums[pixel][channel] = column(pixel) . filter(channel) for two pixels, two channels. */
static void dot_2x2(const int16_t *col_a, const int16_t *col_b, const int8_t *w_0,
                    const int8_t *w_1, int n, int32_t sums[4])
{
    int32_t a0 = 0, a1 = 0, b0 = 0, b1 = 0;
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        const uint32_t w4_0 = mq_load32(w_0 + i), w4_1 = mq_load32(w_1 + i);
        const uint32_t w_0_even = mq_sxtb16(w4_0), w_0_odd = mq_sxtb16_ror8(w4_0);
        const uint32_t w_1_even = mq_sxtb16(w4_1), w_1_odd = mq_sxtb16_ror8(w4_1);
        const uint32_t xa_even = mq_load32(col_a + i), xa_odd = mq_load32(col_a + i + 2);
        const uint32_t xb_even = mq_load32(col_b + i), xb_odd = mq_load32(col_b + i + 2);
        a0 = mq_smlad(xa_even, w_0_even, a0);
        a0 = mq_smlad(xa_odd, w_0_odd, a0);
        a1 = mq_smlad(xa_even, w_1_even, a1);
        a1 = mq_smlad(xa_odd, w_1_odd, a1);
        b0 = mq_smlad(xb_even, w_0_even, b0);
        b0 = mq_smlad(xb_odd, w_0_odd, b0);
        b1 = mq_smlad(xb_even, w_1_even, b1);
        b1 = mq_smlad(xb_odd, w_1_odd, b1);
    }
    for (; i < n; ++i) {
        a0 += (int32_t)col_a[i] * w_0[i];
        a1 += (int32_t)col_a[i] * w_1[i];
        b0 += (int32_t)col_b[i] * w_0[i];
        b1 += (int32_t)col_b[i] * w_1[i];
    }
    sums[0] = a0;
    sums[1] = a1;
    sums[2] = b0;
    sums[3] = b1;
}

/* column . filter for one pixel and one channel (odd leftovers). */
static int32_t dot_1x1(const int16_t *col, const int8_t *w, int n)
{
    int32_t acc = 0;
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        const uint32_t w4 = mq_load32(w + i);
        acc = mq_smlad(mq_load32(col + i), mq_sxtb16(w4), acc);
        acc = mq_smlad(mq_load32(col + i + 2), mq_sxtb16_ror8(w4), acc);
    }
    for (; i < n; ++i) {
        acc += (int32_t)col[i] * w[i];
    }
    return acc;
}

void mq_conv2d_s8(const mq_conv_params_t *p, const int8_t *input, const int8_t *filter,
                  const int32_t *bias, const int32_t *multiplier, const int32_t *shift,
                  int8_t *output, int8_t *scratch)
{
    const mq_requant_t q = {bias, multiplier, shift, p->output_offset, p->act_min, p->act_max};
    const int n = column_length(p);
    const int out_c = p->out_c;
    const int pixels = p->out_h * p->out_w;
    int16_t *col_a = (int16_t *)(void *)scratch;
    int16_t *col_b = col_a + column_stride(p);
    int8_t *gathered = (int8_t *)(col_b + column_stride(p));
    for (int pixel = 0; pixel < pixels; pixel += 2) {
        const int pair = pixel + 1 < pixels;
        fill_column(p, input, pixel, gathered, col_a);
        if (pair) {
            fill_column(p, input, pixel + 1, gathered, col_b);
        }
        int8_t *out_a = output + (int32_t)pixel * out_c;
        int8_t *out_b = out_a + out_c;
        int oc = 0;
        for (; pair && oc + 2 <= out_c; oc += 2) {
            int32_t sums[4];
            const int8_t *w_0 = filter + (int32_t)oc * n;
            dot_2x2(col_a, col_b, w_0, w_0 + n, n, sums);
            out_a[oc] = mq_requant_channel(&q, sums[0], oc);
            out_a[oc + 1] = mq_requant_channel(&q, sums[1], oc + 1);
            out_b[oc] = mq_requant_channel(&q, sums[2], oc);
            out_b[oc + 1] = mq_requant_channel(&q, sums[3], oc + 1);
        }
        for (; oc < out_c; ++oc) {
            const int8_t *w = filter + (int32_t)oc * n;
            out_a[oc] = mq_requant_channel(&q, dot_1x1(col_a, w, n), oc);
            if (pair) {
                out_b[oc] = mq_requant_channel(&q, dot_1x1(col_b, w, n), oc);
            }
        }
    }
}
