// koala-cli: headless text-to-image with the KOALA engine. Other tools call it; keep the interface stable.
#include "koala/engine.h"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <sstream>
#include <string>

namespace {

const char* kUsage =
    "usage: koala-cli --model DIR --prompt TEXT [--negative TEXT] [--seed N] [--steps N] [--guidance F]\n"
    "                 [--guidance-rescale F]\n"
    "                 [--scheduler euler|euler_karras|euler_a|dpmpp_2m|dpmpp_2m_karras|ddim|pndm]\n"
    "                 [--timestep-spacing leading|trailing|linspace] [--width W] [--height H] [--device cpu|cuda]\n"
    "                 [--dtype fp32|fp16|bf16] [--variant fp16] [--out IMAGE.png] [--save-latents FILE.safetensors]\n"
    "                 [--prompt-2 TEXT] [--negative-2 TEXT] [--memory default|low] [--quiet] [--clip-skip N]\n"
    "                 [--init-image IMAGE [--strength F] [--mask IMAGE [--mask-blur PX]]]\n"
    "                 [--prompt-syntax a1111|plain] [--lora FILE[:WEIGHT]]... [--lora-dir DIR]...\n"
    "       koala-cli --version   (the LibTorch it was built with, CUDA or not, and the device it would use)\n"
    "       koala-cli --info IMAGE.png [--json]   (the generation parameters a PNG carries)\n"
    "       koala-cli --download REPO [--revision REV] [--parallel N]   (a pipeline from the Hugging Face hub into\n"
    "                 its cache, N files at once (4); total and progress on stderr, the snapshot folder on stdout)\n"
    "Defaults: the model's scheduler and spacing, 25 steps, guidance 5, the model's size (SDXL 1024x1024, SD 1.5\n"
    "512, SD 2 768), CUDA when available, a random seed, --out koala-<seed>.png. Without --negative an SDXL model has\n"
    "no negative prompt (zeros) and an SD 1.5/2.x model encodes \"\"; --negative \"\" encodes \"\". --clip-skip N:\n"
    "diffusers' clip_skip for SD 1.5/2.x (the prompt only).\n"
    "img2img: --init-image (PNG or JPEG) sets the size (rounded down to multiples of 8), --strength in (0, 1]\n"
    "(default 0.3). Inpainting: --mask as well (white = repaint, the image's size), the output is --width x --height,\n"
    "--strength defaults to 0.9999, --mask-blur blurs the mask first.\n"
    "Prompt syntax (default a1111): AUTOMATIC1111's (word:1.2) [word] BREAK, prompts beyond 75 tokens in chunks,\n"
    "<lora:NAME:WEIGHT> tags (NAME.safetensors in --lora-dir folders, then ~/.local/share/koala-studio/loras);\n"
    "plain: the literal text cut at 77 tokens, as diffusers. --lora FILE[:WEIGHT] merges a LoRA file (weight 1).\n";

// ---- img2img / inpainting: bad input files and values are one line (no usage text), exit 2.
[[noreturn]] void inputError(const std::string& msg) {
    std::fprintf(stderr, "koala-cli: error: %s\n", msg.c_str());
    std::exit(2);
}

std::string fileNameOf(const std::string& path) {
    const auto slash = path.find_last_of('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

koala::Image readInputImage(const std::string& what, const std::string& path) {
    try {
        koala::Image img = koala::readImage(path);
        if (img.width <= 0 || img.height <= 0) inputError(what + " " + path + " is empty");
        return img;
    } catch (const koala::Error& e) {
        inputError(std::string(e.what()));
    }
}

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

// A seed is a full uint64 (0 to 18446744073709551615, as torch's generator takes): digits only, never wrapped.
std::uint64_t parseSeedArg(const std::string& v) {
    if (auto seed = koala::parseSeed(v)) return *seed;
    usageError("invalid seed '" + v + "': a whole number from 0 to 18446744073709551615");
}

// `koala-cli --info IMAGE.png [--json]`: what the engine's metadata reader finds in a PNG.
int printInfo(const std::string& path, bool asJson) {
    koala::MetadataReadResult r;
    try {
        r = koala::readImageMetadata(path);
    } catch (const koala::Error& e) {
        std::fprintf(stderr, "koala-cli: error: %s\n", e.what());
        return 1;
    }
    const koala::ImageMetadata& m = r.metadata;
    const bool has = r.source == koala::MetadataSource::Koala || r.source == koala::MetadataSource::A1111;
    if (asJson) {
        nlohmann::json j;
        j["file"] = path;
        j["source"] = koala::toString(r.source);
        if (!r.note.empty()) j["note"] = r.note;
        if (has) j["params"] = nlohmann::json::parse(koala::metadataParamsJson(m));
        if (has && !m.generator.empty()) j["generator"] = m.generator;
        std::printf("%s\n", j.dump(2).c_str());
        return 0;
    }
    std::printf("file: %s\nsource: %s\n", path.c_str(), koala::toString(r.source));
    if (!r.note.empty()) std::printf("note: %s\n", r.note.c_str());
    if (!has) return 0;
    std::printf("prompt: %s\n", m.prompt.c_str());
    std::printf("negative: %s\n", m.negative ? m.negative->c_str() : "(none)");
    if (m.seed)
        std::printf("seed: %llu\n", static_cast<unsigned long long>(*m.seed));
    else
        std::printf("seed: (unknown)\n");
    std::printf("steps: %d\nguidance: %g\n", m.steps, m.guidance);
    if (m.guidanceRescale != 0.0) std::printf("guidance rescale: %g\n", m.guidanceRescale);
    const auto a1111 = koala::a1111SamplerOf(m.scheduler);
    std::printf("sampler: %s", m.scheduler.c_str());
    if (!a1111.first.empty())
        std::printf(" (AUTOMATIC1111: %s%s%s)", a1111.first.c_str(), a1111.second.empty() ? "" : ", ",
                    a1111.second.c_str());
    std::printf("\n");
    if (m.spacing != "default") std::printf("timestep spacing: %s\n", m.spacing.c_str());
    std::printf("size: %dx%d\n", m.width, m.height);
    std::printf("model: %s\n", !m.modelName.empty() ? m.modelName.c_str() : m.modelPath.c_str());
    if (!m.generator.empty()) std::printf("generator: %s\n", m.generator.c_str());
    std::printf("prompt syntax: %s\n", m.promptSyntax.c_str());  // ---- prompt syntax and LoRA (issue 10)
    for (const auto& l : m.loras)
        std::printf("lora: %s (weight %g%s%s)%s\n", l.name.c_str(), l.weight, l.hash.empty() ? "" : ", hash ",
                    l.hash.c_str(), l.fromPrompt ? " from the prompt" : "");
    return 0;
}

}  // namespace

// cli/hub_download.cpp: `koala-cli --download REPO ...` (koala_hub); argv[i] is "--download".
int runHubDownload(int argc, char** argv, int i);

int main(int argc, char** argv) {
    koala::GenerateRequest req = koala::defaultRequest();
    koala::LoadOptions lo = koala::defaultLoadOptions();
    std::string model, out, saveLatents;
    bool havePrompt = false, haveSeed = false, quiet = false;
    // Without --width/--height: the model's default size (issue 11).
    bool haveWidth = false, haveHeight = false;
    std::string initImagePath, maskPath;  // ---- img2img / inpainting
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
        if (a == "--download") return runHubDownload(argc, argv, i);
        if (a == "--info") {
            if (i + 1 >= argc) usageError("missing value for --info");
            const std::string image = argv[++i];
            bool asJson = false;
            for (int k = i + 1; k < argc; ++k) {
                if (std::strcmp(argv[k], "--json") == 0)
                    asJson = true;
                else
                    usageError(std::string("unexpected argument after --info: '") + argv[k] + "'");
            }
            return printInfo(image, asJson);
        }
        if (a == "--quiet") {
            quiet = true;
            continue;
        }
        if (a.rfind("--", 0) != 0) usageError("unexpected argument '" + a + "'");
        if (i + 1 >= argc) usageError("missing value for " + a);
        std::string v = argv[++i];
        if (a == "--model")
            model = v;
        else if (a == "--prompt")
            req.prompt = v, havePrompt = true;
        else if (a == "--prompt-2")
            req.prompt2 = v;
        else if (a == "--negative")
            req.negative = v;
        else if (a == "--negative-2")
            req.negative2 = v;
        else if (a == "--seed")
            req.seed = parseSeedArg(v), haveSeed = true;
        else if (a == "--steps")
            req.steps = parseNumber<int>(a, v);
        else if (a == "--guidance")
            req.guidance = parseNumber<float>(a, v);
        else if (a == "--guidance-rescale")
            req.guidanceRescale = parseNumber<float>(a, v);
        else if (a == "--width")
            req.width = parseNumber<int>(a, v), haveWidth = true;
        else if (a == "--height")
            req.height = parseNumber<int>(a, v), haveHeight = true;
        else if (a == "--clip-skip")  // Stable Diffusion 1.5 / 2.x (issue 11): diffusers' clip_skip
            req.clipSkip = parseNumber<int>(a, v);
        else if (a == "--num-images")
            req.numImages = parseNumber<int>(a, v);
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
        } else if (a == "--variant")
            lo.variant = v;
        else if (a == "--out")
            out = v;
        else if (a == "--save-latents")
            saveLatents = v;
        // ---- prompt syntax and LoRA (issue 10)
        else if (a == "--prompt-syntax") {
            if (!koala::fromString(v, req.promptSyntax))
                usageError("unknown prompt syntax '" + v + "' (a1111 or plain)");
        } else if (a == "--lora-dir")
            req.loraFolders.push_back(v);
        else if (a == "--lora") {
            koala::LoraRequest l;
            l.path = v;
            // FILE:WEIGHT when what follows the last ':' is a number and FILE is not a file by itself.
            const auto colon = v.rfind(':');
            if (colon != std::string::npos && colon > 0 && !std::ifstream(v).good()) {
                l.path = v.substr(0, colon);
                l.weight = parseNumber<double>("--lora weight", v.substr(colon + 1));
            }
            req.loras.push_back(l);
        }
        // ---- img2img / inpainting
        else if (a == "--init-image")
            initImagePath = v;
        else if (a == "--mask")
            maskPath = v;
        else if (a == "--strength") {
            const double s = parseNumber<double>(a, v);
            if (!(s > 0.0 && s <= koala::kLimits.maxStrength))
                inputError("--strength must be greater than 0 and at most 1 (got " + v + ")");
            req.strength = s;
        } else if (a == "--mask-blur") {
            req.maskBlur = parseNumber<int>(a, v);
            if (req.maskBlur < 0 || req.maskBlur > koala::kLimits.maxMaskBlur)
                inputError("--mask-blur must be between 0 and " + std::to_string(koala::kLimits.maxMaskBlur));
        } else
            usageError("unknown option " + a);
    }
    if (model.empty()) usageError("--model is required");
    if (!havePrompt) usageError("--prompt is required");
    if (!haveSeed) req.seed = koala::randomSeed();
    if (out.empty()) out = "koala-" + std::to_string(req.seed) + ".png";
    req.keepLatents = !saveLatents.empty();
    req.previews = false;
    // ---- img2img / inpainting: the checks a user can act on, before any model is loaded.
    if (!maskPath.empty() && initImagePath.empty()) inputError("--mask needs --init-image (the image to repaint)");
    if (initImagePath.empty() && (req.strength || req.maskBlur != 0))
        inputError("--strength and --mask-blur need --init-image");
    if (!initImagePath.empty()) {
        req.initImage = readInputImage("init image", initImagePath);
        if (!maskPath.empty()) {
            req.mask = readInputImage("mask", maskPath);
            if (req.mask->width != req.initImage->width || req.mask->height != req.initImage->height)
                inputError("the mask " + maskPath + " is " + std::to_string(req.mask->width) + "x" +
                           std::to_string(req.mask->height) + " but the init image is " +
                           std::to_string(req.initImage->width) + "x" + std::to_string(req.initImage->height));
        }
        const double s = req.strength.value_or(req.mask ? koala::kLimits.defaultInpaintStrength
                                                        : koala::kLimits.defaultImg2ImgStrength);
        if (koala::img2imgSteps(req.steps, s) < 1)
            inputError("strength " + std::to_string(s).substr(0, 6) + " with " + std::to_string(req.steps) +
                       " steps leaves no denoising step (int(steps x strength) = 0): raise --strength or --steps");
    }

    try {
        koala::validate(req);
        auto t0 = std::chrono::steady_clock::now();
        auto m = koala::Model::load(model, lo);
        double loadSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const auto& info = m->info();
        // ---- Stable Diffusion 1.5 / 2.x (issue 11): the model's default size, the safety checker left out.
        if (!haveWidth) req.width = info.defaultWidth;
        if (!haveHeight) req.height = info.defaultHeight;
        if (info.pipeline == "sd" && !quiet) std::fprintf(stderr, "safety checker not used\n");
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

        koala::ImageMetadata meta;
        meta.prompt = req.prompt;
        meta.negative = req.negative;
        meta.seed = req.seed;
        meta.steps = req.steps;
        meta.guidance = req.guidance;
        meta.guidanceRescale = req.guidanceRescale;
        meta.scheduler = res.schedulerName;  // the scheduler actually used
        meta.spacing = res.spacingName;
        meta.width = res.images.empty() ? req.width : res.images[0].width;  // img2img: the image's size
        meta.height = res.images.empty() ? req.height : res.images[0].height;
        if (req.initImage) {  // ---- img2img / inpainting
            meta.strength = req.strength.value_or(req.mask ? koala::kLimits.defaultInpaintStrength
                                                           : koala::kLimits.defaultImg2ImgStrength);
            meta.initImage = fileNameOf(initImagePath);
            meta.initImageHash = koala::fileSha256(initImagePath).substr(0, 10);
            if (req.mask) {
                meta.maskImage = fileNameOf(maskPath);
                meta.maskImageHash = koala::fileSha256(maskPath).substr(0, 10);
                meta.maskBlur = req.maskBlur;
            }
        }
        // ---- prompt syntax and LoRA (issue 10)
        meta.promptSyntax = koala::toString(req.promptSyntax);
        for (const auto& l : res.loras) {
            meta.loras.push_back({l.name, l.weight, l.shortHash, l.fromPrompt});
            if (!quiet)
                std::fprintf(stderr, "LoRA %s (weight %g, %s): %s\n", l.name.c_str(), l.weight, l.shortHash.c_str(),
                             l.report.c_str());
        }
        meta.modelPath = info.path;
        meta.modelName = info.name;
        meta.generator = "koala-cli";
        nlohmann::json extra;
        extra["model_name"] = info.name;
        extra["unet_shape"] = info.unetShape;
        extra["device"] = info.device;
        extra["compute_dtype"] = info.computeDType;
        extra["scheduler_used"] = res.schedulerName;
        extra["spacing_used"] = res.spacingName;
        extra["width"] = meta.width;
        extra["height"] = meta.height;
        extra["timings"] = {{"total_seconds", res.timings.totalSeconds},
                            {"step_seconds", res.timings.stepMedianSeconds},
                            {"load_seconds", loadSeconds},
                            {"encode_seconds", res.timings.encodeSeconds},
                            {"denoise_seconds", res.timings.denoiseSeconds},
                            {"decode_seconds", res.timings.decodeSeconds},
                            {"encode_image_seconds", res.timings.encodeImageSeconds},
                            {"peak_device_bytes", res.timings.peakDeviceBytes}};
        // Invalid UTF-8 (a model folder path from a Latin-1 file system) becomes U+FFFD rather than throwing after the
        // image was generated.
        const auto chunks =
            koala::metadataTextChunks(meta, extra.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
        const std::string& sched = res.schedulerName;
        for (std::size_t i = 0; i < res.images.size(); ++i) {
            std::string path = out;
            if (res.images.size() > 1) {
                auto dot = out.rfind('.');
                path = (dot == std::string::npos ? out : out.substr(0, dot)) + "-" + std::to_string(i) +
                       (dot == std::string::npos ? "" : out.substr(dot));
            }
            koala::writePng(path, res.images[i], chunks);
            if (!quiet) std::fprintf(stderr, "wrote %s\n", path.c_str());
        }
        if (!saveLatents.empty()) {
            std::vector<std::pair<std::string, koala::FloatTensor>> tensors{{"initial_noise", res.initialNoise},
                                                                            {"latents", res.finalLatents}};
            if (req.initImage) {  // ---- img2img / inpainting
                tensors.emplace_back("image_latents", res.imageLatents);
                tensors.emplace_back("noise", res.addedNoise);
            }
            koala::writeSafetensors(saveLatents, tensors);
            if (!quiet) std::fprintf(stderr, "wrote %s\n", saveLatents.c_str());
        }
        if (!quiet)
            std::fprintf(
                stderr, "seed %llu, %s, encode %.3f s, denoise %.3f s (%.3f s/step), decode %.3f s, total %.3f s\n",
                (unsigned long long)req.seed, sched.c_str(), res.timings.encodeSeconds, res.timings.denoiseSeconds,
                res.timings.stepMedianSeconds, res.timings.decodeSeconds, res.timings.totalSeconds);
    } catch (const koala::Error& e) {
        std::fprintf(stderr, "koala-cli: error: %s\n", e.what());
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "koala-cli: error: %s\n", e.what());
        return 1;
    }
    return 0;
}
