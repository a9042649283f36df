#include "sampling/noise.h"

#include <ATen/CPUGeneratorImpl.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>
#include <c10/util/MathConstants.h>

#include <cmath>
#include <limits>
#include <mutex>

namespace koala::sampling {

namespace {

// torch's CPU normal_fill for float16 / bfloat16 (ATen/native/cpu/DistributionTemplates.h, torch 2.x), written out
// so every LibTorch we build against gives the stream diffusers' torch gives (LibTorch 1.13's half kernel gives other
// numbers). Uniforms of `digits` mantissa bits (11 for half, 8 for bfloat16) from the generator's 32-bit output,
// then Box-Muller in blocks of 16 computed in the half type's own arithmetic, the tail recomputed as one block of
// 16 fresh uniforms over the last 16 elements.
template <typename T>
T uniformHalf(at::CPUGeneratorImpl* g) {
    constexpr std::uint32_t digits = std::numeric_limits<T>::digits;
    constexpr std::uint32_t mask = (std::uint32_t(1) << digits) - 1;
    constexpr float divisor = 1.0f / float(std::uint32_t(1) << digits);
    const float x = float(g->random() & mask) * divisor;
    return T(x * (1.0f - 0.0f) + 0.0f);
}

template <typename T>
void boxMuller16(T* data) {
    // In torch 2.x every step below is an operation on T with a T result (c10's reduced-precision std::log/sqrt/
    // cos/sin overloads and Half/BFloat16 operators compute in float and round), so each intermediate is rounded.
    const auto r = [](float x) { return float(T(x)); };
    for (int j = 0; j < 8; ++j) {
        const float u1 = r(1.0f - float(data[j]));  // [0, 1) -> (0, 1] for log
        const float u2 = float(data[j + 8]);
        const float radius = r(std::sqrt(r(-2.0f * r(std::log(u1)))));
        const float theta = r(float(2.0f * c10::pi<double> * double(u2)));
        const float c = r(std::cos(theta)), s = r(std::sin(theta));
        // radius * cos(theta) * std + mean with std = 1, mean = 0, each product and sum rounded.
        data[j] = T(r(r(r(radius * c) * 1.0f) + 0.0f));
        data[j + 8] = T(r(r(r(radius * s) * 1.0f) + 0.0f));
    }
}

template <typename T>
void normalFillHalf(at::Tensor& t, at::Generator& gen) {
    T* data = t.data_ptr<T>();
    const std::int64_t size = t.numel();
    auto* g = at::check_generator<at::CPUGeneratorImpl>(gen);
    std::lock_guard<std::mutex> lock(gen.mutex());
    for (std::int64_t i = 0; i < size; ++i) data[i] = uniformHalf<T>(g);
    for (std::int64_t i = 0; i < size - 15; i += 16) boxMuller16(data + i);
    if (size % 16 != 0) {
        T* tail = data + size - 16;
        for (int i = 0; i < 16; ++i) tail[i] = uniformHalf<T>(g);
        boxMuller16(tail);
    }
}

}  // namespace

at::Generator makeCpuGenerator(std::uint64_t seed) {
    // A fresh mt19937 seeded with `seed` and no cached normal sample: the state torch.Generator("cpu").manual_seed
    // leaves behind.
    return at::detail::createCPUGenerator(seed);
}

at::Tensor randnCpu(at::Generator& gen, at::IntArrayRef shape, at::Device device, at::ScalarType dtype) {
    // Always drawn on the CPU: the CPU normal kernel is the one stream every device can reproduce.
    const auto opts = at::TensorOptions().dtype(dtype).device(at::kCPU);
    at::Tensor noise;
    std::int64_t numel = 1;
    for (auto d : shape) numel *= d;
    if ((dtype == at::kHalf || dtype == at::kBFloat16) && numel >= 16) {
        noise = at::empty(shape, opts);
        if (dtype == at::kHalf)
            normalFillHalf<at::Half>(noise, gen);
        else
            normalFillHalf<at::BFloat16>(noise, gen);
    } else {
        // float32 (LibTorch's vectorised fill) and fewer than 16 half values (a serial draw of double normals,
        // cast), which every LibTorch computes alike.
        noise = at::randn(shape, gen, opts);
    }
    return device.is_cpu() ? noise : noise.to(device);
}

}  // namespace koala::sampling
