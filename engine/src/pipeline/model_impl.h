// The loaded model set behind koala::Model (internal). Components are shared_ptrs so that two Models can hold one
// copy of identical text encoders, tokenizers and VAE (a KOALA-700M / KOALA-1B comparison).
#pragma once

#include "koala/engine.h"
#include "models/clip.h"
#include "models/unet.h"
#include "models/vae.h"
#include "sampling/scheduler.h"
#include "text/tokenizer.h"

#include <ATen/ATen.h>

#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace koala {

// Text side of the pipeline: both tokenizers and both encoders, with the files they came from (for sharing).
struct TextStack {
    std::shared_ptr<text::ClipTokenizer> tokenizer1, tokenizer2;
    std::shared_ptr<models::ClipTextEncoder> encoder1, encoder2;
    std::vector<std::string> files;  // weight + config + tokenizer files, compared byte for byte when sharing
};

struct VaeStack {
    std::shared_ptr<models::VaeDecoder> decoder;
    std::vector<std::string> files;
    bool channelsLast = false;  // conv weights stored channels_last (set once, before the stack is shared)
    // ---- img2img / inpainting: the encoder, loaded from `files` on first use (pipeline/img2img.cpp) under the run
    // mutex, which every Model sharing this stack shares; text-to-image never loads it.
    std::shared_ptr<models::VaeEncoder> encoder;
};

// Prompt embeddings as encode_prompt returns them (batch of 1, before repeating for num_images).
struct PromptEmbeds {
    at::Tensor prompt, pooled;            // [1,77,ctx], [1,pooled]
    at::Tensor negative, negativePooled;  // undefined when classifier-free guidance is off
};

struct LoraState;  // pipeline/lora.cpp (issue 10)

class ModelImpl {
public:
    // The UNet call used by the denoising loop; replaceable (the CUDA path installs a graph-captured runner).
    using UnetRunner = std::function<at::Tensor(const at::Tensor& x, double t, const at::Tensor& ctx,
                                                const at::Tensor& textEmbeds, const at::Tensor& timeIds)>;

    ModelInfo info;
    std::string folder;
    at::Device device = at::kCPU;
    at::ScalarType dtype = at::kFloat;     // UNet / text encoder compute dtype
    at::ScalarType vaeDType = at::kFloat;  // VAE compute dtype (bf16 on CUDA by default, fp32 retry)
    MemoryMode memory = MemoryMode::Default;
    bool forceZerosForEmptyPrompt = true;

    std::shared_ptr<TextStack> text;
    std::shared_ptr<VaeStack> vae;
    std::shared_ptr<models::Unet> unet;
    sampling::SchedulerConfig schedulerConfig;
    std::shared_ptr<std::mutex> runMutex;  // one generation at a time per family of sharing Models
    UnetRunner runner;                     // empty = unet->forward

    // Loading. `shareWith` may be null.
    static std::unique_ptr<ModelImpl> load(const std::string& path, const LoadOptions& options,
                                           const ModelImpl* shareWith);
    // Load only what is in `folder` into a ModelImpl built around a given UNet weight store (for koala-bench's
    // random full-size models). Not used by the application.
    static std::unique_ptr<ModelImpl> fromParts(std::shared_ptr<TextStack> text, std::shared_ptr<VaeStack> vae,
                                                std::shared_ptr<models::Unet> unet, sampling::SchedulerConfig sched,
                                                at::Device device, at::ScalarType dtype);

    PromptEmbeds encodePrompt(const GenerateRequest& request, bool guidance);
    at::Tensor decodeLatents(const at::Tensor& latents);  // → [B,3,H,W] float32 in [0,1]
    GenerateResult generate(const GenerateRequest& request, const Callbacks& callbacks, CancelToken* cancel);

    // ---- LoRA (issue 10, pipeline/lora.cpp) ----
    // Makes the merged LoRA set the request's (its loras and, under the A1111 syntax, the prompt's <lora:> tags):
    // nothing when it already is, else the current set is taken off exactly and the new one merged. Called by
    // Model::generate before generate(). removeLoras() restores the loaded weights bit for bit.
    std::shared_ptr<LoraState> loraState;
    std::vector<GenerateResult::AppliedLora> applyLoras(const GenerateRequest& request);
    void removeLoras();
};

// dtype names and conversions (model.cpp): the one mapping between the public DType and LibTorch's.
at::ScalarType toScalarType(DType d);  // Auto → fp32
DType dtypeOf(at::ScalarType t);
const char* dtypeName(at::ScalarType t);  // "fp16", "bf16", "fp32"

// Internal access to a public Model (the engine's tests and tools only; Model::impl() is not public).
struct ModelAccess {
    static ModelImpl& impl(Model& m) { return *m.m_impl; }
    static const ModelImpl& impl(const Model& m) { return *m.m_impl; }
    static std::shared_ptr<Model> wrap(std::unique_ptr<ModelImpl> impl) {
        return std::shared_ptr<Model>(new Model(std::move(impl)));
    }
};

// Cast/copy helpers shared by the pipeline and the tools.
FloatTensor toFloatTensor(const at::Tensor& t);
std::vector<Image> toImages(const at::Tensor& images01);  // [B,3,H,W] in [0,1] → 8-bit RGB (round half to even)

// CUDA fast path (pipeline/cuda_fast_path.cpp): cuDNN benchmark mode, channels_last weights, a CUDA-graph-captured
// UNet runner installed into `m.runner`. Called by ModelImpl::load for CUDA models; a no-op on the CPU and in builds
// against a CPU-only LibTorch. Options come from the environment (KOALA_CUDA_GRAPHS=0 disables graph capture).
void installCudaFastPath(ModelImpl& m);

// Device utilities (CUDA parts compile only against a CUDA LibTorch).
void synchronizeDevice(const at::Device& device);
void resetPeakMemory(const at::Device& device);
std::int64_t peakMemoryBytes(const at::Device& device);

}  // namespace koala
