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
// The built-in architectures: "koala-700m", "koala-1b", "sdxl-base" (docs/sdxl-pipeline.md sections 0 and 9).
std::vector<std::string> randomArchitectures();
bool isRandomArchitecture(const std::string& name);
// The UNet parameter count the model card gives (782,822,724 / 1,161,184,324 / 2,567,463,684); 0 if unknown.
std::int64_t modelCardUnetParameters(const std::string& arch);

struct RandomModelSpec {
    // A built-in architecture, or a diffusers model folder whose configs (unet, vae, text_encoder, text_encoder_2)
    // give the architecture; its weights are never read.
    std::string arch;
    // A folder with tokenizer/, tokenizer_2/ and scheduler/scheduler_config.json (the tiny fixture ships the real
    // 49,408-token CLIP vocabulary). Empty: `arch` itself when it is a folder.
    std::string supportDir;
    Device device = Device::Auto;  // resolved with resolveDevice / resolveDType, as Model::load does
    DType dtype = DType::Auto;
    MemoryMode memory = MemoryMode::Default;
    std::uint64_t seed = 1;  // weights: normal(0, 0.02), zero biases, unit norms, seeded per tensor name
};
// A complete Model (tokenizers, the real SDXL text encoders, UNet, VAE, scheduler) with random weights, the CUDA
// fast path installed as Model::load installs it. info().name is "random-<arch>".
std::shared_ptr<Model> makeRandomModel(const RandomModelSpec& spec);

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
