// Shared building blocks of the text encoders, the UNet and the VAE.
#include "models/ops.h"

#include "core/common.h"
#include "io/weights.h"
#include "models/fused.h"

#include <cmath>

namespace koala::models {

LinearW LinearW::take(io::WeightStore& w, const std::string& prefix, std::int64_t in, std::int64_t out, bool withBias) {
    LinearW l;
    l.weight = w.take(prefix + ".weight", {out, in});
    if (withBias) l.bias = w.take(prefix + ".bias", {out});
    return l;
}

at::Tensor Conv2dW::operator()(const at::Tensor& x) const {
    return at::conv2d(x, weight, bias, {stride, stride}, {padding, padding});
}

Conv2dW Conv2dW::take(io::WeightStore& w, const std::string& prefix, std::int64_t in, std::int64_t out, int kernel,
                      int stride, int padding) {
    Conv2dW c;
    c.weight = w.take(prefix + ".weight", {out, in, kernel, kernel});
    c.bias = w.take(prefix + ".bias", {out});
    c.stride = stride;
    c.padding = padding < 0 ? kernel / 2 : padding;
    return c;
}

GroupNormW GroupNormW::take(io::WeightStore& w, const std::string& prefix, std::int64_t channels, int groups,
                            double eps) {
    GroupNormW g;
    g.weight = w.take(prefix + ".weight", {channels});
    g.bias = w.take(prefix + ".bias", {channels});
    g.groups = groups;
    g.eps = eps;
    return g;
}

LayerNormW LayerNormW::take(io::WeightStore& w, const std::string& prefix, std::int64_t dim, double eps) {
    LayerNormW l;
    l.weight = w.take(prefix + ".weight", {dim});
    l.bias = w.take(prefix + ".bias", {dim});
    l.eps = eps;
    return l;
}

at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int heads, const at::Tensor& mask) {
    const auto b = q.size(0), tq = q.size(1), tk = k.size(1), c = q.size(2);
    const auto d = c / heads;
    auto qh = q.view({b, tq, heads, d}).transpose(1, 2);
    auto kh = k.view({b, tk, heads, d}).transpose(1, 2);
    auto vh = v.view({b, tk, heads, d}).transpose(1, 2);
    at::Tensor o;
#if KOALA_TORCH_MAJOR >= 2
    // Flash / memory-efficient kernels on CUDA; a fused kernel on CPU. Default scale is d^-0.5.
    o = at::scaled_dot_product_attention(qh, kh, vh, mask.defined() ? c10::optional<at::Tensor>(mask) : c10::nullopt);
#else
    const double scale = 1.0 / std::sqrt(double(d));
    auto scores = at::matmul(qh, kh.transpose(-1, -2)).mul_(scale);
    if (mask.defined()) scores.add_(mask);
    const bool upcast = scores.scalar_type() != at::kFloat && scores.device().is_cpu();
    auto probs = upcast ? at::softmax(scores.to(at::kFloat), -1).to(scores.scalar_type()) : at::softmax(scores, -1);
    o = at::matmul(probs, vh);
#endif
    return o.transpose(1, 2).reshape({b, tq, c});
}

bool isKnownActivation(const std::string& name) {
    return name == "silu" || name == "swish" || name == "gelu" || name == "gelu_new" || name == "gelu_pytorch_tanh" ||
           name == "quick_gelu";
}

at::Tensor activation(const at::Tensor& x, const std::string& name) {
    if (name == "silu" || name == "swish") return at::silu(x);
    if (name == "gelu") return at::gelu(x);
    if (name == "gelu_new" || name == "gelu_pytorch_tanh") return at::gelu(x, "tanh");
    if (name == "quick_gelu") return x * at::sigmoid(x * 1.702);
    fail(ErrorKind::ModelFormat, "unsupported activation '" + name + "'");
}

at::Tensor ResnetW::operator()(const at::Tensor& x, const at::Tensor& temb) const {
    auto h = conv1(groupNormSilu(norm1, x));
    if (timeEmbProj.weight.defined() && temb.defined()) {
        auto t = timeEmbProj(at::silu(temb));
        h = h + t.unsqueeze(-1).unsqueeze(-1);
    }
    h = conv2(groupNormSilu(norm2, h));
    return shortcut.weight.defined() ? shortcut(x) + h : x + h;
}

ResnetW ResnetW::take(io::WeightStore& w, const std::string& prefix, std::int64_t in, std::int64_t out,
                      std::int64_t tembDim, int groups, double eps) {
    ResnetW r;
    r.norm1 = GroupNormW::take(w, prefix + ".norm1", in, groups, eps);
    r.conv1 = Conv2dW::take(w, prefix + ".conv1", in, out, 3);
    if (tembDim > 0) r.timeEmbProj = LinearW::take(w, prefix + ".time_emb_proj", tembDim, out);
    r.norm2 = GroupNormW::take(w, prefix + ".norm2", out, groups, eps);
    r.conv2 = Conv2dW::take(w, prefix + ".conv2", out, out, 3);
    if (in != out) r.shortcut = Conv2dW::take(w, prefix + ".conv_shortcut", in, out, 1);
    return r;
}

std::int64_t ResnetW::numel() const {
    std::int64_t n = norm1.numel() + conv1.numel() + norm2.numel() + conv2.numel();
    if (timeEmbProj.weight.defined()) n += timeEmbProj.numel();
    if (shortcut.weight.defined()) n += shortcut.numel();
    return n;
}

}  // namespace koala::models
