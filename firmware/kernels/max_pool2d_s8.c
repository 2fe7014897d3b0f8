/* MAX_POOL_2D, int8. */
#include "mq_nn.h"

void mq_max_pool2d_s8(const mq_pool_params_t *p, const int8_t *input, int8_t *output)
{
    for (int oy = 0; oy < p->out_h; ++oy) {
        const int iy0 = oy * p->stride_h - p->pad_top;
        int ky_start, ky_end;
        mq_window(iy0, p->k_h, p->in_h, &ky_start, &ky_end);
        for (int ox = 0; ox < p->out_w; ++ox) {
            const int ix0 = ox * p->stride_w - p->pad_left;
            int kx_start, kx_end;
            mq_window(ix0, p->k_w, p->in_w, &kx_start, &kx_end);
            for (int c = 0; c < p->channels; ++c) {
                int32_t best = INT8_MIN;
                for (int ky = ky_start; ky < ky_end; ++ky) {
                    for (int kx = kx_start; kx < kx_end; ++kx) {
                        const int32_t v =
                            input[((int32_t)(iy0 + ky) * p->in_w + ix0 + kx) * p->channels + c];
                        best = v > best ? v : best;
                    }
                }
                output[((int32_t)oy * p->out_w + ox) * p->channels + c] =
                    (int8_t)mq_clamp(best, p->act_min, p->act_max);
            }
        }
    }
}
