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
 * order SXTB16 and SXTB16 ROR #8 give the weights in. The n % 4 tail follows: a's
 * entries in lanes 0..3 of one more group, b's in lanes 4..7.
 *
 * Weights come as the code generator lays them out (codegen/emit.py,
 * pair_channels): output channels in pairs, the two rows interleaved in groups of
 * four entries (c0 k0..3, c1 k0..3, c0 k4..7, ...), then c0's and c1's n % 4 tail;
 * an odd last channel as in the .tflite. One pointer then walks both channels and
 * one pass of the inner loop reads six consecutive words (four of the pair, two
 * of weights), which the Cortex-M4 pipelines at one cycle each after the first
 * (TRM section 3.3.3), then four SXTB16 and eight SMLADs: 19 cycles per 16 MACs.
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
        } else if (p->dil_w == 1 && kx0 == 0 && kx1 == p->k_w) {
            /* a whole row inside the input: words, then the last bytes */
            const int8_t *run = input + ((int32_t)iy * p->in_w + ix0) * in_c;
            int i = 0;
            for (; i + 4 <= row_bytes; i += 4) {
                mq_store32(gathered + i, mq_load32(run + i));
            }
            for (; i < row_bytes; ++i) {
                gathered[i] = run[i];
            }
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

/* Entries [first, first + n) of pixel `slot`'s column as zero lanes (n a multiple of 4). */
static void zero_lanes(int16_t *pair, int first, int n, int slot)
{
    int16_t *out = slot_lanes(pair, first, slot);
    for (int i = 0; i < n; i += 4, out += LANES_PER_GROUP) {
        mq_store32(out, 0u);
        mq_store32(out + 2, 0u);
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
    const int row_entries = p->k_w * in_c;
    if (p->dil_w == 1) {
        /* the taps of a filter row inside the input are one run of the input row */
        int kx0, kx1;
        mq_window(ix0, p->k_w, p->in_w, &kx0, &kx1);
        for (int ky = 0, first = 0; ky < p->k_h; ++ky, first += row_entries) {
            const int iy = iy0 + ky * p->dil_h;
            if (iy < 0 || iy >= p->in_h || kx0 >= kx1) {
                zero_lanes(pair, first, row_entries, slot);
                continue;
            }
            zero_lanes(pair, first, kx0 * in_c, slot);
            widen(input + ((int32_t)iy * p->in_w + ix0 + kx0) * in_c, first + kx0 * in_c,
                  (kx1 - kx0) * in_c, offset, slot, pair);
            zero_lanes(pair, first + kx1 * in_c, (p->k_w - kx1) * in_c, slot);
        }
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
                zero_lanes(pair, first, in_c, slot);
            }
        }
    }
}

/* Four column entries of both pixels times a channel pair's paired weights. */
#define MQ_CONV_GROUP(pair, w, a0, a1, b0, b1)                                     \
    do {                                                                           \
        const uint32_t a_even = mq_load32(pair), a_odd = mq_load32((pair) + 2);     \
        const uint32_t b_even = mq_load32((pair) + 4), b_odd = mq_load32((pair) + 6); \
        const uint32_t w4_0 = mq_load32(w), w4_1 = mq_load32((w) + 4);              \
        uint32_t w_half = mq_sxtb16(w4_0);                                         \
        a0 = mq_smlad(a_even, w_half, a0);                                         \
        b0 = mq_smlad(b_even, w_half, b0);                                         \
        w_half = mq_sxtb16_ror8(w4_0);                                             \
        a0 = mq_smlad(a_odd, w_half, a0);                                          \
        b0 = mq_smlad(b_odd, w_half, b0);                                          \
        w_half = mq_sxtb16(w4_1);                                                  \
        a1 = mq_smlad(a_even, w_half, a1);                                         \
        b1 = mq_smlad(b_even, w_half, b1);                                         \
        w_half = mq_sxtb16_ror8(w4_1);                                             \
        a1 = mq_smlad(a_odd, w_half, a1);                                          \
        b1 = mq_smlad(b_odd, w_half, b1);                                          \
    } while (0)

/*
 * sums = {a.w0, a.w1, b.w0, b.w1} over the n entries of the pair buffer, w a channel
 * pair's paired weights (2n bytes). Two groups per pass halve the loop's overhead.
 */
static MQ_ALWAYS_INLINE void dot_2x2(const int16_t *pair, const int8_t *w, int n, int32_t sums[4])
{
    int32_t a0 = 0, a1 = 0, b0 = 0, b1 = 0;
    const int groups = n >> 2;
#if MQ_DSP
    if (groups >= 2) {
        /*
         * The hand-scheduled loop (GCC interleaves the loads with the multiplies and
         * spills an accumulator, ~30 % slower): per group six loads back to back (the
         * pair's four words and both channels' weights; pipelined, 7 cycles), four
         * SXTB16 and eight SMLADs; per two groups a compare and the taken branch
         * (1 + 3): 42 cycles per 32 MACs by TRM Table 3-1. Fourteen registers: all of
         * r0-r12 and lr. Pre-indexed writeback walks both pointers, so no separate
         * increments.
         */
        const int16_t *pp = pair - LANES_PER_GROUP;
        const int8_t *wp = w - 8;
        const int8_t *const last = wp + 16 * (groups >> 1);
        uint32_t a_even, a_odd, b_even, b_odd, w4, w4_second, half;
        __asm__ volatile(
            "1:\n\t"
#define MQ_CONV_GROUP_ASM                                                                  \
            "ldr %[ae], [%[pp], #16]!\n\t"                                               \
            "ldr %[ao], [%[pp], #4]\n\t"                                                 \
            "ldr %[be], [%[pp], #8]\n\t"                                                 \
            "ldr %[bo], [%[pp], #12]\n\t"                                                \
            "ldr %[w4], [%[wp], #8]!\n\t"                                                \
            "ldr %[w4b], [%[wp], #4]\n\t"                                                \
            "sxtb16 %[half], %[w4]\n\t"                                                  \
            "smlad %[a0], %[ae], %[half], %[a0]\n\t"                                     \
            "smlad %[b0], %[be], %[half], %[b0]\n\t"                                     \
            "sxtb16 %[w4], %[w4], ror #8\n\t"                                            \
            "smlad %[a0], %[ao], %[w4], %[a0]\n\t"                                       \
            "smlad %[b0], %[bo], %[w4], %[b0]\n\t"                                       \
            "sxtb16 %[half], %[w4b]\n\t"                                                 \
            "smlad %[a1], %[ae], %[half], %[a1]\n\t"                                     \
            "smlad %[b1], %[be], %[half], %[b1]\n\t"                                     \
            "sxtb16 %[w4b], %[w4b], ror #8\n\t"                                          \
            "smlad %[a1], %[ao], %[w4b], %[a1]\n\t"                                      \
            "smlad %[b1], %[bo], %[w4b], %[b1]\n\t"
            MQ_CONV_GROUP_ASM
            MQ_CONV_GROUP_ASM
#undef MQ_CONV_GROUP_ASM
            "cmp %[wp], %[last]\n\t"
            "bne 1b\n\t"
            : [a0] "+r"(a0), [a1] "+r"(a1), [b0] "+r"(b0), [b1] "+r"(b1), [pp] "+r"(pp),
              [wp] "+r"(wp), [ae] "=&r"(a_even), [ao] "=&r"(a_odd), [be] "=&r"(b_even),
              [bo] "=&r"(b_odd), [w4] "=&r"(w4), [w4b] "=&r"(w4_second), [half] "=&r"(half)
            : [last] "r"(last)
            : "cc", "memory");
        pair = pp + LANES_PER_GROUP;
        w = wp + 8;
    }
#else
    const int8_t *const w_pairs_end = w + 16 * (groups >> 1);
    for (; w < w_pairs_end; w += 16, pair += 2 * LANES_PER_GROUP) {
        MQ_CONV_GROUP(pair, w, a0, a1, b0, b1);
        MQ_CONV_GROUP(pair + LANES_PER_GROUP, w + 8, a0, a1, b0, b1);
    }
#endif
    if (groups & 1) {
        MQ_CONV_GROUP(pair, w, a0, a1, b0, b1);
        w += 8;
        pair += LANES_PER_GROUP;
    }
    const int tail = n & 3;
    for (int t = 0; t < tail; ++t) {
        a0 += (int32_t)pair[t] * w[t];
        a1 += (int32_t)pair[t] * w[tail + t];
        b0 += (int32_t)pair[4 + t] * w[t];
        b1 += (int32_t)pair[4 + t] * w[tail + t];
    }
    sums[0] = a0;
    sums[1] = a1;
    sums[2] = b0;
    sums[3] = b1;
}

/*
 * The four sums of dot_2x2 to output bytes: each channel's parameters are read once
 * for both pixels (inlined into outputs_2x2).
 */
static MQ_ALWAYS_INLINE void requant_2x2(const mq_requant_t *q, const int32_t sums[4], int oc,
                                         int8_t *out_a, int8_t *out_b)
{
    int32_t a0 = sums[0], a1 = sums[1], b0 = sums[2], b1 = sums[3];
    if (q->bias) {
        const int32_t bias0 = q->bias[oc], bias1 = q->bias[oc + 1];
        a0 += bias0;
        b0 += bias0;
        a1 += bias1;
        b1 += bias1;
    }
    const int32_t m0 = q->multiplier[oc], m1 = q->multiplier[oc + 1];
    const int s0 = q->shift[oc], s1 = q->shift[oc + 1];
    if (q->fast) {
        a0 = mq_multiply_small_right(a0, m0, s0);
        b0 = mq_multiply_small_right(b0, m0, s0);
        a1 = mq_multiply_small_right(a1, m1, s1);
        b1 = mq_multiply_small_right(b1, m1, s1);
    } else {
        a0 = mq_multiply_by_quantized_multiplier(a0, m0, s0);
        b0 = mq_multiply_by_quantized_multiplier(b0, m0, s0);
        a1 = mq_multiply_by_quantized_multiplier(a1, m1, s1);
        b1 = mq_multiply_by_quantized_multiplier(b1, m1, s1);
    }
    const int32_t offset = q->output_offset, lo = q->act_min, hi = q->act_max;
    out_a[oc] = (int8_t)mq_clamp(a0 + offset, lo, hi);
    out_a[oc + 1] = (int8_t)mq_clamp(a1 + offset, lo, hi);
    out_b[oc] = (int8_t)mq_clamp(b0 + offset, lo, hi);
    out_b[oc + 1] = (int8_t)mq_clamp(b1 + offset, lo, hi);
}

/*
 * Both pixels of the pair buffer times every channel pair: one call per pixel pair, the
 * dot products and their requantization inline, so the per-channel-pair cost is the
 * loop's, not two calls' saving and restoring nine registers each (what dominated 1x1
 * layers with few input channels).
 */
static __attribute__((noinline)) void outputs_2x2(const int16_t *pair, const int8_t *w, int n,
                                                  const mq_requant_t *q, int out_c,
                                                  int8_t *out_a, int8_t *out_b)
{
    for (int oc = 0; oc + 2 <= out_c; oc += 2, w += 2 * n) {
        int32_t sums[4];
        dot_2x2(pair, w, n, sums);
        requant_2x2(q, sums, oc, out_a, out_b);
    }
}

/* Where one channel of a pair starts reading its tail: past both channels' groups. */
static const int8_t *paired_tail(const int8_t *w_pair, int n, int second)
{
    return w_pair + 2 * (n & ~3) + second * (n & 3);
}

/*
 * Pixel `slot`'s column . one channel's weights, the odd leftover cases: one pixel
 * (the last of an odd count) with a paired channel (`step` 8, the tail at `tail`), or
 * an unpaired last channel (`step` 4, its tail right after its groups).
 */
static int32_t dot_1x1(const int16_t *pair, int slot, const int8_t *w, int step,
                       const int8_t *tail, int n)
{
    int32_t acc = 0;
    pair += slot * 4;                                 /* slot_lanes(pair, 0, slot) */
    for (int g = 0; g < (n >> 2); ++g, w += step, pair += LANES_PER_GROUP) {
        const uint32_t w4 = mq_load32(w);
        acc = mq_smlad(mq_load32(pair), mq_sxtb16(w4), acc);
        acc = mq_smlad(mq_load32(pair + 2), mq_sxtb16_ror8(w4), acc);
    }
    for (int t = 0; t < (n & 3); ++t) {
        acc += (int32_t)pair[t] * tail[t];
    }
    return acc;
}

void mq_conv2d_s8(const mq_conv_params_t *p, const int8_t *input, const int8_t *filter,
                  const int32_t *bias, const int32_t *multiplier, const int32_t *shift,
                  int8_t *output, int8_t *scratch)
{
    const mq_requant_t q = {bias, multiplier, shift, p->output_offset, p->act_min, p->act_max,
                            p->requant_fast};
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
        const int8_t *w = filter;
        int oc = 0;
        if (both) {
            outputs_2x2(pair, w, n, &q, out_c, out_a, out_b);
            oc = out_c & ~1;
            w += (int32_t)oc * n;
        }
        for (; oc + 2 <= out_c; oc += 2, w += 2 * n) {     /* the last pixel of an odd count */
            out_a[oc] = mq_requant_channel(&q, dot_1x1(pair, 0, w, 8, paired_tail(w, n, 0), n), oc);
            out_a[oc + 1] = mq_requant_channel(
                &q, dot_1x1(pair, 0, w + 4, 8, paired_tail(w, n, 1), n), oc + 1);
        }
        if (oc < out_c) {                             /* an unpaired last channel */
            const int8_t *tail = w + (n & ~3);
            out_a[oc] = mq_requant_channel(&q, dot_1x1(pair, 0, w, 4, tail, n), oc);
            if (both) {
                out_b[oc] = mq_requant_channel(&q, dot_1x1(pair, 1, w, 4, tail, n), oc);
            }
        }
    }
}
