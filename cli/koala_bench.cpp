// koala-bench: times the engine on a model folder or on a full-size architecture with random weights.
//
//   koala-bench (--model DIR | --random-config koala-700m|koala-1b|sdxl-base|DIR) [--steps 25] [--width 1024]
//               [--height 1024] [--guidance 5] [--runs 5] [--warmup 1] [--dtype fp16|bf16|fp32]
//               [--device cpu|cuda] [--memory default|low] [--scheduler euler] [--json OUT.json]
//               [--tokenizer DIR] [--prompt TEXT] [--negative TEXT | --no-negative] [--no-previews] [--seed N]
//
// Measures load (or random-weight build) time, prompt encoding, the median UNet step, VAE decode, the preview cost
// per step, the whole image (median of --runs after --warmup runs), peak GPU memory (allocated and reserved; 0 on
// the CPU). Prints a table and optionally writes JSON. Exit status: 0 ok, 1 bad arguments, 2 engine error,
// 3 UNet parameter count differs from the model card.
#include "koala/engine.h"
#include "pipeline/model_impl.h"
#include "pipeline/random_model.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#ifdef KOALA_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct Args {
    std::string model, randomConfig, tokenizerDir, jsonOut;
    std::string prompt = "a photo of a koala astronaut, highly detailed";
    std::optional<std::string> negative = std::string("blurry, low quality");
    int steps = 25, width = 1024, height = 1024, runs = 5, warmup = 1;
    float guidance = 5.0f;
    std::uint64_t seed = 42;
    bool previews = true;
    koala::Device device = koala::Device::Auto;
    koala::DType dtype = koala::DType::Auto;
    koala::MemoryMode memory = koala::MemoryMode::Default;
    koala::SchedulerKind scheduler = koala::SchedulerKind::Euler;
};

void usage(std::FILE* f) {
    std::fprintf(f,
                 "usage: koala-bench (--model DIR | --random-config koala-700m|koala-1b|sdxl-base|DIR)\n"
                 "                   [--steps 25] [--width 1024] [--height 1024] [--guidance 5] [--runs 5] [--warmup 1]\n"
                 "                   [--dtype fp16|bf16|fp32] [--device cpu|cuda] [--memory default|low]\n"
                 "                   [--scheduler euler] [--json OUT.json] [--tokenizer DIR] [--prompt TEXT]\n"
                 "                   [--negative TEXT | --no-negative] [--no-previews] [--seed N]\n"
                 "--random-config builds the full-size architecture with random weights (normal(0, 0.02)); its\n"
                 "tokenizers and scheduler config come from --tokenizer DIR (default: the source tree's\n"
                 "tests/data/fixtures/tiny-koala-700m, or $KOALA_TOKENIZER_DIR).\n");
}

[[noreturn]] void bad(const std::string& msg) {
    std::fprintf(stderr, "koala-bench: %s\n", msg.c_str());
    usage(stderr);
    std::exit(1);
}

int toInt(const std::string& flag, const std::string& v) {
    try {
        std::size_t pos = 0;
        long long x = std::stoll(v, &pos);
        if (pos != v.size() || x < 0 || x > 1000000) throw std::invalid_argument(v);
        return int(x);
    } catch (const std::exception&) {
        bad(flag + ": expected a non-negative integer, got '" + v + "'");
    }
}

float toFloat(const std::string& flag, const std::string& v) {
    try {
        std::size_t pos = 0;
        float x = std::stof(v, &pos);
        if (pos != v.size()) throw std::invalid_argument(v);
        return x;
    } catch (const std::exception&) {
        bad(flag + ": expected a number, got '" + v + "'");
    }
}

Args parse(int argc, char** argv) {
    Args a;
    for (int i = 1; i < argc; ++i) {
        const std::string f = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) bad(f + " needs a value");
            return argv[++i];
        };
        if (f == "-h" || f == "--help") {
            usage(stdout);
            std::exit(0);
        } else if (f == "--model") a.model = next();
        else if (f == "--random-config") a.randomConfig = next();
        else if (f == "--tokenizer") a.tokenizerDir = next();
        else if (f == "--json") a.jsonOut = next();
        else if (f == "--prompt") a.prompt = next();
        else if (f == "--negative") a.negative = next();
        else if (f == "--no-negative") a.negative.reset();
        else if (f == "--no-previews") a.previews = false;
        else if (f == "--steps") a.steps = toInt(f, next());
        else if (f == "--width") a.width = toInt(f, next());
        else if (f == "--height") a.height = toInt(f, next());
        else if (f == "--runs") a.runs = toInt(f, next());
        else if (f == "--warmup") a.warmup = toInt(f, next());
        else if (f == "--seed") a.seed = std::uint64_t(toInt(f, next()));
        else if (f == "--guidance") a.guidance = toFloat(f, next());
        else if (f == "--dtype") {
            if (!koala::fromString(next(), a.dtype)) bad("--dtype: use fp16, bf16 or fp32");
        } else if (f == "--device") {
            if (!koala::fromString(next(), a.device)) bad("--device: use cpu or cuda");
        } else if (f == "--memory") {
            if (!koala::fromString(next(), a.memory)) bad("--memory: use default or low");
        } else if (f == "--scheduler") {
            if (!koala::fromString(next(), a.scheduler)) bad("--scheduler: unknown scheduler");
        } else bad("unknown argument '" + f + "'");
    }
    if (a.model.empty() == a.randomConfig.empty()) bad("give exactly one of --model and --random-config");
    if (a.runs < 1) bad("--runs must be at least 1");
    return a;
}

// The folder with tokenizer/, tokenizer_2/ and scheduler/ for random models.
std::string supportDir(const Args& a) {
    if (!a.tokenizerDir.empty()) return a.tokenizerDir;
    if (const char* env = std::getenv("KOALA_TOKENIZER_DIR"); env && *env) return env;
    std::vector<fs::path> candidates;
    // This file lives in <source>/cli/; the fixture ships the real CLIP vocabulary.
    fs::path src = fs::path(__FILE__).parent_path().parent_path();
    candidates.push_back(src / "tests/data/fixtures/tiny-koala-700m");
    candidates.push_back(fs::current_path() / "tests/data/fixtures/tiny-koala-700m");
    for (const auto& c : candidates) {
        std::error_code ec;
        if (fs::is_directory(c / "tokenizer", ec) && fs::is_directory(c / "tokenizer_2", ec)) return c.string();
    }
    bad("cannot find the tokenizer folders for --random-config; pass --tokenizer DIR (a folder holding tokenizer/, "
        "tokenizer_2/ and scheduler/, e.g. tests/data/fixtures/tiny-koala-700m)");
}

double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::string withCommas(std::int64_t v) {
    std::string s = std::to_string(v < 0 ? -v : v);
    for (int i = int(s.size()) - 3; i > 0; i -= 3) s.insert(std::size_t(i), ",");
    return v < 0 ? "-" + s : s;
}

double gib(std::int64_t bytes) { return double(bytes) / double(1ll << 30); }

struct DeviceMem {
    std::int64_t allocatedCurrent = 0, allocatedPeak = 0, reservedCurrent = 0, reservedPeak = 0;
};

DeviceMem deviceMem(const at::Device& d) {
    DeviceMem m;
#ifdef KOALA_WITH_CUDA
    if (d.is_cuda()) {
        auto s = c10::cuda::CUDACachingAllocator::getDeviceStats(d.index() < 0 ? 0 : d.index());
        // StatType::AGGREGATE is 0; the enum moved between namespaces across LibTorch 2.x releases.
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
}

std::string deviceName(const at::Device& d) {
    if (!d.is_cuda()) return "cpu";
    const koala::DeviceInfo info = koala::defaultDevice();
    return info.device == koala::Device::Cuda ? info.name : std::string("cuda");
}

const char* dtypeName(at::ScalarType t) { return t == at::kHalf ? "fp16" : t == at::kBFloat16 ? "bf16" : "fp32"; }

int run(const Args& a) {
    koala::Device dev = a.device;
    if (dev == koala::Device::Auto) dev = koala::cudaAvailable() ? koala::Device::Cuda : koala::Device::Cpu;
    if (dev == koala::Device::Cuda && !koala::cudaAvailable())
        bad("--device cuda: no CUDA device in this build/machine");
    koala::DType dt = a.dtype;
    if (dt == koala::DType::Auto) dt = dev == koala::Device::Cuda ? koala::DType::F16 : koala::DType::F32;
    const at::Device device = dev == koala::Device::Cuda ? at::Device(at::kCUDA, 0) : at::Device(at::kCPU);
    const at::ScalarType dtype = dt == koala::DType::F16 ? at::kHalf : dt == koala::DType::BF16 ? at::kBFloat16 : at::kFloat;

    // ---- load ---------------------------------------------------------------------------------------------------
    const std::string what = a.model.empty() ? "random " + a.randomConfig : a.model;
    std::printf("koala-bench: %s on %s (%s), %s, %dx%d, %d steps, guidance %g, memory %s\n", what.c_str(),
                deviceName(device).c_str(), koala::toString(dev), koala::toString(dt), a.width, a.height, a.steps,
                double(a.guidance), koala::toString(a.memory));
    std::printf("koala-bench: %s\n", koala::describeBuild().c_str());
    std::fflush(stdout);
    koala::synchronizeDevice(device);
    koala::resetPeakMemory(device);
    const auto tLoad = Clock::now();
    std::unique_ptr<koala::ModelImpl> m;
    if (!a.model.empty()) {
        koala::LoadOptions lo = koala::defaultLoadOptions();
        lo.device = dev;
        lo.dtype = dt;
        lo.memory = a.memory;
        m = koala::ModelImpl::load(a.model, lo, nullptr);   // installs the CUDA fast path itself
    } else {
        koala::RandomModelOptions o;
        o.arch = a.randomConfig;
        o.supportDir = koala::isRandomArchitecture(a.randomConfig) ? supportDir(a) : a.tokenizerDir;
        o.device = device;
        o.dtype = dtype;
        o.memory = a.memory;
        m = koala::buildRandomModel(o);
        koala::installCudaFastPath(*m);
    }
    koala::synchronizeDevice(device);
    const double loadSeconds = since(tLoad);
    const DeviceMem afterLoad = deviceMem(device);

    const std::int64_t params = m->unet->parameterCount();
    const std::string arch = koala::isRandomArchitecture(a.randomConfig) ? a.randomConfig : m->info.unetShape;
    const std::int64_t card = koala::modelCardUnetParameters(arch);
    const bool paramsOk = card == 0 || params == card;
    std::printf("UNet parameters: %s", withCommas(params).c_str());
    if (card) std::printf(" (model card %s: %s)", withCommas(card).c_str(), paramsOk ? "match" : "MISMATCH");
    std::printf("\n%s: %.2f s\n", a.model.empty() ? "build (random weights)" : "load", loadSeconds);
    std::fflush(stdout);

    // ---- runs ---------------------------------------------------------------------------------------------------
    koala::GenerateRequest r = koala::defaultRequest();
    r.prompt = a.prompt;
    r.negative = a.negative;
    r.seed = a.seed;
    r.steps = a.steps;
    r.guidance = a.guidance;
    r.width = a.width;
    r.height = a.height;
    r.scheduler = a.scheduler;
    r.previews = a.previews;
    koala::Callbacks cb;
    // A consumer for the previews, so that generate() computes them as the application's would.
    std::size_t previewImages = 0;
    if (a.previews) cb.preview = [&](int, const std::vector<koala::Image>& imgs) { previewImages += imgs.size(); };

    const auto fp0 = koala::cudaFastPathStats();
    std::vector<koala::Timings> timings;
    double firstImage = 0;
    std::int64_t peakReserved = 0;
    for (int i = 0; i < a.warmup + a.runs; ++i) {
        const bool warm = i < a.warmup;
        auto res = m->generate(r, cb, nullptr);   // resets the peak statistics itself
        const DeviceMem mem = deviceMem(device);
        if (i == 0) firstImage = res.timings.totalSeconds;
        std::printf("  %s %d: total %.3f s, step median %.1f ms, encode %.1f ms, decode %.1f ms\n",
                    warm ? "warm-up" : "run", warm ? i + 1 : i - a.warmup + 1, res.timings.totalSeconds,
                    1e3 * res.timings.stepMedianSeconds, 1e3 * res.timings.encodeSeconds,
                    1e3 * res.timings.decodeSeconds);
        std::fflush(stdout);
        if (!warm) {
            timings.push_back(res.timings);
            peakReserved = std::max(peakReserved, mem.reservedPeak);
        }
    }
    const auto fp1 = koala::cudaFastPathStats();

    auto med = [&](double koala::Timings::*f) {
        std::vector<double> v;
        for (const auto& t : timings) v.push_back(t.*f);
        return median(v);
    };
    std::vector<double> totals;
    std::int64_t peakAlloc = 0;
    std::vector<double> previewPerStep;
    for (const auto& t : timings) {
        totals.push_back(t.totalSeconds);
        peakAlloc = std::max(peakAlloc, t.peakDeviceBytes);
        previewPerStep.push_back(t.previewSeconds / std::max(1, a.steps));
    }
    const double encode = med(&koala::Timings::encodeSeconds), step = med(&koala::Timings::stepMedianSeconds),
                 denoise = med(&koala::Timings::denoiseSeconds), decode = med(&koala::Timings::decodeSeconds),
                 total = median(totals), preview = median(previewPerStep);

    // ---- report -------------------------------------------------------------------------------------------------
    std::printf("\n| %-34s | %14s |\n|%s|%s|\n", "measure", "value", std::string(36, '-').c_str(),
                std::string(16, '-').c_str());
    auto row = [](const char* name, const std::string& v) { std::printf("| %-34s | %14s |\n", name, v.c_str()); };
    auto secs = [](double s) {
        char b[32];
        std::snprintf(b, sizeof b, "%.3f s", s);
        return std::string(b);
    };
    auto ms = [](double s) {
        char b[32];
        std::snprintf(b, sizeof b, "%.2f ms", 1e3 * s);
        return std::string(b);
    };
    auto gibs = [](std::int64_t v) {
        char b[32];
        std::snprintf(b, sizeof b, "%.2f GiB", gib(v));
        return std::string(b);
    };
    row(a.model.empty() ? "build (random weights)" : "load", secs(loadSeconds));
    row(a.warmup > 0 ? "first image (warm-up run 1)" : "first image (first run)", secs(firstImage));
    row("prompt encoding", ms(encode));
    row("UNet step (median)", ms(step));
    row("denoising loop", secs(denoise));
    row("preview per step", ms(preview));
    row("VAE decode", ms(decode));
    row(("whole image (median of " + std::to_string(a.runs) + ")").c_str(), secs(total));
    row("peak GPU allocated", gibs(peakAlloc));
    row("peak GPU reserved", gibs(peakReserved));
    row("GPU allocated after load", gibs(afterLoad.allocatedCurrent));
    const std::int64_t captures = fp1.captures - fp0.captures, replays = fp1.replays - fp0.replays,
                       eager = fp1.eagerCalls - fp0.eagerCalls;
    if (a.previews && previewImages == 0) std::printf("warning: no previews were produced\n");
    if (device.is_cuda()) {
        row("CUDA graph captures / replays", std::to_string(captures) + " / " + std::to_string(replays));
        row("channels_last UNet / VAE", std::string(fp1.channelsLastUnet ? "yes" : "no") + " / " +
                                            (fp1.channelsLastVae ? "yes" : "no"));
        if (!fp1.lastError.empty()) std::printf("CUDA graph capture failed: %s\n", fp1.lastError.c_str());
    }
    std::fflush(stdout);

    if (!a.jsonOut.empty()) {
        nlohmann::json j;
        j["tool"] = "koala-bench";
        j["model"] = a.model.empty() ? nlohmann::json(nullptr) : nlohmann::json(a.model);
        j["random_config"] = a.randomConfig.empty() ? nlohmann::json(nullptr) : nlohmann::json(a.randomConfig);
        j["architecture"] = arch;
        j["device"] = koala::toString(dev);
        j["device_name"] = deviceName(device);
        j["dtype"] = koala::toString(dt);
        j["vae_dtype"] = dtypeName(m->vaeDType);
        j["memory"] = koala::toString(a.memory);
        j["libtorch_major"] = KOALA_TORCH_MAJOR;
        j["libtorch"] = koala::describeBuild();
        j["libtorch_version"] = koala::buildInfo().torchVersion;
        j["settings"] = {{"steps", a.steps},         {"width", a.width},     {"height", a.height},
                         {"guidance", a.guidance},   {"runs", a.runs},       {"warmup", a.warmup},
                         {"scheduler", koala::toString(a.scheduler)},        {"seed", a.seed},
                         {"negative_prompt", a.negative.has_value()},        {"previews", a.previews},
                         {"prompt", a.prompt}};
        j["unet_parameters"] = params;
        j["model_card_parameters"] = card;
        j["parameters_match"] = paramsOk;
        j["load_seconds"] = loadSeconds;
        j["first_image_seconds"] = firstImage;
        j["encode_seconds"] = encode;
        j["step_median_seconds"] = step;
        j["denoise_seconds"] = denoise;
        j["preview_per_step_seconds"] = preview;
        j["decode_seconds"] = decode;
        j["total_seconds_median"] = total;
        j["total_seconds_runs"] = totals;
        j["peak_allocated_bytes"] = peakAlloc;
        j["peak_reserved_bytes"] = peakReserved;
        j["allocated_after_load_bytes"] = afterLoad.allocatedCurrent;
        j["cuda_fast_path"] = {{"compiled", fp1.compiled},
                               {"graph_captures", captures},
                               {"graph_replays", replays},
                               {"eager_runner_calls", eager},
                               {"capture_failures", fp1.captureFailures - fp0.captureFailures},
                               {"last_error", fp1.lastError},
                               {"channels_last_unet", fp1.channelsLastUnet},
                               {"channels_last_vae", fp1.channelsLastVae}};
        std::ofstream out(a.jsonOut);
        out << j.dump(2) << "\n";
        if (!out) {
            std::fprintf(stderr, "koala-bench: cannot write %s\n", a.jsonOut.c_str());
            return 2;
        }
    }
    if (!paramsOk) {
        std::fprintf(stderr, "koala-bench: the UNet has %s parameters, the model card says %s\n",
                     withCommas(params).c_str(), withCommas(card).c_str());
        return 3;
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    const Args a = parse(argc, argv);
    try {
        return run(a);
    } catch (const koala::Error& e) {
        std::fprintf(stderr, "koala-bench: [%s] %s\n", koala::toString(e.kind()), e.what());
    } catch (const c10::Error& e) {
        std::string msg = e.what_without_backtrace();
        std::fprintf(stderr, "koala-bench: %s\n", msg.substr(0, msg.find('\n')).c_str());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "koala-bench: %s\n", e.what());
    }
    return 2;
}
