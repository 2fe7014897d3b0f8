/* CONV_2D, int8 activations, per-channel int8 weights, int32 bias. */
#include "mq_nn.h"

void mq_conv2d_s8(const mq_conv_params_t *p, const int8_t *input, const int8_t *filter,
                  const int32_t *bias, const int32_t *multiplier, const int32_t *shift,
                  int8_t *output)
{
    const int in_c = p->in_c;
    for (int oy = 0; oy < p->out_h; ++oy) {
        const int iy0 = oy * p->stride_h - p->pad_top;
        for (int ox = 0; ox < p->out_w; ++ox) {
            const int ix0 = ox * p->stride_w - p->pad_left;
            for (int oc = 0; oc < p->out_c; ++oc) {
                const int8_t *f = filter + (int32_t)oc * p->k_h * p->k_w * in_c;
                int32_t acc = 0;
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
                        const int8_t *in = input + ((int32_t)iy * p->in_w + ix) * in_c;
                        const int8_t *w = f + (ky * p->k_w + kx) * in_c;
                        for (int ic = 0; ic < in_c; ++ic) {
                            acc += (int32_t)w[ic] * ((int32_t)in[ic] + p->input_offset);
                        }
                    }
                }
                if (bias) {
                    acc += bias[oc];
                }
                acc = mq_multiply_by_quantized_multiplier(acc, multiplier[oc], shift[oc]);
                acc += p->output_offset;
                output[((int32_t)oy * p->out_w + ox) * p->out_c + oc] =
                    (int8_t)mq_clamp(acc, p->act_min, p->act_max);
            }
        }
    }
}
