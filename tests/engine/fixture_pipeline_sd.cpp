// Stable Diffusion 1.5 / 2.x (StableDiffusionPipeline folders, issue 11) against diffusers 0.42.1: the text encoder
// (last_hidden_state, clip_skip), prompt encoding (negative "" by default), one UNet call, and every reference run
// of tiny-sd15 / tiny-sd2 through koala::Model and through the koala-cli binary (noise bit-identical, step and final
// latents within 1e-3 relative error, 8-bit image within 1 level).
#include "harness.h"
#include "pipeline_runs.h"

#include "pipeline/model_impl.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;

namespace {

using kt::fromFloatTensor;
using kt::maxLevelDiff;
using kt::refFile;
using kt::runCli;
using kt::shellQuote;

const char* const kSdPipelines[] = {"tiny-sd15", "tiny-sd2"};

// reference.json as Python's json writes it: the DPM++ configs carry lambda_min_clipped = -Infinity, which is not
// JSON; read it as null.
nlohmann::json referenceJson(const std::string& pipe) {
    std::ifstream in(kt::fixturePath(pipe + "/reference.json"));
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (std::size_t p; (p = text.find("-Infinity")) != std::string::npos;) text.replace(p, 9, "null");
    for (std::size_t p; (p = text.find("Infinity")) != std::string::npos;) text.replace(p, 8, "null");
    return nlohmann::json::parse(text);
}

std::shared_ptr<koala::Model> loadCpu(const std::string& path) {
    koala::LoadOptions lo = koala::defaultLoadOptions();
    lo.device = koala::Device::Cpu;
    lo.dtype = koala::DType::F32;
    return koala::Model::load(path, lo);
}

// The reference runs name the scheduler as sd_reference.make_sd_scheduler does; "<kind>_zsnr_trailing" adds
// rescale_betas_zero_snr and trailing spacing, which a model ships in its scheduler_config.json.
bool zeroSnr(const std::string& sched) { return sched.find("_zsnr_trailing") != std::string::npos; }
std::string kindName(const std::string& sched) {
    return zeroSnr(sched) ? sched.substr(0, sched.find("_zsnr_trailing")) : sched;
}

// A copy of a fixture pipeline (links to its folders) whose scheduler_config.json has rescale_betas_zero_snr and
// trailing spacing.
std::string zeroSnrFolder(const std::string& pipe) {
    const fs::path dir = fs::path(kt::tempDir()) / (pipe + "-zsnr");
    if (fs::exists(dir / "model_index.json")) return dir.string();
    fs::create_directories(dir / "scheduler");
    for (const auto& e : fs::directory_iterator(kt::fixturePath(pipe))) {
        const std::string name = e.path().filename().string();
        if (name == "scheduler") continue;
        fs::create_symlink(e.path(), dir / name);
    }
    std::ifstream in(kt::fixturePath(pipe + "/scheduler/scheduler_config.json"));
    auto j = nlohmann::json::parse(in);
    j["rescale_betas_zero_snr"] = true;
    j["timestep_spacing"] = "trailing";
    std::ofstream(dir / "scheduler" / "scheduler_config.json") << j.dump(2);
    return dir.string();
}

koala::GenerateRequest requestFor(const nlohmann::json& run) {
    koala::GenerateRequest r = koala::defaultRequest();
    r.prompt = run["prompt"];
    if (!run["neg"].is_null()) r.negative = run["neg"].get<std::string>();
    r.seed = run["seed"];
    r.steps = run["steps"];
    r.guidance = run["guidance"];
    r.guidanceRescale = run["guidance_rescale"];
    r.width = run["w"];
    r.height = run["h"];
    bool ok = koala::fromString(kindName(run["sched"].get<std::string>()), r.scheduler);
    KT_CHECK_MSG(ok, "unknown scheduler in reference.json: " << run["sched"]);
    r.keepLatents = true;
    return r;
}

}  // namespace

KT_TEST(sd_model_info_and_text_encoder) {
    for (const char* pipe : kSdPipelines) {
        auto model = loadCpu(kt::fixturePath(pipe));
        auto ref = referenceJson(pipe);
        const std::string file = refFile(pipe);
        const auto& info = model->info();
        KT_CHECK_EQ(info.pipeline, std::string("sd"));
        const int size = ref["runs"][0]["w"];
        KT_CHECK_EQ(info.defaultWidth, size);
        KT_CHECK_EQ(info.defaultHeight, size);
        const auto inspected = koala::inspectModel(kt::fixturePath(pipe));
        KT_CHECK_EQ(inspected.pipeline, std::string("sd"));
        KT_CHECK_EQ(inspected.defaultWidth, size);
        auto& impl = koala::ModelAccess::impl(*model);
        KT_CHECK(!impl.text->encoder2 && !impl.text->tokenizer2);
        const auto& enc = *impl.text->encoder1;
        for (int k = 0; k < 3; ++k) {
            const std::string p = "te." + std::to_string(k) + ".";
            auto ids = kt::loadTensor(file, p + "input_ids").to(at::kLong);
            auto o = enc.forward(ids);
            KT_CHECK_REL(o.lastHiddenState, kt::loadTensor(file, p + "last_hidden_state"), 1e-4);
            KT_CHECK_REL(o.hiddenPenultimate, kt::loadTensor(file, p + "penultimate"), 1e-4);
            KT_CHECK_REL(enc.finalLayerNorm(o.hiddenPenultimate),
                         kt::loadTensor(file, p + "hidden_states_penultimate_normed"), 1e-4);
            KT_CHECK_REL(enc.finalLayerNorm(enc.forward(ids, 1).hiddenPenultimate),
                         kt::loadTensor(file, p + "hidden_states_m3_normed"), 1e-4);
        }
        // encode_prompt, both prompt syntaxes (a short prompt without syntax is the same under A1111).
        for (auto syntax : {koala::PromptSyntax::Plain, koala::PromptSyntax::A1111}) {
            koala::GenerateRequest r = koala::defaultRequest();
            r.promptSyntax = syntax;
            r.prompt = ref["prompts"][0];
            r.negative = ref["prompts"][1].get<std::string>();
            auto e = impl.encodePrompt(r, true);
            KT_CHECK(!e.pooled.defined());
            KT_CHECK_REL(e.prompt, kt::loadTensor(file, "encode.prompt_embeds"), 1e-4);
            KT_CHECK_REL(e.negative, kt::loadTensor(file, "encode.negative_prompt_embeds"), 1e-4);
            for (int c : {1, 2}) {
                r.clipSkip = c;
                auto s = impl.encodePrompt(r, true);
                const std::string p = "encode_clipskip" + std::to_string(c) + ".";
                KT_CHECK_REL(s.prompt, kt::loadTensor(file, p + "prompt_embeds"), 1e-4);
                KT_CHECK_REL(s.negative, kt::loadTensor(file, p + "negative_prompt_embeds"), 1e-4);
            }
            r.clipSkip = 0;
            r.negative.reset();  // negative None → "" encoded (StableDiffusionPipeline has no zeros rule)
            auto n = impl.encodePrompt(r, true);
            KT_CHECK_REL(n.negative, kt::loadTensor(file, "encode_empty_negative.negative_prompt_embeds"), 1e-4);
        }
    }
}

KT_TEST(sd_unet_and_vae_match) {
    for (const char* pipe : kSdPipelines) {
        auto model = loadCpu(kt::fixturePath(pipe));
        const std::string file = refFile(pipe);
        auto& impl = koala::ModelAccess::impl(*model);
        for (int t : {999, 500, 1}) {
            auto out =
                impl.unet->forward(kt::loadTensor(file, "unet.sample"), t,
                                   kt::loadTensor(file, "unet.encoder_hidden_states"), at::Tensor(), at::Tensor());
            KT_CHECK_REL(out, kt::loadTensor(file, "unet.t" + std::to_string(t) + ".out"), 1e-4);
        }
        auto dec = impl.decodeLatents(kt::loadTensor(file, "vae.latent"));
        KT_CHECK_REL(dec, (kt::loadTensor(file, "vae.decoded") * 0.5 + 0.5).clamp(0, 1), 1e-4);
    }
}

KT_TEST(sd_full_runs_match_diffusers_step_by_step) {
    for (const char* pipe : kSdPipelines) {
        auto ref = referenceJson(pipe);
        const std::string file = refFile(pipe);
        auto plain = loadCpu(kt::fixturePath(pipe));
        std::shared_ptr<koala::Model> zsnr;
        for (const auto& run : ref["runs"]) {
            const std::string id = run["id"];
            std::fprintf(stderr, "  %s / %s\n", pipe, id.c_str());
            const bool z = zeroSnr(run["sched"]);
            if (z && !zsnr) zsnr = loadCpu(zeroSnrFolder(pipe));
            auto& model = z ? *zsnr : *plain;
            auto req = requestFor(run);
            std::vector<at::Tensor> steps;
            koala::Callbacks cb;
            cb.latents = [&](int, const koala::FloatTensor& t) { steps.push_back(fromFloatTensor(t)); };
            auto res = model.generate(req, cb);
            auto noiseRef = kt::loadTensor(file, "run." + id + ".initial_noise");
            auto noise = fromFloatTensor(res.initialNoise);
            KT_CHECK_MSG(noise.sizes() == noiseRef.sizes() && at::equal(noise, noiseRef),
                         id << ": initial noise is not bit-identical");
            KT_CHECK_EQ(int(steps.size()), run["unet_calls"].get<int>());
            for (std::size_t i = 0; i < steps.size(); ++i)
                KT_CHECK_REL(steps[i], kt::loadTensor(file, "run." + id + ".step" + std::to_string(i) + ".latents"),
                             1e-3);
            auto fin = fromFloatTensor(res.finalLatents);
            auto finRef = kt::loadTensor(file, "run." + id + ".final_latents");
            KT_CHECK_REL(fin, finRef, 1e-3);
            std::fprintf(stderr, "    final latents rel err %.3g\n",
                         ((fin - finRef).norm() / finRef.norm()).item<double>());
            KT_CHECK_EQ(int(res.images.size()), 1);
            int diff = maxLevelDiff(res.images[0], kt::loadTensor(file, "run." + id + ".image"));
            KT_CHECK_MSG(diff <= 1, id << ": 8-bit image differs by " << diff << " levels");
        }
    }
}

// koala-cli with the model's defaults: no --width/--height (unet sample_size · 8), the zero-SNR runs from a folder
// whose scheduler_config.json says so.
KT_TEST(sd_cli_reproduces_every_fixture_run) {
    for (const char* pipe : kSdPipelines) {
        auto ref = referenceJson(pipe);
        const std::string file = refFile(pipe);
        for (const auto& run : ref["runs"]) {
            const std::string id = run["id"];
            const std::string sched = run["sched"];
            const std::string folder = zeroSnr(sched) ? zeroSnrFolder(pipe) : kt::fixturePath(pipe);
            const std::string png = kt::tempDir() + "/" + pipe + "-" + id + ".png";
            const std::string lat = kt::tempDir() + "/" + pipe + "-" + id + ".safetensors";
            char guidance[64];
            std::snprintf(guidance, sizeof guidance, "%.17g", run["guidance_rescale"].get<double>());
            std::string args = "--model " + shellQuote(folder) + " --prompt " +
                               shellQuote(run["prompt"].get<std::string>()) + " --seed " +
                               std::to_string(run["seed"].get<long long>()) + " --steps " +
                               std::to_string(run["steps"].get<int>()) + " --guidance " +
                               std::to_string(run["guidance"].get<double>()) + " --guidance-rescale " + guidance +
                               " --scheduler " + kindName(sched) + " --device cpu --dtype fp32 --out " +
                               shellQuote(png) + " --save-latents " + shellQuote(lat);
            if (!run["neg"].is_null()) args += " --negative " + shellQuote(run["neg"].get<std::string>());
            std::string err;
            int rc = runCli(args, err);
            KT_CHECK_MSG(rc == 0, pipe << "/" << id << ": koala-cli exited " << rc << ": " << err);
            if (rc != 0) continue;
            KT_CHECK(
                at::equal(kt::loadTensor(lat, "initial_noise"), kt::loadTensor(file, "run." + id + ".initial_noise")));
            KT_CHECK_REL(kt::loadTensor(lat, "latents"), kt::loadTensor(file, "run." + id + ".final_latents"), 1e-3);
            KT_CHECK(err.find("safety checker not used") != std::string::npos);
        }
    }
}

KT_TEST(unknown_pipeline_class_is_refused_by_name) {
    const fs::path dir = fs::path(kt::tempDir()) / "tiny-sd15-other";
    fs::create_directories(dir);
    for (const auto& e : fs::directory_iterator(kt::fixturePath("tiny-sd15")))
        if (e.path().filename() != "model_index.json") fs::create_symlink(e.path(), dir / e.path().filename());
    std::ifstream in(kt::fixturePath("tiny-sd15/model_index.json"));
    auto j = nlohmann::json::parse(in);
    j["_class_name"] = "StableDiffusionUpscalePipeline";
    std::ofstream(dir / "model_index.json") << j.dump(2);
    KT_CHECK_THROWS(loadCpu(dir.string()), koala::ErrorKind::ModelFormat, "StableDiffusionUpscalePipeline");
}

// StableDiffusionPipeline.__init__'s deprecation rewrite of an outdated scheduler config.
KT_TEST(sd_outdated_scheduler_config_is_rewritten) {
    const fs::path dir = fs::path(kt::tempDir()) / "tiny-sd15-old-scheduler";
    fs::create_directories(dir / "scheduler");
    for (const auto& e : fs::directory_iterator(kt::fixturePath("tiny-sd15")))
        if (e.path().filename() != "scheduler") fs::create_symlink(e.path(), dir / e.path().filename());
    std::ifstream in(kt::fixturePath("tiny-sd15/scheduler/scheduler_config.json"));
    auto j = nlohmann::json::parse(in);
    j["steps_offset"] = 0;
    j["clip_sample"] = true;
    std::ofstream(dir / "scheduler" / "scheduler_config.json") << j.dump(2);
    auto model = loadCpu(dir.string());
    const auto& sc = koala::ModelAccess::impl(*model).schedulerConfig;
    KT_CHECK_EQ(sc.stepsOffset, 1);
    KT_CHECK(!sc.clipSample);
}

KT_TEST(sd_lora_is_refused_clearly) {
    auto model = loadCpu(kt::fixturePath("tiny-sd15"));
    koala::GenerateRequest r = koala::defaultRequest();
    r.prompt = "a koala <lora:style:0.8>";
    r.width = r.height = 64;
    r.steps = 1;
    KT_CHECK_THROWS(model->generate(r), koala::ErrorKind::InvalidArgument, "LoRA is not supported");
    r.promptSyntax = koala::PromptSyntax::Plain;  // the tag is plain text then
    KT_CHECK_EQ(int(model->generate(r).images.size()), 1);
}
