// CLIP text encoder, following transformers' modeling_clip.py (CLIPTextTransformer) step by step.
#include "models/clip.h"

#include "core/common.h"
#include "io/model_folder.h"
#include "io/weights.h"
#include "models/ops.h"

#include <c10/core/GradMode.h>
#include <functional>
#include <limits>
#include <vector>

namespace koala::models {

namespace {

bool isClipActivation(const std::string& name) {
    return name == "quick_gelu" || name == "gelu" || name == "gelu_new" || name == "gelu_pytorch_tanh";
}

// finfo(dtype).min, the value transformers adds to masked scores. A masked row always keeps column 0, so the
// softmax never sees an all-masked row (no NaN even when fp16 scores + min round to -inf).
double finfoMin(at::ScalarType t) {
    switch (t) {
    case at::kHalf: return -65504.0;
    case at::kBFloat16: return -3.3895313892515355e38;
    case at::kDouble: return std::numeric_limits<double>::lowest();
    default: return double(std::numeric_limits<float>::lowest());
    }
}

}  // namespace

ClipTextConfig ClipTextConfig::fromConfig(const io::Config& cfg) {
    ClipTextConfig c;
    c.hiddenSize = int(cfg.getInt("hidden_size"));
    c.numLayers = int(cfg.getInt("num_hidden_layers"));
    c.numHeads = int(cfg.getInt("num_attention_heads"));
    c.intermediateSize = int(cfg.getInt("intermediate_size"));
    c.maxPositions = int(cfg.getInt("max_position_embeddings", 77));
    c.vocabSize = int(cfg.getInt("vocab_size", 49408));
    c.projectionDim = int(cfg.getInt("projection_dim", c.hiddenSize));
    c.eosTokenId = int(cfg.getInt("eos_token_id", 2));
    c.layerNormEps = cfg.getDouble("layer_norm_eps", 1e-5);
    c.hiddenAct = cfg.getString("hidden_act", "quick_gelu");
    if (!isClipActivation(c.hiddenAct))
        cfg.unsupported("hidden_act", "expected quick_gelu, gelu, gelu_new or gelu_pytorch_tanh");
    if (c.hiddenSize <= 0) cfg.unsupported("hidden_size", "must be positive");
    if (c.numLayers < 1) cfg.unsupported("num_hidden_layers", "must be at least 1");
    if (c.numHeads <= 0 || c.hiddenSize % c.numHeads != 0)
        cfg.unsupported("num_attention_heads", "must divide hidden_size");
    if (c.intermediateSize <= 0) cfg.unsupported("intermediate_size", "must be positive");
    if (c.maxPositions <= 0) cfg.unsupported("max_position_embeddings", "must be positive");
    if (c.vocabSize <= 0) cfg.unsupported("vocab_size", "must be positive");
    if (c.projectionDim <= 0) cfg.unsupported("projection_dim", "must be positive");
    return c;
}

struct ClipTextEncoder::Weights {
    struct Layer {
        LayerNormW ln1, ln2;
        LinearW q, k, v, out, fc1, fc2;
    };
    at::Tensor tokenEmbedding;     // [vocab, D]
    at::Tensor positionEmbedding;  // [maxPositions, D]
    std::vector<Layer> layers;
    LayerNormW finalLn;
    LinearW projection;  // weight undefined without projection

    void forEach(const std::function<void(at::Tensor&)>& fn) {
        auto lin = [&](LinearW& l) {
            fn(l.weight);
            fn(l.bias);
        };
        auto ln = [&](LayerNormW& l) {
            fn(l.weight);
            fn(l.bias);
        };
        fn(tokenEmbedding);
        fn(positionEmbedding);
        for (auto& l : layers) {
            ln(l.ln1);
            ln(l.ln2);
            lin(l.q);
            lin(l.k);
            lin(l.v);
            lin(l.out);
            lin(l.fc1);
            lin(l.fc2);
        }
        ln(finalLn);
        lin(projection);
    }
};

ClipTextEncoder::~ClipTextEncoder() = default;

std::shared_ptr<ClipTextEncoder> ClipTextEncoder::load(const ClipTextConfig& cfg, io::WeightStore& w,
                                                       bool withProjection) {
    std::shared_ptr<ClipTextEncoder> enc(new ClipTextEncoder());
    enc->m_cfg = cfg;
    enc->m_w = std::make_unique<Weights>();
    Weights& m = *enc->m_w;
    const std::int64_t d = cfg.hiddenSize, f = cfg.intermediateSize;
    // CLIPTextModel saved by transformers 5 drops the "text_model." prefix (both fixture text_encoder files do);
    // CLIPTextModelWithProjection and older saves keep it. Missing-tensor messages use the prefixed names.
    const bool bare =
        !w.has("text_model.embeddings.token_embedding.weight") && w.has("embeddings.token_embedding.weight");
    const std::string p = bare ? "" : "text_model.";
    m.tokenEmbedding = w.take(p + "embeddings.token_embedding.weight", {cfg.vocabSize, d});
    m.positionEmbedding = w.take(p + "embeddings.position_embedding.weight", {cfg.maxPositions, d});
    m.layers.resize(std::size_t(cfg.numLayers));
    for (int i = 0; i < cfg.numLayers; ++i) {
        const std::string lp = p + "encoder.layers." + std::to_string(i) + ".";
        auto& l = m.layers[std::size_t(i)];
        l.ln1 = LayerNormW::take(w, lp + "layer_norm1", d, cfg.layerNormEps);
        l.ln2 = LayerNormW::take(w, lp + "layer_norm2", d, cfg.layerNormEps);
        l.q = LinearW::take(w, lp + "self_attn.q_proj", d, d);
        l.k = LinearW::take(w, lp + "self_attn.k_proj", d, d);
        l.v = LinearW::take(w, lp + "self_attn.v_proj", d, d);
        l.out = LinearW::take(w, lp + "self_attn.out_proj", d, d);
        l.fc1 = LinearW::take(w, lp + "mlp.fc1", d, f);
        l.fc2 = LinearW::take(w, lp + "mlp.fc2", f, d);
    }
    m.finalLn = LayerNormW::take(w, p + "final_layer_norm", d, cfg.layerNormEps);
    if (withProjection) m.projection = LinearW::take(w, "text_projection", d, cfg.projectionDim, /*withBias=*/false);
    return enc;
}

bool ClipTextEncoder::hasProjection() const { return m_w->projection.weight.defined(); }

at::Device ClipTextEncoder::device() const {
    return m_w->tokenEmbedding.defined() ? m_w->tokenEmbedding.device() : at::Device(at::kCPU);
}

at::ScalarType ClipTextEncoder::dtype() const {
    return m_w->tokenEmbedding.defined() ? m_w->tokenEmbedding.scalar_type() : at::kFloat;
}

void ClipTextEncoder::to(at::Device device, at::ScalarType dtype) {
    m_w->forEach([&](at::Tensor& t) {
        if (t.defined()) t = t.to(device, dtype);
    });
}

ClipTextOutput ClipTextEncoder::forward(const at::Tensor& idsIn, int clipSkip) const {
    c10::NoGradGuard noGrad;
    const Weights& m = *m_w;
    if (!m.tokenEmbedding.defined())
        fail(ErrorKind::Internal, "text encoder used before its weights were loaded (check WeightStore::finish)");
    if (idsIn.dim() != 2) fail(ErrorKind::InvalidArgument, "text encoder input ids must be [batch, tokens]");
    const std::int64_t batch = idsIn.size(0), len = idsIn.size(1);
    if (len < 1 || len > m_cfg.maxPositions)
        fail(ErrorKind::InvalidArgument, "text encoder input has " + std::to_string(len) + " tokens (at most " +
                                             std::to_string(m_cfg.maxPositions) + ")");
    const int layers = m_cfg.numLayers;
    // hidden_states has L+1 entries (embeddings, then each layer's output); [-(k+2)] is after L-1-k layers.
    const int keepAfter = layers - 1 - clipSkip;
    if (clipSkip < 0 || keepAfter < 0)
        fail(ErrorKind::InvalidArgument, "clip skip " + std::to_string(clipSkip) + " is out of range for a " +
                                             std::to_string(layers) + "-layer text encoder");

    const auto dev = device();
    const auto dt = dtype();
    at::Tensor ids = idsIn.to(dev, at::kLong);

    at::Tensor h = at::embedding(m.tokenEmbedding, ids) + m.positionEmbedding.slice(0, 0, len).unsqueeze(0);
    // Causal mask: 0 on and below the diagonal, finfo.min above it (broadcast over batch and heads).
    at::Tensor mask = at::full({len, len}, finfoMin(dt), at::TensorOptions().dtype(dt).device(dev)).triu(1);
    mask = mask.view({1, 1, len, len});

    ClipTextOutput out;
    if (keepAfter == 0) out.hiddenPenultimate = h;
    for (int i = 0; i < layers; ++i) {
        const auto& l = m.layers[std::size_t(i)];
        at::Tensor x = l.ln1(h);
        x = attention(l.q(x), l.k(x), l.v(x), m_cfg.numHeads, mask);
        h = h + l.out(x);
        x = l.ln2(h);
        x = l.fc2(activation(l.fc1(x), m_cfg.hiddenAct));
        h = h + x;
        if (i + 1 == keepAfter) out.hiddenPenultimate = h;
    }
    out.lastHiddenState = m.finalLn(h);

    // transformers: eos_token_id == 2 is the legacy config, where the EOS is the largest id (first maximum).
    at::Tensor idx = m_cfg.eosTokenId == 2 ? ids.argmax(-1) : ids.eq(m_cfg.eosTokenId).to(at::kInt).argmax(-1);
    at::Tensor rows = at::arange(batch, at::TensorOptions().dtype(at::kLong).device(dev));
    out.pooled = out.lastHiddenState.reshape({batch * len, m_cfg.hiddenSize}).index_select(0, rows * len + idx);
    if (hasProjection()) out.textEmbeds = m.projection(out.pooled);
    return out;
}

at::Tensor ClipTextEncoder::finalLayerNorm(const at::Tensor& hidden) const {
    c10::NoGradGuard noGrad;
    return m_w->finalLn(hidden);
}

// ---- LoRA (issue 10) ----------------------------------------------------------------------------------------------
std::vector<std::pair<std::string, at::Tensor*>> ClipTextEncoder::loraTargets() {
    std::vector<std::pair<std::string, at::Tensor*>> out;
    for (std::size_t i = 0; i < m_w->layers.size(); ++i) {
        auto& l = m_w->layers[i];
        const std::string p = "text_model.encoder.layers." + std::to_string(i) + ".";
        out.emplace_back(p + "self_attn.q_proj", &l.q.weight);
        out.emplace_back(p + "self_attn.k_proj", &l.k.weight);
        out.emplace_back(p + "self_attn.v_proj", &l.v.weight);
        out.emplace_back(p + "self_attn.out_proj", &l.out.weight);
        out.emplace_back(p + "mlp.fc1", &l.fc1.weight);
        out.emplace_back(p + "mlp.fc2", &l.fc2.weight);
    }
    if (m_w->projection.weight.defined()) out.emplace_back("text_projection", &m_w->projection.weight);
    return out;
}

std::shared_ptr<ClipTextEncoder> ClipTextEncoder::shallowCopy() const {
    std::shared_ptr<ClipTextEncoder> enc(new ClipTextEncoder());
    enc->m_cfg = m_cfg;
    enc->m_w = std::make_unique<Weights>(*m_w);
    return enc;
}

}  // namespace koala::models
