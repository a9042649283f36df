// AutoencoderKL decoder (internal), as diffusers' AutoencoderKL._decode computes it.
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <vector>

namespace koala::io {
class Config;
class WeightStore;
}  // namespace koala::io

namespace koala::models {

struct VaeConfig {
    std::vector<int> blockOutChannels{128, 256, 512, 512};
    int layersPerBlock = 2, latentChannels = 4, normNumGroups = 32, outChannels = 3;
    double scalingFactor = 0.13025;
    bool forceUpcast = true;
    bool usePostQuantConv = true;
    bool midBlockAddAttention = true;
    int inChannels = 3;        // encoder input (img2img / inpainting)
    bool useQuantConv = true;  // encoder's quant_conv
    static VaeConfig fromConfig(
        const io::Config& cfg);  // unsupported values (latents_mean, shift_factor...) name the key
};

class VaeDecoder {
public:
    // Legacy attention names (query/key/value/proj_attn, [C,C,1,1] weights) are handled through the WeightStore
    // aliases this function installs.
    static std::shared_ptr<VaeDecoder> load(const VaeConfig& cfg, io::WeightStore& weights);
    // z: latents already divided by scaling_factor, [B,4,h,w]. Returns the decoded sample [B,3,8h,8w] (about
    // [-1,1]) in the decoder's dtype. Tiled decoding when tile > 0 (latent tile size, with overlap blending).
    at::Tensor decode(const at::Tensor& z, int tileLatent = 0) const;

    const VaeConfig& config() const { return m_cfg; }
    at::Device device() const;
    at::ScalarType dtype() const;
    void to(at::Device device, at::ScalarType dtype);  // keeps the weights' memory format
    // A new decoder holding this one's weights converted to `dtype` on `device` (this one is left as it is): the
    // fp32 retry of a half-precision VAE that overflowed, without changing a VAE other Models share.
    std::shared_ptr<VaeDecoder> converted(at::Device device, at::ScalarType dtype) const;
    // Stores every 4-D convolution weight as channels_last (replacing the stored tensors, no copies kept). Decoded
    // values are unchanged; the decoded sample then comes out channels_last. Not thread-safe against a decode.
    void toChannelsLast();
    // The 4-D convolution weights (handles sharing the stored tensors), for inspection.
    std::vector<at::Tensor> convWeights() const;

    struct Weights;
    ~VaeDecoder();

private:
    VaeDecoder() = default;
    VaeConfig m_cfg;
    std::unique_ptr<Weights> m_w;
};

// ---- img2img / inpainting -----------------------------------------------------------------------------------------
// AutoencoderKL's encoder: Encoder (conv_in, DownEncoderBlock2D with a right/bottom-padded stride-2 conv, mid block,
// GroupNorm, SiLU, conv_out) + quant_conv, as diffusers' AutoencoderKL._encode (no tiling, no slicing). The
// weights are "encoder.*" and "quant_conv.*" in the same vae/ files as the decoder's.
class VaeEncoder {
public:
    static std::shared_ptr<VaeEncoder> load(const VaeConfig& cfg, io::WeightStore& weights);
    // x: [B,in,H,W] in [-1,1] (H, W multiples of 8). Returns the posterior's moments [B,2·latent,H/8,W/8] (mean, then
    // logvar) in the encoder's dtype.
    at::Tensor encode(const at::Tensor& x) const;
    const VaeConfig& config() const { return m_cfg; }
    at::Device device() const;
    at::ScalarType dtype() const;

    struct Weights;
    ~VaeEncoder();

private:
    VaeEncoder() = default;
    VaeConfig m_cfg;
    std::unique_ptr<Weights> m_w;
};

// DiagonalGaussianDistribution: mean, logvar = chunk(moments, 2, dim=1); logvar.clamp(-30, 20);
// std = exp(0.5·logvar).
struct VaePosterior {
    at::Tensor mean, std;
};
VaePosterior vaePosterior(const at::Tensor& moments);

}  // namespace koala::models
