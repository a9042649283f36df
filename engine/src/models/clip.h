// CLIP text encoder (CLIPTextModel / CLIPTextModelWithProjection), as transformers computes it (internal).
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace koala::io {
class Config;
class WeightStore;
}  // namespace koala::io

namespace koala::models {

struct ClipTextConfig {
    int hiddenSize = 768, numLayers = 12, numHeads = 12, intermediateSize = 3072, maxPositions = 77, vocabSize = 49408,
        projectionDim = 768, eosTokenId = 2;
    double layerNormEps = 1e-5;
    std::string hiddenAct = "quick_gelu";                     // quick_gelu | gelu | gelu_new (tanh approx)
    static ClipTextConfig fromConfig(const io::Config& cfg);  // errors name the key
};

struct ClipTextOutput {
    at::Tensor hiddenPenultimate;  // hidden_states[-2]                [B,77,D]  (or [-(clipSkip+2)])
    at::Tensor lastHiddenState;    // final_layer_norm(last layer)     [B,77,D]
    at::Tensor pooled;             // last_hidden_state at the EOS     [B,D]
    at::Tensor textEmbeds;         // text_projection(pooled) [B,P]; undefined without projection
};

class ClipTextEncoder {
public:
    // Takes every tensor it needs from `weights` (check with weights.finish() afterwards). `withProjection`:
    // CLIPTextModelWithProjection (text_encoder_2).
    static std::shared_ptr<ClipTextEncoder> load(const ClipTextConfig& cfg, io::WeightStore& weights,
                                                 bool withProjection);
    // ids: int64 [B,T] on any device (moved to the weights' device). clipSkip 0 = hidden_states[-2].
    ClipTextOutput forward(const at::Tensor& ids, int clipSkip = 0) const;
    // text_model.final_layer_norm applied to a hidden state (Stable Diffusion's clip_skip: the normed earlier layer).
    at::Tensor finalLayerNorm(const at::Tensor& hidden) const;

    const ClipTextConfig& config() const { return m_cfg; }
    bool hasProjection() const;
    at::Device device() const;
    at::ScalarType dtype() const;
    // Move every weight to another device/dtype (memory mode "low" parks the encoders on the CPU).
    void to(at::Device device, at::ScalarType dtype);

    // ---- LoRA (issue 10) ----
    // Every linear weight a LoRA may target, by its transformers module name with the "text_model." prefix
    // ("text_model.encoder.layers.0.self_attn.q_proj", "...mlp.fc1"): pointers into this encoder's weight slots.
    std::vector<std::pair<std::string, at::Tensor*>> loraTargets();
    // A new encoder holding the same weight tensors (shared storage): replace a slot of the copy to change it alone.
    std::shared_ptr<ClipTextEncoder> shallowCopy() const;

    struct Weights;  // defined in clip.cpp
    ~ClipTextEncoder();

private:
    ClipTextEncoder() = default;
    ClipTextConfig m_cfg;
    std::unique_ptr<Weights> m_w;
};

}  // namespace koala::models
