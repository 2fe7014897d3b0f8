/*
 * DEPTHWISE_CONV_2D, int8, per-channel weights; output channel = in channel * M + m.
 *
 * With a depth multiplier of 1 (the separable blocks), no dilation and a channel
 * count that is a multiple of 4 (every zoo model), the layer first prepares its
 * scratch (mq_depthwise_scratch_bytes): every tap's weights widened once to 16-bit
 * lanes (channels c, c+2 and c+1, c+3: what SXTB16 and SXTB16 ROR #8 give the
 * inputs in), each channel's bias plus input_offset * (sum of its weights), and a
 * row of zero-point bytes. The sum over a window is then sum(w * x) plus that folded
 * term, and a tap outside the input reads the zero-point row: x = -input_offset,
 * which adds w * x + w * input_offset = 0, exactly as the reference skips it. Per tap
 * and four channels: a word of inputs, two SXTB16, two words of widened weights and
 * four 16x16 multiply-accumulates (SMLABB/SMLATT). A 3x3 layer takes its
 * whole window at a time (window3x3_x4: hand-scheduled, the accumulators in
 * registers), padding included, since a tap outside reads the zero-point row; with
 * stride 1, pad_left <= 1 and rows of 8 outputs or more it takes the rows path instead
 * (depthwise_rows, below): input rows copied once into per-channel 16-bit planes, and two
 * neighbouring outputs sharing their words through SMLAD/SMLADX.
 *
 * Other multipliers keep per-pixel accumulators on the stack and walk the
 * channel-contiguous runs in order; dilated or very wide layers take the
 * straightforward per-channel path.
 */
#include "mq_nn.h"

#define MQ_DEPTHWISE_MAX_CHANNELS 1024
#define MQ_DEPTHWISE_MAX_TAPS 64

/* Four channels of one tap: (x + offset) * w lane by lane into s[0..3]. */
static MQ_ALWAYS_INLINE void tap_x4(const int8_t *x, const int8_t *w, uint32_t offset2,
                                    int32_t s[4])
{
    const uint32_t x4 = mq_load32(x), w4 = mq_load32(w);
    const uint32_t x_even = mq_sadd16(mq_sxtb16(x4), offset2);     /* c, c+2 */
    const uint32_t x_odd = mq_sadd16(mq_sxtb16_ror8(x4), offset2); /* c+1, c+3 */
    const uint32_t w_even = mq_sxtb16(w4), w_odd = mq_sxtb16_ror8(w4);
    s[0] = mq_smlabb(x_even, w_even, s[0]);
    s[2] = mq_smlatt(x_even, w_even, s[2]);
    s[1] = mq_smlabb(x_odd, w_odd, s[1]);
    s[3] = mq_smlatt(x_odd, w_odd, s[3]);
}

/*
 * A 3x3 window for four channels: the input words at tap[t] + c (t = 0..8, row by
 * row; a tap outside the input points at the zero-point row) against the widened
 * weight words w[0..17] ([tap][even, odd], see depthwise_prepared), accumulated into
 * s[0..3]. Per tap four loads back to back (the input word, both weight words and
 * the next tap's pointer: all but the first pipelined), two SXTB16 and four
 * SMLABB/SMLATT: 11 cycles by the M4 TRM's Table 3-1.
 * GCC's schedule of the same C spilled the accumulators between taps.
 */
static MQ_ALWAYS_INLINE void window3x3_x4(const int8_t *const tap[9], int32_t c,
                                          const uint32_t *w, int32_t s[4])
{
#if MQ_DSP
    int32_t s0 = s[0], s1 = s[1], s2 = s[2], s3 = s[3];
    uint32_t pointer, raw, even, w_even, w_odd;
    /* each tap loads the next tap's pointer after its own input word, so that no
     * instruction uses a register the one before it loaded (a load-use stall on the
     * Cortex-M33 and M7; on the M4 the four loads still pipeline) */
#define MQ_WINDOW_TAP(offset_even, offset_odd, next)                                    \
    "ldr %[raw], [%[ptr], %[c]]\n\t"                                                    \
    "ldr %[we], [%[w], #" offset_even "]\n\t"                                           \
    "ldr %[wo], [%[w], #" offset_odd "]\n\t"                                            \
    next                                                                               \
    "sxtb16 %[even], %[raw]\n\t"                                                        \
    "sxtb16 %[raw], %[raw], ror #8\n\t"                                                 \
    "smlabb %[s0], %[even], %[we], %[s0]\n\t"                                           \
    "smlatt %[s2], %[even], %[we], %[s2]\n\t"                                           \
    "smlabb %[s1], %[raw], %[wo], %[s1]\n\t"                                            \
    "smlatt %[s3], %[raw], %[wo], %[s3]\n\t"
#define MQ_NEXT(t) "ldr %[ptr], [%[tap], #" t "]\n\t"
    __asm__("ldr %[ptr], [%[tap]]\n\t"
            MQ_WINDOW_TAP("0", "4", MQ_NEXT("4")) MQ_WINDOW_TAP("8", "12", MQ_NEXT("8"))
            MQ_WINDOW_TAP("16", "20", MQ_NEXT("12")) MQ_WINDOW_TAP("24", "28", MQ_NEXT("16"))
            MQ_WINDOW_TAP("32", "36", MQ_NEXT("20")) MQ_WINDOW_TAP("40", "44", MQ_NEXT("24"))
            MQ_WINDOW_TAP("48", "52", MQ_NEXT("28")) MQ_WINDOW_TAP("56", "60", MQ_NEXT("32"))
            MQ_WINDOW_TAP("64", "68", "")
            : [ptr] "=&r"(pointer), [raw] "=&r"(raw), [even] "=&r"(even),
              [we] "=&r"(w_even), [wo] "=&r"(w_odd),
              [s0] "+r"(s0), [s1] "+r"(s1), [s2] "+r"(s2), [s3] "+r"(s3)
            : [tap] "r"(tap), [c] "r"(c), [w] "r"(w)
            : "memory");
#undef MQ_NEXT
#undef MQ_WINDOW_TAP
    s[0] = s0;
    s[1] = s1;
    s[2] = s2;
    s[3] = s3;
#else
    for (int t = 0; t < 9; ++t) {
        const uint32_t x4 = mq_load32(tap[t] + c);
        const uint32_t x_even = mq_sxtb16(x4), x_odd = mq_sxtb16_ror8(x4);
        s[0] = mq_smlabb(x_even, w[2 * t], s[0]);
        s[2] = mq_smlatt(x_even, w[2 * t], s[2]);
        s[1] = mq_smlabb(x_odd, w[2 * t + 1], s[1]);
        s[3] = mq_smlatt(x_odd, w[2 * t + 1], s[3]);
    }
#endif
}

/*
 * Multiplier 1, no dilation: one output pixel. The taps of the window inside the
 * input are listed once (input and weight byte offsets) and shared by every
 * group of four channels, so the innermost loop is one flat run over taps.
 */
static void depthwise_pixel_m1(const mq_conv_params_t *p, const int8_t *input,
                               const int8_t *filter, const mq_requant_t *q, int iy0, int ix0,
                               int8_t *out)
{
    int32_t x_offsets[MQ_DEPTHWISE_MAX_TAPS], w_offsets[MQ_DEPTHWISE_MAX_TAPS];
    int ky0, ky1, kx0, kx1;
    mq_window(iy0, p->k_h, p->in_h, &ky0, &ky1);
    mq_window(ix0, p->k_w, p->in_w, &kx0, &kx1);
    const int channels = p->in_c;
    int taps = 0;
    for (int ky = ky0; ky < ky1; ++ky) {
        for (int kx = kx0; kx < kx1; ++kx, ++taps) {
            x_offsets[taps] = ((int32_t)(iy0 + ky) * p->in_w + ix0 + kx) * channels;
            w_offsets[taps] = (ky * p->k_w + kx) * channels;
        }
    }
    const int32_t input_offset = p->input_offset;
    const uint32_t offset2 = mq_dup16(input_offset);
    int c = 0;
    for (; c + 4 <= channels; c += 4) {
        int32_t s[4] = {0, 0, 0, 0};
        const int8_t *x_c = input + c, *w_c = filter + c;
        for (int t = 0; t < taps; ++t) {
            tap_x4(x_c + x_offsets[t], w_c + w_offsets[t], offset2, s);
        }
        out[c] = mq_requant_channel(q, s[0], c);
        out[c + 1] = mq_requant_channel(q, s[1], c + 1);
        out[c + 2] = mq_requant_channel(q, s[2], c + 2);
        out[c + 3] = mq_requant_channel(q, s[3], c + 3);
    }
    for (; c < channels; ++c) {
        int32_t sum = 0;
        for (int t = 0; t < taps; ++t) {
            sum += (int32_t)filter[w_offsets[t] + c] * (input[x_offsets[t] + c] + input_offset);
        }
        out[c] = mq_requant_channel(q, sum, c);
    }
}

static void depthwise_per_channel(const mq_conv_params_t *p, const int8_t *input,
                                  const int8_t *filter, const mq_requant_t *q, int iy0,
                                  int ix0, int8_t *out)
{
    for (int ic = 0; ic < p->in_c; ++ic) {
        for (int m = 0; m < p->depth_multiplier; ++m) {
            const int oc = ic * p->depth_multiplier + m;
            int32_t sum = 0;
            for (int ky = 0; ky < p->k_h; ++ky) {
                const int iy = iy0 + ky * p->dil_h;
                if (iy < 0 || iy >= p->in_h) {
                    continue;
                }
                for (int kx = 0; kx < p->k_w; ++kx) {
                    const int ix = ix0 + kx * p->dil_w;
                    if (ix < 0 || ix >= p->in_w) {
                        continue;
                    }
                    const int32_t x = input[((int32_t)iy * p->in_w + ix) * p->in_c + ic];
                    sum += (int32_t)filter[(ky * p->k_w + kx) * p->out_c + oc] * (x + p->input_offset);
                }
            }
            out[oc] = mq_requant_channel(q, sum, oc);
        }
    }
}

int mq_depthwise_prepared(const mq_conv_params_t *p)
{
    return p->depth_multiplier == 1 && p->dil_h == 1 && p->dil_w == 1 && (p->in_c & 3) == 0 &&
           p->k_h * p->k_w <= MQ_DEPTHWISE_MAX_TAPS;
}

/* The rows path pays ~75 cycles per channel and output row for its setup and ~10 per input
 * byte it copies: below 8 outputs a row, and at stride 2 (four input bytes an output, no
 * shared words), the per-pixel routine is faster. */
#define MQ_DEPTHWISE_ROWS_MIN_WIDTH 8

int mq_depthwise_rows(const mq_conv_params_t *p)
{
    return mq_depthwise_prepared(p) && p->k_h == 3 && p->k_w == 3 && p->stride_w == 1 &&
           p->pad_left <= 1 && p->out_w >= MQ_DEPTHWISE_ROWS_MIN_WIDTH;
}

#define ROWS_WEIGHT_WORDS 5   /* (w00, w01), (w10, w11), (w20, w21), (w02, w12), (w22, 0) */

/* 16-bit lanes of a plane row on the rows path: the columns j = ix + pad_left its passes
 * read (the words (ox, ox + 1) and (ox + 2, ox + 3) of every even ox < out_w); even. */
static uint32_t rows_lanes(const mq_conv_params_t *p)
{
    return (((uint32_t)p->out_w + 1u) & ~1u) + 2u;
}

uint32_t mq_depthwise_scratch_bytes(const mq_conv_params_t *p)
{
    const uint32_t channels = p->in_c, taps = (uint32_t)p->k_h * p->k_w;
    if (mq_depthwise_rows(p)) {
        /* per channel 5 words of paired weights and a folded bias; a zero-point row; three
         * input rows as planes; an output row's sums (out_w rounded up to even) */
        const uint32_t lanes = rows_lanes(p);
        return 4u * (ROWS_WEIGHT_WORDS + 1u) * channels + 2u * lanes + 3u * 2u * lanes * channels +
               4u * ((p->out_w + 1u) & ~1u);
    }
    /* widened weights (2 bytes per tap and channel), folded biases, zero-point row */
    return mq_depthwise_prepared(p) ? 2u * taps * channels + 4u * channels +
                                          ((channels + 3u) & ~3u)
                                    : 0u;
}

/*
 * The rows path (3x3, multiplier 1, no dilation, channels a multiple of 4, stride_w 1,
 * pad_left <= 1, at least MQ_DEPTHWISE_ROWS_MIN_WIDTH outputs a row: the zoo's stride-1
 * depthwise layers down to 8x8). Four channels' bytes of two input
 * pixels (two words) become, by two SXTB16 each and four PKHBT/PKHTB, one word in each of
 * four channel planes: channel c's row as 16-bit lanes, column j = ix + pad_left, the zero
 * point where ix lies outside the input. Then per channel and output row the window is
 * three rows of three weights, and two neighbouring outputs of a stride-1 row share their
 * words: with A = (x[j], x[j+1]), B = (x[j+2], x[j+3]) and W = (w0, w1),
 *   out[j]     += SMLAD(A, W) + SMLABB(B, w2)                 (x[j] w0 + x[j+1] w1 + x[j+2] w2)
 *   out[j + 1] += SMLADX(PKHBT(B, A), W) + SMLATB(B, w2)     (x[j+1] w0 + x[j+2] w1 + x[j+3] w2)
 * Sums start at the folded bias (bias
 * + input_offset * the channel's sum of weights) over raw inputs, as on the prepared path,
 * so a padding lane (x = -input_offset) adds nothing, exactly as the reference skips it.
 * A row of sums is then requantized into the output at a stride of the channel count.
 *
 * Order of reads and writes (codegen/emit.py, in_place_offset relies on it): output rows
 * in order; before row oy's outputs are written, every input row its windows read has been
 * copied into the planes (each input row once, into slot iy % 3), and no input byte is read
 * afterwards except rows below its window.
 *
 * scratch (mq_depthwise_scratch_bytes): weights, ROWS_WEIGHT_WORDS words a channel (each
 * row's (w0, w1), then the first two rows' w2 and the last row's), folded biases, the zero-point row, three slots of [channel][lanes] planes, and
 * the sums of an output row.
 */
static MQ_ALWAYS_INLINE void widen_pair(uint32_t xa, uint32_t xb, uint32_t *plane, int32_t words,
                                        int k)
{
    const uint32_t even_a = mq_sxtb16(xa), odd_a = mq_sxtb16_ror8(xa);
    const uint32_t even_b = mq_sxtb16(xb), odd_b = mq_sxtb16_ror8(xb);
    plane[k] = mq_pack_lo(even_a, even_b);                 /* channel c */
    plane[words + k] = mq_pack_lo(odd_a, odd_b);           /* c + 1 */
    plane[2 * words + k] = mq_pack_hi(even_a, even_b);     /* c + 2 */
    plane[3 * words + k] = mq_pack_hi(odd_a, odd_b);       /* c + 3 */
}

/* Input row x (in_w pixels of `channels` bytes) into one slot of planes: pair k holds
 * pixels ix = 2k - pad_left and ix + 1 (pad_left 0 or 1, in_w >= 2 on the rows path). */
static void widen_row(const int8_t *x, int channels, int in_w, int pad_left, int32_t words,
                      uint32_t zero4, uint32_t *slot)
{
    /* the pairs [pad_left, inner_end) have both pixels inside */
    int inner_end = (in_w + pad_left) / 2;
    inner_end = inner_end < words ? inner_end : words;
    for (int c = 0; c < channels; c += 4, slot += 4 * words) {
        int k = 0;
        if (pad_left) {                            /* the zero point, pixel 0 */
            widen_pair(zero4, mq_load32(x + c), slot, words, 0);
            k = 1;
        }
        const int8_t *pixel = x + (2 * k - pad_left) * channels + c;
#if MQ_DSP
        if (k < inner_end) {
            /* widen_pair in a loop of its own (GCC's schedule spilled the four plane
             * pointers: 31 cycles a pair of pixels, this ~23) */
            uint32_t *plane = slot + k, *plane3 = slot + 3 * words + k;
            const uint32_t *const end = slot + inner_end;
            const int32_t plane_bytes = 4 * words;
            uint32_t a, b, even_a, even_b, t;
            __asm__ volatile(
                "1:\n\t"
                "ldr %[a], [%[px]]\n\t"
                "ldr %[b], [%[px], %[ch]]\n\t"
                "add %[px], %[px], %[ch], lsl #1\n\t"
                "sxtb16 %[even_a], %[a]\n\t"
                "sxtb16 %[a], %[a], ror #8\n\t"
                "sxtb16 %[even_b], %[b]\n\t"
                "sxtb16 %[b], %[b], ror #8\n\t"
                "pkhbt %[t], %[even_a], %[even_b], lsl #16\n\t"
                "str %[t], [%[plane]]\n\t"                       /* channel c */
                "pkhbt %[t], %[a], %[b], lsl #16\n\t"
                "str %[t], [%[plane], %[pb]]\n\t"                /* c + 1 */
                "pkhtb %[t], %[even_b], %[even_a], asr #16\n\t"
                "str %[t], [%[plane], %[pb], lsl #1]\n\t"        /* c + 2 */
                "pkhtb %[t], %[b], %[a], asr #16\n\t"
                "str %[t], [%[plane3]], #4\n\t"                  /* c + 3 */
                "add %[plane], %[plane], #4\n\t"
                "cmp %[plane], %[end]\n\t"
                "bne 1b\n\t"
                : [px] "+r"(pixel), [plane] "+r"(plane), [plane3] "+r"(plane3), [a] "=&r"(a),
                  [b] "=&r"(b), [even_a] "=&r"(even_a), [even_b] "=&r"(even_b), [t] "=&r"(t)
                : [ch] "r"(channels), [pb] "r"(plane_bytes), [end] "r"(end)
                : "cc", "memory");
            k = inner_end;
        }
#else
        for (; k < inner_end; ++k, pixel += 2 * channels) {
            widen_pair(mq_load32(pixel), mq_load32(pixel + channels), slot, words, k);
        }
#endif
        if (k < words && 2 * k - pad_left == in_w - 1) {   /* the last pixel, the zero point */
            widen_pair(mq_load32(x + (in_w - 1) * channels + c), zero4, slot, words, k);
            ++k;
        }
        for (; k < words; ++k) {                   /* past the input: the zero point */
            widen_pair(zero4, zero4, slot, words, k);
        }
    }
}

/* One window row into a stride-1 pair of sums (see above): `pair` holds (w0, w1), `third`
 * w2 in the lane that `bottom` (output j) and `top` (output j + 1) multiply by. */
#define MQ_ROW_PAIR(row, pair, third, bottom, top)                                      \
    do {                                                                                \
        const uint32_t a_ = (row)[k], b_ = (row)[k + 1];                                \
        s0 = mq_smlad(a_, pair, s0);                                                    \
        s0 = bottom(b_, third, s0);                                                     \
        s1 = mq_smladx(mq_pkhbt(b_, a_), pair, s1);                                     \
        s1 = top(b_, third, s1);                                                        \
    } while (0)

/* One channel's output row of sums, stride 1, `pairs` pairs of outputs; w: the channel's
 * ROWS_WEIGHT_WORDS words. */
static void row_sums_s1(const uint32_t *r0, const uint32_t *r1, const uint32_t *r2,
                        const uint32_t *w, int32_t bias, int32_t *sums, int pairs)
{
    const uint32_t pair0 = w[0], pair1 = w[1], pair2 = w[2], thirds = w[3], third2 = w[4];
    for (int k = 0; k < pairs; ++k, sums += 2) {
        int32_t s0 = bias, s1 = bias;
        MQ_ROW_PAIR(r0, pair0, thirds, mq_smlabb, mq_smlatb);
        MQ_ROW_PAIR(r1, pair1, thirds, mq_smlabt, mq_smlatt);
        MQ_ROW_PAIR(r2, pair2, third2, mq_smlabb, mq_smlatb);
        sums[0] = s0;
        sums[1] = s1;
    }
}
#undef MQ_ROW_PAIR

/* Channel c's row of sums into the output bytes out[0], out[stride], ... */
static void requant_row(const mq_requant_t *q, int c, const int32_t *sums, int count,
                        int8_t *out, int stride)
{
    for (int i = 0; i < count; ++i, out += stride) {
        *out = mq_requant_sum(q, sums[i], c, q->full_range);
    }
}

#if MQ_DSP
/*
 * One output row of the rows path, every channel, in one assembly routine, for
 * requant_fast layers whose activation range is all of int8 (GCC's schedule of the C
 * spilled the weights and the exponent: 50 cycles a stride-1 pair, 16 an output byte, and
 * a call per channel and row cost ~190 more). There the weights are laid out doubled, so
 * that the sums come out as 2 * sum (|sum| < 2^30: requant_fast), the operand SMMULR takes
 * (mq_doubling_high_mul_small) without its LSL. Per channel:
 * - the sums: per pair of outputs the bias, then per window row A and B (two loads,
 *   pipelined), SMLAD, SMLABB/SMLABT, PKHBT, SMLADX, SMLATB/SMLATT, and two STRs: 32
 *   cycles for 18 MACs by the M4 TRM's Table 3-1;
 * - the requantization, two output bytes a pass: LDRD, then per byte SMMULR, the rounding
 *   shift with the output offset folded in (mq_requant_folded), SSAT #8 and STRB.
 * r0 points at a dw_rows_pass (copied onto the stack at entry: its fields are [sp, #4i],
 * the channel's bias at [sp, #68]). Registers in the loops: r0-r2 the rows, r3 the sums,
 * r4 their end, r5-r7 the rows' (w0, w1) pairs, r8 the first two rows' third weights, r9
 * the last row's, r10 B, r11 and r12 the sums, lr A; AAPCS: r4-r11 and lr saved.
 */
typedef struct {
    const uint32_t *row0, *row1, *row2;   /* [sp, #0], #4, #8: channel 0's plane rows */
    int32_t step0, step1, step2;          /* #12, #16, #20: bytes to the next channel's */
    const uint32_t *weights;              /* #24: ROWS_WEIGHT_WORDS a channel, doubled */
    const int32_t *folded;                /* #28: doubled */
    const int32_t *multiplier, *shift;    /* #32, #36 */
    int32_t rounding_unit;                /* #40: 2 * output_offset + 1 */
    int8_t *out;                          /* #44: the row's first output byte, +1 a channel */
    int32_t channels;                     /* #48: the output bytes' stride */
    int8_t *out_end;                      /* #52: out + channels */
    int32_t *sums;                        /* #56 */
    int32_t pass_bytes;                   /* #60: the sums the pairs write, 8 a pair */
    int32_t count_bytes;                  /* #64: the row's sums, 4 * out_w */
} dw_rows_pass_t;

void mq_depthwise_rows_s8(const dw_rows_pass_t *pass);

#define MQ_WINDOW_ROW(row, pair, third, bottom, top)                                    \
    "ldr lr, [" row "], #4\n\t" "ldr r10, [" row "]\n\t"                                \
    "smlad r11, lr, " pair ", r11\n\t" bottom " r11, r10, " third ", r11\n\t"           \
    "pkhbt lr, r10, lr\n\t"                                                             \
    "smladx r12, lr, " pair ", r12\n\t" top " r12, r10, " third ", r12\n\t"

__asm__(
    ".pushsection .text.mq_depthwise_rows_s8, \"ax\", %progbits\n\t"
    ".syntax unified\n\t"
    ".thumb\n\t"
    ".balign " MQ_HOT_CODE_ALIGN "\n\t"
    ".global mq_depthwise_rows_s8\n\t"
    ".thumb_func\n\t"
    ".type mq_depthwise_rows_s8, %function\n"
    "mq_depthwise_rows_s8:\n\t"
    "push {r4-r11, lr}\n\t"
    "sub sp, sp, #72\n\t"
    "ldm r0!, {r1-r12}\n\t"
    "stm sp, {r1-r12}\n\t"
    "ldm r0, {r1-r5}\n\t"
    "add r7, sp, #48\n\t"
    "stm r7, {r1-r5}\n"
    "1:\n\t"                                       /* a channel */
    "ldr r3, [sp, #24]\n\t"
    "ldr r4, [sp, #28]\n\t"
    "ldm r3!, {r5-r9}\n\t"                         /* its weights */
    "str r3, [sp, #24]\n\t"
    "ldr r10, [r4], #4\n\t"                        /* its bias */
    "str r4, [sp, #28]\n\t"
    "str r10, [sp, #68]\n\t"
    "ldm sp, {r0-r2}\n\t"
    "ldr r3, [sp, #56]\n\t"
    "ldr r4, [sp, #60]\n\t"
    "add r4, r3, r4\n"
    "2:\n\t"                                       /* a pair of sums */
    "ldr r11, [sp, #68]\n\t"
    "mov r12, r11\n\t"
    MQ_WINDOW_ROW("r0", "r5", "r8", "smlabb", "smlatb")
    MQ_WINDOW_ROW("r1", "r6", "r8", "smlabt", "smlatt")
    MQ_WINDOW_ROW("r2", "r7", "r9", "smlabb", "smlatb")
    "str r11, [r3], #4\n\t"
    "str r12, [r3], #4\n\t"
    "cmp r3, r4\n\t"
    "bne 2b\n\t"
    /* the channel's output bytes */
    "ldr r3, [sp, #56]\n\t"
    "ldr r4, [sp, #64]\n\t"
    "ldr r5, [sp, #32]\n\t"
    "ldr r6, [sp, #36]\n\t"
    "ldr r12, [sp, #40]\n\t"
    "ldr r7, [r5], #4\n\t"                         /* multiplier */
    "ldr r8, [r6], #4\n\t"                         /* shift (<= -1) */
    "str r5, [sp, #32]\n\t"
    "str r6, [sp, #36]\n\t"
    "add r4, r3, r4\n\t"
    "rsb r8, r8, #0\n\t"                           /* exponent */
    "sub r9, r8, #1\n\t"
    "lsl r9, r12, r9\n\t"                          /* rounding: unit << (e - 1) */
    "ldr r10, [sp, #44]\n\t"
    "ldr r11, [sp, #48]\n\t"
    "add r12, r10, #1\n\t"
    "str r12, [sp, #44]\n\t"
    "sub r4, r4, #4\n\t"                           /* two or more left while r3 < r4 */
    "cmp r3, r4\n\t"
    "bhs 7f\n"
    "6:\n\t"                                       /* two output bytes */
    "ldrd r12, lr, [r3], #8\n\t"
    "smmulr r12, r12, r7\n\t"
    "smmulr lr, lr, r7\n\t"
    "add r0, r12, r9\n\t"
    "add r1, lr, r9\n\t"
    "add r12, r0, r12, asr #31\n\t"
    "add lr, r1, lr, asr #31\n\t"
    "asr r12, r12, r8\n\t"
    "asr lr, lr, r8\n\t"
    "ssat r12, #8, r12\n\t"
    "ssat lr, #8, lr\n\t"
    "strb r12, [r10]\n\t"
    "strb lr, [r10, r11]\n\t"
    "add r10, r10, r11, lsl #1\n\t"
    "cmp r3, r4\n\t"
    "blo 6b\n"
    "7:\n\t"
    "add r4, r4, #4\n\t"
    "cmp r3, r4\n\t"
    "beq 8f\n\t"                                   /* an odd last one */
    "ldr r12, [r3]\n\t"
    "smmulr r12, r12, r7\n\t"
    "add lr, r12, r9\n\t"
    "add r12, lr, r12, asr #31\n\t"
    "asr r12, r12, r8\n\t"
    "ssat r12, #8, r12\n\t"
    "strb r12, [r10]\n"
    "8:\n\t"
    "ldm sp, {r0-r2, r4-r6}\n\t"                   /* the next channel's rows */
    "add r0, r0, r4\n\t"
    "add r1, r1, r5\n\t"
    "add r2, r2, r6\n\t"
    "stm sp, {r0-r2}\n\t"
    "ldr r10, [sp, #44]\n\t"
    "ldr r11, [sp, #52]\n\t"
    "cmp r10, r11\n\t"
    "bne 1b\n\t"
    "add sp, sp, #72\n\t"
    "pop {r4-r11, pc}\n\t"
    ".size mq_depthwise_rows_s8, . - mq_depthwise_rows_s8\n\t"
    ".popsection\n");
#undef MQ_WINDOW_ROW
#endif

static void depthwise_rows(const mq_conv_params_t *p, const int8_t *input,
                           const int8_t *filter, const int32_t *bias,
                           const mq_requant_t *q_in, int8_t *output, int8_t *scratch)
{
    const int channels = p->in_c, out_w = p->out_w;
    const int32_t words = (int32_t)rows_lanes(p) / 2;        /* per plane row */
    uint32_t *weights = (uint32_t *)(void *)scratch;        /* ROWS_WEIGHT_WORDS a channel */
    int32_t *folded = (int32_t *)(weights + ROWS_WEIGHT_WORDS * channels);
    uint32_t *zero_row = (uint32_t *)(folded + channels);
    uint32_t *slots = zero_row + words;                       /* 3 x [channel][words] */
    int32_t *sums = (int32_t *)(slots + 3 * channels * words);
    const int32_t input_offset = p->input_offset;
    mq_requant_t q = *q_in;
    q.bias = NULL;                                 /* folded into the sums' start */
#if MQ_DSP
    const int assembly = q.fast && q.full_range;   /* doubled weights, see above */
#else
    const int assembly = 0;
#endif
    const int32_t scale = assembly ? 2 : 1;
    for (int c = 0; c < channels; ++c) {
        const int8_t *w = filter + c;              /* tap t's weight at w[t * channels] */
        uint32_t *laid = weights + ROWS_WEIGHT_WORDS * c;
        int32_t weight_sum = 0;
        for (int ky = 0; ky < 3; ++ky) {
            const int8_t *row = w + 3 * ky * channels;
            laid[ky] = mq_pack_lo((uint32_t)(scale * row[0]), (uint32_t)(scale * row[channels]));
            weight_sum += row[0] + row[channels] + row[2 * channels];
        }
        laid[3] = mq_pack_lo((uint32_t)(scale * w[2 * channels]),
                             (uint32_t)(scale * w[5 * channels]));
        laid[4] = (uint32_t)(uint16_t)(scale * w[8 * channels]);
        folded[c] = scale * ((bias ? bias[c] : 0) + input_offset * weight_sum);
    }
    const uint32_t zero2 = mq_dup16(-input_offset);              /* the zero point, lanes */
    for (int32_t k = 0; k < words; ++k) {
        zero_row[k] = zero2;
    }
    const uint32_t zero4 = 0x01010101u * (uint8_t)(int8_t)(-input_offset);
    int held[3] = {-1, -1, -1};                                   /* input row per slot */
    for (int oy = 0; oy < p->out_h; ++oy) {
        const int iy0 = oy * p->stride_h - p->pad_top;
        const uint32_t *row[3];
        int32_t step[3];                           /* words from one channel's row to the next */
        for (int r = 0; r < 3; ++r) {
            const int iy = iy0 + r;
            if (iy < 0 || iy >= p->in_h) {
                row[r] = zero_row;
                step[r] = 0;
                continue;
            }
            uint32_t *slot = slots + (iy % 3) * channels * words;
            if (held[iy % 3] != iy) {
                widen_row(input + (int32_t)iy * p->in_w * channels, channels, p->in_w,
                          p->pad_left, words, zero4, slot);
                held[iy % 3] = iy;
            }
            row[r] = slot;
            step[r] = words;
        }
        int8_t *out = output + (int32_t)oy * out_w * channels;
        const int pairs = (out_w + 1) / 2;
#if MQ_DSP
        if (assembly) {
            const dw_rows_pass_t pass = {
                row[0], row[1], row[2], 4 * step[0], 4 * step[1], 4 * step[2], weights, folded,
                q.multiplier, q.shift, q.rounding_unit, out, channels, out + channels, sums,
                8 * pairs, 4 * out_w};
            mq_depthwise_rows_s8(&pass);
            continue;
        }
#endif
        for (int c = 0; c < channels; ++c) {
            const uint32_t *r0 = row[0] + c * step[0], *r1 = row[1] + c * step[1];
            const uint32_t *r2 = row[2] + c * step[2];
            const uint32_t *w = weights + ROWS_WEIGHT_WORDS * c;
            row_sums_s1(r0, r1, r2, w, folded[c], sums, pairs);
            requant_row(&q, c, sums, out_w, out + c, channels);
        }
    }
}

#if MQ_DSP
/*
 * One output pixel of a 3x3 layer, every group of four channels, on a requant_fast layer
 * whose activation range is all of int8: window3x3_x4 and the requantization in one
 * assembly routine (GCC's schedule of the C kept the pointers on the stack around the
 * twelve-register window and spent ~130 cycles a group outside it; this one ~75). Per
 * group: the four sums start at the folded biases (LDM), the nine taps as in
 * window3x3_x4 (11 cycles each), then per channel SMMULR (weights and biases laid out
 * doubled: depthwise_prepared), the rounding shift with the output offset folded in
 * (mq_requant_folded) and SSAT #8, and four STRBs.
 *
 * r0 points at a dw_pass (copied onto the stack at entry: its fields are [sp, #4i]).
 * Registers in the window: r0-r3 the sums, r4 the tap's pointer, r5 its input word, r6 the
 * even half, r7 and r8 the widened weight words, r10 the taps, r11 the channel, lr the
 * weights; AAPCS: r4-r11 and lr saved.
 */
typedef struct {
    const int8_t *const *taps;     /* [sp, #0]: the nine taps' pointers */
    int32_t channels;              /* [sp, #4] */
    const uint32_t *lanes;         /* [sp, #8]: widened weights, 18 words a group */
    const int32_t *folded;         /* [sp, #12]: folded biases */
    const int32_t *multiplier;     /* [sp, #16] */
    const int32_t *shift;          /* [sp, #20] */
    int32_t rounding_unit;         /* [sp, #24]: 2 * output_offset + 1 */
    int8_t *out;                   /* [sp, #28]: the pixel's outputs */
    int32_t channel;               /* [sp, #32]: 0, then 4 a group */
} dw_pass_t;

void mq_depthwise_pixel3x3_saturated_s8(dw_pass_t *pass);

/* tap t: its input word at [r4, r11] and its weights at [lr, #8t]; loads tap t + 1's
 * pointer after its own words (no load uses the register loaded just before it) */
#define MQ_TAP_S(we, wo, next)                                                         \
    "ldr r5, [r4, r11]\n\t" "ldr r7, [lr, #" we "]\n\t" "ldr r8, [lr, #" wo "]\n\t" next \
    "sxtb16 r6, r5\n\t" "sxtb16 r5, r5, ror #8\n\t"                                    \
    "smlabb r0, r6, r7, r0\n\t" "smlatt r2, r6, r7, r2\n\t"                            \
    "smlabb r1, r5, r8, r1\n\t" "smlatt r3, r5, r8, r3\n\t"
#define MQ_NEXT_S(t) "ldr r4, [r10, #" t "]\n\t"
/* sum s (doubled), multiplier m, shift h (<= -1) -> the output byte in s (r9: the
 * rounding) */
#define MQ_OUT_DW(s, m, h)                                                              \
    "rsb " h ", " h ", #0\n\t" "sub r9, " h ", #1\n\t" "lsl r9, r12, r9\n\t"           \
    "smmulr " s ", " s ", " m "\n\t"                                                     \
    "add " s ", " s ", " s ", asr #31\n\t" "add " s ", " s ", r9\n\t"                   \
    "asr " s ", " s ", " h "\n\t" "ssat " s ", #8, " s "\n\t"

__asm__(
    ".pushsection .text.mq_depthwise_pixel3x3_saturated_s8, \"ax\", %progbits\n\t"
    ".syntax unified\n\t"
    ".thumb\n\t"
    ".balign " MQ_HOT_CODE_ALIGN "\n\t"
    ".global mq_depthwise_pixel3x3_saturated_s8\n\t"
    ".thumb_func\n\t"
    ".type mq_depthwise_pixel3x3_saturated_s8, %function\n"
    "mq_depthwise_pixel3x3_saturated_s8:\n\t"
    "push {r4-r11, lr}\n\t"
    "ldm r0, {r1-r9}\n\t"
    "push {r1-r9}\n"
    "1:\n\t"                                       /* a group of four channels */
    "ldr r12, [sp, #12]\n\t"
    "ldr r10, [sp, #0]\n\t"
    "ldr r11, [sp, #32]\n\t"
    "ldr lr, [sp, #8]\n\t"
    "ldm r12!, {r0-r3}\n\t"                        /* the folded biases */
    "str r12, [sp, #12]\n\t"
    "ldr r4, [r10]\n\t"
    MQ_TAP_S("0", "4", MQ_NEXT_S("4")) MQ_TAP_S("8", "12", MQ_NEXT_S("8"))
    MQ_TAP_S("16", "20", MQ_NEXT_S("12")) MQ_TAP_S("24", "28", MQ_NEXT_S("16"))
    MQ_TAP_S("32", "36", MQ_NEXT_S("20")) MQ_TAP_S("40", "44", MQ_NEXT_S("24"))
    MQ_TAP_S("48", "52", MQ_NEXT_S("28")) MQ_TAP_S("56", "60", MQ_NEXT_S("32"))
    MQ_TAP_S("64", "68", "")
    "add lr, lr, #72\n\t"
    "str lr, [sp, #8]\n\t"
    "ldr r4, [sp, #16]\n\t"
    "ldr r5, [sp, #20]\n\t"
    "ldr r12, [sp, #24]\n\t"
    "ldm r4!, {r6-r8, r11}\n\t"                    /* multipliers */
    "ldm r5!, {r10, lr}\n\t"                       /* shifts of channels 0, 1 */
    "str r4, [sp, #16]\n\t"
    MQ_OUT_DW("r0", "r6", "r10")
    MQ_OUT_DW("r1", "r7", "lr")
    "ldm r5!, {r10, lr}\n\t"                       /* shifts of channels 2, 3 */
    "str r5, [sp, #20]\n\t"
    MQ_OUT_DW("r2", "r8", "r10")
    MQ_OUT_DW("r3", "r11", "lr")
    "ldr r4, [sp, #28]\n\t"
    "ldr r11, [sp, #32]\n\t"
    "ldr r12, [sp, #4]\n\t"
    "strb r0, [r4]\n\t"
    "strb r1, [r4, #1]\n\t"
    "strb r2, [r4, #2]\n\t"
    "strb r3, [r4, #3]\n\t"
    "add r4, r4, #4\n\t"
    "add r11, r11, #4\n\t"
    "str r4, [sp, #28]\n\t"
    "str r11, [sp, #32]\n\t"
    "cmp r11, r12\n\t"
    "bne 1b\n\t"
    "add sp, sp, #36\n\t"
    "pop {r4-r11, pc}\n\t"
    ".size mq_depthwise_pixel3x3_saturated_s8, . - mq_depthwise_pixel3x3_saturated_s8\n\t"
    ".popsection\n");
#undef MQ_TAP_S
#undef MQ_NEXT_S
#undef MQ_OUT_DW
#endif

/* The prepared path: see the file's comment. scratch is 4-byte aligned. */
static void depthwise_prepared(const mq_conv_params_t *p, const int8_t *input,
                               const int8_t *filter, const int32_t *bias,
                               const mq_requant_t *q_in, int8_t *output, int8_t *scratch)
{
    const int channels = p->in_c, taps = p->k_h * p->k_w;
    uint32_t *lanes = (uint32_t *)(void *)scratch;               /* [group][tap][even, odd] */
    int32_t *folded = (int32_t *)(void *)(scratch + 2 * taps * channels);
    int8_t *zero_row = scratch + 2 * taps * channels + 4 * channels;
    const int32_t input_offset = p->input_offset;
    const int rows3 = p->k_h == 3 && p->k_w == 3;
#if MQ_DSP
    /* the assembly routine's layers: weights and biases doubled, so that its sums come out
     * as 2 * sum (|sum| < 2^30: requant_fast), the operand SMMULR takes without an LSL */
    const int assembly = rows3 && q_in->fast && q_in->full_range;
#else
    const int assembly = 0;
#endif
    for (int c = 0; c < channels; c += 4) {
        uint32_t *group = lanes + (c / 4) * 2 * taps;
        int32_t sum[4] = {0, 0, 0, 0};
        for (int t = 0; t < taps; ++t) {
            const int8_t *w = filter + t * channels + c;
            const uint32_t w4 = mq_load32(w), even = mq_sxtb16(w4), odd = mq_sxtb16_ror8(w4);
            group[2 * t] = assembly ? mq_sadd16(even, even) : even;
            group[2 * t + 1] = assembly ? mq_sadd16(odd, odd) : odd;
            for (int i = 0; i < 4; ++i) {
                sum[i] += w[i];
            }
        }
        for (int i = 0; i < 4; ++i) {
            const int32_t start = (bias ? bias[c + i] : 0) + input_offset * sum[i];
            folded[c + i] = assembly ? (int32_t)(2u * (uint32_t)start) : start;
        }
    }
    memset(zero_row, (int8_t)(-input_offset), (size_t)channels);
    mq_requant_t q = *q_in;
    q.bias = NULL;                                 /* folded into the accumulators' start */
    const int8_t *tap_rows[MQ_DEPTHWISE_MAX_TAPS];
    const int32_t row_bytes = (int32_t)p->in_w * channels;
    for (int oy = 0; oy < p->out_h; ++oy) {
        const int iy0 = oy * p->stride_h - p->pad_top;
        for (int ox = 0; ox < p->out_w; ++ox) {
            const int ix0 = ox * p->stride_w - p->pad_left;
            if (rows3 && iy0 >= 0 && iy0 + 3 <= p->in_h && ix0 >= 0 && ix0 + 3 <= p->in_w) {
                /* the whole window inside: its taps without a bounds check each */
                const int8_t *x = input + ((int32_t)iy0 * p->in_w + ix0) * channels;
                for (int t = 0; t < 9; t += 3, x += row_bytes) {
                    tap_rows[t] = x;
                    tap_rows[t + 1] = x + channels;
                    tap_rows[t + 2] = x + 2 * channels;
                }
            } else {
                for (int ky = 0, t = 0; ky < p->k_h; ++ky) {
                    const int iy = iy0 + ky;
                    for (int kx = 0; kx < p->k_w; ++kx, ++t) {
                        const int ix = ix0 + kx;
                        tap_rows[t] = (iy < 0 || iy >= p->in_h || ix < 0 || ix >= p->in_w)
                                          ? zero_row
                                          : input + ((int32_t)iy * p->in_w + ix) * channels;
                    }
                }
            }
            int8_t *out = output + ((int32_t)oy * p->out_w + ox) * channels;
            const uint32_t *group = lanes;
#if MQ_DSP
            if (assembly) {
                dw_pass_t pass = {tap_rows, channels, lanes, folded, q.multiplier, q.shift,
                                  q.rounding_unit, out, 0};
                mq_depthwise_pixel3x3_saturated_s8(&pass);
                continue;
            }
#endif
            if (rows3) {
                for (int c = 0; c < channels; c += 4, group += 18) {
                    int32_t s[4] = {folded[c], folded[c + 1], folded[c + 2], folded[c + 3]};
                    window3x3_x4(tap_rows, c, group, s);
                    out[c] = mq_requant_channel(&q, s[0], c);
                    out[c + 1] = mq_requant_channel(&q, s[1], c + 1);
                    out[c + 2] = mq_requant_channel(&q, s[2], c + 2);
                    out[c + 3] = mq_requant_channel(&q, s[3], c + 3);
                }
                continue;
            }
            for (int c = 0; c < channels; c += 4) {
                int32_t s0 = folded[c], s1 = folded[c + 1], s2 = folded[c + 2], s3 = folded[c + 3];
#define MQ_DEPTHWISE_TAP(t, k)                                                          \
    do {                                                                               \
        const uint32_t x4 = mq_load32(tap_rows[t] + c);                                \
        const uint32_t x_even = mq_sxtb16(x4), x_odd = mq_sxtb16_ror8(x4);             \
        const uint32_t w_even = group[2 * (k)], w_odd = group[2 * (k) + 1];            \
        s0 = mq_smlabb(x_even, w_even, s0);                                            \
        s2 = mq_smlatt(x_even, w_even, s2);                                            \
        s1 = mq_smlabb(x_odd, w_odd, s1);                                              \
        s3 = mq_smlatt(x_odd, w_odd, s3);                                              \
    } while (0)
                if (taps == 9) {                      /* 3x3, unrolled: no loop per tap */
                    MQ_DEPTHWISE_TAP(0, 0); MQ_DEPTHWISE_TAP(1, 1); MQ_DEPTHWISE_TAP(2, 2);
                    MQ_DEPTHWISE_TAP(3, 3); MQ_DEPTHWISE_TAP(4, 4); MQ_DEPTHWISE_TAP(5, 5);
                    MQ_DEPTHWISE_TAP(6, 6); MQ_DEPTHWISE_TAP(7, 7); MQ_DEPTHWISE_TAP(8, 8);
                    group += 18;
                } else {
                    for (int t = 0; t < taps; ++t, group += 2) {
                        MQ_DEPTHWISE_TAP(t, 0);
                    }
                }
#undef MQ_DEPTHWISE_TAP
                out[c] = mq_requant_channel(&q, s0, c);
                out[c + 1] = mq_requant_channel(&q, s1, c + 1);
                out[c + 2] = mq_requant_channel(&q, s2, c + 2);
                out[c + 3] = mq_requant_channel(&q, s3, c + 3);
            }
        }
    }
}

void mq_depthwise_conv2d_s8(const mq_conv_params_t *p, const int8_t *input,
                            const int8_t *filter, const int32_t *bias,
                            const int32_t *multiplier, const int32_t *shift, int8_t *output,
                            int8_t *scratch)
{
    int32_t acc[MQ_DEPTHWISE_MAX_CHANNELS];
    const mq_requant_t q = mq_requant_of(bias, multiplier, shift, p->output_offset, p->act_min,
                                         p->act_max, p->requant_fast);
    if (mq_depthwise_rows(p)) {
        depthwise_rows(p, input, filter, bias, &q, output, scratch);
        return;
    }
    if (mq_depthwise_prepared(p)) {
        depthwise_prepared(p, input, filter, bias, &q, output, scratch);
        return;
    }
    const int contiguous = p->dil_h == 1 && p->dil_w == 1 && p->out_c <= MQ_DEPTHWISE_MAX_CHANNELS;
    const int in_c = p->in_c;
    const int multiplier_m = p->depth_multiplier;
    const int fast = multiplier_m == 1 && p->dil_h == 1 && p->dil_w == 1 &&
                     p->k_h * p->k_w <= MQ_DEPTHWISE_MAX_TAPS;
    for (int oy = 0; oy < p->out_h; ++oy) {
        const int iy0 = oy * p->stride_h - p->pad_top;
        int ky0, ky1;
        mq_window(iy0, p->k_h, p->in_h, &ky0, &ky1);
        for (int ox = 0; ox < p->out_w; ++ox) {
            const int ix0 = ox * p->stride_w - p->pad_left;
            int8_t *out = output + ((int32_t)oy * p->out_w + ox) * p->out_c;
            if (fast) {
                depthwise_pixel_m1(p, input, filter, &q, iy0, ix0, out);
                continue;
            }
            if (!contiguous) {
                depthwise_per_channel(p, input, filter, &q, iy0, ix0, out);
                continue;
            }
            int kx0, kx1;
            mq_window(ix0, p->k_w, p->in_w, &kx0, &kx1);
            for (int oc = 0; oc < p->out_c; ++oc) {
                acc[oc] = 0;
            }
            for (int ky = ky0; ky < ky1; ++ky) {
                for (int kx = kx0; kx < kx1; ++kx) {
                    const int8_t *x = input + ((int32_t)(iy0 + ky) * p->in_w + ix0 + kx) * in_c;
                    const int8_t *w = filter + (ky * p->k_w + kx) * p->out_c;
                    for (int c = 0; c < in_c; ++c) {
                        const int32_t xv = (int32_t)x[c] + p->input_offset;
                        for (int m = 0; m < multiplier_m; ++m) {
                            acc[c * multiplier_m + m] += (int32_t)w[c * multiplier_m + m] * xv;
                        }
                    }
                }
            }
            for (int oc = 0; oc < p->out_c; ++oc) {
                out[oc] = mq_requant_channel(&q, acc[oc], oc);
            }
        }
    }
}
