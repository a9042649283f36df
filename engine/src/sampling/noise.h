// Seeded noise (internal), bit-identical to torch.Generator("cpu").manual_seed(seed) + torch.randn(..., float32).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace koala::sampling {

// A CPU generator (mt19937) seeded like torch.Generator("cpu").manual_seed(seed).
at::Generator makeCpuGenerator(std::uint64_t seed);
// float32 standard normal noise drawn on the CPU from `gen` (whatever device later runs the model), then moved to
// `device`. Always float32 on the CPU so the same seed gives the same numbers on every device and dtype.
at::Tensor randnCpu(at::Generator& gen, at::IntArrayRef shape, at::Device device = at::kCPU);

}  // namespace koala::sampling
