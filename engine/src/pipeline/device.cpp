// Device utilities. The CUDA parts compile only against a CUDA LibTorch (KOALA_WITH_CUDA); elsewhere they are
// no-ops because there is no device to wait for or measure.
#include "pipeline/model_impl.h"

#ifdef KOALA_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
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

}  // namespace koala
