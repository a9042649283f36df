// UNet2DConditionModel (diffusers models/unets/unet_2d_condition.py) built from config.json: the config parser,
// the weight layout and the forward pass. Spec: docs/sdxl-pipeline.md sections 0, 4 and 9.
#include "models/unet.h"

#include "core/common.h"
#include "io/model_folder.h"
#include "io/weights.h"
#include "models/fused.h"
#include "models/ops.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <sstream>

namespace koala::models {

using nlohmann::json;

// ---- config ------------------------------------------------------------------------------------------------------
namespace {

const char* kDown = "DownBlock2D";
const char* kCrossDown = "CrossAttnDownBlock2D";
const char* kUp = "UpBlock2D";
const char* kCrossUp = "CrossAttnUpBlock2D";
const char* kMidCross = "UNetMidBlock2DCrossAttn";
const char* kMidPlain = "UNetMidBlock2D";

// The value of `key` when present and not null, else nullptr.
const json* value(const json& j, const std::string& key) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return nullptr;
    return &*it;
}

bool isInt(const json& v) { return v.is_number_integer() || v.is_number_unsigned(); }

int intOf(const io::Config& cfg, const std::string& key, const json& v) {
    // diffusers accepts 1.0 where it wants 1 only by accident; an integral float is harmless, anything else is not.
    if (isInt(v)) return v.get<int>();
    if (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>()) return static_cast<int>(v.get<double>());
    cfg.unsupported(key, "expected an integer");
}

// An int (repeated n times) or a list of n ints.
std::vector<int> intOrList(const io::Config& cfg, const std::string& key, std::size_t n, int def) {
    const json* v = value(cfg.json(), key);
    if (!v) return std::vector<int>(n, def);
    if (v->is_array()) {
        if (v->size() != n) cfg.unsupported(key, "expected " + std::to_string(n) + " entries, one per down block");
        std::vector<int> out;
        for (const auto& e : *v) out.push_back(intOf(cfg, key, e));
        return out;
    }
    return std::vector<int>(n, intOf(cfg, key, *v));
}

// transformer_layers_per_block entries: an int (same depth for every attention of the block) or a list indexed per
// attention. Returns the depth of each of the block's `layers` attentions.
std::vector<int> depthsOf(const io::Config& cfg, const std::string& key, const json& e, int layers) {
    if (e.is_array()) {
        // diffusers indexes the list per attention; a shorter list is an IndexError there.
        if (static_cast<int>(e.size()) < layers)
            cfg.unsupported(key, "a per-layer list needs " + std::to_string(layers) + " entries");
        std::vector<int> out;
        for (int i = 0; i < layers; ++i) {
            int d = intOf(cfg, key, e[static_cast<std::size_t>(i)]);
            if (d < 0) cfg.unsupported(key, "negative depth");
            out.push_back(d);
        }
        return out;
    }
    int d = intOf(cfg, key, e);
    if (d < 0) cfg.unsupported(key, "negative depth");
    return std::vector<int>(static_cast<std::size_t>(layers), d);
}

// A key that must be absent/null (we do not implement what a value would switch on).
void requireNull(const io::Config& cfg, const std::string& key, const std::string& why) {
    if (value(cfg.json(), key)) cfg.unsupported(key, why);
}

// A key that may only hold `expected` (or be absent/null).
void requireString(const io::Config& cfg, const std::string& key, const std::vector<std::string>& allowed) {
    const json* v = value(cfg.json(), key);
    if (!v) return;
    if (v->is_string()) {
        for (const auto& a : allowed)
            if (v->get<std::string>() == a) return;
    }
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
    cfg.unsupported(key, "supported: " + list);
}

void requireFalse(const io::Config& cfg, const std::string& key) {
    const json* v = value(cfg.json(), key);
    if (!v) return;
    if (v->is_boolean() && !v->get<bool>()) return;
    // only_cross_attention may be a per-block list
    if (v->is_array()) {
        bool allFalse = true;
        for (const auto& e : *v) allFalse = allFalse && e.is_boolean() && !e.get<bool>();
        if (allFalse) return;
    }
    cfg.unsupported(key, "only false is supported");
}

void requireNumber(const io::Config& cfg, const std::string& key, double expected) {
    const json* v = value(cfg.json(), key);
    if (!v) return;
    if (v->is_number() && v->get<double>() == expected) return;
    std::ostringstream os;
    os << "only " << expected << " is supported";
    cfg.unsupported(key, os.str());
}

std::vector<std::string> blockTypes(const io::Config& cfg, const std::string& key, const std::vector<std::string>& def,
                                    const char* plain, const char* cross) {
    const json* v = value(cfg.json(), key);
    if (!v) return def;
    if (!v->is_array() || v->empty()) cfg.unsupported(key, "expected a non-empty list of block types");
    std::vector<std::string> out;
    for (const auto& e : *v) {
        if (!e.is_string() || (e.get<std::string>() != plain && e.get<std::string>() != cross))
            cfg.unsupported(key, std::string("supported block types: ") + plain + ", " + cross);
        out.push_back(e.get<std::string>());
    }
    return out;
}

}  // namespace

namespace {

// Block types, channels, sample size, the mid block and layers per block.
void readBlocks(const io::Config& cfg, const json& j, UnetConfig& c) {
    // Defaults are diffusers' (UNet2DConditionModel.__init__), not SDXL's: a key a config omits means that.
    c.downBlockTypes =
        blockTypes(cfg, "down_block_types", {kCrossDown, kCrossDown, kCrossDown, kDown}, kDown, kCrossDown);
    c.upBlockTypes = blockTypes(cfg, "up_block_types", {kUp, kCrossUp, kCrossUp, kCrossUp}, kUp, kCrossUp);
    const std::size_t n = c.downBlockTypes.size();
    if (c.upBlockTypes.size() != n) cfg.unsupported("up_block_types", "must have as many entries as down_block_types");

    c.blockOutChannels = {320, 640, 1280, 1280};
    if (const json* v = value(j, "block_out_channels")) {
        if (!v->is_array()) cfg.unsupported("block_out_channels", "expected a list");
        c.blockOutChannels.clear();
        for (const auto& e : *v) {
            int ch = intOf(cfg, "block_out_channels", e);
            if (ch <= 0) cfg.unsupported("block_out_channels", "channels must be positive");
            c.blockOutChannels.push_back(ch);
        }
    }
    if (c.blockOutChannels.size() != n)
        cfg.unsupported("block_out_channels", "must have as many entries as down_block_types");

    c.inChannels = static_cast<int>(cfg.getInt("in_channels", 4));
    c.outChannels = static_cast<int>(cfg.getInt("out_channels", 4));
    if (const json* v = value(j, "sample_size")) {
        // informational only (the default latent size); [h, w] lists exist in some configs
        if (v->is_array() && !v->empty())
            c.sampleSize = intOf(cfg, "sample_size", (*v)[0]);
        else
            c.sampleSize = intOf(cfg, "sample_size", *v);
    }

    // mid block: null (KOALA-700M) skips it entirely.
    c.midBlockType = kMidCross;
    if (j.contains("mid_block_type")) {
        const json& v = j.at("mid_block_type");
        if (v.is_null())
            c.midBlockType = "";
        else if (v.is_string() && (v.get<std::string>() == kMidCross || v.get<std::string>() == kMidPlain))
            c.midBlockType = v.get<std::string>();
        else
            cfg.unsupported("mid_block_type", std::string("supported: ") + kMidCross + ", " + kMidPlain + ", null");
    }

    c.layersPerBlock = intOrList(cfg, "layers_per_block", n, 2);
    for (int l : c.layersPerBlock)
        if (l < 1) cfg.unsupported("layers_per_block", "must be at least 1");
}

// Head counts, the context width and the transformer depths of every block.
void readAttention(const io::Config& cfg, const json& j, UnetConfig& c) {
    const std::size_t n = c.downBlockTypes.size();
    // Head COUNTS: diffusers' `num_attention_heads = num_attention_heads or attention_head_dim` (the SDXL configs
    // store the counts under attention_head_dim for historical reasons).
    c.numHeadsDown = value(j, "num_attention_heads") ? intOrList(cfg, "num_attention_heads", n, 8)
                                                     : intOrList(cfg, "attention_head_dim", n, 8);
    const std::string headsKey = value(j, "num_attention_heads") ? "num_attention_heads" : "attention_head_dim";
    for (std::size_t i = 0; i < n; ++i) {
        int h = c.numHeadsDown[i];
        if (h <= 0 || c.blockOutChannels[i] % h != 0)
            cfg.unsupported(headsKey, "head count must divide block_out_channels");
    }

    // cross_attention_dim: an int, or a per-block list (only a uniform one is supported).
    if (const json* v = value(j, "cross_attention_dim")) {
        if (v->is_array()) {
            if (v->empty()) cfg.unsupported("cross_attention_dim", "empty list");
            c.crossAttentionDim = intOf(cfg, "cross_attention_dim", (*v)[0]);
            for (const auto& e : *v)
                if (intOf(cfg, "cross_attention_dim", e) != c.crossAttentionDim)
                    cfg.unsupported("cross_attention_dim", "per-block context widths are not supported");
        } else {
            c.crossAttentionDim = intOf(cfg, "cross_attention_dim", *v);
        }
    } else {
        c.crossAttentionDim = 1280;
    }

    // transformer_layers_per_block: int → every block; list → per block, each an int or a per-attention list.
    const json tlpbDefault = 1;
    const json* tlpb = value(j, "transformer_layers_per_block");
    std::vector<json> tl(n, tlpb ? *tlpb : tlpbDefault);
    bool nested = false;
    if (tlpb && tlpb->is_array()) {
        if (tlpb->size() != n) cfg.unsupported("transformer_layers_per_block", "must have one entry per down block");
        for (std::size_t i = 0; i < n; ++i) {
            tl[i] = (*tlpb)[i];
            nested = nested || tl[i].is_array();
        }
    }
    c.transformerLayersDown.clear();
    for (std::size_t i = 0; i < n; ++i)
        c.transformerLayersDown.push_back(depthsOf(cfg, "transformer_layers_per_block", tl[i], c.layersPerBlock[i]));
    // The mid block has one attention: it gets tlpb[-1] (its first entry when that is a list).
    c.transformerLayersMid = depthsOf(cfg, "transformer_layers_per_block", tl[n - 1], 1)[0];

    // Up blocks: reverse_transformer_layers_per_block[i] when given (required for nested lists, as in diffusers),
    // else reversed(tlpb)[i]; each up block has layers_per_block(reversed)[i] + 1 attentions.
    const json* rtl = value(j, "reverse_transformer_layers_per_block");
    if (nested && !rtl)
        cfg.unsupported("transformer_layers_per_block",
                        "per-layer lists need reverse_transformer_layers_per_block (asymmetric UNet)");
    if (rtl && (!rtl->is_array() || rtl->size() != n))
        cfg.unsupported("reverse_transformer_layers_per_block", "must be a list with one entry per up block");
    c.transformerLayersUp.clear();
    for (std::size_t i = 0; i < n; ++i) {
        int layers = c.layersPerBlock[n - 1 - i] + 1;
        if (rtl)
            c.transformerLayersUp.push_back(depthsOf(cfg, "reverse_transformer_layers_per_block", (*rtl)[i], layers));
        else
            c.transformerLayersUp.push_back(depthsOf(cfg, "transformer_layers_per_block", tl[n - 1 - i], layers));
    }
}

// Projection kind, the added (text_time) conditioning, time embedding, norms and kernels.
void readConditioning(const io::Config& cfg, const json& j, UnetConfig& c) {
    c.useLinearProjection = cfg.getBool("use_linear_projection", false);

    // Added conditioning: only SDXL's text_time (or none).
    c.additionEmbedType = "";
    if (const json* v = value(j, "addition_embed_type")) {
        if (!v->is_string() || v->get<std::string>() != "text_time")
            cfg.unsupported("addition_embed_type", "supported: text_time, null");
        c.additionEmbedType = "text_time";
        c.additionTimeEmbedDim = static_cast<int>(cfg.getInt("addition_time_embed_dim"));
        c.projectionClassEmbeddingsInputDim = static_cast<int>(cfg.getInt("projection_class_embeddings_input_dim"));
        if (c.additionTimeEmbedDim <= 0) cfg.unsupported("addition_time_embed_dim", "must be positive");
        if (c.projectionClassEmbeddingsInputDim <= 0)
            cfg.unsupported("projection_class_embeddings_input_dim", "must be positive");
    } else {
        c.additionTimeEmbedDim = 0;
        c.projectionClassEmbeddingsInputDim = 0;
    }

    c.flipSinToCos = cfg.getBool("flip_sin_to_cos", true);
    c.freqShift = cfg.getDouble("freq_shift", 0.0);
    if (!value(j, "norm_num_groups") && j.contains("norm_num_groups"))
        cfg.unsupported("norm_num_groups", "null (no output norm) is not supported");
    c.normNumGroups = static_cast<int>(cfg.getInt("norm_num_groups", 32));
    for (int ch : c.blockOutChannels)
        if (c.normNumGroups <= 0 || ch % c.normNumGroups != 0)
            cfg.unsupported("norm_num_groups", "must divide every entry of block_out_channels");
    c.normEps = cfg.getDouble("norm_eps", 1e-5);

    c.centerInputSample = cfg.getBool("center_input_sample", false);
    c.convInKernel = static_cast<int>(cfg.getInt("conv_in_kernel", 3));
    c.convOutKernel = static_cast<int>(cfg.getInt("conv_out_kernel", 3));
    if (c.convInKernel < 1 || c.convInKernel % 2 == 0) cfg.unsupported("conv_in_kernel", "must be odd");
    if (c.convOutKernel < 1 || c.convOutKernel % 2 == 0) cfg.unsupported("conv_out_kernel", "must be odd");
    c.timeEmbedDim = 0;
    if (const json* v = value(j, "time_embedding_dim")) {
        c.timeEmbedDim = intOf(cfg, "time_embedding_dim", *v);
        if (c.timeEmbedDim <= 0) cfg.unsupported("time_embedding_dim", "must be positive");
    }
    // AttnProcessor2_0 (SDPA) ignores upcast_attention, so diffusers computes the same either way.
    c.upcastAttention = cfg.getBool("upcast_attention", false);
}

// Everything that switches on layers or formulas this implementation does not have.
void refuseUnsupported(const io::Config& cfg) {
    // Everything below switches on layers or formulas this implementation does not have.
    requireString(cfg, "act_fn", {"silu", "swish"});
    requireString(cfg, "time_embedding_type", {"positional"});
    requireString(cfg, "resnet_time_scale_shift", {"default"});
    requireString(cfg, "attention_type", {"default"});
    requireNull(cfg, "class_embed_type", "class embeddings are not supported");
    requireNull(cfg, "num_class_embeds", "class embeddings are not supported");
    requireFalse(cfg, "class_embeddings_concat");
    requireNull(cfg, "encoder_hid_dim_type", "encoder_hid_proj is not supported");
    requireNull(cfg, "encoder_hid_dim", "encoder_hid_proj is not supported");
    requireNull(cfg, "time_cond_proj_dim", "timestep conditioning (cond_proj) is not supported");
    requireNull(cfg, "time_embedding_act_fn", "a time embedding activation is not supported");
    requireNull(cfg, "timestep_post_act", "a post-timestep activation is not supported");
    requireFalse(cfg, "dual_cross_attention");
    requireFalse(cfg, "only_cross_attention");
    requireNumber(cfg, "downsample_padding", 1);
    requireNumber(cfg, "mid_block_scale_factor", 1);
    // Not read on purpose: dropout (inference), resnet_skip_time_act / resnet_out_scale_factor /
    // cross_attention_norm / mid_block_only_cross_attention (diffusers only passes them to the Simple*/ResnetDownsample
    // block types, which are rejected above), addition_embed_type_num_heads (text_image only).
}

}  // namespace

UnetConfig UnetConfig::fromConfig(const io::Config& cfg) {
    const json& j = cfg.json();
    if (!j.is_object()) fail(ErrorKind::ModelFormat, cfg.file() + ": not a JSON object");
    UnetConfig c;
    readBlocks(cfg, j, c);
    readAttention(cfg, j, c);
    readConditioning(cfg, j, c);
    refuseUnsupported(cfg);
    return c;
}

// ---- weights -----------------------------------------------------------------------------------------------------
namespace {

// One attention of a BasicTransformerBlock: to_q (nb), to_k (nb), to_v (nb), to_out.0.
struct AttnW {
    LinearW q, k, v, out;
    int heads = 1;
    at::Tensor operator()(const at::Tensor& x, const at::Tensor& ctx) const {
        return out(attention(q(x), k(ctx), v(ctx), heads));
    }
};

struct TransformerBlockW {
    LayerNormW norm1, norm2, norm3;
    AttnW attn1, attn2;
    LinearW ffIn, ffOut;  // GEGLU proj C→8C, then 4C→C

    // x is owned by the caller's transformer (a fresh tensor), so the residual adds may run in place.
    at::Tensor operator()(at::Tensor x, const at::Tensor& ctx) const {
        at::Tensor n = norm1(x);
        x.add_(attn1(n, n));
        x.add_(attn2(norm2(x), ctx));
        x.add_(ffOut(geglu(ffIn(norm3(x)))));  // exact (erf) GELU, as diffusers' GEGLU (models/fused.h)
        return x;
    }
};

// Transformer2DModel, continuous input.
struct Transformer2dW {
    GroupNormW norm;            // eps 1e-6
    LinearW projInL, projOutL;  // use_linear_projection
    Conv2dW projInC, projOutC;  // 1×1 convs otherwise
    bool linear = true;
    std::vector<TransformerBlockW> blocks;

    at::Tensor operator()(const at::Tensor& x, const at::Tensor& ctx) const {
        const auto b = x.size(0), h = x.size(2), w = x.size(3);
        at::Tensor y = norm(x);
        if (!linear) y = projInC(y);
        const auto inner = y.size(1);
        // [B,C,H,W] → [B,HW,C]: a view when the activations are channels_last, one copy otherwise.
        y = y.permute({0, 2, 3, 1}).reshape({b, h * w, inner});
        if (linear) y = projInL(y);
        for (const auto& blk : blocks) y = blk(y, ctx);
        if (linear) y = projOutL(y);
        y = y.reshape({b, h, w, inner}).permute({0, 3, 1, 2});
        if (!linear) y = projOutC(y);
        return y + x;
    }
};

struct DownBlockW {
    std::vector<ResnetW> resnets;
    std::vector<Transformer2dW> attns;  // empty for DownBlock2D
    Conv2dW down;                       // undefined weight for the last block
};

struct UpBlockW {
    std::vector<ResnetW> resnets;
    std::vector<Transformer2dW> attns;
    Conv2dW up;  // undefined weight for the last block
};

// Sinusoidal timestep embedding (embeddings.py get_timestep_embedding), in float32 whatever the model dtype.
at::Tensor timestepEmbedding(const at::Tensor& t, int dim, bool flipSinToCos, double shift) {
    const int half = dim / 2;
    auto opts = at::TensorOptions().dtype(at::kFloat).device(t.device());
    // Same operation order as diffusers so that fp32 results agree to the last bit.
    at::Tensor exponent = at::arange(0, half, opts) * (-std::log(10000.0));
    exponent = exponent / (half - shift);
    at::Tensor e = t.to(at::kFloat).unsqueeze(1) * at::exp(exponent).unsqueeze(0);
    at::Tensor emb = flipSinToCos ? at::cat({at::cos(e), at::sin(e)}, -1) : at::cat({at::sin(e), at::cos(e)}, -1);
    if (dim % 2 == 1) emb = at::constant_pad_nd(emb, {0, 1});
    return emb;
}

}  // namespace

struct Unet::Weights {
    Conv2dW convIn, convOut;
    LinearW time1, time2, add1, add2;
    std::vector<DownBlockW> down;
    std::vector<ResnetW> midResnets;
    std::vector<Transformer2dW> midAttns;
    std::vector<UpBlockW> up;
    GroupNormW normOut;
    std::int64_t params = 0;
};

Unet::~Unet() = default;

namespace {

// Takes the tensors of one model in config order and sums their sizes (what parameterCount() reports).
struct Loader {
    io::WeightStore& w;
    std::int64_t params = 0;

    void count(const at::Tensor& t) { params += t.defined() ? t.numel() : 0; }
    LinearW linear(const std::string& p, std::int64_t in, std::int64_t out, bool bias = true) {
        LinearW l = LinearW::take(w, p, in, out, bias);
        count(l.weight);
        count(l.bias);
        return l;
    }
    Conv2dW conv(const std::string& p, std::int64_t in, std::int64_t out, int k, int stride = 1) {
        Conv2dW c = Conv2dW::take(w, p, in, out, k, stride);
        count(c.weight);
        count(c.bias);
        return c;
    }
    GroupNormW groupNorm(const std::string& p, std::int64_t ch, int groups, double eps) {
        GroupNormW g = GroupNormW::take(w, p, ch, groups, eps);
        count(g.weight);
        count(g.bias);
        return g;
    }
    LayerNormW layerNorm(const std::string& p, std::int64_t dim) {
        LayerNormW l = LayerNormW::take(w, p, dim, 1e-5);
        count(l.weight);
        count(l.bias);
        return l;
    }
    ResnetW resnet(const std::string& p, std::int64_t in, std::int64_t out, std::int64_t temb, const UnetConfig& c) {
        ResnetW r = ResnetW::take(w, p, in, out, temb, c.normNumGroups, c.normEps);
        for (const at::Tensor* t : {&r.norm1.weight, &r.norm1.bias, &r.norm2.weight, &r.norm2.bias, &r.conv1.weight,
                                    &r.conv1.bias, &r.conv2.weight, &r.conv2.bias, &r.timeEmbProj.weight,
                                    &r.timeEmbProj.bias, &r.shortcut.weight, &r.shortcut.bias})
            count(*t);
        return r;
    }
    AttnW attn(const std::string& p, std::int64_t dim, std::int64_t ctxDim, int heads) {
        AttnW a;
        a.q = linear(p + ".to_q", dim, dim, false);
        a.k = linear(p + ".to_k", ctxDim, dim, false);
        a.v = linear(p + ".to_v", ctxDim, dim, false);
        a.out = linear(p + ".to_out.0", dim, dim, true);
        a.heads = heads;
        return a;
    }
    Transformer2dW transformer(const std::string& p, std::int64_t ch, int heads, int depth, const UnetConfig& c) {
        Transformer2dW t;
        t.norm = groupNorm(p + ".norm", ch, c.normNumGroups, 1e-6);
        t.linear = c.useLinearProjection;
        if (t.linear)
            t.projInL = linear(p + ".proj_in", ch, ch);
        else
            t.projInC = conv(p + ".proj_in", ch, ch, 1);
        for (int j = 0; j < depth; ++j) {
            const std::string b = p + ".transformer_blocks." + std::to_string(j);
            TransformerBlockW blk;
            blk.norm1 = layerNorm(b + ".norm1", ch);
            blk.attn1 = attn(b + ".attn1", ch, ch, heads);
            blk.norm2 = layerNorm(b + ".norm2", ch);
            blk.attn2 = attn(b + ".attn2", ch, c.crossAttentionDim, heads);
            blk.norm3 = layerNorm(b + ".norm3", ch);
            blk.ffIn = linear(b + ".ff.net.0.proj", ch, 8 * ch);
            blk.ffOut = linear(b + ".ff.net.2", 4 * ch, ch);
            t.blocks.push_back(std::move(blk));
        }
        if (t.linear)
            t.projOutL = linear(p + ".proj_out", ch, ch);
        else
            t.projOutC = conv(p + ".proj_out", ch, ch, 1);
        return t;
    }
};

}  // namespace

std::shared_ptr<Unet> Unet::load(const UnetConfig& cfg, io::WeightStore& weights) {
    std::shared_ptr<Unet> u(new Unet());
    u->m_cfg = cfg;
    u->m_w = std::make_unique<Weights>();
    Weights& W = *u->m_w;
    Loader L{weights};
    const auto& ch = cfg.blockOutChannels;
    const std::size_t n = ch.size();
    const std::int64_t c0 = ch[0];
    const std::int64_t tembDim = cfg.timeEmbedDim > 0 ? cfg.timeEmbedDim : 4 * c0;

    W.convIn = L.conv("conv_in", cfg.inChannels, c0, cfg.convInKernel);
    W.time1 = L.linear("time_embedding.linear_1", c0, tembDim);
    W.time2 = L.linear("time_embedding.linear_2", tembDim, tembDim);
    if (cfg.additionEmbedType == "text_time") {
        W.add1 = L.linear("add_embedding.linear_1", cfg.projectionClassEmbeddingsInputDim, tembDim);
        W.add2 = L.linear("add_embedding.linear_2", tembDim, tembDim);
    }

    // Down blocks: resnet (+ attention) × layers, then a stride-2 conv except on the last block.
    std::int64_t outCh = c0;
    for (std::size_t i = 0; i < n; ++i) {
        const std::int64_t inCh = outCh;
        outCh = ch[i];
        const std::string p = "down_blocks." + std::to_string(i);
        const bool cross = cfg.downBlockTypes[i] == kCrossDown;
        DownBlockW blk;
        for (int l = 0; l < cfg.layersPerBlock[i]; ++l) {
            const std::string ls = std::to_string(l);
            blk.resnets.push_back(L.resnet(p + ".resnets." + ls, l == 0 ? inCh : outCh, outCh, tembDim, cfg));
            if (cross)
                blk.attns.push_back(L.transformer(p + ".attentions." + ls, outCh, cfg.numHeadsDown[i],
                                                  cfg.transformerLayersDown[i][static_cast<std::size_t>(l)], cfg));
        }
        if (i + 1 < n) blk.down = L.conv(p + ".downsamplers.0.conv", outCh, outCh, 3, 2);
        W.down.push_back(std::move(blk));
    }

    const std::int64_t midCh = ch[n - 1];
    if (cfg.midBlockType == kMidCross) {
        W.midResnets.push_back(L.resnet("mid_block.resnets.0", midCh, midCh, tembDim, cfg));
        W.midAttns.push_back(
            L.transformer("mid_block.attentions.0", midCh, cfg.numHeadsDown[n - 1], cfg.transformerLayersMid, cfg));
        W.midResnets.push_back(L.resnet("mid_block.resnets.1", midCh, midCh, tembDim, cfg));
    } else if (cfg.midBlockType == kMidPlain) {
        // diffusers builds UNetMidBlock2D(num_layers=0, add_attention=False) here: a single resnet.
        W.midResnets.push_back(L.resnet("mid_block.resnets.0", midCh, midCh, tembDim, cfg));
    }

    // Up blocks (diffusers' channel rule): resnet j takes prev_output (j = 0) or out, plus the skip it pops, which
    // is out, or the next-lower block's width for the last resnet.
    outCh = ch[n - 1];
    for (std::size_t i = 0; i < n; ++i) {
        const std::int64_t prevOut = outCh;
        outCh = ch[n - 1 - i];
        const std::int64_t inCh = ch[n - 1 - std::min(i + 1, n - 1)];  // reversed[min(i+1, n-1)]
        const int layers = cfg.layersPerBlock[n - 1 - i] + 1;
        const std::string p = "up_blocks." + std::to_string(i);
        const bool cross = cfg.upBlockTypes[i] == kCrossUp;
        UpBlockW blk;
        for (int l = 0; l < layers; ++l) {
            const std::string ls = std::to_string(l);
            const std::int64_t skipCh = l == layers - 1 ? inCh : outCh;
            const std::int64_t resIn = l == 0 ? prevOut : outCh;
            blk.resnets.push_back(L.resnet(p + ".resnets." + ls, resIn + skipCh, outCh, tembDim, cfg));
            if (cross)
                blk.attns.push_back(L.transformer(p + ".attentions." + ls, outCh, cfg.numHeadsDown[n - 1 - i],
                                                  cfg.transformerLayersUp[i][static_cast<std::size_t>(l)], cfg));
        }
        if (i + 1 < n) blk.up = L.conv(p + ".upsamplers.0.conv", outCh, outCh, 3);
        W.up.push_back(std::move(blk));
    }

    W.normOut = L.groupNorm("conv_norm_out", c0, cfg.normNumGroups, cfg.normEps);
    W.convOut = L.conv("conv_out", c0, cfg.outChannels, cfg.convOutKernel);
    W.params = L.params;
    // Every missing or mis-shaped tensor is reported here, before a forward could touch an undefined one.
    weights.finish();
    return u;
}

namespace {

// Every Conv2dW of the UNet (conv_in/out, resnet convs and shortcuts, down/upsamplers, 1x1 attention projections).
template <typename W, typename Fn>
void forEachConv(W& w, Fn&& fn) {
    auto res = [&](auto& r) {
        fn(r.conv1);
        fn(r.conv2);
        fn(r.shortcut);
    };
    auto tr = [&](auto& t) {
        fn(t.projInC);
        fn(t.projOutC);
    };
    fn(w.convIn);
    for (auto& b : w.down) {
        for (auto& r : b.resnets) res(r);
        for (auto& t : b.attns) tr(t);
        fn(b.down);
    }
    for (auto& r : w.midResnets) res(r);
    for (auto& t : w.midAttns) tr(t);
    for (auto& b : w.up) {
        for (auto& r : b.resnets) res(r);
        for (auto& t : b.attns) tr(t);
        fn(b.up);
    }
    fn(w.convOut);
}

}  // namespace

void Unet::toChannelsLast() {
    forEachConv(*m_w, [](Conv2dW& c) {
        // Assigning drops the NCHW tensor (its storage is freed unless someone else holds it).
        if (c.weight.defined() && c.weight.dim() == 4) c.weight = c.weight.contiguous(at::MemoryFormat::ChannelsLast);
    });
}

std::vector<at::Tensor> Unet::convWeights() const {
    std::vector<at::Tensor> out;
    forEachConv(*m_w, [&](const Conv2dW& c) {
        if (c.weight.defined()) out.push_back(c.weight);
    });
    return out;
}

at::Tensor Unet::forward(const at::Tensor& sample, double timestep, const at::Tensor& context,
                         const at::Tensor& textEmbeds, const at::Tensor& timeIds) const {
    // diffusers: torch.tensor([t]) broadcast over the batch, then .float() in get_timestep_embedding.
    return forward(sample, at::scalar_tensor(timestep, at::TensorOptions().dtype(at::kFloat).device(device())), context,
                   textEmbeds, timeIds);
}

at::Tensor Unet::forward(const at::Tensor& sample, const at::Tensor& timestep, const at::Tensor& context,
                         const at::Tensor& textEmbeds, const at::Tensor& timeIds) const {
    c10::NoGradGuard noGrad;
    const Weights& W = *m_w;
    const UnetConfig& c = m_cfg;
    const at::Device dev = device();
    const at::ScalarType dt = dtype();

    if (sample.dim() != 4 || sample.size(1) != c.inChannels)
        fail(ErrorKind::InvalidArgument, "unet: sample must be [B," + std::to_string(c.inChannels) + ",h,w]");
    if (context.dim() != 3 || context.size(2) != c.crossAttentionDim || context.size(0) != sample.size(0))
        fail(ErrorKind::InvalidArgument,
             "unet: encoder_hidden_states must be [B,T," + std::to_string(c.crossAttentionDim) + "]");
    const std::int64_t batch = sample.size(0);

    at::Tensor x = sample.to(dev, dt);
    const at::Tensor ctx = context.to(dev, dt);

    // Time embedding: sinusoid in float32, cast to the model dtype, then the MLP. The timestep is only viewed and
    // broadcast here (no host read, no copy when it is already float32 on the device).
    if (!timestep.defined() || timestep.dim() > 1 ||
        (timestep.dim() == 1 && timestep.size(0) != 1 && timestep.size(0) != batch))
        fail(ErrorKind::InvalidArgument, "unet: timestep must be a scalar, [1] or [B] tensor");
    at::Tensor t = timestep.to(dev, at::kFloat).reshape({-1}).expand({batch});
    at::Tensor emb =
        W.time2(at::silu(W.time1(timestepEmbedding(t, c.blockOutChannels[0], c.flipSinToCos, c.freqShift).to(dt))));
    if (c.additionEmbedType == "text_time") {
        if (!textEmbeds.defined() || !timeIds.defined() || textEmbeds.dim() != 2 || timeIds.dim() != 2 ||
            textEmbeds.size(0) != batch || timeIds.size(0) != batch ||
            textEmbeds.size(1) + timeIds.size(1) * c.additionTimeEmbedDim != c.projectionClassEmbeddingsInputDim)
            fail(ErrorKind::InvalidArgument, "unet: text_embeds [B,P] and time_ids [B,N] must give P + N*" +
                                                 std::to_string(c.additionTimeEmbedDim) + " = " +
                                                 std::to_string(c.projectionClassEmbeddingsInputDim));
        at::Tensor te = timestepEmbedding(timeIds.to(dev, at::kFloat).flatten(), c.additionTimeEmbedDim, c.flipSinToCos,
                                          c.freqShift)
                            .reshape({batch, -1});
        // diffusers concatenates text_embeds with the float32 time embeds (type promotion) and casts afterwards.
        at::Tensor add = at::cat({textEmbeds.to(dev, at::kFloat), te}, -1).to(dt);
        emb = emb + W.add2(at::silu(W.add1(add)));
    }

    // Upsamplers get the skip's size when the latent is not a multiple of 2^num_upsamplers (odd sizes).
    const std::int64_t factor = std::int64_t(1) << (c.blockOutChannels.size() - 1);
    const bool forwardUpsampleSize = x.size(2) % factor != 0 || x.size(3) % factor != 0;

    if (c.centerInputSample) x = 2 * x - 1.0;
    x = W.convIn(x);
    std::vector<at::Tensor> skips{x};
    skips.reserve(32);

    for (const auto& blk : W.down) {
        for (std::size_t l = 0; l < blk.resnets.size(); ++l) {
            x = blk.resnets[l](x, emb);
            if (!blk.attns.empty()) x = blk.attns[l](x, ctx);
            skips.push_back(x);
        }
        if (blk.down.weight.defined()) {
            x = blk.down(x);
            skips.push_back(x);
        }
    }

    if (!W.midResnets.empty()) {
        x = W.midResnets[0](x, emb);
        for (std::size_t l = 0; l < W.midAttns.size(); ++l) {
            x = W.midAttns[l](x, ctx);
            x = W.midResnets[l + 1](x, emb);
        }
    }

    for (const auto& blk : W.up) {
        for (std::size_t l = 0; l < blk.resnets.size(); ++l) {
            at::Tensor skip = std::move(skips.back());
            skips.pop_back();
            x = blk.resnets[l](at::cat({x, skip}, 1), emb);  // x first, then the skip
            if (!blk.attns.empty()) x = blk.attns[l](x, ctx);
        }
        if (blk.up.weight.defined()) {
            std::vector<std::int64_t> size{x.size(2) * 2, x.size(3) * 2};
            if (forwardUpsampleSize && !skips.empty()) size = {skips.back().size(2), skips.back().size(3)};
            x = blk.up(at::upsample_nearest2d(x, size));
        }
    }

    return W.convOut(groupNormSilu(W.normOut, x));
}

std::int64_t Unet::parameterCount() const { return m_w->params; }

at::Device Unet::device() const { return m_w->convIn.weight.device(); }
at::ScalarType Unet::dtype() const { return m_w->convIn.weight.scalar_type(); }

std::string Unet::shapeName() const { return shapeNameOf(m_cfg); }

std::string Unet::shapeNameOf(const UnetConfig& c) {
    // Only the full-size family members have names; the tiny test fixtures (32/32/64 channels) have the KOALA
    // block structure but are "custom".
    const bool fullSize = c.blockOutChannels == std::vector<int>{320, 640, 1280} && c.crossAttentionDim == 2048 &&
                          c.downBlockTypes == std::vector<std::string>{kDown, kCrossDown, kCrossDown} &&
                          c.upBlockTypes == std::vector<std::string>{kCrossUp, kCrossUp, kUp} &&
                          c.additionEmbedType == "text_time" && c.projectionClassEmbeddingsInputDim == 2816 &&
                          c.inChannels == 4 && c.outChannels == 4 && c.numHeadsDown == std::vector<int>{5, 10, 20} &&
                          c.useLinearProjection;
    if (!fullSize) return "custom";
    using V = std::vector<int>;
    using VV = std::vector<std::vector<int>>;
    auto lpb = [&](int v) { return c.layersPerBlock == V(3, v); };
    // Depths of the attention blocks only (down block 0 and up block 2 have none).
    auto down = [&](const V& d1, const V& d2) {
        return c.transformerLayersDown[1] == d1 && c.transformerLayersDown[2] == d2;
    };
    auto up = [&](const VV& u) { return c.transformerLayersUp[0] == u[0] && c.transformerLayersUp[1] == u[1]; };
    if (lpb(2) && down({2, 2}, {10, 10}) && c.midBlockType == kMidCross && c.transformerLayersMid == 10 &&
        up({{10, 10, 10}, {2, 2, 2}}))
        return "sdxl-base";
    if (lpb(1) && down({2}, {6}) && c.midBlockType == kMidCross && c.transformerLayersMid == 6 && up({{6, 6}, {2, 2}}))
        return "koala-1b";
    if (lpb(1) && down({2}, {5}) && c.midBlockType.empty() && up({{5, 5}, {2, 2}})) return "koala-700m";
    // Segmind's distilled SDXLs keep SDXL's layers_per_block, drop the mid attention (resnet-only UNetMidBlock2D)
    // and have shallower encoders (SSD-1B [2,2]/[4,4], Vega [1,1]/[2,2]); their decoders are asymmetric, so the
    // up depths are not part of the signature.
    if (lpb(2) && c.midBlockType == kMidPlain && down({2, 2}, {4, 4})) return "ssd-1b";
    if (lpb(2) && c.midBlockType == kMidPlain && down({1, 1}, {2, 2})) return "vega";
    return "custom";
}

// ---- LoRA (issue 10) ----------------------------------------------------------------------------------------------
std::vector<std::pair<std::string, at::Tensor*>> Unet::loraTargets() {
    std::vector<std::pair<std::string, at::Tensor*>> out;
    Weights& W = *m_w;
    auto add = [&](const std::string& name, at::Tensor& t) {
        if (t.defined()) out.emplace_back(name, &t);
    };
    auto resnet = [&](const std::string& p, ResnetW& r) {
        add(p + ".conv1", r.conv1.weight);
        add(p + ".conv2", r.conv2.weight);
        add(p + ".time_emb_proj", r.timeEmbProj.weight);
        add(p + ".conv_shortcut", r.shortcut.weight);
    };
    auto transformer = [&](const std::string& p, Transformer2dW& t) {
        add(p + ".proj_in", t.linear ? t.projInL.weight : t.projInC.weight);
        add(p + ".proj_out", t.linear ? t.projOutL.weight : t.projOutC.weight);
        for (std::size_t j = 0; j < t.blocks.size(); ++j) {
            const std::string b = p + ".transformer_blocks." + std::to_string(j);
            auto& blk = t.blocks[j];
            for (auto [name, a] : {std::pair<const char*, AttnW*>{".attn1", &blk.attn1}, {".attn2", &blk.attn2}}) {
                add(b + name + ".to_q", a->q.weight);
                add(b + name + ".to_k", a->k.weight);
                add(b + name + ".to_v", a->v.weight);
                add(b + name + ".to_out.0", a->out.weight);
            }
            add(b + ".ff.net.0.proj", blk.ffIn.weight);
            add(b + ".ff.net.2", blk.ffOut.weight);
        }
    };
    add("conv_in", W.convIn.weight);
    add("time_embedding.linear_1", W.time1.weight);
    add("time_embedding.linear_2", W.time2.weight);
    add("add_embedding.linear_1", W.add1.weight);
    add("add_embedding.linear_2", W.add2.weight);
    for (std::size_t i = 0; i < W.down.size(); ++i) {
        const std::string p = "down_blocks." + std::to_string(i);
        for (std::size_t l = 0; l < W.down[i].resnets.size(); ++l)
            resnet(p + ".resnets." + std::to_string(l), W.down[i].resnets[l]);
        for (std::size_t l = 0; l < W.down[i].attns.size(); ++l)
            transformer(p + ".attentions." + std::to_string(l), W.down[i].attns[l]);
        add(p + ".downsamplers.0.conv", W.down[i].down.weight);
    }
    for (std::size_t l = 0; l < W.midResnets.size(); ++l)
        resnet("mid_block.resnets." + std::to_string(l), W.midResnets[l]);
    for (std::size_t l = 0; l < W.midAttns.size(); ++l)
        transformer("mid_block.attentions." + std::to_string(l), W.midAttns[l]);
    for (std::size_t i = 0; i < W.up.size(); ++i) {
        const std::string p = "up_blocks." + std::to_string(i);
        for (std::size_t l = 0; l < W.up[i].resnets.size(); ++l)
            resnet(p + ".resnets." + std::to_string(l), W.up[i].resnets[l]);
        for (std::size_t l = 0; l < W.up[i].attns.size(); ++l)
            transformer(p + ".attentions." + std::to_string(l), W.up[i].attns[l]);
        add(p + ".upsamplers.0.conv", W.up[i].up.weight);
    }
    add("conv_out", W.convOut.weight);
    return out;
}

}  // namespace koala::models
