// koala-cli: headless text-to-image with the KOALA engine. Other tools call it; keep the interface stable.
#include "koala/engine.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <random>
#include <sstream>
#include <string>

namespace {

const char* kUsage =
    "usage: koala-cli --model DIR --prompt TEXT [--negative TEXT] [--seed N] [--steps N] [--guidance F]\n"
    "                 [--guidance-rescale F] [--scheduler euler|euler_karras|euler_a|dpmpp_2m|dpmpp_2m_karras|ddim]\n"
    "                 [--timestep-spacing leading|trailing|linspace] [--width W] [--height H] [--device cpu|cuda]\n"
    "                 [--dtype fp32|fp16|bf16] [--variant fp16] [--out IMAGE.png] [--save-latents FILE.safetensors]\n"
    "                 [--prompt-2 TEXT] [--negative-2 TEXT] [--memory default|low] [--quiet]\n"
    "       koala-cli --version   (the LibTorch it was built with, CUDA or not, and the device it would use)\n"
    "Defaults: the model's scheduler and spacing, 25 steps, guidance 5, 1024x1024, CUDA when available, a random\n"
    "seed, --out koala-<seed>.png. Without --negative there is no negative prompt; --negative \"\" encodes \"\".\n";

[[noreturn]] void usageError(const std::string& msg) {
    std::fprintf(stderr, "koala-cli: %s\n%s", msg.c_str(), kUsage);
    std::exit(2);
}

template <typename T>
T parseNumber(const std::string& opt, const std::string& v) {
    std::istringstream is(v);
    T x{};
    is >> x;
    if (!is || !is.eof()) usageError("invalid number for " + opt + ": '" + v + "'");
    return x;
}

std::string jsonEscape(const std::string& s) {
    std::string out;
    for (unsigned char c : s) {
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
            if (c < 0x20) {
                char buf[8];
                std::snprintf(buf, sizeof buf, "\\u%04x", c);
                out += buf;
            } else {
                out.push_back(char(c));
            }
        }
    }
    return out;
}

// AUTOMATIC1111's sampler / schedule names, so other tools read our PNGs.
std::pair<std::string, std::string> a1111Sampler(const std::string& ours) {
    if (ours == "euler") return {"Euler", ""};
    if (ours == "euler_karras") return {"Euler", "Karras"};
    if (ours == "euler_a") return {"Euler a", ""};
    if (ours == "dpmpp_2m") return {"DPM++ 2M", ""};
    if (ours == "dpmpp_2m_karras") return {"DPM++ 2M", "Karras"};
    if (ours == "ddim") return {"DDIM", ""};
    return {ours, ""};
}

}  // namespace

int main(int argc, char** argv) {
    koala::GenerateRequest req = koala::defaultRequest();
    koala::LoadOptions lo = koala::defaultLoadOptions();
    std::string model, out, saveLatents;
    bool havePrompt = false, haveSeed = false, quiet = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "-h" || a == "--help") {
            std::fputs(kUsage, stdout);
            return 0;
        }
        if (a == "--version") {
            // What it was built against and the device Device::Auto would take on this machine.
            std::printf("koala-cli %s\n%s\ndevice: %s\n", koala::buildInfo().engineVersion.c_str(),
                        koala::describeBuild().c_str(), koala::describeDevice(koala::defaultDevice()).c_str());
            return 0;
        }
        if (a == "--quiet") {
            quiet = true;
            continue;
        }
        if (a.rfind("--", 0) != 0) usageError("unexpected argument '" + a + "'");
        if (i + 1 >= argc) usageError("missing value for " + a);
        std::string v = argv[++i];
        if (a == "--model") model = v;
        else if (a == "--prompt") req.prompt = v, havePrompt = true;
        else if (a == "--prompt-2") req.prompt2 = v;
        else if (a == "--negative") req.negative = v;
        else if (a == "--negative-2") req.negative2 = v;
        else if (a == "--seed") req.seed = parseNumber<unsigned long long>(a, v), haveSeed = true;
        else if (a == "--steps") req.steps = parseNumber<int>(a, v);
        else if (a == "--guidance") req.guidance = parseNumber<float>(a, v);
        else if (a == "--guidance-rescale") req.guidanceRescale = parseNumber<float>(a, v);
        else if (a == "--width") req.width = parseNumber<int>(a, v);
        else if (a == "--height") req.height = parseNumber<int>(a, v);
        else if (a == "--num-images") req.numImages = parseNumber<int>(a, v);
        else if (a == "--scheduler") {
            if (!koala::fromString(v, req.scheduler)) usageError("unknown scheduler '" + v + "'");
        } else if (a == "--timestep-spacing") {
            if (!koala::fromString(v, req.spacing)) usageError("unknown timestep spacing '" + v + "'");
        } else if (a == "--device") {
            if (!koala::fromString(v, lo.device)) usageError("unknown device '" + v + "' (cpu or cuda)");
        } else if (a == "--dtype") {
            if (!koala::fromString(v, lo.dtype)) usageError("unknown dtype '" + v + "' (fp32, fp16 or bf16)");
        } else if (a == "--memory") {
            if (!koala::fromString(v, lo.memory)) usageError("unknown memory mode '" + v + "' (default or low)");
        } else if (a == "--variant") lo.variant = v;
        else if (a == "--out") out = v;
        else if (a == "--save-latents") saveLatents = v;
        else usageError("unknown option " + a);
    }
    if (model.empty()) usageError("--model is required");
    if (!havePrompt) usageError("--prompt is required");
    if (!haveSeed) req.seed = std::random_device{}() & 0x7fffffffu;
    if (out.empty()) out = "koala-" + std::to_string(req.seed) + ".png";
    req.keepLatents = !saveLatents.empty();
    req.previews = false;

    try {
        koala::validate(req);
        auto t0 = std::chrono::steady_clock::now();
        auto m = koala::Model::load(model, lo);
        double loadSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const auto& info = m->info();
        if (!quiet)
            std::fprintf(stderr, "loaded %s (%s UNet, %.1fM parameters, %s on %s) in %.2f s\n", info.name.c_str(),
                         info.unetShape.c_str(), info.unetParameters / 1e6, info.computeDType.c_str(),
                         info.device.c_str(), loadSeconds);
        koala::Callbacks cb;
        if (!quiet)
            cb.progress = [](const koala::Progress& p) {
                std::fprintf(stderr, "step %d/%d, %.2f it/s\n", p.step, p.total, p.itPerSecond);
            };
        auto res = m->generate(req, cb);

        std::string sched = res.schedulerName;
        auto [sampler, schedule] = a1111Sampler(sched);
        std::ostringstream params;
        params << req.prompt << "\n";
        if (req.negative) params << "Negative prompt: " << *req.negative << "\n";
        params << "Steps: " << req.steps << ", Sampler: " << sampler;
        if (!schedule.empty()) params << ", Schedule type: " << schedule;
        params << ", CFG scale: " << req.guidance << ", Seed: " << req.seed << ", Size: " << req.width << "x"
               << req.height << ", Model: " << info.name;
        std::ostringstream js;
        js << "{\"prompt\":\"" << jsonEscape(req.prompt) << "\"";
        if (req.negative) js << ",\"negative_prompt\":\"" << jsonEscape(*req.negative) << "\"";
        js << ",\"seed\":" << req.seed << ",\"steps\":" << req.steps << ",\"guidance\":" << req.guidance
           << ",\"guidance_rescale\":" << req.guidanceRescale << ",\"scheduler\":\"" << sched
           << "\",\"spacing\":\"" << res.spacingName << "\",\"width\":" << req.width << ",\"height\":" << req.height
           << ",\"model\":\"" << jsonEscape(info.name) << "\",\"dtype\":\"" << info.computeDType
           << "\",\"device\":\"" << info.device << "\",\"total_seconds\":" << res.timings.totalSeconds
           << ",\"generator\":\"koala-cli\"}";
        for (std::size_t i = 0; i < res.images.size(); ++i) {
            std::string path = out;
            if (res.images.size() > 1) {
                auto dot = out.rfind('.');
                path = (dot == std::string::npos ? out : out.substr(0, dot)) + "-" + std::to_string(i) +
                       (dot == std::string::npos ? "" : out.substr(dot));
            }
            koala::writePng(path, res.images[i], {{"parameters", params.str()}, {"koala", js.str()}});
            if (!quiet) std::fprintf(stderr, "wrote %s\n", path.c_str());
        }
        if (!saveLatents.empty()) {
            koala::writeSafetensors(saveLatents, {{"initial_noise", res.initialNoise}, {"latents", res.finalLatents}});
            if (!quiet) std::fprintf(stderr, "wrote %s\n", saveLatents.c_str());
        }
        if (!quiet)
            std::fprintf(stderr, "seed %llu, %s, encode %.3f s, denoise %.3f s (%.3f s/step), decode %.3f s, total %.3f s\n",
                         (unsigned long long)req.seed, sched.c_str(), res.timings.encodeSeconds,
                         res.timings.denoiseSeconds, res.timings.stepMedianSeconds, res.timings.decodeSeconds,
                         res.timings.totalSeconds);
    } catch (const koala::Error& e) {
        std::fprintf(stderr, "koala-cli: error: %s\n", e.what());
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "koala-cli: error: %s\n", e.what());
        return 1;
    }
    return 0;
}
