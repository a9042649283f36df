// Fused CUDA kernels (internal; compiled by nvcc only in a CUDA LibTorch build). A plain interface — raw device
// pointers, sizes, a cudaStream_t passed as void* — so the .cu file includes no LibTorch header; the LibTorch side
// is models/fused.cpp, which checks the tensors and falls back to the LibTorch ops where a kernel does not apply.
#pragma once

#include <cstdint>

namespace koala::cuda {

enum class ElemType { F32 = 0, F16 = 1, BF16 = 2 };

// y = silu(group_norm(x, groups, weight, bias, eps)) (or without the SiLU when `silu` is false), statistics in
// float32 (biased variance, as torch), x / y / weight / bias all of type `t`. x is [n, c, hw] in NCHW order
// (contiguous) or, with channelsLast, [n, hw, c]. `stats` is device scratch of 2·n·groups floats. Returns the CUDA
// error code of the launches (0 = cudaSuccess).
int groupNormSilu(const void* x, void* y, const void* weight, const void* bias, float* stats, ElemType t,
                  std::int64_t n, std::int64_t c, std::int64_t hw, int groups, float eps, bool channelsLast, bool silu,
                  void* stream);

// GEGLU: out[r, j] = p[r, j] · gelu(p[r, d + j]) with the exact (erf) GELU, p [rows, 2d] contiguous, out [rows, d].
int geglu(const void* p, void* out, ElemType t, std::int64_t rows, std::int64_t d, void* stream);

}  // namespace koala::cuda
