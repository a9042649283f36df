// String round-trips of the public enums, request defaults and validation: the one place for each.
#include "core/common.h"
#include "core/image_io.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <random>
#include <sstream>

namespace koala {
namespace {

std::string formatNumber(double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%g", v);
    return b;
}

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    return out;
}

template <typename E, std::size_t N>
bool lookup(std::string_view s, const std::pair<const char*, E> (&table)[N], E& out) {
    const std::string key = lower(s);
    for (const auto& [name, value] : table) {
        if (key == name) {
            out = value;
            return true;
        }
    }
    return false;
}

const std::pair<const char*, Device> kDevices[] = {
    {"auto", Device::Auto}, {"cpu", Device::Cpu}, {"cuda", Device::Cuda}, {"gpu", Device::Cuda}};
const std::pair<const char*, DType> kDTypes[] = {
    {"auto", DType::Auto}, {"fp32", DType::F32},     {"float32", DType::F32}, {"f32", DType::F32},
    {"fp16", DType::F16},  {"float16", DType::F16},  {"f16", DType::F16},     {"half", DType::F16},
    {"bf16", DType::BF16}, {"bfloat16", DType::BF16}};
const std::pair<const char*, SchedulerKind> kSchedulers[] = {{"default", SchedulerKind::Default},
                                                             {"euler", SchedulerKind::Euler},
                                                             {"euler_karras", SchedulerKind::EulerKarras},
                                                             {"euler_a", SchedulerKind::EulerAncestral},
                                                             {"euler_ancestral", SchedulerKind::EulerAncestral},
                                                             {"dpmpp_2m", SchedulerKind::DpmPP2M},
                                                             {"dpmpp_2m_karras", SchedulerKind::DpmPP2MKarras},
                                                             {"ddim", SchedulerKind::Ddim},
                                                             {"pndm", SchedulerKind::Pndm},
                                                             {"plms", SchedulerKind::Pndm}};
const std::pair<const char*, TimestepSpacing> kSpacings[] = {{"default", TimestepSpacing::Default},
                                                             {"leading", TimestepSpacing::Leading},
                                                             {"trailing", TimestepSpacing::Trailing},
                                                             {"linspace", TimestepSpacing::Linspace}};
const std::pair<const char*, MemoryMode> kMemory[] = {
    {"default", MemoryMode::Default}, {"low", MemoryMode::Low}, {"lowvram", MemoryMode::Low}};

template <typename E, std::size_t N>
const char* nameOf(E v, const std::pair<const char*, E> (&table)[N]) {
    for (const auto& [name, value] : table)
        if (value == v) return name;  // the first entry is the canonical name
    return "?";
}

}  // namespace

const char* toString(Device v) { return nameOf(v, kDevices); }
const char* toString(DType v) { return nameOf(v, kDTypes); }
const char* toString(SchedulerKind v) { return nameOf(v, kSchedulers); }
const char* toString(TimestepSpacing v) { return nameOf(v, kSpacings); }
const char* toString(MemoryMode v) { return nameOf(v, kMemory); }

bool fromString(std::string_view s, Device& out) { return lookup(s, kDevices, out); }
bool fromString(std::string_view s, DType& out) { return lookup(s, kDTypes, out); }
bool fromString(std::string_view s, SchedulerKind& out) { return lookup(s, kSchedulers, out); }
bool fromString(std::string_view s, TimestepSpacing& out) { return lookup(s, kSpacings, out); }
bool fromString(std::string_view s, MemoryMode& out) { return lookup(s, kMemory, out); }

std::vector<SchedulerKind> allSchedulers() {
    return {SchedulerKind::Euler,   SchedulerKind::EulerKarras,   SchedulerKind::EulerAncestral,
            SchedulerKind::DpmPP2M, SchedulerKind::DpmPP2MKarras, SchedulerKind::Ddim,
            SchedulerKind::Pndm};
}

const char* toString(ErrorKind k) {
    switch (k) {
    case ErrorKind::InvalidArgument: return "invalid argument";
    case ErrorKind::ModelFormat: return "model format";
    case ErrorKind::Io: return "i/o";
    case ErrorKind::OutOfMemory: return "out of memory";
    case ErrorKind::Cancelled: return "cancelled";
    case ErrorKind::Internal: return "internal";
    }
    return "?";
}

LoadOptions defaultLoadOptions() { return LoadOptions{}; }

GenerateRequest defaultRequest() { return GenerateRequest{}; }

std::string toLogString(const GenerateRequest& r) {
    std::ostringstream os;
    os << "prompt=\"" << r.prompt << "\"";
    if (r.prompt2) os << ", prompt2=\"" << *r.prompt2 << "\"";
    if (r.negative)
        os << ", negative=\"" << *r.negative << "\"";
    else
        os << ", negative=<none>";
    os << ", seed=" << r.seed << ", steps=" << r.steps << ", guidance=" << r.guidance;
    if (r.guidanceRescale > 0) os << ", guidance_rescale=" << r.guidanceRescale;
    os << ", scheduler=" << toString(r.scheduler) << ", spacing=" << toString(r.spacing) << ", size=" << r.width << "x"
       << r.height << ", images=" << r.numImages;
    return os.str();
}

void validate(const GenerateRequest& r) {
    auto bad = [](const std::string& m) { fail(ErrorKind::InvalidArgument, m); };
    const Limits& L = kLimits;
    const std::string size = std::to_string(r.width) + "x" + std::to_string(r.height);
    // ---- img2img / inpainting: the image decides the size (core/image_io.cpp, checked last), diffusers' limits.
    if (!r.initImage && !r.mask) {
        if (r.width <= 0 || r.height <= 0 || r.width % L.sizeMultiple != 0 || r.height % L.sizeMultiple != 0)
            bad("size " + size + " is impossible: width and height must be positive multiples of " +
                std::to_string(L.sizeMultiple));
        if (!validSize(r.width) || !validSize(r.height))
            bad("size " + size + " is out of range: width and height must be between " + std::to_string(L.minSize) +
                " and " + std::to_string(L.maxSize));
    }
    if (r.steps < L.minSteps || r.steps > L.maxSteps)
        bad("steps must be between " + std::to_string(L.minSteps) + " and " + std::to_string(L.maxSteps) + " (got " +
            std::to_string(r.steps) + ")");
    if (!(r.guidance >= L.minGuidance && r.guidance <= L.maxGuidance))
        bad("guidance must be between " + formatNumber(L.minGuidance) + " and " + formatNumber(L.maxGuidance));
    if (!(r.guidanceRescale >= L.minGuidanceRescale && r.guidanceRescale <= L.maxGuidanceRescale))
        bad("guidance rescale must be between " + formatNumber(L.minGuidanceRescale) + " and " +
            formatNumber(L.maxGuidanceRescale));
    if (r.numImages < L.minImages || r.numImages > L.maxImages)
        bad("number of images must be between " + std::to_string(L.minImages) + " and " + std::to_string(L.maxImages));
    if (r.initImage || r.mask) imageio::validateImageRequest(r);  // ---- img2img / inpainting
}

bool validSize(int pixels) {
    return pixels >= kLimits.minSize && pixels <= kLimits.maxSize && pixels % kLimits.sizeMultiple == 0;
}

std::uint64_t randomSeed() {
    std::random_device rd;
    return std::uint64_t(rd()) & 0xffffffffull;
}

std::optional<std::uint64_t> parseSeed(std::string_view text) {
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
    if (text.empty() || text.size() > 20) return std::nullopt;
    std::uint64_t v = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return std::nullopt;
        const std::uint64_t d = std::uint64_t(c - '0');
        if (v > (UINT64_MAX - d) / 10) return std::nullopt;
        v = v * 10 + d;
    }
    return v;
}

std::optional<std::uint64_t> seedInRun(std::uint64_t first, std::uint64_t index) {
    if (first < kLimits.minSeed || first > kLimits.maxSeed || kLimits.maxSeed - first < index) return std::nullopt;
    return first + index;
}

bool seedRunFits(std::uint64_t first, std::uint64_t count) {
    return count == 0 || seedInRun(first, count - 1).has_value();
}

Device resolveDevice(Device requested, bool cudaPresent) {
    if (requested != Device::Auto) return requested;
    return cudaPresent ? Device::Cuda : Device::Cpu;
}

DType resolveDType(Device resolvedDevice, DType requested) {
    if (requested != DType::Auto) return requested;
    return resolvedDevice == Device::Cuda ? DType::F16 : DType::F32;
}

DType resolveVaeDType(Device resolvedDevice, DType resolvedDType) {
    return resolvedDevice == Device::Cuda && resolvedDType != DType::F32 ? DType::BF16 : DType::F32;
}

}  // namespace koala
