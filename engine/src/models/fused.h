// Fused kernels for the UNet and the VAE (internal): GroupNorm+SiLU and GEGLU in one pass each on CUDA
// (engine/src/cuda/fused_kernels.cu), LibTorch's ops everywhere else. Off unless KOALA_FUSED_KERNELS=1 until the
// GPU machine has checked and timed them (tests/engine/gpu_models_fused.cpp, koala-bench with the variable set).
#pragma once

#include "models/ops.h"

#include <ATen/ATen.h>

namespace koala::models {

// Whether this build has the CUDA kernels (a CUDA LibTorch with nvcc), and whether they are switched on.
bool fusedKernelsBuilt();
bool fusedKernelsEnabled();

// silu(gn(x)) — the fused kernel when enabled and x is a CUDA tensor of f32/f16/bf16 in NCHW or channels_last
// layout with weights of its dtype, else at::silu(at::group_norm(...)).
at::Tensor groupNormSilu(const GroupNormW& gn, const at::Tensor& x);
// a · gelu(b) for [a, b] = p.chunk(2, -1) (diffusers' GEGLU, exact GELU) — fused under the same conditions.
at::Tensor geglu(const at::Tensor& p);

// The kernels themselves, whatever the switch says (tests and benchmarks); throw koala::Error when they cannot run
// (not built, not a CUDA tensor, unsupported dtype/layout).
at::Tensor groupNormSiluFused(const GroupNormW& gn, const at::Tensor& x, bool silu = true);
at::Tensor gegluFused(const at::Tensor& p);

}  // namespace koala::models
