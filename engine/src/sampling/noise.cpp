#include "sampling/noise.h"

#include <ATen/CPUGeneratorImpl.h>

namespace koala::sampling {

at::Generator makeCpuGenerator(std::uint64_t seed) {
    // A fresh mt19937 seeded with `seed` and no cached normal sample: the state torch.Generator("cpu").manual_seed
    // leaves behind.
    return at::detail::createCPUGenerator(seed);
}

at::Tensor randnCpu(at::Generator& gen, at::IntArrayRef shape, at::Device device) {
    // Always drawn on the CPU in float32: the CPU normal kernel is the one stream every device can reproduce.
    at::Tensor noise = at::randn(shape, gen, at::TensorOptions().dtype(at::kFloat).device(at::kCPU));
    return device.is_cpu() ? noise : noise.to(device);
}

}  // namespace koala::sampling
