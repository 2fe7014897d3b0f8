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
 * registers), padding included, since a tap outside reads the zero-point row.
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

uint32_t mq_depthwise_scratch_bytes(uint32_t channels, uint32_t taps, int prepared)
{
    /* widened weights (2 bytes per tap and channel), folded biases, zero-point row */
    return prepared ? 2u * taps * channels + 4u * channels + ((channels + 3u) & ~3u) : 0u;
}

int mq_depthwise_prepared(const mq_conv_params_t *p)
{
    return p->depth_multiplier == 1 && p->dil_h == 1 && p->dil_w == 1 && (p->in_c & 3) == 0 &&
           p->k_h * p->k_w <= MQ_DEPTHWISE_MAX_TAPS;
}

#if MQ_DSP
/*
 * One output pixel of a 3x3 layer, every group of four channels, on a requant_fast layer
 * whose activation range is all of int8: window3x3_x4 and the requantization in one
 * assembly routine (GCC's schedule of the C kept the pointers on the stack around the
 * twelve-register window and spent ~130 cycles a group outside it; this one ~75). Per
 * group: the four sums start at the folded biases (LDM), the nine taps as in
 * window3x3_x4 (11 cycles each), then per channel LSL, SMMULR, the rounding shift with the
 * output offset folded in (mq_requant_folded) and SSAT #8, and four STRBs.
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
/* sum s, multiplier m, shift h (<= -1) -> the output byte in s (r9: the rounding) */
#define MQ_OUT_DW(s, m, h)                                                              \
    "rsb " h ", " h ", #0\n\t" "sub r9, " h ", #1\n\t" "lsl r9, r12, r9\n\t"           \
    "lsl " s ", " s ", #1\n\t" "smmulr " s ", " s ", " m "\n\t"                        \
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
    for (int c = 0; c < channels; c += 4) {
        uint32_t *group = lanes + (c / 4) * 2 * taps;
        int32_t sum[4] = {0, 0, 0, 0};
        for (int t = 0; t < taps; ++t) {
            const int8_t *w = filter + t * channels + c;
            const uint32_t w4 = mq_load32(w);
            group[2 * t] = mq_sxtb16(w4);
            group[2 * t + 1] = mq_sxtb16_ror8(w4);
            for (int i = 0; i < 4; ++i) {
                sum[i] += w[i];
            }
        }
        for (int i = 0; i < 4; ++i) {
            folded[c + i] = (bias ? bias[c + i] : 0) + input_offset * sum[i];
        }
    }
    memset(zero_row, (int8_t)(-input_offset), (size_t)channels);
    mq_requant_t q = *q_in;
    q.bias = NULL;                                 /* folded into the accumulators' start */
    const int8_t *tap_rows[MQ_DEPTHWISE_MAX_TAPS];
    const int rows3 = p->k_h == 3 && p->k_w == 3;
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
            if (rows3 && q.fast && q.full_range) {          /* the assembly routine's case */
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
