// AutoencoderKL decoder, following diffusers' autoencoder_kl.py (_decode, tiled_decode) and vae.py (Decoder).
#include "models/vae.h"

#include "core/common.h"
#include "io/model_folder.h"
#include "io/weights.h"
#include "models/fused.h"
#include "models/ops.h"

#include <c10/core/GradMode.h>
#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

namespace koala::models {

namespace {

// diffusers builds every decoder GroupNorm (resnets, mid attention, conv_norm_out) with eps 1e-6.
constexpr double kNormEps = 1e-6;

// Legacy (pre-0.14 diffusers / LDM-converted) names of the mid-block attention projections.
std::vector<std::string> legacyAttentionNames(const std::string& name) {
    std::vector<std::string> out{name};
    if (name.find("mid_block.attentions.") == std::string::npos) return out;
    static const std::pair<const char*, const char*> renames[] = {
        {".to_q.", ".query."}, {".to_k.", ".key."}, {".to_v.", ".value."}, {".to_out.0.", ".proj_attn."}};
    for (const auto& [now, legacy] : renames) {
        auto pos = name.find(now);
        if (pos != std::string::npos) {
            std::string alt = name;
            alt.replace(pos, std::string(now).size(), legacy);
            out.push_back(alt);
        }
    }
    return out;
}

// UNetMidBlock2D of the encoder and of the decoder alike: resnet, single-head self-attention (optional), resnet.
struct MidBlockW {
    ResnetW resnet0, resnet1;
    GroupNormW attnNorm;  // weight undefined when mid_block_add_attention is false
    LinearW q, k, v, out;

    // PREFIX is "encoder." or "decoder."; CH the block's channels (the top of block_out_channels).
    static MidBlockW take(io::WeightStore& w, const std::string& prefix, const VaeConfig& cfg, std::int64_t ch) {
        const std::string mp = prefix + "mid_block.";
        const int groups = cfg.normNumGroups;
        MidBlockW m;
        m.resnet0 = ResnetW::take(w, mp + "resnets.0", ch, ch, 0, groups, kNormEps);
        if (cfg.midBlockAddAttention) {
            const std::string ap = mp + "attentions.0.";
            m.attnNorm = GroupNormW::take(w, ap + "group_norm", ch, groups, kNormEps);
            m.q = LinearW::take(w, ap + "to_q", ch, ch);
            m.k = LinearW::take(w, ap + "to_k", ch, ch);
            m.v = LinearW::take(w, ap + "to_v", ch, ch);
            m.out = LinearW::take(w, ap + "to_out.0", ch, ch);
        }
        m.resnet1 = ResnetW::take(w, mp + "resnets.1", ch, ch, 0, groups, kNormEps);
        return m;
    }

    at::Tensor operator()(at::Tensor h) const {
        h = resnet0(h, at::Tensor());
        if (attnNorm.weight.defined()) {
            // Single-head self-attention over the H*W positions with a residual connection
            // (diffusers' Attention built by _from_deprecated_attn_block).
            const auto b = h.size(0), c = h.size(1), hh = h.size(2), ww = h.size(3);
            at::Tensor x = attnNorm(h).view({b, c, hh * ww}).transpose(1, 2);
            x = attention(q(x), k(x), v(x), 1);
            x = out(x).transpose(1, 2).reshape({b, c, hh, ww});
            h = x + h;
        }
        return resnet1(h, at::Tensor());
    }
};

}  // namespace

VaeConfig VaeConfig::fromConfig(const io::Config& cfg) {
    VaeConfig c;
    c.blockOutChannels.clear();
    for (long long v : cfg.getIntList("block_out_channels")) c.blockOutChannels.push_back(int(v));
    c.layersPerBlock = int(cfg.getInt("layers_per_block", 1));
    c.latentChannels = int(cfg.getInt("latent_channels", 4));
    c.normNumGroups = int(cfg.getInt("norm_num_groups", 32));
    c.outChannels = int(cfg.getInt("out_channels", 3));
    c.scalingFactor = cfg.getDouble("scaling_factor", 0.18215);
    c.forceUpcast = cfg.getBool("force_upcast", true);
    c.usePostQuantConv = cfg.getBool("use_post_quant_conv", true);
    c.midBlockAddAttention = cfg.getBool("mid_block_add_attention", true);
    c.inChannels = int(cfg.getInt("in_channels", 3));  // img2img / inpainting: the encoder
    c.useQuantConv = cfg.getBool("use_quant_conv", true);

    // The SDXL pipeline only scales by scaling_factor; these would change the latent space (SD3/Flux VAEs).
    for (const char* key : {"latents_mean", "latents_std", "shift_factor"})
        if (cfg.has(key)) cfg.unsupported(key, "only VAEs without latent normalisation are supported");
    if (cfg.has("act_fn") && cfg.getString("act_fn") != "silu") cfg.unsupported("act_fn", "expected silu");
    if (cfg.has("norm_type") && cfg.getString("norm_type") != "group") cfg.unsupported("norm_type", "expected group");

    if (c.blockOutChannels.empty()) cfg.unsupported("block_out_channels", "must not be empty");
    if (cfg.has("up_block_types")) {
        auto types = cfg.getStringList("up_block_types");
        if (types.size() != c.blockOutChannels.size())
            cfg.unsupported("up_block_types", "must have one entry per block_out_channels entry");
        for (const auto& t : types)
            if (t != "UpDecoderBlock2D") cfg.unsupported("up_block_types", t + " (expected UpDecoderBlock2D)");
    }
    if (c.layersPerBlock < 1) cfg.unsupported("layers_per_block", "must be at least 1");
    if (c.latentChannels < 1) cfg.unsupported("latent_channels", "must be positive");
    if (c.outChannels < 1) cfg.unsupported("out_channels", "must be positive");
    if (c.normNumGroups < 1) cfg.unsupported("norm_num_groups", "must be positive");
    for (int ch : c.blockOutChannels)
        if (ch <= 0 || ch % c.normNumGroups != 0)
            cfg.unsupported("norm_num_groups", "must divide every block_out_channels entry");
    if (!(c.scalingFactor > 0)) cfg.unsupported("scaling_factor", "must be positive");
    return c;
}

struct VaeDecoder::Weights {
    struct UpBlock {
        std::vector<ResnetW> resnets;
        Conv2dW upsample;  // weight undefined for the last block
    };
    Conv2dW postQuantConv;  // weight undefined when use_post_quant_conv is false
    Conv2dW convIn;
    MidBlockW mid;
    std::vector<UpBlock> upBlocks;
    GroupNormW convNormOut;
    Conv2dW convOut;

    void forEach(const std::function<void(at::Tensor&)>& fn) {
        auto conv = [&](Conv2dW& c) {
            fn(c.weight);
            fn(c.bias);
        };
        auto gn = [&](GroupNormW& g) {
            fn(g.weight);
            fn(g.bias);
        };
        auto lin = [&](LinearW& l) {
            fn(l.weight);
            fn(l.bias);
        };
        auto res = [&](ResnetW& r) {
            gn(r.norm1);
            gn(r.norm2);
            conv(r.conv1);
            conv(r.conv2);
            lin(r.timeEmbProj);
            conv(r.shortcut);
        };
        conv(postQuantConv);
        conv(convIn);
        res(mid.resnet0);
        gn(mid.attnNorm);
        lin(mid.q);
        lin(mid.k);
        lin(mid.v);
        lin(mid.out);
        res(mid.resnet1);
        for (auto& b : upBlocks) {
            for (auto& r : b.resnets) res(r);
            conv(b.upsample);
        }
        gn(convNormOut);
        conv(convOut);
    }
};

VaeDecoder::~VaeDecoder() = default;

std::shared_ptr<VaeDecoder> VaeDecoder::load(const VaeConfig& cfg, io::WeightStore& w) {
    std::shared_ptr<VaeDecoder> dec(new VaeDecoder());
    dec->m_cfg = cfg;
    dec->m_w = std::make_unique<Weights>();
    Weights& m = *dec->m_w;
    w.setAliases(legacyAttentionNames);

    const int groups = cfg.normNumGroups;
    const std::int64_t lat = cfg.latentChannels;
    const std::int64_t top = cfg.blockOutChannels.back();
    if (cfg.usePostQuantConv) m.postQuantConv = Conv2dW::take(w, "post_quant_conv", lat, lat, 1);
    m.convIn = Conv2dW::take(w, "decoder.conv_in", lat, top, 3);
    m.mid = MidBlockW::take(w, "decoder.", cfg, top);

    const int levels = int(cfg.blockOutChannels.size());
    std::int64_t prev = top;
    m.upBlocks.resize(std::size_t(levels));
    for (int i = 0; i < levels; ++i) {
        const std::int64_t outCh = cfg.blockOutChannels[std::size_t(levels - 1 - i)];
        const std::string bp = "decoder.up_blocks." + std::to_string(i) + ".";
        auto& b = m.upBlocks[std::size_t(i)];
        for (int r = 0; r <= cfg.layersPerBlock; ++r)
            b.resnets.push_back(ResnetW::take(w, bp + "resnets." + std::to_string(r), r == 0 ? prev : outCh, outCh, 0,
                                              groups, kNormEps));
        if (i + 1 < levels) b.upsample = Conv2dW::take(w, bp + "upsamplers.0.conv", outCh, outCh, 3);
        prev = outCh;
    }
    const std::int64_t bottom = cfg.blockOutChannels.front();
    m.convNormOut = GroupNormW::take(w, "decoder.conv_norm_out", bottom, groups, kNormEps);
    m.convOut = Conv2dW::take(w, "decoder.conv_out", bottom, cfg.outChannels, 3);
    return dec;
}

at::Device VaeDecoder::device() const {
    return m_w->convIn.weight.defined() ? m_w->convIn.weight.device() : at::Device(at::kCPU);
}

at::ScalarType VaeDecoder::dtype() const {
    return m_w->convIn.weight.defined() ? m_w->convIn.weight.scalar_type() : at::kFloat;
}

void VaeDecoder::to(at::Device device, at::ScalarType dtype) {
    m_w->forEach([&](at::Tensor& t) {
        if (t.defined()) t = t.to(device, dtype);
    });
}

std::shared_ptr<VaeDecoder> VaeDecoder::converted(at::Device device, at::ScalarType dtype) const {
    std::shared_ptr<VaeDecoder> copy(new VaeDecoder());
    copy->m_cfg = m_cfg;
    copy->m_w = std::make_unique<Weights>(*m_w);  // tensor handles: to() below rebinds them in the copy only
    copy->to(device, dtype);
    return copy;
}

namespace {

// Every Conv2dW of the decoder. The mid attention projections are 2-D linear weights (legacy [C,C,1,1] ones are
// reshaped when taken), and 1-D norms/biases have no layout.
template <typename W, typename Fn>
void forEachConv(W& m, Fn&& fn) {
    auto res = [&](auto& r) {
        fn(r.conv1);
        fn(r.conv2);
        fn(r.shortcut);
    };
    fn(m.postQuantConv);
    fn(m.convIn);
    res(m.mid.resnet0);
    res(m.mid.resnet1);
    for (auto& b : m.upBlocks) {
        for (auto& r : b.resnets) res(r);
        fn(b.upsample);
    }
    fn(m.convOut);
}

}  // namespace

void VaeDecoder::toChannelsLast() {
    forEachConv(*m_w, [](Conv2dW& c) {
        // Assigning drops the NCHW tensor (its storage is freed unless someone else holds it).
        if (c.weight.defined() && c.weight.dim() == 4) c.weight = c.weight.contiguous(at::MemoryFormat::ChannelsLast);
    });
}

std::vector<at::Tensor> VaeDecoder::convWeights() const {
    std::vector<at::Tensor> out;
    forEachConv(*m_w, [&](const Conv2dW& c) {
        if (c.weight.defined()) out.push_back(c.weight);
    });
    return out;
}

// post_quant_conv + Decoder on one (tile of a) latent.
static at::Tensor decodeWhole(const VaeDecoder::Weights& m, const at::Tensor& z) {
    at::Tensor h = m.postQuantConv.weight.defined() ? m.postQuantConv(z) : z;
    h = m.mid(m.convIn(h));
    for (const auto& blk : m.upBlocks) {
        for (const auto& r : blk.resnets) h = r(h, at::Tensor());
        if (blk.upsample.weight.defined()) {
            h = at::upsample_nearest2d(h, {h.size(2) * 2, h.size(3) * 2});
            h = blk.upsample(h);
        }
    }
    h = groupNormSilu(m.convNormOut, h);
    return m.convOut(h);
}

namespace {

// Tile start positions along one axis: tiles of `tile` covering [0, size) with at least `overlap` shared latents,
// spread evenly so that every tile is full-size (no thin edge tiles with their own GroupNorm statistics).
std::vector<std::int64_t> tileStarts(std::int64_t size, std::int64_t tile, std::int64_t overlap) {
    if (size <= tile) return {0};
    const std::int64_t stride = tile - overlap;
    const std::int64_t n = (size - tile + stride - 1) / stride + 1;
    std::vector<std::int64_t> s;
    for (std::int64_t k = 0; k < n; ++k) s.push_back((k * (size - tile) + (n - 1) / 2) / (n - 1));
    return s;
}

// Blend weight of tile k along one axis, in pixels: a linear ramp across the overlap with each neighbour (so two
// overlapping tiles cross-fade linearly, as diffusers' blend_h/blend_v do), 1 elsewhere. Strictly positive, so the
// normalised sum is defined everywhere.
at::Tensor axisWeight(const std::vector<std::int64_t>& starts, std::size_t k, std::int64_t tile, std::int64_t size,
                      std::int64_t scale) {
    const std::int64_t len = std::min(tile, size - starts[k]) * scale;
    std::vector<float> wgt(std::size_t(len), 1.0f);
    if (k > 0) {
        const std::int64_t ramp = (starts[k - 1] + tile - starts[k]) * scale;
        for (std::int64_t y = 0; y < ramp && y < len; ++y)
            wgt[std::size_t(y)] = std::min(wgt[std::size_t(y)], float((y + 0.5) / double(ramp)));
    }
    if (k + 1 < starts.size()) {
        const std::int64_t ramp = (starts[k] + tile - starts[k + 1]) * scale;
        for (std::int64_t y = 0; y < ramp && y < len; ++y) {
            auto& v = wgt[std::size_t(len - 1 - y)];
            v = std::min(v, float((y + 0.5) / double(ramp)));
        }
    }
    return at::tensor(wgt);
}

}  // namespace

at::Tensor VaeDecoder::decode(const at::Tensor& zIn, int tileLatent) const {
    c10::NoGradGuard noGrad;
    const Weights& m = *m_w;
    if (!m.convIn.weight.defined())
        fail(ErrorKind::Internal, "VAE used before its weights were loaded (check WeightStore::finish)");
    if (zIn.dim() != 4 || zIn.size(1) != m_cfg.latentChannels)
        fail(ErrorKind::InvalidArgument,
             "VAE decode expects latents [B," + std::to_string(m_cfg.latentChannels) + ",h,w]");
    if (tileLatent < 0) fail(ErrorKind::InvalidArgument, "VAE tile size must not be negative");
    const at::Tensor z = zIn.to(device(), dtype());
    const std::int64_t h = z.size(2), w = z.size(3);
    if (tileLatent == 0 || (h <= tileLatent && w <= tileLatent)) return decodeWhole(m, z);

    const std::int64_t tile = std::max(tileLatent, 4);
    const std::int64_t overlap = std::max<std::int64_t>(1, tile / 4);  // diffusers' tile_overlap_factor 0.25
    const std::int64_t scale = std::int64_t(1) << (m_cfg.blockOutChannels.size() - 1);
    const auto rows = tileStarts(h, tile, overlap), cols = tileStarts(w, tile, overlap);

    // Accumulate weighted tiles in float32 (fp16 sums of many tiles lose precision), then normalise.
    const auto accOpts = at::TensorOptions().dtype(at::kFloat).device(z.device());
    at::Tensor acc = at::zeros({z.size(0), m_cfg.outChannels, h * scale, w * scale}, accOpts);
    at::Tensor wsum = at::zeros({1, 1, h * scale, w * scale}, accOpts);
    for (std::size_t i = 0; i < rows.size(); ++i) {
        const at::Tensor wy = axisWeight(rows, i, tile, h, scale).to(z.device());
        for (std::size_t j = 0; j < cols.size(); ++j) {
            const at::Tensor wx = axisWeight(cols, j, tile, w, scale).to(z.device());
            at::Tensor zt =
                z.slice(2, rows[i], std::min(rows[i] + tile, h)).slice(3, cols[j], std::min(cols[j] + tile, w));
            at::Tensor dt = decodeWhole(m, zt).to(at::kFloat);
            at::Tensor wt = (wy.view({-1, 1}) * wx.view({1, -1})).view({1, 1, wy.size(0), wx.size(0)});
            const std::int64_t y0 = rows[i] * scale, x0 = cols[j] * scale;
            acc.slice(2, y0, y0 + dt.size(2)).slice(3, x0, x0 + dt.size(3)).add_(dt * wt);
            wsum.slice(2, y0, y0 + dt.size(2)).slice(3, x0, x0 + dt.size(3)).add_(wt);
        }
    }
    return (acc / wsum).to(dtype());
}

// ---- img2img / inpainting: the encoder ------------------------------------------------------------------------------

struct VaeEncoder::Weights {
    struct DownBlock {
        std::vector<ResnetW> resnets;
        Conv2dW downsample;  // weight undefined for the last block
    };
    Conv2dW convIn;
    std::vector<DownBlock> downBlocks;
    MidBlockW mid;
    GroupNormW convNormOut;
    Conv2dW convOut;
    Conv2dW quantConv;  // weight undefined when use_quant_conv is false
};

VaeEncoder::~VaeEncoder() = default;

std::shared_ptr<VaeEncoder> VaeEncoder::load(const VaeConfig& cfg, io::WeightStore& w) {
    std::shared_ptr<VaeEncoder> enc(new VaeEncoder());
    enc->m_cfg = cfg;
    enc->m_w = std::make_unique<Weights>();
    Weights& m = *enc->m_w;
    w.setAliases(legacyAttentionNames);
    const int groups = cfg.normNumGroups;
    const std::int64_t lat2 = 2 * std::int64_t(cfg.latentChannels);
    const std::int64_t first = cfg.blockOutChannels.front(), top = cfg.blockOutChannels.back();
    m.convIn = Conv2dW::take(w, "encoder.conv_in", cfg.inChannels, first, 3);
    std::int64_t prev = first;
    const int levels = int(cfg.blockOutChannels.size());
    m.downBlocks.resize(std::size_t(levels));
    for (int i = 0; i < levels; ++i) {
        const std::int64_t outCh = cfg.blockOutChannels[std::size_t(i)];
        const std::string bp = "encoder.down_blocks." + std::to_string(i) + ".";
        auto& b = m.downBlocks[std::size_t(i)];
        for (int r = 0; r < cfg.layersPerBlock; ++r)
            b.resnets.push_back(ResnetW::take(w, bp + "resnets." + std::to_string(r), r == 0 ? prev : outCh, outCh, 0,
                                              groups, kNormEps));
        // Downsample2D(padding=0): F.pad(x, (0,1,0,1)) then a 3x3 stride-2 convolution without padding.
        if (i + 1 < levels) b.downsample = Conv2dW::take(w, bp + "downsamplers.0.conv", outCh, outCh, 3, 2, 0);
        prev = outCh;
    }
    m.mid = MidBlockW::take(w, "encoder.", cfg, top);
    m.convNormOut = GroupNormW::take(w, "encoder.conv_norm_out", top, groups, kNormEps);
    m.convOut = Conv2dW::take(w, "encoder.conv_out", top, lat2, 3);
    if (cfg.useQuantConv) m.quantConv = Conv2dW::take(w, "quant_conv", lat2, lat2, 1);
    return enc;
}

at::Device VaeEncoder::device() const {
    return m_w->convIn.weight.defined() ? m_w->convIn.weight.device() : at::Device(at::kCPU);
}

at::ScalarType VaeEncoder::dtype() const {
    return m_w->convIn.weight.defined() ? m_w->convIn.weight.scalar_type() : at::kFloat;
}

at::Tensor VaeEncoder::encode(const at::Tensor& xIn) const {
    c10::NoGradGuard noGrad;
    const Weights& m = *m_w;
    if (!m.convIn.weight.defined())
        fail(ErrorKind::Internal, "VAE encoder used before its weights were loaded (check WeightStore::finish)");
    if (xIn.dim() != 4 || xIn.size(1) != m_cfg.inChannels)
        fail(ErrorKind::InvalidArgument, "VAE encode expects images [B," + std::to_string(m_cfg.inChannels) + ",H,W]");
    at::Tensor h = m.convIn(xIn.to(device(), dtype()));
    for (const auto& blk : m.downBlocks) {
        for (const auto& r : blk.resnets) h = r(h, at::Tensor());
        if (blk.downsample.weight.defined()) h = blk.downsample(at::constant_pad_nd(h, {0, 1, 0, 1}, 0));
    }
    h = m.mid(h);
    h = m.convOut(groupNormSilu(m.convNormOut, h));
    if (m.quantConv.weight.defined()) h = m.quantConv(h);
    return h;
}

VaePosterior vaePosterior(const at::Tensor& moments) {
    auto parts = moments.chunk(2, 1);
    VaePosterior p;
    p.mean = parts[0];
    p.std = at::exp(parts[1].clamp(-30.0, 20.0) * 0.5);
    return p;
}

}  // namespace koala::models
