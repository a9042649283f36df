// Device utilities. The CUDA parts compile only against a CUDA LibTorch (KOALA_WITH_CUDA); elsewhere they are
// no-ops because there is no device to wait for or measure.
#include "pipeline/model_impl.h"

#include <cstdio>

#ifdef KOALA_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <cuda_runtime_api.h>
#endif

// Filled by CMake (engine/CMakeLists.txt) from what configure found.
#ifndef KOALA_ENGINE_VERSION
#define KOALA_ENGINE_VERSION "0.0.0"
#endif
#ifndef KOALA_TORCH_VERSION
#define KOALA_TORCH_VERSION "unknown"
#endif
#ifndef KOALA_TORCH_SOURCE
#define KOALA_TORCH_SOURCE "custom"
#endif
#ifndef KOALA_CUDA_VERSION
#define KOALA_CUDA_VERSION ""
#endif

namespace koala {

void synchronizeDevice(const at::Device& device) {
#ifdef KOALA_WITH_CUDA
    if (device.is_cuda()) c10::cuda::device_synchronize();
#else
    (void)device;
#endif
}

void resetPeakMemory(const at::Device& device) {
#ifdef KOALA_WITH_CUDA
    if (device.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(device.index() < 0 ? 0 : device.index());
#else
    (void)device;
#endif
}

std::int64_t peakMemoryBytes(const at::Device& device) {
#ifdef KOALA_WITH_CUDA
    if (device.is_cuda()) {
        auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index() < 0 ? 0 : device.index());
        // Index 0 is the AGGREGATE stat type; the enum's namespace moved between LibTorch 2.x releases.
        return stats.allocated_bytes[0].peak;
    }
#else
    (void)device;
#endif
    return 0;
}

BuildInfo buildInfo() {
    BuildInfo b;
    b.engineVersion = KOALA_ENGINE_VERSION;
    b.torchVersion = KOALA_TORCH_VERSION;
    b.torchSource = KOALA_TORCH_SOURCE;
#ifdef KOALA_WITH_CUDA
    b.cudaCompiled = true;
    b.cudaVersion = KOALA_CUDA_VERSION;
#endif
    return b;
}

std::string describeBuild() {
    const BuildInfo b = buildInfo();
    std::string s = "LibTorch " + b.torchVersion + " (" + b.torchSource + "), ";
    if (b.cudaCompiled)
        s += "CUDA " + (b.cudaVersion.empty() ? std::string("(unknown version)") : b.cudaVersion) + " compiled in";
    else
        s += "CPU only";
    return s;
}

DeviceInfo defaultDevice() {
    DeviceInfo d;
    d.name = "CPU";
#ifdef KOALA_WITH_CUDA
    if (cudaAvailable()) {
        int count = 0;
        if (cudaGetDeviceCount(&count) == cudaSuccess && count > 0) {
            cudaDeviceProp prop{};
            if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess) {
                d.device = Device::Cuda;
                d.name = prop.name;
                d.totalMemoryBytes = static_cast<std::int64_t>(prop.totalGlobalMem);
                d.count = count;
            }
        }
        (void)cudaGetLastError();  // a failed query must not poison later CUDA calls
    }
#endif
    return d;
}

std::string describeDevice(const DeviceInfo& d) {
    if (d.device != Device::Cuda) return "CPU";
    std::string s = "CUDA: " + d.name;
    if (d.count > 1) s += " (+" + std::to_string(d.count - 1) + " more)";
    return s;
}

}  // namespace koala
