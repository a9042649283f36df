// Full-size SDXL-family architectures with random weights (internal): what koala-bench measures without
// downloading a model, and what the tests use to check the architectures' parameter counts. Also the
// public side of this (koala/bench.h) is implemented in pipeline/bench.cpp.
#pragma once

#include "koala/bench.h"
#include "pipeline/model_impl.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace koala {

// The diffusers unet/config.json of a built-in architecture. Throws Error(InvalidArgument) for another name.
nlohmann::json randomUnetConfigJson(const std::string& arch);
// The real SDXL text encoders and VAE: CLIP ViT-L/14 (768, 12 layers, quick_gelu), OpenCLIP bigG (1280, 32 layers,
// gelu, projection 1280), the SDXL VAE ([128,256,512,512], 2 layers, scaling 0.13025).
models::ClipTextConfig clipLConfig();
models::ClipTextConfig clipBigGConfig();
models::VaeConfig sdxlVaeConfig();
// Stable Diffusion 2.x's text encoder (stabilityai/stable-diffusion-2-1 text_encoder/config.json: OpenCLIP ViT-H,
// 1024 hidden, 23 layers, 16 heads, 4096 intermediate, gelu, projection_dim 512) and the SD VAE (the SDXL layout,
// scaling 0.18215). SD 1.5's text encoder is clipLConfig().
models::ClipTextConfig openClipHConfig();
models::VaeConfig sdVaeConfig();

// "sd" (StableDiffusionPipeline: sd15, sd2, or a folder whose UNet has no addition embedding) or "sdxl".
std::string randomPipelineOf(const std::string& arch);
// The number of parameters Unet::load takes for `config`, counted from the tensor shapes without allocating any
// (the tests hold it equal to Unet::parameterCount() of built UNets).
std::int64_t unetParameterCountOf(const models::UnetConfig& config);

// A UNet of a built-in architecture (or of `<folder>/unet/config.json` when `arch` is a model folder) with random
// weights (WeightStore::random: normal(0, 0.02), zero biases, unit norms) in `dtype` on `device`.
std::shared_ptr<models::Unet> buildRandomUnet(const std::string& arch, at::Device device, at::ScalarType dtype,
                                              std::uint64_t seed = 1);

struct RandomModelOptions {
    // "koala-700m" | "koala-1b" | "sdxl-base" | "sd15" | "sd2", or a diffusers model folder whose configs (unet,
    // vae, text_encoder, text_encoder_2) give the architecture; its weights are never read.
    std::string arch;
    // A folder with tokenizer/, tokenizer_2/ (SDXL family only) and scheduler/scheduler_config.json (e.g. the tiny
    // fixture, which ships the real 49,408-token CLIP vocabulary). Empty: `arch` itself when it is a folder.
    std::string supportDir;
    at::Device device = at::kCPU;
    at::ScalarType dtype = at::kFloat;  // UNet and text encoders; the VAE follows ModelImpl's rule
    MemoryMode memory = MemoryMode::Default;
    std::uint64_t seed = 1;
};

// Builds a complete ModelImpl (tokenizers, the text encoders, UNet, VAE, scheduler config) with random weights,
// through ModelImpl::fromParts; a Stable Diffusion architecture gets one tokenizer and encoder, info.pipeline "sd",
// no forced-zero negative, and the default size from the UNet's sample_size. Low memory mode parks the text encoders on the CPU, as ModelImpl::load does. Does
// not install the CUDA fast path (call installCudaFastPath()). Throws koala::Error.
std::unique_ptr<ModelImpl> buildRandomModel(const RandomModelOptions& options);

}  // namespace koala
