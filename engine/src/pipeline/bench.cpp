// The tools interface (koala/bench.h): random full-size models, device statistics and LoRA merge timing, through
// the boundary.
#include "koala/bench.h"

#include "pipeline/boundary.h"
#include "pipeline/model_impl.h"
#include "pipeline/random_model.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <utility>

#ifdef KOALA_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace koala {
namespace {

at::Device deviceOf(const ModelInfo& m) { return m.device == "cuda" ? at::Device(at::kCUDA, 0) : at::Device(at::kCPU); }

// ---- LoRA helpers -------------------------------------------------------------------------------------------------
std::string underscored(const std::string& s) {
    std::string o = s;
    std::replace(o.begin(), o.end(), '.', '_');
    return o;
}

std::uint64_t fnv1a(const std::string& s) {
    std::uint64_t h = 1469598103934665603ull;
    for (unsigned char c : s) {
        h ^= c;
        h *= 1099511628211ull;
    }
    return h;
}

// Every weight slot the LoRA merge can write, with the kohya key that names it: the UNet's under its diffusers
// module path (lora_unet_down_blocks_0_...), the encoders' as kohya writes them (lora_te1_text_model_encoder_...).
std::vector<std::pair<std::string, at::Tensor*>> loraSlots(ModelImpl& m, bool unet, bool text) {
    std::vector<std::pair<std::string, at::Tensor*>> out;
    if (unet)
        for (auto& [name, slot] : m.unet->loraTargets()) out.emplace_back("lora_unet_" + underscored(name), slot);
    if (text) {
        for (auto& [name, slot] : m.text->encoder1->loraTargets())
            out.emplace_back("lora_te1_" + underscored(name), slot);
        for (auto& [name, slot] : m.text->encoder2->loraTargets())
            out.emplace_back("lora_te2_" + underscored(name), slot);
    }
    return out;
}

// XXH64 (Yann Collet's xxHash, 64-bit) of a byte range: fast enough to hash a full-size model's weights each time.
std::uint64_t xxh64(const std::uint8_t* p, std::size_t n, std::uint64_t seed) {
    constexpr std::uint64_t P1 = 11400714785074694791ull, P2 = 14029467366897019727ull, P3 = 1609587929392839161ull,
                            P4 = 9650029242287828579ull, P5 = 2870177450012600261ull;
    auto rotl = [](std::uint64_t x, int r) { return (x << r) | (x >> (64 - r)); };
    auto read64 = [](const std::uint8_t* q) {
        std::uint64_t v;
        std::memcpy(&v, q, 8);
        return v;  // little-endian machines only (as the safetensors reader)
    };
    auto read32 = [](const std::uint8_t* q) {
        std::uint32_t v;
        std::memcpy(&v, q, 4);
        return std::uint64_t(v);
    };
    auto mix = [&](std::uint64_t acc, std::uint64_t in) { return rotl(acc + in * P2, 31) * P1; };
    auto merge = [&](std::uint64_t acc, std::uint64_t v) { return (acc ^ mix(0, v)) * P1 + P4; };
    const std::uint8_t* const end = p + n;
    std::uint64_t h;
    if (n >= 32) {
        std::uint64_t v1 = seed + P1 + P2, v2 = seed + P2, v3 = seed, v4 = seed - P1;
        for (const std::uint8_t* limit = end - 32; p <= limit; p += 32) {
            v1 = mix(v1, read64(p));
            v2 = mix(v2, read64(p + 8));
            v3 = mix(v3, read64(p + 16));
            v4 = mix(v4, read64(p + 24));
        }
        h = rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18);
        h = merge(merge(merge(merge(h, v1), v2), v3), v4);
    } else {
        h = seed + P5;
    }
    h += std::uint64_t(n);
    for (; p + 8 <= end; p += 8) h = rotl(h ^ mix(0, read64(p)), 27) * P1 + P4;
    if (p + 4 <= end) {
        h = rotl(h ^ (read32(p) * P1), 23) * P2 + P3;
        p += 4;
    }
    for (; p < end; ++p) h = rotl(h ^ (std::uint64_t(*p) * P5), 11) * P1;
    h ^= h >> 33;
    h *= P2;
    h ^= h >> 29;
    h *= P3;
    h ^= h >> 32;
    return h;
}

// A tensor's bits (in logical element order), dtype and shape as one 64-bit hash; device tensors are copied to the
// host first.
std::uint64_t tensorHash(const at::Tensor& t) {
    at::Tensor c = t.detach().to(at::kCPU).contiguous();
    std::uint64_t h = xxh64(reinterpret_cast<const std::uint8_t*>(c.data_ptr()), c.numel() * c.element_size(),
                            std::uint64_t(c.scalar_type()));
    for (auto d : c.sizes()) h = h * 1099511628211ull ^ std::uint64_t(d);
    return h;
}

std::vector<std::uint64_t> slotHashes(ModelImpl& m) {
    std::vector<std::uint64_t> out;
    for (auto& [key, slot] : loraSlots(m, true, true)) out.push_back(slot->defined() ? tensorHash(*slot) : 0);
    return out;
}

double medianOf(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

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

RandomLoraInfo writeRandomLora(Model& model, const std::string& path, const RandomLoraSpec& spec) {
    return guarded("writing the random LoRA", [&] {
        if (spec.rank < 1)
            fail(ErrorKind::InvalidArgument, "LoRA rank must be at least 1, got " + std::to_string(spec.rank));
        ModelImpl& m = ModelAccess::impl(model);
        RandomLoraInfo info;
        info.path = path;
        std::vector<std::pair<std::string, FloatTensor>> tensors;
        const std::int64_t r = spec.rank;
        const double alpha = spec.alpha > 0 ? spec.alpha : double(spec.rank);
        // A private CPU generator, re-seeded per key (the global state untouched; not a clone of the default one,
        // which LibTorch 1.13 never frees).
        at::Generator gen = at::detail::createCPUGenerator(spec.seed);
        for (auto& [key, slot] : loraSlots(m, spec.unet, spec.textEncoders)) {
            if (!slot->defined()) continue;
            const at::Tensor& w = *slot;
            if (w.dim() != 2 && w.dim() != 4) continue;  // (every target is a linear or conv weight)
            std::vector<std::int64_t> downShape{r, w.size(1)}, upShape{w.size(0), r};
            if (w.dim() == 4) {
                downShape = {r, w.size(1), w.size(2), w.size(3)};
                upShape = {w.size(0), r, 1, 1};
            }
            auto randomTensor = [&](const std::string& name, const std::vector<std::int64_t>& shape) {
                gen.set_current_seed(spec.seed ^ fnv1a(name));
                at::Tensor t = at::empty(shape, at::TensorOptions().dtype(at::kFloat));
                t.normal_(0.0, spec.stddev, gen);
                info.parameters += t.numel();
                return toFloatTensor(t);
            };
            const std::string down = key + ".lora_down.weight", up = key + ".lora_up.weight";
            tensors.emplace_back(down, randomTensor(down, downShape));
            tensors.emplace_back(up, randomTensor(up, upShape));
            tensors.emplace_back(key + ".alpha", FloatTensor{{}, {float(alpha)}});
            ++info.modules;
            (key.rfind("lora_unet_", 0) == 0  ? info.unetModules
             : key.rfind("lora_te1_", 0) == 0 ? info.te1Modules
                                              : info.te2Modules)++;
        }
        if (tensors.empty()) fail(ErrorKind::InvalidArgument, "the random LoRA would have no modules");
        writeSafetensors(path, tensors);
        std::error_code ec;
        info.bytes = std::int64_t(std::filesystem::file_size(path, ec));
        return info;
    });
}

LoraTiming timeLoraMergeAndRemove(Model& model, const std::vector<LoraRequest>& loras, int repetitions) {
    return guarded("timing the LoRA merge", [&] {
        if (loras.empty()) fail(ErrorKind::InvalidArgument, "no LoRA to time");
        if (repetitions < 1) fail(ErrorKind::InvalidArgument, "repetitions must be at least 1");
        ModelImpl& m = ModelAccess::impl(model);
        using Clock = std::chrono::steady_clock;
        auto since = [](Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); };
        {  // a set an earlier generate() merged: off first, untimed
            std::lock_guard<std::mutex> lock(*m.runMutex);
            m.removeLoras();
        }
        GenerateRequest req = defaultRequest();
        req.promptSyntax = PromptSyntax::Plain;  // no prompt tags: exactly `loras`
        req.loras = loras;

        LoraTiming out;
        const std::vector<std::uint64_t> before = slotHashes(m);
        out.weightsChecked = int(before.size());
        out.restoredBitIdentical = true;
        for (int i = 0; i < repetitions; ++i) {
            synchronizeDevice(m.device);
            auto t0 = Clock::now();
            const auto applied = m.applyLoras(req);  // synchronizes the device at its end
            synchronizeDevice(m.device);
            out.mergeRuns.push_back(since(t0));
            if (i == 0) {
                for (const auto& a : applied) {
                    out.appliedKeys += a.appliedKeys;
                    out.totalKeys += a.totalKeys;
                }
                const std::vector<std::uint64_t> merged = slotHashes(m);
                for (std::size_t k = 0; k < merged.size() && k < before.size(); ++k)
                    out.weightsChangedByMerge += merged[k] != before[k];
            }
            synchronizeDevice(m.device);
            t0 = Clock::now();
            {
                std::lock_guard<std::mutex> lock(*m.runMutex);
                m.removeLoras();
            }
            synchronizeDevice(m.device);
            out.removeRuns.push_back(since(t0));
            if (slotHashes(m) != before) out.restoredBitIdentical = false;
        }
        out.mergeSeconds = medianOf(out.mergeRuns);
        out.removeSeconds = medianOf(out.removeRuns);
        return out;
    });
}

}  // namespace koala
