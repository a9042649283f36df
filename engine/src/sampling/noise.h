// Seeded noise (internal), bit-identical to torch.Generator("cpu").manual_seed(seed) + torch.randn(..., dtype).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace koala::sampling {

// A CPU generator (mt19937) seeded like torch.Generator("cpu").manual_seed(seed).
at::Generator makeCpuGenerator(std::uint64_t seed);
// Standard normal noise drawn on the CPU from `gen` (whatever device later runs the model), then moved to `device`.
// Drawn in `dtype`, as diffusers' randn_tensor draws in the pipeline's dtype: torch's CPU normal kernel makes a
// different stream for float16 and bfloat16 (uniforms of 11 / 8 mantissa bits, not a rounding of the float32
// draw), so a half-precision run must draw in half precision to give diffusers' image for the same seed.
at::Tensor randnCpu(at::Generator& gen, at::IntArrayRef shape, at::Device device = at::kCPU,
                    at::ScalarType dtype = at::kFloat);

}  // namespace koala::sampling
