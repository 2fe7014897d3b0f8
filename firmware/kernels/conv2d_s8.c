/*
 * CONV_2D, int8 activations, per-channel int8 weights, int32 bias.
 *
 * A matrix multiply over columns, as the fast Cortex-M libraries do it. For each
 * output pixel the receptive field (k_h*k_w*in_c entries in the filter's HWI
 * order) is widened once to 16-bit lanes with the input offset added; taps
 * outside the input are 0 there (x + offset for x at the zero point), so they
 * add nothing, exactly as the reference skips them. The widened columns then
 * serve every output channel: two pixels times two channels per pass, eight
 * SMLADs per four column entries. Integer sums are exact in any order, so every
 * output byte equals the reference's.
 *
 * Layout of the widened pair (pixels a and b), in 16-bit lanes: each group of
 * four entries takes eight lanes, a(x0, x2) a(x1, x3) b(x0, x2) b(x1, x3), the
 * order SXTB16 and SXTB16 ROR #8 give the weights in, so the weights are used as
 * the .tflite holds them and one pointer walks both pixels. The n % 4 tail
 * follows: a's entries in lanes 0..3 of one more group, b's in lanes 4..7.
 *
 * scratch, 4-byte aligned, K = k_h*k_w*in_c: 16 bytes per started group of four
 * entries (the widened pair), plus K rounded up to 4 bytes for gathering bytes
 * first when in_c is not a multiple of 4 (and the layer is not an unpadded 1x1).
 * The code generator sizes it (codegen/emit.py, conv_scratch_bytes) and the
 * arena plan gives each convolution its own span for the length of the call.
 */
#include "mq_nn.h"

#define LANES_PER_GROUP 8

static int column_length(const mq_conv_params_t *p)
{
    return p->k_h * p->k_w * p->in_c;
}

static int pointwise(const mq_conv_params_t *p)
{
    return p->k_h == 1 && p->k_w == 1 && p->pad_top == 0 && p->pad_left == 0;
}

/* Where entry `first` (a multiple of 4) of pixel `slot`'s column starts in the pair. */
static int16_t *slot_lanes(int16_t *pair, int first, int slot)
{
    return pair + (first / 4) * LANES_PER_GROUP + slot * 4;
}

/*
 * Entries [first, first + n) of one pixel's column, x + offset, into the pair
 * buffer as pixel `slot` (0: a, 1: b). `first` is a multiple of 4, and so is n
 * unless the run ends the column.
 */
static void widen(const int8_t *x, int first, int n, int32_t offset, int slot, int16_t *pair)
{
    const uint32_t offset2 = mq_dup16(offset);
    int16_t *out = slot_lanes(pair, first, slot);
    int i = 0;
    for (; i + 4 <= n; i += 4, out += LANES_PER_GROUP) {
        const uint32_t x4 = mq_load32(x + i);
        mq_store32(out, mq_sadd16(mq_sxtb16(x4), offset2));
        mq_store32(out + 2, mq_sadd16(mq_sxtb16_ror8(x4), offset2));
    }
    for (int t = 0; i < n; ++i, ++t) {
        out[t] = (int16_t)(x[i] + offset);
    }
}

/*
 * The receptive field as bytes, outside taps holding the zero point, for input
 * channel counts that do not keep taps on groups of four (an RGB stem). Without
 * dilation the taps of one filter row are one contiguous run of the input, so a
 * row is zero-point bytes, a copied run, zero-point bytes.
 */
static void gather_bytes(const mq_conv_params_t *p, const int8_t *input, int iy0, int ix0,
                         int8_t *gathered)
{
    const int in_c = p->in_c;
    const int8_t zero_point = (int8_t)(-p->input_offset);
    const int row_bytes = p->k_w * in_c;
    int kx0 = 0, kx1 = p->k_w;
    if (p->dil_w == 1) {
        mq_window(ix0, p->k_w, p->in_w, &kx0, &kx1);
    }
    for (int ky = 0; ky < p->k_h; ++ky, gathered += row_bytes) {
        const int iy = iy0 + ky * p->dil_h;
        if (iy < 0 || iy >= p->in_h) {
            memset(gathered, zero_point, (size_t)row_bytes);
        } else if (p->dil_w == 1) {
            const int8_t *row = input + (int32_t)iy * p->in_w * in_c;
            const int32_t start = (int32_t)ix0 * in_c;    /* may be negative: never read there */
            int i = 0;
            for (; i < kx0 * in_c; ++i) {
                gathered[i] = zero_point;
            }
            for (; i < kx1 * in_c; ++i) {
                gathered[i] = row[start + i];
            }
            for (; i < row_bytes; ++i) {
                gathered[i] = zero_point;
            }
        } else {
            for (int kx = 0; kx < p->k_w; ++kx) {
                const int ix = ix0 + kx * p->dil_w;
                if (ix < 0 || ix >= p->in_w) {
                    memset(gathered + kx * in_c, zero_point, (size_t)in_c);
                } else {
                    memcpy(gathered + kx * in_c, input + ((int32_t)iy * p->in_w + ix) * in_c,
                           (size_t)in_c);
                }
            }
        }
    }
}

/*
 * Pixel `pixel`'s column into the pair buffer as `slot`. With in_c a multiple of
 * 4 every tap starts a group of four, so taps are widened straight from the
 * input and outside taps are zero lanes. Otherwise the bytes are gathered first
 * and widened as one run.
 */
static void fill_column(const mq_conv_params_t *p, const int8_t *input, int pixel, int slot,
                        int8_t *gathered, int16_t *pair)
{
    const int oy = pixel / p->out_w, ox = pixel % p->out_w;
    const int iy0 = oy * p->stride_h - p->pad_top, ix0 = ox * p->stride_w - p->pad_left;
    const int in_c = p->in_c;
    const int32_t offset = p->input_offset;
    if (pointwise(p)) {
        widen(input + ((int32_t)iy0 * p->in_w + ix0) * in_c, 0, in_c, offset, slot, pair);
        return;
    }
    if (in_c & 3) {
        gather_bytes(p, input, iy0, ix0, gathered);
        widen(gathered, 0, column_length(p), offset, slot, pair);
        return;
    }
    int first = 0;
    for (int ky = 0; ky < p->k_h; ++ky) {
        const int iy = iy0 + ky * p->dil_h;
        for (int kx = 0; kx < p->k_w; ++kx, first += in_c) {
            const int ix = ix0 + kx * p->dil_w;
            if (iy >= 0 && iy < p->in_h && ix >= 0 && ix < p->in_w) {
                widen(input + ((int32_t)iy * p->in_w + ix) * in_c, first, in_c, offset, slot, pair);
            } else {
                int16_t *out = slot_lanes(pair, first, slot);
                for (int i = 0; i < in_c; i += 4, out += LANES_PER_GROUP) {
                    mq_store32(out, 0u);
                    mq_store32(out + 2, 0u);
                }
            }
        }
    }
}

/* sums = {a.w0, a.w1, b.w0, b.w1} over the n entries of the pair buffer. */
static void dot_2x2(const int16_t *pair, const int8_t *w_0, const int8_t *w_1, int n,
                    int32_t sums[4])
{
    int32_t a0 = 0, a1 = 0, b0 = 0, b1 = 0;
    const int8_t *const w_end = w_0 + (n & ~3);
    for (; w_0 < w_end; w_0 += 4, w_1 += 4, pair += LANES_PER_GROUP) {
        const uint32_t w4_0 = mq_load32(w_0), w4_1 = mq_load32(w_1);
        const uint32_t w_0_even = mq_sxtb16(w4_0), w_0_odd = mq_sxtb16_ror8(w4_0);
        const uint32_t w_1_even = mq_sxtb16(w4_1), w_1_odd = mq_sxtb16_ror8(w4_1);
        uint32_t x = mq_load32(pair);                 /* a(x0, x2) */
        a0 = mq_smlad(x, w_0_even, a0);
        a1 = mq_smlad(x, w_1_even, a1);
        x = mq_load32(pair + 2);                      /* a(x1, x3) */
        a0 = mq_smlad(x, w_0_odd, a0);
        a1 = mq_smlad(x, w_1_odd, a1);
        x = mq_load32(pair + 4);                      /* b(x0, x2) */
        b0 = mq_smlad(x, w_0_even, b0);
        b1 = mq_smlad(x, w_1_even, b1);
        x = mq_load32(pair + 6);                      /* b(x1, x3) */
        b0 = mq_smlad(x, w_0_odd, b0);
        b1 = mq_smlad(x, w_1_odd, b1);
    }
    for (int t = 0; t < (n & 3); ++t) {
        a0 += (int32_t)pair[t] * w_0[t];
        a1 += (int32_t)pair[t] * w_1[t];
        b0 += (int32_t)pair[4 + t] * w_0[t];
        b1 += (int32_t)pair[4 + t] * w_1[t];
    }
    sums[0] = a0;
    sums[1] = a1;
    sums[2] = b0;
    sums[3] = b1;
}

/* Pixel `slot`'s column . filter w (odd leftovers: one pixel or one channel). */
static int32_t dot_1x1(const int16_t *pair, int slot, const int8_t *w, int n)
{
    int32_t acc = 0;
    const int8_t *const w_end = w + (n & ~3);
    pair += slot * 4;                                 /* slot_lanes(pair, 0, slot) */
    for (; w < w_end; w += 4, pair += LANES_PER_GROUP) {
        const uint32_t w4 = mq_load32(w);
        acc = mq_smlad(mq_load32(pair), mq_sxtb16(w4), acc);
        acc = mq_smlad(mq_load32(pair + 2), mq_sxtb16_ror8(w4), acc);
    }
    for (int t = 0; t < (n & 3); ++t) {
        acc += (int32_t)pair[t] * w[t];
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
    int16_t *pair = (int16_t *)(void *)scratch;
    int8_t *gathered = (int8_t *)(pair + ((n + 3) / 4) * LANES_PER_GROUP);
    for (int pixel = 0; pixel < pixels; pixel += 2) {
        const int both = pixel + 1 < pixels;
        fill_column(p, input, pixel, 0, gathered, pair);
        if (both) {
            fill_column(p, input, pixel + 1, 1, gathered, pair);
        }
        int8_t *out_a = output + (int32_t)pixel * out_c;
        int8_t *out_b = out_a + out_c;
        int oc = 0;
        for (; both && oc + 2 <= out_c; oc += 2) {
            int32_t sums[4];
            const int8_t *w_0 = filter + (int32_t)oc * n;
            dot_2x2(pair, w_0, w_0 + n, n, sums);
            out_a[oc] = mq_requant_channel(&q, sums[0], oc);
            out_a[oc + 1] = mq_requant_channel(&q, sums[1], oc + 1);
            out_b[oc] = mq_requant_channel(&q, sums[2], oc);
            out_b[oc + 1] = mq_requant_channel(&q, sums[3], oc + 1);
        }
        for (; oc < out_c; ++oc) {
            const int8_t *w = filter + (int32_t)oc * n;
            out_a[oc] = mq_requant_channel(&q, dot_1x1(pair, 0, w, n), oc);
            if (both) {
                out_b[oc] = mq_requant_channel(&q, dot_1x1(pair, 1, w, n), oc);
            }
        }
    }
}
