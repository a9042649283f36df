// KOALA engine, tools interface: what koala-bench and the GPU checks need beyond koala/engine.h. Plain C++ (no
// LibTorch types), like the main header; every function throws only koala::Error.
//
//   koala::RandomModelSpec spec;  spec.arch = "koala-700m";  spec.supportDir = "tests/data/fixtures/tiny-koala-700m";
//   auto model = koala::makeRandomModel(spec);      // full-size architecture, random weights, CUDA fast path on
//   koala::resetDeviceMemoryPeaks(model->info());
//   auto r = model->generate(req);
//   koala::DeviceMemoryStats mem = koala::deviceMemoryStats(model->info());
//
// Threading: as koala/engine.h. The counters and memory statistics are process-wide.
#pragma once

#include "koala/engine.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace koala {

// ---- full-size architectures with random weights ----------------------------------------------------------------
// The built-in architectures: "koala-700m", "koala-1b", "sdxl-base" (docs/sdxl-pipeline.md sections 0 and 9),
// "sd15" (runwayml/stable-diffusion-v1-5: CLIP ViT-L/14) and "sd2" (stabilityai/stable-diffusion-2-1: OpenCLIP
// ViT-H, 768 px, v-prediction).
std::vector<std::string> randomArchitectures();
bool isRandomArchitecture(const std::string& name);
// The UNet parameter count the model card gives (782,822,724 / 1,161,184,324 / 2,567,463,684 / 859,520,964 /
// 865,910,724); 0 if unknown.
std::int64_t modelCardUnetParameters(const std::string& arch);

// An architecture's U-Net read from its config, without allocating a weight: what the KOALA model card's U-Net
// comparison lists. `arch`: a built-in architecture or a diffusers model folder. Throws Error as the loader does.
struct UnetSummary {
    std::string arch;
    std::string pipeline;                     // "sd" (StableDiffusionPipeline) or "sdxl"
    std::int64_t parameters = 0;              // counted from the tensor shapes the loader takes
    std::int64_t cardParameters = 0;          // modelCardUnetParameters(arch)
    std::vector<int> transformerBlocks;       // per down stage: transformer blocks per attention (0: no attention)
    std::string midBlock;                     // "cross-attention", "resnet" (UNetMidBlock2D) or "none"
    int midTransformerBlocks = 0;             // transformer blocks of a cross-attention mid block
    int defaultWidth = 0, defaultHeight = 0;  // unet sample_size x the VAE's scale factor
    int crossAttentionDim = 0;
};
UnetSummary describeUnet(const std::string& arch);

struct RandomModelSpec {
    // A built-in architecture, or a diffusers model folder whose configs (unet, vae, text_encoder, text_encoder_2)
    // give the architecture; its weights are never read.
    std::string arch;
    // A folder with tokenizer/, tokenizer_2/ (SDXL family only) and scheduler/scheduler_config.json (the tiny
    // fixtures ship the real 49,408-token CLIP vocabulary: tiny-koala-700m for the SDXL family, tiny-sd15 and
    // tiny-sd2 for "sd15" / "sd2"). Empty: `arch` itself when it is a folder.
    std::string supportDir;
    Device device = Device::Auto;  // resolved with resolveDevice / resolveDType, as Model::load does
    DType dtype = DType::Auto;
    MemoryMode memory = MemoryMode::Default;
    std::uint64_t seed = 1;  // weights: normal(0, 0.02), zero biases, unit norms, seeded per tensor name
};
// A complete Model (tokenizers, the architecture's real text encoders, UNet, VAE, scheduler) with random weights,
// the CUDA fast path installed as Model::load installs it. info().name is "random-<arch>"; an SD architecture has
// info().pipeline "sd" and its default size (sd15 512, sd2 768).
std::shared_ptr<Model> makeRandomModel(const RandomModelSpec& spec);

// ---- LoRA merge speed (issue 10) ----------------------------------------------------------------------------------
struct RandomLoraSpec {
    int rank = 32;
    double alpha = 0;      // kohya alpha (scale alpha/rank); 0 = rank (scale 1)
    double stddev = 0.01;  // lora_down and lora_up are normal(0, stddev), seeded per key
    std::uint64_t seed = 1;
    bool unet = true;          // every UNet module the merge can target (attention q/k/v/out, ff, proj_in/out,
                               // resnet convs and time projections, conv_in/out, samplers, embeddings)
    bool textEncoders = true;  // both encoders: q/k/v/out_proj, fc1, fc2 of every layer, text_projection
};
struct RandomLoraInfo {
    std::string path;
    int modules = 0;  // lora_down/lora_up/alpha triples written
    int unetModules = 0, te1Modules = 0, te2Modules = 0;
    std::int64_t parameters = 0;  // LoRA parameters (down + up)
    std::int64_t bytes = 0;       // file size
};
// Writes a kohya-format LoRA (lora_unet_* / lora_te1_* / lora_te2_* with .lora_down.weight, .lora_up.weight,
// .alpha; float32; conv modules as LoCon: down [r,in,kh,kw], up [out,r,1,1]) for `model`'s architecture, covering
// every weight the LoRA merge can target, with the engine's safetensors writer. The same model, spec and seed give
// the same file. Throws Error(InvalidArgument) for a rank < 1, Error(Io) when the file cannot be written.
RandomLoraInfo writeRandomLora(Model& model, const std::string& path, const RandomLoraSpec& spec = {});

struct LoraTiming {
    double mergeSeconds = 0;   // median: applying the set as Model::generate does (files read and merged)
    double removeSeconds = 0;  // median: taking it off again (the loaded weights restored)
    std::vector<double> mergeRuns, removeRuns;
    int appliedKeys = 0, totalKeys = 0;  // summed over the set (GenerateResult::AppliedLora)
    int weightsChecked = 0;              // every weight a LoRA can touch (UNet and both text encoders), hashed
    int weightsChangedByMerge = 0;       // of those, different while the set was merged (first repetition)
    bool restoredBitIdentical = false;   // after every removal, each checked weight hashes as before the first merge
};
// Times merging and removing `loras` on `model` `repetitions` times (device synchronized around each timing); a set
// merged by an earlier generate() is taken off first (untimed). The model is left without LoRA. Not concurrently
// with generate() on the same Model. Throws Error as Model::generate does for a missing or refused file.
LoraTiming timeLoraMergeAndRemove(Model& model, const std::vector<LoraRequest>& loras, int repetitions = 1);

// ---- CUDA fast path introspection -------------------------------------------------------------------------------
struct CudaFastPathStats {
    bool compiled = false;        // this build has the CUDA paths (KOALA_WITH_CUDA)
    std::int64_t captures = 0;    // UNet graphs captured (one per timestep and input shape)
    std::int64_t replays = 0;     // UNet calls served by a graph replay
    std::int64_t eagerCalls = 0;  // UNet calls run eagerly by the installed runner (graphs off or failed)
    std::int64_t captureFailures = 0;
    std::string lastError;          // why the last capture failed
    bool channelsLastUnet = false;  // the UNet's conv weights were converted to channels_last
    bool channelsLastVae = false;
};
// Process-wide counters since the start (take differences around a run).
CudaFastPathStats cudaFastPathStats();

// ---- device memory ----------------------------------------------------------------------------------------------
// The caching allocator's figures for the device a model runs on (all zero on the CPU).
struct DeviceMemoryStats {
    std::int64_t allocatedCurrent = 0, allocatedPeak = 0;
    std::int64_t reservedCurrent = 0, reservedPeak = 0;
};
DeviceMemoryStats deviceMemoryStats(const ModelInfo& model);
void resetDeviceMemoryPeaks(const ModelInfo& model);
// Waits until the model's device has finished its queued work (no-op on the CPU), for timings.
void synchronizeDevice(const ModelInfo& model);

}  // namespace koala
