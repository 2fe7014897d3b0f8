/*
 * mcuqual int8 kernel library: the operators of a full-integer TFLite model,
 * reproducing TFLite Micro's reference arithmetic bit for bit.
 *
 * Tensors are NHWC int8 with batch 1. Convolution filters are OHWI, depthwise
 * filters 1HW(C*M), fully connected weights [out][in] (TFLite's layouts, so the
 * code generator copies them unchanged). Requantization parameters are computed
 * on the host by the code generator exactly as TFLM computes them at prepare
 * time; kernels only apply them. C99, no allocation, no global state.
 */
#ifndef MQ_NN_H
#define MQ_NN_H

#include <stdint.h>
#include <string.h>
#if defined(__ARM_FEATURE_SIMD32) && !defined(MQ_PORTABLE_KERNELS)
#include <arm_acle.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* The Cortex-M4 DSP instructions (SIMD32) are used where the target has them; the host
 * twin (and MQ_PORTABLE_KERNELS) runs the same arithmetic in portable C. */
#if defined(__ARM_FEATURE_SIMD32) && !defined(MQ_PORTABLE_KERNELS)
#define MQ_DSP 1
#else
#define MQ_DSP 0
#endif

/*
 * The alignment of the hand-written assembly routines (conv2d_s8.c, depthwise_conv2d_s8.c),
 * each in its own section: a 1 KB boundary, so that none of their loops straddles one. The
 * real core does not care; the virtual board does: its emulator ends translated blocks at
 * 1 KB pages and the cycle model costs each block on its own, so a loop cut there would
 * lose a pipelined load per pass in the model (up to 0.6 % of ResNet-8's cycles, depending
 * only on where the linker put the code). At most 2 KB of flash padding, not counted in
 * the model's weights.
 */
#define MQ_HOT_CODE_ALIGN "1024"

/* ---- requantization ---------------------------------------------------------
 * Fixed point as TFLite's (non single-rounding) reference computes it: a doubling
 * high multiply rounded to nearest, then a rounding right shift that breaks ties
 * away from zero. Inline because every output byte of every layer goes through
 * it; a call would cost as much as the arithmetic. Right shifts of negative
 * values are arithmetic on every compiler we target (GCC on Arm and x86).
 */
#define MQ_ALWAYS_INLINE inline __attribute__((always_inline))

/*
 * a * b / 2^31 rounded to nearest, ties upward: TFLite's
 * SaturatingRoundingDoublingHighMul without its one saturating case (a = b =
 * INT32_MIN, see below). Adding 2^30 and flooring gives the same
 * integer for every product (for a negative product, TFLite's nudge 1 - 2^30
 * with truncation toward zero lands on the same value), which the M4 does in
 * one SMLAL and two shifts.
 */
static MQ_ALWAYS_INLINE int32_t mq_doubling_high_mul(int32_t a, int32_t b)
{
    const int64_t product = (int64_t)a * (int64_t)b + (1LL << 30);
    return (int32_t)(product >> 31);            /* arithmetic shift: floor */
}

static inline int32_t mq_saturating_rounding_doubling_high_mul(int32_t a, int32_t b)
{
    if (a == b && a == INT32_MIN) {
        return INT32_MAX;            /* the one product that overflows */
    }
    return mq_doubling_high_mul(a, b);
}

static MQ_ALWAYS_INLINE int32_t mq_rounding_divide_by_pot(int32_t x, int exponent)
{
    const int32_t mask = (int32_t)((1u << exponent) - 1u);   /* exponent in [0, 31] */
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (int32_t)((uint32_t)x >> 31);   /* +1 if x < 0 */
    return (x >> exponent) + (remainder > threshold);
}

/*
 * x * multiplier * 2^shift, rounded as TFLite does (shift > 0: left). The
 * multiplier is a quantized multiplier in [2^30, 2^31) (or 0), never INT32_MIN,
 * so the doubling high multiply cannot saturate. The shifts are split without
 * a branch: a branch per output byte costs more than the arithmetic.
 */
static MQ_ALWAYS_INLINE int32_t mq_multiply_by_quantized_multiplier(int32_t x, int32_t multiplier,
                                                                    int shift)
{
    const int left = shift & ~(shift >> 31);         /* max(shift, 0) */
    const int right = left - shift;                  /* max(-shift, 0) */
    /* wraps like the reference does; the generator keeps |x << left| in range */
    const int32_t shifted = (int32_t)((uint32_t)x << left);
    return mq_rounding_divide_by_pot(mq_doubling_high_mul(shifted, multiplier), right);
}

/* Two selects, not nested ones: GCC makes each a compare and an IT-conditional move
 * instead of a branch (a taken branch costs the pipeline refill). */
static MQ_ALWAYS_INLINE int32_t mq_clamp(int32_t x, int32_t lo, int32_t hi)
{
    x = x < lo ? lo : x;
    return x > hi ? hi : x;
}

/* mq_doubling_high_mul's value for |x| < 2^30: SMMULR, (2x * m + 2^31) >> 32. */
static MQ_ALWAYS_INLINE int32_t mq_doubling_high_mul_small(int32_t x, int32_t multiplier)
{
#if defined(__ARM_FEATURE_SIMD32) && !defined(MQ_PORTABLE_KERNELS)
    int32_t v;
    __asm__("smmulr %0, %1, %2" : "=r"(v) : "r"(x * 2), "r"(multiplier));
    return v;
#else
    return mq_doubling_high_mul(x, multiplier);
#endif
}

/*
 * The same product for a layer whose every channel right-shifts (shift <= -1) and
 * whose sums stay below 2^30 in magnitude (the code generator proves both from the
 * weights and biases and sets `requant_fast`). The doubling high multiply is then
 * one SMMULR of 2x (2|x| < 2^31, so doubling cannot overflow: (2xm + 2^31) >> 32
 * equals (xm + 2^30) >> 31), and with an exponent e >= 1 the reference's rounding
 * divide (round half away from zero) is (v + 2^(e-1) - [v < 0]) >> e: |v| < 2^30,
 * so the sum cannot overflow either. Six instructions instead of about twenty.
 */
static MQ_ALWAYS_INLINE int32_t mq_multiply_small_right(int32_t x, int32_t multiplier, int shift)
{
    const int exponent = -shift;                     /* >= 1 */
    const int32_t v = mq_doubling_high_mul_small(x, multiplier);
    return (v + (int32_t)(1u << (exponent - 1)) + (v >> 31)) >> exponent;
}

/* acc, requantized, offset and clamped: one output byte. */
static MQ_ALWAYS_INLINE int8_t mq_requantize_s8(int32_t acc, int32_t multiplier, int shift,
                                      int32_t output_offset, int32_t act_min, int32_t act_max)
{
    acc = mq_multiply_by_quantized_multiplier(acc, multiplier, shift) + output_offset;
    return (int8_t)mq_clamp(acc, act_min, act_max);
}

/*
 * mq_multiply_small_right(x, multiplier, -exponent) + output_offset in one rounding. For
 * an exponent e >= 1, floor(s / 2^e) + o = floor((s + o * 2^e) / 2^e) exactly, so the
 * output offset joins the rounding term: 2^(e-1) + o * 2^e = (2o + 1) * 2^(e-1), the
 * `rounding` that mq_folded_rounding gives. With |v| <= 2^30 (|x| < 2^30) and |rounding|
 * < 2^30 (the code generator's requant_fast proves both) the sum cannot overflow. Five
 * instructions per output byte instead of six, and none of them per layer constant.
 */
static MQ_ALWAYS_INLINE int32_t mq_folded_rounding(int32_t rounding_unit, int exponent)
{
    return (int32_t)((uint32_t)rounding_unit << (exponent - 1));   /* unit = 2o + 1 */
}

static MQ_ALWAYS_INLINE int32_t mq_requant_folded(int32_t x, int32_t multiplier, int32_t rounding,
                                                  int exponent)
{
    const int32_t v = mq_doubling_high_mul_small(x, multiplier);
    return (v + rounding + (v >> 31)) >> exponent;
}

/* x clamped to [lo, hi] as a byte: one SSAT when that range is all of int8 (`full`, the
 * usual case: no activation, or a ReLU whose zero point is -128). */
static MQ_ALWAYS_INLINE int8_t mq_saturate_s8(int32_t x, int32_t lo, int32_t hi, int full)
{
#if MQ_DSP
    if (full) {
        return (int8_t)__ssat(x, 8);
    }
#else
    (void)full;
#endif
    return (int8_t)mq_clamp(x, lo, hi);
}

/*
 * Per-channel requantization of a convolution's sums, with its parameters read
 * once per call: output stores are int8 and may alias anything, so parameters
 * read through the layer's struct inside a loop would be reloaded after every
 * store.
 */
typedef struct {
    const int32_t *bias, *multiplier, *shift;    /* bias may be NULL */
    int32_t output_offset, act_min, act_max;
    int fast;                                    /* requant_fast: mq_requant_folded */
    int32_t rounding_unit;                       /* 2 * output_offset + 1 */
    int full_range;                              /* act range [-128, 127]: mq_saturate_s8 */
} mq_requant_t;

static MQ_ALWAYS_INLINE mq_requant_t mq_requant_of(const int32_t *bias, const int32_t *multiplier,
                                                   const int32_t *shift, int32_t output_offset,
                                                   int32_t act_min, int32_t act_max, int fast)
{
    const mq_requant_t q = {bias, multiplier, shift, output_offset, act_min, act_max, fast,
                            2 * output_offset + 1, act_min == -128 && act_max == 127};
    return q;
}

/* A sum that already holds its bias, requantized to channel `channel`'s output byte;
 * `full` is q->full_range, or a constant where a caller specialises its loop on it. */
static MQ_ALWAYS_INLINE int8_t mq_requant_sum(const mq_requant_t *q, int32_t acc, int channel,
                                              int full)
{
    if (q->fast) {
        const int exponent = -q->shift[channel];
        acc = mq_requant_folded(acc, q->multiplier[channel],
                                mq_folded_rounding(q->rounding_unit, exponent), exponent);
        return mq_saturate_s8(acc, q->act_min, q->act_max, full);
    }
    return mq_requantize_s8(acc, q->multiplier[channel], q->shift[channel], q->output_offset,
                            q->act_min, q->act_max);
}

static MQ_ALWAYS_INLINE int8_t mq_requant_channel(const mq_requant_t *q, int32_t acc, int channel)
{
    if (q->bias) {
        acc += q->bias[channel];
    }
    return mq_requant_sum(q, acc, channel, q->full_range);
}

/* The part [*start, *end) of a k-tap window at `origin` that lies inside [0, size). */
static inline void mq_window(int origin, int k, int size, int *start, int *end)
{
    *start = origin < 0 ? -origin : 0;
    *end = k < size - origin ? k : size - origin;
}

/* ---- 16-bit lanes ------------------------------------------------------------
 * The Cortex-M4 DSP instructions the kernels are written with. Elsewhere (the
 * host twin) the same arithmetic in C, so the host runs the firmware's exact
 * algorithm and only these few lines differ between the two builds. Lanes hold
 * signed 16-bit values; "lo" is bits 15:0, "hi" bits 31:16.
 */
static inline uint32_t mq_load32(const void *p)
{
    uint32_t v;
    memcpy(&v, p, 4);                /* one LDR: the M4 allows unaligned word loads */
    return v;
}

static inline void mq_store32(void *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

#if MQ_DSP
/* bytes 0 and 2, sign-extended to lanes (SXTB16) */
static inline uint32_t mq_sxtb16(uint32_t x) { return (uint32_t)__sxtb16((int32_t)x); }
/* bytes 1 and 3: SXTB16 with ROR #8, one instruction (GCC does not fold the rotate) */
static inline uint32_t mq_sxtb16_ror8(uint32_t x)
{
    uint32_t result;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(result) : "r"(x));
    return result;
}
static inline uint32_t mq_sadd16(uint32_t a, uint32_t b)
{
    return (uint32_t)__sadd16((int32_t)a, (int32_t)b);
}
/* acc + lo*lo + hi*hi (SMLAD) */
static inline int32_t mq_smlad(uint32_t a, uint32_t b, int32_t acc)
{
    return __smlad((int32_t)a, (int32_t)b, acc);
}
static inline int32_t mq_smlabb(uint32_t a, uint32_t b, int32_t acc)
{
    return __smlabb((int32_t)a, (int32_t)b, acc);
}
static inline int32_t mq_smlatt(uint32_t a, uint32_t b, int32_t acc)
{
    return __smlatt((int32_t)a, (int32_t)b, acc);
}
static inline int32_t mq_smlabt(uint32_t a, uint32_t b, int32_t acc)
{
    return __smlabt((int32_t)a, (int32_t)b, acc);
}
static inline int32_t mq_smlatb(uint32_t a, uint32_t b, int32_t acc)
{
    return __smlatb((int32_t)a, (int32_t)b, acc);
}
/* acc + lo(a)*hi(b) + hi(a)*lo(b) (SMLADX) */
static inline int32_t mq_smladx(uint32_t a, uint32_t b, int32_t acc)
{
    return __smladx((int32_t)a, (int32_t)b, acc);
}
/* lo(a) in the low lane, hi(b) in the high one (PKHBT with no shift) */
static inline uint32_t mq_pkhbt(uint32_t a, uint32_t b)
{
    uint32_t result;
    __asm__("pkhbt %0, %1, %2" : "=r"(result) : "r"(a), "r"(b));
    return result;
}
/* (lo(a), lo(b)): PKHBT with LSL #16 */
static inline uint32_t mq_pack_lo(uint32_t a, uint32_t b)
{
    uint32_t result;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(result) : "r"(a), "r"(b));
    return result;
}
/* (hi(a), hi(b)): PKHTB with ASR #16 */
static inline uint32_t mq_pack_hi(uint32_t a, uint32_t b)
{
    uint32_t result;
    __asm__("pkhtb %0, %1, %2, asr #16" : "=r"(result) : "r"(b), "r"(a));
    return result;
}
#else
static inline int32_t mq_lo16(uint32_t x) { return (int16_t)(uint16_t)(x & 0xFFFFu); }
static inline int32_t mq_hi16(uint32_t x) { return (int16_t)(uint16_t)(x >> 16); }
static inline uint32_t mq_pack16(int32_t lo, int32_t hi)
{
    return (uint32_t)(uint16_t)lo | ((uint32_t)(uint16_t)hi << 16);
}
static inline uint32_t mq_sxtb16(uint32_t x) { return mq_pack16((int8_t)x, (int8_t)(x >> 16)); }
static inline uint32_t mq_sxtb16_ror8(uint32_t x)
{
    return mq_pack16((int8_t)(x >> 8), (int8_t)(x >> 24));
}
static inline uint32_t mq_sadd16(uint32_t a, uint32_t b)
{
    return mq_pack16(mq_lo16(a) + mq_lo16(b), mq_hi16(a) + mq_hi16(b));
}
static inline int32_t mq_smlad(uint32_t a, uint32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(mq_lo16(a) * mq_lo16(b)) +
                     (uint32_t)(mq_hi16(a) * mq_hi16(b)));
}
static inline int32_t mq_smlabb(uint32_t a, uint32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(mq_lo16(a) * mq_lo16(b)));
}
static inline int32_t mq_smlatt(uint32_t a, uint32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(mq_hi16(a) * mq_hi16(b)));
}
static inline int32_t mq_smlabt(uint32_t a, uint32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(mq_lo16(a) * mq_hi16(b)));
}
static inline int32_t mq_smlatb(uint32_t a, uint32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(mq_hi16(a) * mq_lo16(b)));
}
static inline int32_t mq_smladx(uint32_t a, uint32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(mq_lo16(a) * mq_hi16(b)) +
                     (uint32_t)(mq_hi16(a) * mq_lo16(b)));
}
static inline uint32_t mq_pkhbt(uint32_t a, uint32_t b)
{
    return (a & 0xFFFFu) | (b & 0xFFFF0000u);
}
static inline uint32_t mq_pack_lo(uint32_t a, uint32_t b)
{
    return (a & 0xFFFFu) | (b << 16);
}
static inline uint32_t mq_pack_hi(uint32_t a, uint32_t b)
{
    return (a >> 16) | (b & 0xFFFF0000u);
}
#endif

/* Two copies of a value in the 16-bit lanes, for SADD16. */
static inline uint32_t mq_dup16(int32_t v)
{
    return ((uint32_t)(uint16_t)v << 16) | (uint16_t)v;
}

/*
 * sum(w[i] * (x[i] + x_offset)) over n contiguous int8 pairs (fully connected
 * layers). Four pairs go through two SMLADs: bytes are sign-extended to 16-bit
 * lanes, the offset is added lane-wise (x + offset lies in [-255, 255], so no
 * lane overflows) and the products summed exactly as the scalar loop would.
 */
static inline int32_t mq_dot_offset_s8(const int8_t *x, const int8_t *w, int n, int32_t x_offset)
{
    const uint32_t offset2 = mq_dup16(x_offset);
    int32_t acc = 0;
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        const uint32_t x4 = mq_load32(x + i), w4 = mq_load32(w + i);
        acc = mq_smlad(mq_sadd16(mq_sxtb16(x4), offset2), mq_sxtb16(w4), acc);
        acc = mq_smlad(mq_sadd16(mq_sxtb16_ror8(x4), offset2), mq_sxtb16_ror8(w4), acc);
    }
    for (; i < n; ++i) {
        acc += (int32_t)w[i] * ((int32_t)x[i] + x_offset);
    }
    return acc;
}

/* ---- shapes and parameters ---------------------------------------------- */
typedef struct {
    uint16_t in_h, in_w, in_c;
    uint16_t out_h, out_w, out_c;
    uint8_t k_h, k_w, stride_h, stride_w, dil_h, dil_w;
    uint8_t pad_top, pad_left;
    uint8_t depth_multiplier;        /* depthwise only */
    uint8_t requant_fast;            /* every channel fits mq_multiply_small_right */
    uint8_t prepared_pairs;          /* CONV_2D: channel pairs to prepare in scratch first */
    int32_t input_offset;            /* -input zero point */
    int32_t output_offset;           /* output zero point */
    int32_t act_min, act_max;
} mq_conv_params_t;

typedef struct {
    uint16_t in_features, out_features;
    int32_t input_offset, filter_offset, output_offset;
    int32_t act_min, act_max;
    uint8_t per_channel;             /* 1: one multiplier/shift per output */
    uint8_t requant_fast;            /* every output fits mq_multiply_small_right */
} mq_fc_params_t;

typedef struct {
    uint16_t in_h, in_w, channels, out_h, out_w;
    uint8_t k_h, k_w, stride_h, stride_w, pad_top, pad_left;
    int32_t act_min, act_max;
} mq_pool_params_t;

typedef struct {
    uint16_t in_h, in_w, channels;   /* mean over H and W, per channel */
    int32_t input_zero_point, output_zero_point;
    int32_t multiplier, shift;       /* already divided by H*W as TFLM does */
} mq_mean_params_t;

typedef struct {
    uint32_t size;                   /* elements of the output */
    uint32_t input1_inner, input2_inner; /* elements before an input repeats (broadcast) */
    int32_t input1_offset, input2_offset, output_offset;
    int32_t left_shift;
    int32_t input1_multiplier, input1_shift;
    int32_t input2_multiplier, input2_shift;
    int32_t output_multiplier, output_shift;
    int32_t act_min, act_max;
    int32_t fast;                    /* mq_add_s8's table path is exact and no input broadcasts */
} mq_add_params_t;

typedef struct {
    uint32_t size, input1_inner, input2_inner;
    int32_t input1_offset, input2_offset, output_offset;
    int32_t output_multiplier, output_shift;
    int32_t act_min, act_max;
} mq_mul_params_t;

typedef struct {
    uint16_t rows, depth;
    int32_t input_multiplier, input_left_shift, diff_min;
} mq_softmax_params_t;

/* ---- operators (one file each) ------------------------------------------ */
/* filter: the code generator's layout (codegen/emit.py, pair_channels); bias: per channel,
 * the layer's bias plus input_offset * the channel's sum of weights (folded_conv_bias), never
 * NULL; scratch: conv_scratch_bytes, plus conv_prepared_pairs_bytes for p->prepared_pairs
 * pairs (see conv2d_s8.c). */
void mq_conv2d_s8(const mq_conv_params_t *p, const int8_t *input, const int8_t *filter,
                  const int32_t *bias, const int32_t *multiplier, const int32_t *shift,
                  int8_t *output, int8_t *scratch);
/* scratch: mq_depthwise_scratch_bytes(p) bytes, 4-byte aligned (NULL when that is 0); the
 * code generator computes the same formula (codegen/emit.py, depthwise_scratch_bytes). */
void mq_depthwise_conv2d_s8(const mq_conv_params_t *p, const int8_t *input,
                            const int8_t *filter, const int32_t *bias,
                            const int32_t *multiplier, const int32_t *shift, int8_t *output,
                            int8_t *scratch);
uint32_t mq_depthwise_scratch_bytes(const mq_conv_params_t *p);
int mq_depthwise_prepared(const mq_conv_params_t *p);
int mq_depthwise_rows(const mq_conv_params_t *p);
void mq_fully_connected_s8(const mq_fc_params_t *p, const int8_t *input, const int8_t *filter,
                           const int32_t *bias, const int32_t *multiplier,
                           const int32_t *shift, int8_t *output);
void mq_avg_pool2d_s8(const mq_pool_params_t *p, const int8_t *input, int8_t *output);
void mq_max_pool2d_s8(const mq_pool_params_t *p, const int8_t *input, int8_t *output);
void mq_mean_s8(const mq_mean_params_t *p, const int8_t *input, int8_t *output);
/* scratch: MQ_ADD_SCRATCH_BYTES, 4-byte aligned, when p->fast (else unused, may be NULL);
 * the code generator reserves the same (codegen/emit.py, ADD_SCRATCH_BYTES). */
#define MQ_ADD_SCRATCH_BYTES (2u * 256u * 4u)
void mq_add_s8(const mq_add_params_t *p, const int8_t *input1, const int8_t *input2,
               int8_t *output, int8_t *scratch);
void mq_mul_s8(const mq_mul_params_t *p, const int8_t *input1, const int8_t *input2,
               int8_t *output);
void mq_softmax_s8(const mq_softmax_params_t *p, const int8_t *input, int8_t *output);

#ifdef __cplusplus
}
#endif
#endif /* MQ_NN_H */
