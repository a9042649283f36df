// The tools interface (koala/bench.h): random full-size models and device statistics, through the boundary.
#include "koala/bench.h"

#include "pipeline/boundary.h"
#include "pipeline/model_impl.h"
#include "pipeline/random_model.h"

#ifdef KOALA_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace koala {
namespace {

at::Device deviceOf(const ModelInfo& m) { return m.device == "cuda" ? at::Device(at::kCUDA, 0) : at::Device(at::kCPU); }

}  // namespace

std::shared_ptr<Model> makeRandomModel(const RandomModelSpec& spec) {
    return guarded("building the random model", [&] {
        const Device dev = resolveDevice(spec.device);
        if (dev == Device::Cuda && !cudaAvailable())
            fail(ErrorKind::InvalidArgument, "CUDA was requested but no CUDA device is available; use --device cpu");
        RandomModelOptions o;
        o.arch = spec.arch;
        o.supportDir = spec.supportDir;
        o.device = dev == Device::Cuda ? at::Device(at::kCUDA, 0) : at::Device(at::kCPU);
        o.dtype = toScalarType(resolveDType(dev, spec.dtype));
        o.memory = spec.memory;
        o.seed = spec.seed;
        auto impl = buildRandomModel(o);
        installCudaFastPath(*impl);
        synchronizeDevice(impl->device);
        return ModelAccess::wrap(std::move(impl));
    });
}

DeviceMemoryStats deviceMemoryStats(const ModelInfo& model) {
    return guarded("reading device memory statistics", [&] {
        DeviceMemoryStats m;
        const at::Device d = deviceOf(model);
#ifdef KOALA_WITH_CUDA
        if (d.is_cuda()) {
            auto s = c10::cuda::CUDACachingAllocator::getDeviceStats(d.index() < 0 ? 0 : d.index());
            // Index 0 is the AGGREGATE stat type; the enum moved between namespaces across LibTorch 2.x releases.
            const std::size_t agg = 0;
            m.allocatedCurrent = s.allocated_bytes[agg].current;
            m.allocatedPeak = s.allocated_bytes[agg].peak;
            m.reservedCurrent = s.reserved_bytes[agg].current;
            m.reservedPeak = s.reserved_bytes[agg].peak;
        }
#else
        (void)d;
#endif
        return m;
    });
}

void resetDeviceMemoryPeaks(const ModelInfo& model) {
    guarded("resetting device memory statistics", [&] { resetPeakMemory(deviceOf(model)); });
}

void synchronizeDevice(const ModelInfo& model) {
    guarded("synchronizing the device", [&] { synchronizeDevice(deviceOf(model)); });
}

}  // namespace koala
