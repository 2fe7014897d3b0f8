/*
 * CONV_2D, int8 activations, per-channel int8 weights, int32 bias.
 *
 * A matrix multiply over columns, as the fast Cortex-M libraries do it. For each
 * output pixel the receptive field (k_h*k_w*in_c entries in the filter's HWI
 * order) is widened once to 16-bit lanes. The input offset is not added there: the
 * code generator folds it into the bias (`bias` is bias + input_offset * sum of the
 * channel's weights: codegen/emit.py, folded_conv_bias), so a sum over raw inputs
 * plus that bias is the reference's sum over (x + offset). Taps outside the input
 * hold the zero point (x = -offset), which adds w * (x + offset) = 0, exactly as the
 * reference skips them. The widened columns then
 * serve every output channel: three pixels times two channels per pass, twelve
 * SMLADs per four column entries. Integer sums are exact in any order, so every
 * output byte equals the reference's.
 *
 * Layout of the widened block (pixels a, b and c), in 16-bit lanes: each group of
 * four entries takes twelve lanes, a(x0, x2) a(x1, x3) b(x0, x2) b(x1, x3) c(x0, x2)
 * c(x1, x3), the order SXTB16 and SXTB16 ROR #8 give the weights in. A column whose
 * length K is not a multiple of 4 (input channels not a multiple of 4: an RGB stem) is
 * padded to whole groups; the padding's weights are 0, so whatever its lanes hold adds
 * nothing.
 *
 * Weights come as the code generator lays them out (codegen/emit.py,
 * pair_channels): each channel's row padded with zeros to whole groups of four
 * (out_c x (4 - K % 4) bytes more flash, only where K % 4 != 0), output channels in
 * pairs, the two rows interleaved in groups of four entries (c0 k0..3, c1 k0..3,
 * c0 k4..7, ...); an odd last channel as it is. One pointer then walks both
 * channels. Per group the inner loop (assembly on the DSP build) loads both weight
 * words and the three pixels' even words back to back, which the Cortex-M4 pipelines
 * at one cycle each after the first (TRM section 3.3.2), then the odd words: 26 cycles
 * per 24 MACs. Three pixels, not two, is what fourteen registers allow (six sums,
 * two pointers, three words of weights, three of pixels); two pixels took 19 cycles
 * per 16 MACs and read every weight half as often again from flash. Where the code
 * generator found room in the arena, a layer's first p->prepared_pairs channel pairs are
 * prepared in scratch once per call (prepare_pairs: weights widened and doubled, a
 * requantization record per pair) and run through a second loop: 24 cycles per 24 MACs,
 * no SXTB16 and no flash wait states.
 *
 * Requantization (requant_fast layers, the usual case): the sums start at the biases,
 * and each output takes SMMULR, the rounding shift with the output offset folded into
 * its rounding term (mq_requant_folded) and SSAT when the activation range is all of
 * int8: seven instructions per output byte, its store included (six for prepared pairs,
 * whose sums come out doubled: no LSL).
 *
 * Output pixels are taken three at a time, the last one or two (pixels % 3) one
 * channel at a time. A block's outputs are written after its three columns are
 * widened, and no other input pixel is read for them (the code generator's in-place
 * pointwise layout relies on that: codegen/emit.py, _overlap_pointwise).
 *
 * scratch, 4-byte aligned, K = k_h*k_w*in_c: 24 bytes per started group of four
 * entries (the widened block), plus K rounded up to 4 bytes for gathering bytes
 * first when in_c is not a multiple of 4, then the prepared pairs (16 bytes per group
 * and pair, 32 per pair's record).
 * The code generator sizes it (codegen/emit.py, conv_scratch_bytes and
 * conv_prepared_pairs_bytes) and the arena plan gives each convolution its own span for
 * the length of the call.
 */
#include "mq_nn.h"

#define PIXELS 3                              /* output pixels per pass */
#define LANES_PER_GROUP (4 * PIXELS)             /* 16-bit lanes per group of four entries */

static int column_length(const mq_conv_params_t *p)
{
    return p->k_h * p->k_w * p->in_c;
}

static int pointwise(const mq_conv_params_t *p)
{
    return p->k_h == 1 && p->k_w == 1 && p->pad_top == 0 && p->pad_left == 0;
}

/* Where entry `first` (a multiple of 4) of pixel `slot`'s column starts in the block. */
static int16_t *slot_lanes(int16_t *block, int first, int slot)
{
    return block + (first / 4) * LANES_PER_GROUP + slot * 4;
}

/*
 * `rows` runs of n entries (n a multiple of 4) of one pixel's column, sign-extended, into the
 * block as pixel `slot` from entry `first` on: run r read from x + r * row_bytes (the
 * filter rows of a window, or one run with rows 1).
 */
static MQ_ALWAYS_INLINE void widen_rows(const int8_t *x, int32_t row_bytes, int rows, int first,
                                        int n, int slot, int16_t *block)
{
    int16_t *out = slot_lanes(block, first, slot);
#if MQ_DSP
    if (n > 0 && (n & 7) == 0) {
        /* two groups a pass, their words loaded back to back (GCC's loop took 9 cycles
         * a group, this one 14 per two), and the rows in the same routine; the block's
         * group stride is 24 bytes */
        _Static_assert(LANES_PER_GROUP == 12, "the loop below steps 24 bytes a group");
        const int32_t skip = row_bytes - n;
        const int8_t *row_end = x + n;
        uint32_t x4, y4, half;
        __asm__ volatile(
            "1:\n\t"
            "ldr %[x4], [%[x]], #8\n\t"
            "ldr %[y4], [%[x], #-4]\n\t"
            "sxtb16 %[half], %[x4]\n\t"
            "sxtb16 %[x4], %[x4], ror #8\n\t"
            "str %[half], [%[out]]\n\t"
            "str %[x4], [%[out], #4]\n\t"
            "sxtb16 %[half], %[y4]\n\t"
            "sxtb16 %[y4], %[y4], ror #8\n\t"
            "str %[half], [%[out], #24]\n\t"
            "str %[y4], [%[out], #28]\n\t"
            "add %[out], %[out], #48\n\t"
            "cmp %[x], %[end]\n\t"
            "bne 1b\n\t"
            "add %[x], %[x], %[skip]\n\t"              /* the next row */
            "add %[end], %[x], %[n]\n\t"
            "subs %[rows], %[rows], #1\n\t"
            "bne 1b\n\t"
            : [x] "+r"(x), [out] "+r"(out), [end] "+r"(row_end), [rows] "+r"(rows),
              [x4] "=&r"(x4), [y4] "=&r"(y4), [half] "=&r"(half)
            : [skip] "r"(skip), [n] "r"(n)
            : "cc", "memory");
        return;
    }
#endif
    for (int r = 0; r < rows; ++r, x += row_bytes) {
        for (int i = 0; i < n; i += 4, out += LANES_PER_GROUP) {
            const uint32_t x4 = mq_load32(x + i);
            mq_store32(out, mq_sxtb16(x4));
            mq_store32(out + 2, mq_sxtb16_ror8(x4));
        }
    }
}

/* Entries [first, first + n) of one pixel's column from x: one run. */
static void widen(const int8_t *x, int first, int n, int slot, int16_t *block)
{
    widen_rows(x, n, 1, first, n, slot, block);
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

/* Entries [first, first + n) of pixel `slot`'s column as the zero point in every lane
 * (`zero2`, two copies: taps outside the input; n a multiple of 4). */
static void zero_lanes(int16_t *block, int first, int n, int slot, uint32_t zero2)
{
    int16_t *out = slot_lanes(block, first, slot);
    for (int i = 0; i < n; i += 4, out += LANES_PER_GROUP) {
        mq_store32(out, zero2);
        mq_store32(out + 2, zero2);
    }
}

/*
 * A 3x3 RGB stem's window wholly inside the input (r0: its top-left pixel, stride: the input
 * row's bytes) as its padded column of 28 entries, widened into the slot's lanes. The seven
 * groups come straight from the three filter rows' 9-byte runs (r0, r1, r2; the M4 loads
 * words and halfwords unaligned): r0[0..3], r0[4..7], r0[8] r1[0..2], r1[3..6],
 * r1[7..8] r2[0..1], r2[2..5], r2[6..8] and a 0 (the 28th entry's weights are 0). The
 * general gathering took ~390 cycles a pixel here. Lanes: group g's even word at byte 24 g,
 * its odd one at 24 g + 4 (LANES_PER_GROUP 12).
 */
static void rgb_window3x3(const int8_t *r0, int32_t stride, int16_t *lanes)
{
    const int8_t *r1 = r0 + stride, *r2 = r1 + stride;
#if MQ_DSP
    /* straight-line: GCC's schedule of the C kept the seven words on the stack and looped
     * over them (~150 cycles); this ~45 */
    uint32_t g0, g1, g2, g3, g4, g5, g6, t;
#define MQ_WIDEN_GROUP(word, offset_even, offset_odd)                                   \
    "sxtb16 %[t], %[" word "]\n\t" "str %[t], [%[lanes], #" offset_even "]\n\t"          \
    "sxtb16 %[" word "], %[" word "], ror #8\n\t"                                       \
    "str %[" word "], [%[lanes], #" offset_odd "]\n\t"
    __asm__ volatile(
        "ldr %[g0], [%[r0]]\n\t" "ldr %[g1], [%[r0], #4]\n\t" "ldrb %[t], [%[r0], #8]\n\t"
        "ldr %[g2], [%[r1]]\n\t" "ldr %[g3], [%[r1], #3]\n\t" "ldrh %[g4], [%[r1], #7]\n\t"
        "ldr %[g5], [%[r2], #2]\n\t" "ldr %[g6], [%[r2], #5]\n\t"
        "orr %[g2], %[t], %[g2], lsl #8\n\t"
        "ldrh %[t], [%[r2]]\n\t"
        "lsr %[g6], %[g6], #8\n\t"
        "orr %[g4], %[g4], %[t], lsl #16\n\t"
        MQ_WIDEN_GROUP("g0", "0", "4") MQ_WIDEN_GROUP("g1", "24", "28")
        MQ_WIDEN_GROUP("g2", "48", "52") MQ_WIDEN_GROUP("g3", "72", "76")
        MQ_WIDEN_GROUP("g4", "96", "100") MQ_WIDEN_GROUP("g5", "120", "124")
        MQ_WIDEN_GROUP("g6", "144", "148")
        : [g0] "=&r"(g0), [g1] "=&r"(g1), [g2] "=&r"(g2), [g3] "=&r"(g3), [g4] "=&r"(g4),
          [g5] "=&r"(g5), [g6] "=&r"(g6), [t] "=&r"(t)
        : [r0] "r"(r0), [r1] "r"(r1), [r2] "r"(r2), [lanes] "r"(lanes)
        : "memory");
#undef MQ_WIDEN_GROUP
#else
    uint16_t r1_tail, r2_head;
    memcpy(&r1_tail, r1 + 7, 2);
    memcpy(&r2_head, r2, 2);
    const uint32_t groups[7] = {
        mq_load32(r0), mq_load32(r0 + 4), (uint8_t)r0[8] | mq_load32(r1) << 8, mq_load32(r1 + 3),
        r1_tail | (uint32_t)r2_head << 16, mq_load32(r2 + 2), mq_load32(r2 + 5) >> 8};
    for (int g = 0; g < 7; ++g, lanes += LANES_PER_GROUP) {
        mq_store32(lanes, mq_sxtb16(groups[g]));
        mq_store32(lanes + 2, mq_sxtb16_ror8(groups[g]));
    }
#endif
}

/*
 * Pixel `pixel`'s column into the block buffer as `slot`. With in_c a multiple of
 * 4 every tap starts a group of four, so taps are widened straight from the
 * input and outside taps are zero-point lanes. Otherwise the bytes are gathered
 * first (outside taps as zero-point bytes) and widened as one run of whole groups.
 */
static void fill_column(const mq_conv_params_t *p, const int8_t *input, int pixel, int slot,
                        int8_t *gathered, int16_t *block)
{
    const int oy = pixel / p->out_w, ox = pixel % p->out_w;
    const int iy0 = oy * p->stride_h - p->pad_top, ix0 = ox * p->stride_w - p->pad_left;
    const int in_c = p->in_c;
    const uint32_t zero2 = mq_dup16(-p->input_offset);  /* the zero point, twice */
    if (in_c & 3) {
        /* bytes first, then whole groups: the padding's bytes are set (to 0) only so
         * that nothing reads memory never written; their weights are 0 */
        const int n = column_length(p), padded = (n + 3) & ~3;
        if (in_c == 3 && p->k_h == 3 && p->k_w == 3 && p->dil_h == 1 && p->dil_w == 1) {
            if (iy0 >= 0 && iy0 + 3 <= p->in_h && ix0 >= 0 && ix0 + 3 <= p->in_w) {
                rgb_window3x3(input + ((int32_t)iy0 * p->in_w + ix0) * 3, (int32_t)p->in_w * 3,
                              slot_lanes(block, 0, slot));
            } else {                       /* at the border: the window gathered, rows of 9 */
                gather_bytes(p, input, iy0, ix0, gathered);
                rgb_window3x3(gathered, 9, slot_lanes(block, 0, slot));
            }
            return;
        }
        gather_bytes(p, input, iy0, ix0, gathered);
        for (int i = n; i < padded; ++i) {
            gathered[i] = 0;
        }
        widen(gathered, 0, padded, slot, block);
        return;
    }
    if (pointwise(p)) {
        widen(input + ((int32_t)iy0 * p->in_w + ix0) * in_c, 0, in_c, slot, block);
        return;
    }
    const int row_entries = p->k_w * in_c;
    if (p->dil_h == 1 && p->dil_w == 1 && iy0 >= 0 && iy0 + p->k_h <= p->in_h && ix0 >= 0 &&
        ix0 + p->k_w <= p->in_w) {
        /* the whole window inside the input: a run of each of its rows, no bounds */
        widen_rows(input + ((int32_t)iy0 * p->in_w + ix0) * in_c, (int32_t)p->in_w * in_c,
                   p->k_h, 0, row_entries, slot, block);
        return;
    }
    if (p->dil_w == 1) {
        /* the taps of a filter row inside the input are one run of the input row */
        int kx0, kx1;
        mq_window(ix0, p->k_w, p->in_w, &kx0, &kx1);
        for (int ky = 0, first = 0; ky < p->k_h; ++ky, first += row_entries) {
            const int iy = iy0 + ky * p->dil_h;
            if (iy < 0 || iy >= p->in_h || kx0 >= kx1) {
                zero_lanes(block, first, row_entries, slot, zero2);
                continue;
            }
            zero_lanes(block, first, kx0 * in_c, slot, zero2);
            widen(input + ((int32_t)iy * p->in_w + ix0 + kx0) * in_c, first + kx0 * in_c,
                  (kx1 - kx0) * in_c, slot, block);
            zero_lanes(block, first + kx1 * in_c, (p->k_w - kx1) * in_c, slot, zero2);
        }
        return;
    }
    int first = 0;
    for (int ky = 0; ky < p->k_h; ++ky) {
        const int iy = iy0 + ky * p->dil_h;
        for (int kx = 0; kx < p->k_w; ++kx, first += in_c) {
            const int ix = ix0 + kx * p->dil_w;
            if (iy >= 0 && iy < p->in_h && ix >= 0 && ix < p->in_w) {
                widen(input + ((int32_t)iy * p->in_w + ix) * in_c, first, in_c, slot, block);
            } else {
                zero_lanes(block, first, in_c, slot, zero2);
            }
        }
    }
}

/*
 * Four column entries of the block's three pixels times a channel pair's paired weights:
 * s[2 * pixel + channel] (the portable form of the assembly loop below).
 */
static MQ_ALWAYS_INLINE void group_3x2(const int16_t *block, const int8_t *w, int32_t s[6])
{
    const uint32_t w4_0 = mq_load32(w), w4_1 = mq_load32(w + 4);
    const uint32_t w0_even = mq_sxtb16(w4_0), w0_odd = mq_sxtb16_ror8(w4_0);
    const uint32_t w1_even = mq_sxtb16(w4_1), w1_odd = mq_sxtb16_ror8(w4_1);
    for (int slot = 0; slot < PIXELS; ++slot) {
        const uint32_t even = mq_load32(block + 4 * slot), odd = mq_load32(block + 4 * slot + 2);
        s[2 * slot] = mq_smlad(odd, w0_odd, mq_smlad(even, w0_even, s[2 * slot]));
        s[2 * slot + 1] = mq_smlad(odd, w1_odd, mq_smlad(even, w1_even, s[2 * slot + 1]));
    }
}

/*
 * The block's three pixels times every channel pair, outputs of pixel k at out + k * out_c:
 * the sums start at the biases and take mq_requant_sum; `full` (the layer is requant_fast
 * and its act range [-128, 127]) makes the clamp an SSAT the loop knows of.
 */
static MQ_ALWAYS_INLINE void outputs_3x2(const int16_t *block, const int8_t *w, int groups,
                                         const mq_requant_t *q, int out_c, int8_t *out,
                                         int full)
{
    for (int oc = 0; oc + 2 <= out_c; oc += 2) {
        const int32_t bias0 = q->bias ? q->bias[oc] : 0, bias1 = q->bias ? q->bias[oc + 1] : 0;
        int32_t s[6] = {bias0, bias1, bias0, bias1, bias0, bias1};
        for (int g = 0; g < groups; ++g, w += 8) {
            group_3x2(block + g * LANES_PER_GROUP, w, s);
        }
        for (int slot = 0; slot < PIXELS; ++slot) {
            out[slot * out_c + oc] = mq_requant_sum(q, s[2 * slot], oc, full);
            out[slot * out_c + oc + 1] = mq_requant_sum(q, s[2 * slot + 1], oc + 1, full);
        }
    }
}

static __attribute__((noinline)) void outputs_3x2_saturated(const int16_t *block, const int8_t *w,
                                                            int groups, const mq_requant_t *q,
                                                            int out_c, int8_t *out)
{
    outputs_3x2(block, w, groups, q, out_c, out, 1);
}

/* Any other layer: a clamp by compares, or the reference's full requantization. */
static __attribute__((noinline)) void outputs_3x2_general(const int16_t *block, const int8_t *w,
                                                          int groups, const mq_requant_t *q,
                                                          int out_c, int8_t *out)
{
    outputs_3x2(block, w, groups, q, out_c, out, 0);
}

#if MQ_DSP
/*
 * outputs_3x2_saturated as one assembly routine, for the DSP build (GCC's schedule of the
 * C keeps the sums and pointers on the stack). Per channel pair the six sums start at the
 * pair's biases; the dot loop takes four groups of four entries a pass and the 0-3 groups
 * left one at a time. Per group (24 MACs): both weight words and the three pixels' even
 * words loaded back to back (5 loads, pipelined: 6 cycles), SXTB16 and three SMLADs per
 * channel, the three odd words (4 cycles), SXTB16 ROR #8 and three SMLADs per channel: 26
 * cycles by the M4 TRM's Table 3-1, 0.92 MAC/cycle; a pass's end test loads its bound
 * (no register is left for it). Then per output byte LSL, SMMULR, the rounding shift with
 * the output offset folded in (ADD v ASR #31, ADD rounding, ASR e: mq_requant_folded) and
 * SSAT #8, and the six STRBs. The C above is its reference: the host twin runs that, the
 * emulated target this, and both are checked bit-exact against TFLM.
 *
 * r0 points at a conv_pass (copied onto the stack at entry: its fields are [sp, #4i]; the
 * loops end on the block pointer, whose bounds are the same for every pair). Registers: r0-r5 the sums
 * (pixel a, b, c x channel 0, 1), r6 the block, r7 the weights, r8-r9 the weight words and
 * then their odd halves, r10 an even half, r11, r12 and lr the pixels' words; AAPCS: r4-r11
 * and lr saved.
 */
typedef struct {
    const int16_t *block_before;   /* [sp, #0]: block - one group (pre-indexed loads) */
    const int8_t *w_before;        /* [sp, #4]: weights - 8 bytes, advanced per pair */
    const int32_t *bias;           /* [sp, #8]: advanced by 2 per pair */
    const int32_t *multiplier;     /* [sp, #12] */
    const int32_t *shift;          /* [sp, #16] */
    int32_t rounding_unit;         /* [sp, #20]: 2 * output_offset + 1 */
    int8_t *out_a;                 /* [sp, #24]: advanced by 2 per pair */
    int32_t out_c;                 /* [sp, #28]: pixel b's outputs at out_a + out_c */
    int8_t *out_a_end;             /* [sp, #32]: out_a + (out_c & ~1) */
    const int16_t *quads_end;      /* [sp, #36]: where the block pointer ends the passes */
    const int16_t *groups_end;     /* [sp, #40]: and where it ends the groups */
} conv_pass_t;

void mq_conv_triples_saturated_s8(conv_pass_t *pass);
void mq_conv_triples_widened_s8(conv_pass_t *pass);     /* w_before: widened - 16 bytes */

#define MQ_GROUP_S                                                                     \
    "ldr r8, [r7, #8]!\n\t"  "ldr r9, [r7, #4]\n\t"                                   \
    "ldr r11, [r6, #24]!\n\t" "ldr r12, [r6, #8]\n\t" "ldr lr, [r6, #16]\n\t"         \
    "sxtb16 r10, r8\n\t"                                                             \
    "smlad r0, r11, r10, r0\n\t" "smlad r2, r12, r10, r2\n\t" "smlad r4, lr, r10, r4\n\t" \
    "sxtb16 r10, r9\n\t"                                                             \
    "smlad r1, r11, r10, r1\n\t" "smlad r3, r12, r10, r3\n\t" "smlad r5, lr, r10, r5\n\t" \
    "ldr r11, [r6, #4]\n\t" "ldr r12, [r6, #12]\n\t" "ldr lr, [r6, #20]\n\t"          \
    "sxtb16 r8, r8, ror #8\n\t"                                                      \
    "smlad r0, r11, r8, r0\n\t" "smlad r2, r12, r8, r2\n\t" "smlad r4, lr, r8, r4\n\t" \
    "sxtb16 r9, r9, ror #8\n\t"                                                      \
    "smlad r1, r11, r9, r1\n\t" "smlad r3, r12, r9, r3\n\t" "smlad r5, lr, r9, r5\n\t"
/* the same group with the weights already widened (16 bytes a group: channel 0's even and
 * channel 1's even lanes, then both odd ones): no SXTB16, 24 cycles per 24 MACs */
#define MQ_GROUP_W                                                                     \
    "ldr r8, [r7, #16]!\n\t" "ldr r9, [r7, #4]\n\t"                                  \
    "ldr r11, [r6, #24]!\n\t" "ldr r12, [r6, #8]\n\t" "ldr lr, [r6, #16]\n\t"         \
    "smlad r0, r11, r8, r0\n\t" "smlad r2, r12, r8, r2\n\t" "smlad r4, lr, r8, r4\n\t" \
    "smlad r1, r11, r9, r1\n\t" "smlad r3, r12, r9, r3\n\t" "smlad r5, lr, r9, r5\n\t" \
    "ldr r8, [r7, #8]\n\t" "ldr r9, [r7, #12]\n\t"                                    \
    "ldr r11, [r6, #4]\n\t" "ldr r12, [r6, #12]\n\t" "ldr lr, [r6, #20]\n\t"          \
    "smlad r0, r11, r8, r0\n\t" "smlad r2, r12, r8, r2\n\t" "smlad r4, lr, r8, r4\n\t" \
    "smlad r1, r11, r9, r1\n\t" "smlad r3, r12, r9, r3\n\t" "smlad r5, lr, r9, r5\n\t"
/* one output byte: sum r, multiplier m, rounding k, exponent e */
#define MQ_OUT_S(r, m, k, e)                                                           \
    "lsl " r ", " r ", #1\n\t" MQ_OUT_D(r, m, k, e)
/* the same from the sum doubled */
#define MQ_OUT_D(r, m, k, e)                                                           \
    "smmulr " r ", " r ", " m "\n\t"                                                     \
    "add " r ", " r ", " r ", asr #31\n\t" "add " r ", " r ", " k "\n\t"                \
    "asr " r ", " r ", " e "\n\t" "ssat " r ", #8, " r "\n\t"

/* the channel pair's six sums into output bytes r0-r5: the parameters from the multiplier
 * and shift arrays */
#define MQ_REQUANT_S                                                                   \
    "ldr r6, [sp, #12]\n\t"                                                            \
    "ldr lr, [sp, #16]\n\t"                                                            \
    "ldr r12, [sp, #20]\n\t"                                                           \
    "ldrd r8, r9, [r6], #8\n\t"                    /* multipliers */                   \
    "ldrd r10, r11, [lr], #8\n\t"                  /* shifts (<= -1) */                \
    "str r6, [sp, #12]\n\t"                                                            \
    "str lr, [sp, #16]\n\t"                                                            \
    "rsb r10, r10, #0\n\t"                         /* exponents */                     \
    "rsb r11, r11, #0\n\t"                                                             \
    "sub r6, r10, #1\n\t"                                                              \
    "lsl r6, r12, r6\n\t"                          /* roundings: unit << (e - 1) */    \
    "sub lr, r11, #1\n\t"                                                              \
    "lsl lr, r12, lr\n\t"                                                              \
    MQ_OUT_S("r0", "r8", "r6", "r10") MQ_OUT_S("r1", "r9", "lr", "r11")                \
    MQ_OUT_S("r2", "r8", "r6", "r10") MQ_OUT_S("r3", "r9", "lr", "r11")                \
    MQ_OUT_S("r4", "r8", "r6", "r10") MQ_OUT_S("r5", "r9", "lr", "r11")
/* the same from the pair's prepared record (prepare_pairs: [sp, #8] points past its
 * biases), the sums doubled already: no LSL */
#define MQ_REQUANT_W                                                                   \
    "ldr r6, [sp, #8]\n\t"                                                             \
    "ldm r6!, {r8-r12, lr}\n\t"      /* multipliers, roundings, exponents */          \
    MQ_OUT_D("r0", "r8", "r10", "r12") MQ_OUT_D("r1", "r9", "r11", "lr")               \
    MQ_OUT_D("r2", "r8", "r10", "r12") MQ_OUT_D("r3", "r9", "r11", "lr")               \
    MQ_OUT_D("r4", "r8", "r10", "r12") MQ_OUT_D("r5", "r9", "r11", "lr")

/* the groups of a channel pair and block: four a pass while the block pointer r6 is short of
 * quads_end, then one at a time up to groups_end (MQ_GROUP_S takes every register but r10
 * and the bounds are reloaded; MQ_GROUP_W leaves r10 free for them, and its 0-3 groups left
 * are unrolled) */
#define MQ_PASSES_S                                                                    \
    "ldr r11, [sp, #36]\n\t" "cmp r11, r6\n\t" "beq 3f\n"                               \
    "2:\n\t" MQ_GROUP_S MQ_GROUP_S MQ_GROUP_S MQ_GROUP_S                                 \
    "ldr r11, [sp, #36]\n\t" "cmp r6, r11\n\t" "bne 2b\n"                               \
    "3:\n\t" "ldr r11, [sp, #40]\n\t" "cmp r6, r11\n\t" "beq 5f\n"                      \
    "4:\n\t" MQ_GROUP_S                                                                \
    "ldr r11, [sp, #40]\n\t" "cmp r6, r11\n\t" "bne 4b\n"
#define MQ_PASSES_W                                                                    \
    "ldr r10, [sp, #36]\n\t" "cmp r10, r6\n\t" "beq 3f\n"                               \
    "2:\n\t" MQ_GROUP_W MQ_GROUP_W MQ_GROUP_W MQ_GROUP_W                                 \
    "cmp r6, r10\n\t" "bne 2b\n"                                                        \
    "3:\n\t" "ldr r10, [sp, #40]\n\t"                                                   \
    "cmp r6, r10\n\t" "beq 5f\n\t" MQ_GROUP_W                                            \
    "cmp r6, r10\n\t" "beq 5f\n\t" MQ_GROUP_W                                            \
    "cmp r6, r10\n\t" "beq 5f\n\t" MQ_GROUP_W

/* the pair's biases into r0, r1: from the bias array at the top of each pair (S); from the
 * records, the first pair's before the loop and each next pair's after the last one's stores,
 * where REQUANT_W left r6 pointing at them (W) */
#define MQ_BIASES_S "ldr r10, [sp, #8]\n\t" "ldrd r0, r1, [r10], #8\n\t" "str r10, [sp, #8]\n\t"
#define MQ_NEXT_BIASES_W "itt ne\n\t" "ldrdne r0, r1, [r6], #8\n\t" "strne r6, [sp, #8]\n\t"

/* The routine, named `name`: FIRST before the pairs, START at the top of each, the groups
 * `PASSES` (MQ_PASSES_S or MQ_PASSES_W), the requantization `REQUANT` (MQ_REQUANT_S or
 * MQ_REQUANT_W), and NEXT after the pair's stores (flags: more pairs follow when NE). */
#define MQ_CONV_TRIPLES(name, FIRST, START, PASSES, REQUANT, NEXT) \
__asm__( \
    ".pushsection .text." name ", \"ax\", %progbits\n\t" \
    ".syntax unified\n\t" \
    ".thumb\n\t" \
    ".balign " MQ_HOT_CODE_ALIGN "\n\t" \
    ".global " name "\n\t" \
    ".thumb_func\n\t" \
    ".type " name ", %function\n" \
    "" name ":\n\t" \
    "push {r4-r11, lr}\n\t" \
    "ldm r0, {r1-r11}\n\t" \
    "push {r1-r11}\n\t" \
    "ldr r7, [sp, #4]\n\t"                           /* the weights: every pair in turn */ \
    FIRST \
    "1:\n\t"                                       /* a channel pair */ \
    START \
    "ldr r6, [sp, #0]\n\t" \
    "mov r2, r0\n\t" \
    "mov r3, r1\n\t" \
    "mov r4, r0\n\t" \
    "mov r5, r1\n\t" \
    PASSES \
    "5:\n\t" \
    REQUANT \
    "ldr r12, [sp, #24]\n\t" \
    "ldr lr, [sp, #28]\n\t" \
    "ldr r8, [sp, #32]\n\t" \
    "strb r0, [r12]\n\t" \
    "strb r1, [r12, #1]\n\t" \
    "add r9, r12, lr\n\t" \
    "strb r2, [r9]\n\t" \
    "strb r3, [r9, #1]\n\t" \
    "add r9, r9, lr\n\t" \
    "strb r4, [r9]\n\t" \
    "strb r5, [r9, #1]\n\t" \
    "add r12, r12, #2\n\t" \
    "str r12, [sp, #24]\n\t" \
    "cmp r12, r8\n\t" \
    NEXT \
    "bne 1b\n\t" \
    "add sp, sp, #44\n\t" \
    "pop {r4-r11, pc}\n\t" \
    ".size " name ", . - " name "\n\t" \
    ".popsection\n");

MQ_CONV_TRIPLES("mq_conv_triples_saturated_s8", "", MQ_BIASES_S, MQ_PASSES_S, MQ_REQUANT_S, "")
MQ_CONV_TRIPLES("mq_conv_triples_widened_s8", MQ_BIASES_S, "", MQ_PASSES_W, MQ_REQUANT_W,
                MQ_NEXT_BIASES_W)
#undef MQ_CONV_TRIPLES
#undef MQ_GROUP_S
#undef MQ_GROUP_W
#undef MQ_PASSES_S
#undef MQ_PASSES_W
#undef MQ_BIASES_S
#undef MQ_NEXT_BIASES_W
#undef MQ_REQUANT_S
#undef MQ_REQUANT_W
#undef MQ_OUT_S
#undef MQ_OUT_D

/* outputs_3x2_saturated through the assembly routine (bias present, out_c >= 2), channel
 * pairs from `first_pair` on. */
static void triples_from(const int16_t *block, const int8_t *w, int groups,
                         const mq_requant_t *q, int first_pair, int out_c, int8_t *out)
{
    const int16_t *const before = block - LANES_PER_GROUP;
    const int c = 2 * first_pair;
    conv_pass_t pass = {before, w + (int32_t)c * 4 * groups - 8, q->bias + c, q->multiplier + c,
                        q->shift + c, q->rounding_unit, out + c, out_c, out + (out_c & ~1),
                        before + 4 * LANES_PER_GROUP * (groups >> 2),
                        before + LANES_PER_GROUP * groups};
    mq_conv_triples_saturated_s8(&pass);
}

static void outputs_3x2_saturated_asm(const int16_t *block, const int8_t *w, int groups,
                                      const mq_requant_t *q, int out_c, int8_t *out)
{
    triples_from(block, w, groups, q, 0, out_c, out);
}

/* The same over the `pairs` pairs prepared in scratch (prepare_pairs): `w` points at the
 * widened weights, `records` at the pairs' records. */
static void outputs_3x2_widened_asm(const int16_t *block, const int8_t *w, int groups,
                                    const int32_t *records, int pairs, int out_c, int8_t *out)
{
    const int16_t *const before = block - LANES_PER_GROUP;
    conv_pass_t pass = {before, w - 16, records, NULL, NULL, 0, out, out_c, out + 2 * pairs,
                        before + 4 * LANES_PER_GROUP * (groups >> 2),
                        before + LANES_PER_GROUP * groups};
    mq_conv_triples_widened_s8(&pass);
}

/*
 * The first p->prepared_pairs channel pairs prepared once per call, as many as the code
 * generator found room for in the arena beside the layer's buffers (codegen/emit.py,
 * conv_prepared_pairs_bytes), for mq_conv_triples_widened_s8 (the other pairs go through
 * mq_conv_triples_saturated_s8):
 * - the weights (pair_channels: 8 bytes a group and pair) widened and doubled, 16 bytes a
 *   group and pair in the order MQ_GROUP_W loads them: SXTB16 and SXTB16 ROR #8 of each
 *   channel's word, the even lanes of both channels first. The inner loop then saves its
 *   four SXTB16 a group and reads SRAM instead of flash; |2w| <= 256 fits a lane.
 * - a record per pair, [2 bias0, 2 bias1, multiplier0, multiplier1, rounding0, rounding1,
 *   exponent0, exponent1]: the sums come out doubled (|sum| < 2^30: requant_fast), the
 *   operand SMMULR takes, and the pair's parameters are one LDM.
 */
static void prepare_pairs(const int8_t *w, const mq_requant_t *q, int pairs, int groups,
                          uint32_t *widened, int32_t *records)
{
    const int8_t *const end = w + 8 * (int32_t)pairs * groups;
    if (w != end) {                  /* GCC's loop of the same took 22 cycles a group, this 17 */
        uint32_t w0, w1, even0, even1;
        __asm__ volatile(
            "1:\n\t"
            "ldr %[w0], [%[w]], #8\n\t"
            "ldr %[w1], [%[w], #-4]\n\t"
            "sxtb16 %[even0], %[w0]\n\t"
            "sxtb16 %[even1], %[w1]\n\t"
            "sxtb16 %[w0], %[w0], ror #8\n\t"
            "sxtb16 %[w1], %[w1], ror #8\n\t"
            "sadd16 %[even0], %[even0], %[even0]\n\t"
            "sadd16 %[even1], %[even1], %[even1]\n\t"
            "sadd16 %[w0], %[w0], %[w0]\n\t"
            "sadd16 %[w1], %[w1], %[w1]\n\t"
            "str %[even0], [%[out]], #16\n\t"
            "str %[even1], [%[out], #-12]\n\t"
            "str %[w0], [%[out], #-8]\n\t"
            "str %[w1], [%[out], #-4]\n\t"
            "cmp %[w], %[end]\n\t"
            "bne 1b\n\t"
            : [w] "+r"(w), [out] "+r"(widened), [w0] "=&r"(w0), [w1] "=&r"(w1),
              [even0] "=&r"(even0), [even1] "=&r"(even1)
            : [end] "r"(end)
            : "cc", "memory");
    }
    for (int pair = 0; pair < pairs; ++pair, records += 8) {
        for (int k = 0; k < 2; ++k) {
            const int c = 2 * pair + k, exponent = -q->shift[c];
            records[k] = (int32_t)(2u * (uint32_t)q->bias[c]);
            records[2 + k] = q->multiplier[c];
            records[4 + k] = mq_folded_rounding(q->rounding_unit, exponent);
            records[6 + k] = exponent;
        }
    }
}
#endif

/* Pixel `slot`'s column . an unpaired last channel's weights (its row as it is). */
static int32_t dot_1x1(const int16_t *block, int slot, const int8_t *w, int groups)
{
    int32_t acc = 0;
    block += slot * 4;                                /* slot_lanes(block, 0, slot) */
    for (int g = 0; g < groups; ++g, w += 4, block += LANES_PER_GROUP) {
        const uint32_t w4 = mq_load32(w);
        acc = mq_smlad(mq_load32(block), mq_sxtb16(w4), acc);
        acc = mq_smlad(mq_load32(block + 2), mq_sxtb16_ror8(w4), acc);
    }
    return acc;
}

/* Pixel `slot`'s column . a channel pair's paired weights: sums[0], sums[1]. */
static void dot_1x2(const int16_t *block, int slot, const int8_t *w, int groups, int32_t sums[2])
{
    int32_t s0 = 0, s1 = 0;
    block += slot * 4;                                /* slot_lanes(block, 0, slot) */
    for (int g = 0; g < groups; ++g, w += 8, block += LANES_PER_GROUP) {
        const uint32_t even = mq_load32(block), odd = mq_load32(block + 2);
        const uint32_t w0 = mq_load32(w), w1 = mq_load32(w + 4);
        s0 = mq_smlad(odd, mq_sxtb16_ror8(w0), mq_smlad(even, mq_sxtb16(w0), s0));
        s1 = mq_smlad(odd, mq_sxtb16_ror8(w1), mq_smlad(even, mq_sxtb16(w1), s1));
    }
    sums[0] = s0;
    sums[1] = s1;
}

/* Pixels [0, count) of the block, channels [first_channel, out_c), a pixel at a time:
 * outputs of slot k at out + k * out_c. */
static void outputs_single(const int16_t *block, const int8_t *filter, int groups,
                           const mq_requant_t *q, int out_c, int first_channel, int count,
                           int8_t *out)
{
    const int row_bytes = 4 * groups, paired_end = out_c & ~1;
    int oc = first_channel;
    for (; oc < paired_end; oc += 2) {
        const int8_t *w = filter + (int32_t)oc * row_bytes;
        for (int slot = 0; slot < count; ++slot) {
            int32_t sums[2];
            dot_1x2(block, slot, w, groups, sums);
            out[slot * out_c + oc] = mq_requant_channel(q, sums[0], oc);
            out[slot * out_c + oc + 1] = mq_requant_channel(q, sums[1], oc + 1);
        }
    }
    if (oc < out_c) {                                 /* an unpaired last channel */
        const int8_t *w = filter + (int32_t)oc * row_bytes;
        for (int slot = 0; slot < count; ++slot) {
            out[slot * out_c + oc] = mq_requant_channel(q, dot_1x1(block, slot, w, groups), oc);
        }
    }
}

void mq_conv2d_s8(const mq_conv_params_t *p, const int8_t *input, const int8_t *filter,
                  const int32_t *bias, const int32_t *multiplier, const int32_t *shift,
                  int8_t *output, int8_t *scratch)
{
    const mq_requant_t q = mq_requant_of(bias, multiplier, shift, p->output_offset, p->act_min,
                                         p->act_max, p->requant_fast);
    const int groups = (column_length(p) + 3) / 4;      /* the weights' rows, padded */
    const int out_c = p->out_c;
    const int pixels = p->out_h * p->out_w;
    int16_t *block = (int16_t *)(void *)scratch;
    int8_t *gathered = (int8_t *)(block + groups * LANES_PER_GROUP);
#if MQ_DSP
    const int8_t *prepared = NULL;           /* prepare_pairs' widened weights, records */
    const int32_t *prepared_records = NULL;
#endif
    void (*outputs)(const int16_t *, const int8_t *, int, const mq_requant_t *, int, int8_t *) =
        q.fast && q.full_range ? outputs_3x2_saturated : outputs_3x2_general;
#if MQ_DSP
    if (q.fast && q.full_range && bias && out_c >= 2) {
        outputs = outputs_3x2_saturated_asm;
        if (p->prepared_pairs) {           /* after the block and the gathered column */
            uint32_t *widened = (uint32_t *)(void *)(gathered + ((p->in_c & 3) ? 4 * groups : 0));
            int32_t *records = (int32_t *)(widened + 4 * groups * p->prepared_pairs);
            prepare_pairs(filter, &q, p->prepared_pairs, groups, widened, records);
            prepared = (const int8_t *)widened;
            prepared_records = records;
        }
    }
#endif
    int pixel = 0;
    for (; pixel + PIXELS <= pixels; pixel += PIXELS) {
        for (int slot = 0; slot < PIXELS; ++slot) {
            fill_column(p, input, pixel + slot, slot, gathered, block);
        }
        int8_t *out = output + (int32_t)pixel * out_c;
        if (out_c >= 2) {
#if MQ_DSP
            if (prepared) {
                const int pairs = p->prepared_pairs;
                outputs_3x2_widened_asm(block, prepared, groups, prepared_records, pairs, out_c,
                                        out);
                if (2 * pairs + 1 < out_c) {           /* the pairs left, int8 weights */
                    triples_from(block, filter, groups, &q, pairs, out_c, out);
                }
            } else
#endif
            outputs(block, filter, groups, &q, out_c, out);
        }
        if (out_c & 1) {                               /* an unpaired last channel */
            outputs_single(block, filter, groups, &q, out_c, out_c - 1, PIXELS, out);
        }
    }
    if (pixel < pixels) {                              /* the last one or two pixels */
        const int count = pixels - pixel;
        for (int slot = 0; slot < count; ++slot) {
            fill_column(p, input, pixel + slot, slot, gathered, block);
        }
        outputs_single(block, filter, groups, &q, out_c, 0, count,
                       output + (int32_t)pixel * out_c);
    }
}
