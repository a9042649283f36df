// Fused GroupNorm+SiLU and GEGLU kernels (see fused_kernels.h). Arithmetic in float32 whatever the storage type.
#include "cuda/fused_kernels.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

namespace koala::cuda {

namespace {

__device__ __forceinline__ float load(const float* p, std::int64_t i) { return p[i]; }
__device__ __forceinline__ float load(const __half* p, std::int64_t i) { return __half2float(p[i]); }
__device__ __forceinline__ float load(const __nv_bfloat16* p, std::int64_t i) { return __bfloat162float(p[i]); }
__device__ __forceinline__ void store(float* p, std::int64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void store(__half* p, std::int64_t i, float v) { p[i] = __float2half_rn(v); }
__device__ __forceinline__ void store(__nv_bfloat16* p, std::int64_t i, float v) { p[i] = __float2bfloat16_rn(v); }

// Welford state and Chan's combination of two partial states.
struct Welford {
    float mean, m2, count;
};

__device__ __forceinline__ Welford combine(Welford a, Welford b) {
    const float count = a.count + b.count;
    if (count == 0.0f) return {0.0f, 0.0f, 0.0f};
    const float delta = b.mean - a.mean;
    const float wb = b.count / count;
    return {a.mean + delta * wb, a.m2 + b.m2 + delta * delta * a.count * wb, count};
}

__device__ __forceinline__ Welford warpReduce(Welford w) {
    for (int off = 16; off > 0; off >>= 1) {
        Welford o;
        o.mean = __shfl_down_sync(0xffffffffu, w.mean, off);
        o.m2 = __shfl_down_sync(0xffffffffu, w.m2, off);
        o.count = __shfl_down_sync(0xffffffffu, w.count, off);
        w = combine(w, o);
    }
    return w;
}

constexpr int kStatsThreads = 512;

// One block per (sample, group): mean and 1/sqrt(var + eps) into stats[2·(n·groups + g)].
template <typename T>
__global__ void groupStats(const T* __restrict__ x, float* __restrict__ stats, std::int64_t c, std::int64_t hw,
                           int groups, float eps, bool channelsLast) {
    const std::int64_t ng = blockIdx.x;
    const std::int64_t n = ng / groups, g = ng % groups;
    const std::int64_t cg = c / groups;
    const std::int64_t count = cg * hw;
    Welford w{0.0f, 0.0f, 0.0f};
    if (!channelsLast) {
        const T* base = x + (n * c + g * cg) * hw;  // the group's channels are one contiguous run
        for (std::int64_t i = threadIdx.x; i < count; i += blockDim.x) {
            const float v = load(base, i);
            w.count += 1.0f;
            const float d = v - w.mean;
            w.mean += d / w.count;
            w.m2 += d * (v - w.mean);
        }
    } else {
        const T* base = x + n * hw * c + g * cg;
        for (std::int64_t i = threadIdx.x; i < count; i += blockDim.x) {
            const std::int64_t p = i / cg, k = i % cg;
            const float v = load(base, p * c + k);
            w.count += 1.0f;
            const float d = v - w.mean;
            w.mean += d / w.count;
            w.m2 += d * (v - w.mean);
        }
    }
    w = warpReduce(w);
    __shared__ Welford partial[kStatsThreads / 32];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    if (lane == 0) partial[warp] = w;
    __syncthreads();
    if (warp == 0) {
        w = lane < int(blockDim.x / 32) ? partial[lane] : Welford{0.0f, 0.0f, 0.0f};
        w = warpReduce(w);
        if (lane == 0) {
            const float var = w.count > 0.0f ? w.m2 / w.count : 0.0f;
            stats[2 * ng] = w.mean;
            stats[2 * ng + 1] = rsqrtf(var + eps);
        }
    }
}

template <typename T>
__global__ void groupApply(const T* __restrict__ x, T* __restrict__ y, const T* __restrict__ weight,
                           const T* __restrict__ bias, const float* __restrict__ stats, std::int64_t total,
                           std::int64_t c, std::int64_t hw, int groups, bool channelsLast, bool silu) {
    const std::int64_t cg = c / groups;
    for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < total;
         i += std::int64_t(gridDim.x) * blockDim.x) {
        std::int64_t n, ch;
        if (channelsLast) {
            ch = i % c;
            n = i / (c * hw);
        } else {
            ch = (i / hw) % c;
            n = i / (c * hw);
        }
        const std::int64_t ng = n * groups + ch / cg;
        float v = (load(x, i) - stats[2 * ng]) * stats[2 * ng + 1];
        v = v * load(weight, ch) + load(bias, ch);
        if (silu) v = v / (1.0f + expf(-v));
        store(y, i, v);
    }
}

template <typename T>
__global__ void gegluKernel(const T* __restrict__ p, T* __restrict__ out, std::int64_t rows, std::int64_t d) {
    const std::int64_t total = rows * d;
    for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < total;
         i += std::int64_t(gridDim.x) * blockDim.x) {
        const std::int64_t r = i / d, j = i % d;
        const float a = load(p, r * 2 * d + j);
        const float g = load(p, r * 2 * d + d + j);
        const float gelu = 0.5f * g * (1.0f + erff(g * 0.70710678118654752f));
        store(out, i, a * gelu);
    }
}

int gridFor(std::int64_t total, int threads) {
    std::int64_t blocks = (total + threads - 1) / threads;
    if (blocks > 65535 * 8) blocks = 65535 * 8;  // grid-stride loops cover the rest
    return int(blocks < 1 ? 1 : blocks);
}

template <typename T>
int launchGroupNormSilu(const void* x, void* y, const void* weight, const void* bias, float* stats, std::int64_t n,
                        std::int64_t c, std::int64_t hw, int groups, float eps, bool channelsLast, bool silu,
                        cudaStream_t s) {
    groupStats<T><<<unsigned(n * groups), kStatsThreads, 0, s>>>(static_cast<const T*>(x), stats, c, hw, groups, eps,
                                                                 channelsLast);
    const std::int64_t total = n * c * hw;
    constexpr int threads = 256;
    groupApply<T><<<gridFor(total, threads), threads, 0, s>>>(
        static_cast<const T*>(x), static_cast<T*>(y), static_cast<const T*>(weight), static_cast<const T*>(bias), stats,
        total, c, hw, groups, channelsLast, silu);
    return int(cudaGetLastError());
}

template <typename T>
int launchGeglu(const void* p, void* out, std::int64_t rows, std::int64_t d, cudaStream_t s) {
    constexpr int threads = 256;
    gegluKernel<T>
        <<<gridFor(rows * d, threads), threads, 0, s>>>(static_cast<const T*>(p), static_cast<T*>(out), rows, d);
    return int(cudaGetLastError());
}

}  // namespace

int groupNormSilu(const void* x, void* y, const void* weight, const void* bias, float* stats, ElemType t,
                  std::int64_t n, std::int64_t c, std::int64_t hw, int groups, float eps, bool channelsLast, bool silu,
                  void* stream) {
    if (n <= 0 || c <= 0 || hw <= 0 || groups <= 0 || c % groups != 0) return int(cudaErrorInvalidValue);
    const auto s = static_cast<cudaStream_t>(stream);
    switch (t) {
    case ElemType::F32:
        return launchGroupNormSilu<float>(x, y, weight, bias, stats, n, c, hw, groups, eps, channelsLast, silu, s);
    case ElemType::F16:
        return launchGroupNormSilu<__half>(x, y, weight, bias, stats, n, c, hw, groups, eps, channelsLast, silu, s);
    case ElemType::BF16:
        return launchGroupNormSilu<__nv_bfloat16>(x, y, weight, bias, stats, n, c, hw, groups, eps, channelsLast, silu,
                                                  s);
    }
    return int(cudaErrorInvalidValue);
}

int geglu(const void* p, void* out, ElemType t, std::int64_t rows, std::int64_t d, void* stream) {
    if (rows <= 0 || d <= 0) return int(cudaErrorInvalidValue);
    const auto s = static_cast<cudaStream_t>(stream);
    switch (t) {
    case ElemType::F32: return launchGeglu<float>(p, out, rows, d, s);
    case ElemType::F16: return launchGeglu<__half>(p, out, rows, d, s);
    case ElemType::BF16: return launchGeglu<__nv_bfloat16>(p, out, rows, d, s);
    }
    return int(cudaErrorInvalidValue);
}

}  // namespace koala::cuda
