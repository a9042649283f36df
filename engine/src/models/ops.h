// Building blocks shared by the CLIP text encoders, the UNet and the VAE (internal). Plain functions on at::Tensor
// so that each model is a struct of weight tensors plus a forward function; no torch::nn, no copies of weights.
#pragma once

#include <ATen/ATen.h>

#include <string>

namespace koala::io {
class WeightStore;
}

namespace koala::models {

// Linear layer: weight [out,in], bias [out] or undefined.
struct LinearW {
    at::Tensor weight, bias;
    at::Tensor operator()(const at::Tensor& x) const { return at::linear(x, weight, bias); }
    // Takes "<prefix>.weight" [out,in] and, if withBias, "<prefix>.bias" [out].
    static LinearW take(io::WeightStore& w, const std::string& prefix, std::int64_t in, std::int64_t out,
                        bool withBias = true);
    std::int64_t numel() const { return weight.numel() + (bias.defined() ? bias.numel() : 0); }
};

// Conv2d: weight [out,in,k,k], bias [out].
struct Conv2dW {
    at::Tensor weight, bias;
    int stride = 1, padding = 0;
    at::Tensor operator()(const at::Tensor& x) const;
    static Conv2dW take(io::WeightStore& w, const std::string& prefix, std::int64_t in, std::int64_t out, int kernel,
                        int stride = 1, int padding = -1 /* -1 = kernel/2 */);
    std::int64_t numel() const { return weight.numel() + bias.numel(); }
};

// GroupNorm / LayerNorm with affine weight and bias.
struct GroupNormW {
    at::Tensor weight, bias;
    int groups = 32;
    double eps = 1e-5;
    at::Tensor operator()(const at::Tensor& x) const { return at::group_norm(x, groups, weight, bias, eps); }
    static GroupNormW take(io::WeightStore& w, const std::string& prefix, std::int64_t channels, int groups,
                           double eps);
    std::int64_t numel() const { return weight.numel() + bias.numel(); }
};

struct LayerNormW {
    at::Tensor weight, bias;
    double eps = 1e-5;
    at::Tensor operator()(const at::Tensor& x) const { return at::layer_norm(x, {weight.size(0)}, weight, bias, eps); }
    static LayerNormW take(io::WeightStore& w, const std::string& prefix, std::int64_t dim, double eps);
    std::int64_t numel() const { return weight.numel() + bias.numel(); }
};

// Multi-head attention core: q [B,Tq,H*D], k/v [B,Tk,H*D] → [B,Tq,H*D]. scale = D^-0.5. `mask` (optional) is added
// to the scores ([B or 1, 1, Tq, Tk]). Uses at::scaled_dot_product_attention on LibTorch 2.x (flash / memory-efficient
// kernels on CUDA) and the plain softmax formula on LibTorch 1.13. Softmax in float32 for half inputs on CPU.
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int heads,
                     const at::Tensor& mask = at::Tensor());

// Activations by config name: "silu", "gelu" (erf), "gelu_new"/"gelu_pytorch_tanh" (tanh approx), "quick_gelu".
// Throws koala::Error(ModelFormat) for an unknown name (the caller names the config key).
at::Tensor activation(const at::Tensor& x, const std::string& name);
bool isKnownActivation(const std::string& name);

// ResnetBlock2D (diffusers resnet.py), "default" time scale shift, output_scale_factor 1.
struct ResnetW {
    GroupNormW norm1, norm2;
    Conv2dW conv1, conv2;
    LinearW timeEmbProj;  // undefined weight when the block has no time embedding (VAE)
    Conv2dW shortcut;     // undefined weight when in == out
    // x [B,in,H,W], temb [B,T] (SiLU is applied here) or undefined.
    at::Tensor operator()(const at::Tensor& x, const at::Tensor& temb) const;
    // Takes "<prefix>.norm1/conv1/time_emb_proj/norm2/conv2/conv_shortcut". tembDim 0 = no time_emb_proj.
    static ResnetW take(io::WeightStore& w, const std::string& prefix, std::int64_t in, std::int64_t out,
                        std::int64_t tembDim, int groups, double eps);
    std::int64_t numel() const;
};

}  // namespace koala::models
