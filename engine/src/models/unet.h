// UNet2DConditionModel built from its config.json (internal): SDXL-base, KOALA-1B, KOALA-700M, SSD-1B, Vega shapes.
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

struct UnetConfig {
    int inChannels = 4, outChannels = 4;
    std::vector<int> blockOutChannels{320, 640, 1280};
    std::vector<std::string> downBlockTypes, upBlockTypes;
    std::string midBlockType = "UNetMidBlock2DCrossAttn";  // "" = none
    std::vector<int> layersPerBlock;                       // per down block
    std::vector<std::vector<int>> transformerLayersDown;   // [block][layer]
    std::vector<std::vector<int>> transformerLayersUp;     // [up block][layer] (layers_per_block+1 entries)
    int transformerLayersMid = 1;
    std::vector<int> numHeadsDown;  // heads per down block (attention_head_dim semantics)
    int crossAttentionDim = 2048;
    bool useLinearProjection = true;
    std::string additionEmbedType = "text_time";  // "" = none
    int additionTimeEmbedDim = 256;
    int projectionClassEmbeddingsInputDim = 2816;
    bool flipSinToCos = true;
    double freqShift = 0;
    int normNumGroups = 32;
    double normEps = 1e-5;
    int sampleSize = 128;
    bool centerInputSample = false;
    int convInKernel = 3, convOutKernel = 3;
    int timeEmbedDim = 0;          // time_embedding_dim; 0 = 4 * blockOutChannels[0]
    bool upcastAttention = false;  // informational: SDPA ignores it in diffusers too
    // Parses config.json; every unsupported value is an error that names the key.
    static UnetConfig fromConfig(const io::Config& cfg);
};

class Unet {
public:
    static std::shared_ptr<Unet> load(const UnetConfig& cfg, io::WeightStore& weights);
    // sample [B,4,h,w]; timestep: a double broadcast over the batch; context [B,77,cross_dim];
    // textEmbeds [B,pooled]; timeIds [B,6]. Returns eps [B,4,h,w] in the UNet dtype.
    // The double is wrapped in a float32 tensor (diffusers' float32 value of the timestep) and handed to the
    // tensor overload: one implementation.
    at::Tensor forward(const at::Tensor& sample, double timestep, const at::Tensor& context,
                       const at::Tensor& textEmbeds, const at::Tensor& timeIds) const;
    // The same with the timestep as a 0-d, [1] or [B] float32 tensor on the UNet's device (another dtype/device is
    // converted). Nothing reads it on the host, so a CUDA graph captured with a static timestep buffer serves every
    // step: copy_() the next timestep into the buffer before each replay.
    at::Tensor forward(const at::Tensor& sample, const at::Tensor& timestep, const at::Tensor& context,
                       const at::Tensor& textEmbeds, const at::Tensor& timeIds) const;

    // Stores every 4-D convolution weight as channels_last (replacing the stored tensors, no copies kept): cuDNN's
    // native layout for half-precision tensor-core convolutions. Results are unchanged; activations then come out
    // channels_last as well. Not thread-safe against a concurrent forward.
    void toChannelsLast();
    // The 4-D convolution weights (handles sharing the stored tensors), for inspection.
    std::vector<at::Tensor> convWeights() const;

    const UnetConfig& config() const { return m_cfg; }
    std::int64_t parameterCount() const;
    // "sdxl-base", "koala-1b", "koala-700m", "ssd-1b", "vega" or "custom" (from the block structure).
    std::string shapeName() const;
    static std::string shapeNameOf(const UnetConfig& cfg);  // the same, from the config alone
    at::Device device() const;
    at::ScalarType dtype() const;

    // ---- LoRA (issue 10) ----
    // Every linear and convolution weight a LoRA may target, by its diffusers module name ("conv_in",
    // "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q", "...ff.net.0.proj", "...resnets.0.conv1",
    // "...downsamplers.0.conv"): pointers into this UNet's weight slots. Not thread-safe against a forward.
    std::vector<std::pair<std::string, at::Tensor*>> loraTargets();

    struct Weights;
    ~Unet();

private:
    Unet() = default;
    UnetConfig m_cfg;
    std::unique_ptr<Weights> m_w;
};

}  // namespace koala::models
