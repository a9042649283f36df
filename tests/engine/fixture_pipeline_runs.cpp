// Whole pipeline runs against diffusers' reference runs (tests/data/fixtures/*/reference.json `runs`), through
// koala::Model — the code path koala-cli uses — and through the koala-cli binary itself.
#include "harness.h"
#include "pipeline_runs.h"

#include "pipeline/model_impl.h"

#include <nlohmann/json.hpp>

#include <zlib.h>
#include <cstdio>
#include <filesystem>
#include <fstream>

namespace {

using kt::fromFloatTensor;
using kt::kPipelines;
using kt::maxLevelDiff;
using kt::referenceJson;
using kt::refFile;
using kt::requestFor;
using kt::runCli;
using kt::shellQuote;

std::shared_ptr<koala::Model> loadCpu(const std::string& pipe) {
    koala::LoadOptions lo = koala::defaultLoadOptions();
    lo.device = koala::Device::Cpu;
    lo.dtype = koala::DType::F32;
    return koala::Model::load(kt::fixturePath(pipe), lo);
}

}  // namespace

KT_TEST(prompt_encoding_matches_diffusers) {
    for (const char* pipe : kPipelines) {
        auto model = loadCpu(pipe);
        auto ref = referenceJson(pipe);
        const std::string file = refFile(pipe);
        koala::GenerateRequest r = koala::defaultRequest();
        r.prompt = ref["prompts"][0];
        r.negative = ref["prompts"][1].get<std::string>();
        auto e = koala::ModelAccess::impl(*model).encodePrompt(r, true);
        KT_CHECK_REL(e.prompt, kt::loadTensor(file, "encode.prompt_embeds"), 1e-4);
        KT_CHECK_REL(e.negative, kt::loadTensor(file, "encode.negative_prompt_embeds"), 1e-4);
        KT_CHECK_REL(e.pooled, kt::loadTensor(file, "encode.pooled_prompt_embeds"), 1e-4);
        KT_CHECK_REL(e.negativePooled, kt::loadTensor(file, "encode.negative_pooled_prompt_embeds"), 1e-4);
        // No negative prompt at all: zeros (force_zeros_for_empty_prompt).
        r.negative.reset();
        auto z = koala::ModelAccess::impl(*model).encodePrompt(r, true);
        auto refZ = kt::loadTensor(file, "encode_empty_negative.negative_prompt_embeds");
        KT_CHECK(refZ.abs().max().item<float>() == 0.0f);
        KT_CHECK(z.negative.sizes() == refZ.sizes() && z.negative.abs().max().item<float>() == 0.0f);
        KT_CHECK(z.negativePooled.abs().max().item<float>() == 0.0f);
        // An explicit empty negative prompt is encoded, not zeroed.
        r.negative = std::string();
        auto empty = koala::ModelAccess::impl(*model).encodePrompt(r, true);
        KT_CHECK(empty.negative.abs().max().item<float>() > 0.0f);
    }
}

KT_TEST(full_runs_match_diffusers_step_by_step) {
    for (const char* pipe : kPipelines) {
        auto model = loadCpu(pipe);
        auto ref = referenceJson(pipe);
        const std::string file = refFile(pipe);
        for (const auto& run : ref["runs"]) {
            const std::string id = run["id"];
            std::fprintf(stderr, "  %s / %s\n", pipe, id.c_str());
            auto req = requestFor(run);
            std::vector<at::Tensor> steps;
            koala::Callbacks cb;
            cb.latents = [&](int, const koala::FloatTensor& t) { steps.push_back(fromFloatTensor(t)); };
            int previews = 0;
            cb.preview = [&](int, const std::vector<koala::Image>& imgs) { previews += int(imgs.size()); };
            auto res = model->generate(req, cb);
            auto noiseRef = kt::loadTensor(file, "run." + id + ".initial_noise");
            auto noise = fromFloatTensor(res.initialNoise);
            KT_CHECK_MSG(noise.sizes() == noiseRef.sizes() && at::equal(noise, noiseRef),
                         id << ": initial noise is not bit-identical");
            KT_CHECK_EQ(int(steps.size()), int(req.steps));
            KT_CHECK_EQ(previews, int(req.steps));
            for (std::size_t i = 0; i < steps.size(); ++i)
                KT_CHECK_REL(steps[i], kt::loadTensor(file, "run." + id + ".step" + std::to_string(i) + ".latents"),
                             1e-3);
            KT_CHECK_REL(fromFloatTensor(res.finalLatents), kt::loadTensor(file, "run." + id + ".final_latents"), 1e-3);
            KT_CHECK_EQ(int(res.images.size()), 1);
            int diff = maxLevelDiff(res.images[0], kt::loadTensor(file, "run." + id + ".image"));
            KT_CHECK_MSG(diff <= 1, id << ": 8-bit image differs by " << diff << " levels");
        }
    }
}

KT_TEST(unet_and_vae_through_the_model_match) {
    for (const char* pipe : kPipelines) {
        auto model = loadCpu(pipe);
        const std::string file = refFile(pipe);
        auto& impl = koala::ModelAccess::impl(*model);
        for (int t : {999, 500, 1}) {
            auto out = impl.unet->forward(
                kt::loadTensor(file, "unet.sample"), t, kt::loadTensor(file, "unet.encoder_hidden_states"),
                kt::loadTensor(file, "unet.text_embeds"), kt::loadTensor(file, "unet.time_ids"));
            KT_CHECK_REL(out, kt::loadTensor(file, "unet.t" + std::to_string(t) + ".out"), 1e-4);
        }
        auto dec = impl.decodeLatents(kt::loadTensor(file, "vae.latent"));
        auto ref01 = (kt::loadTensor(file, "vae.decoded") * 0.5 + 0.5).clamp(0, 1);
        KT_CHECK_REL(dec, ref01, 1e-4);
    }
}

KT_TEST(cancel_stops_within_one_step_and_bad_requests_are_refused) {
    auto model = loadCpu("tiny-koala-700m");
    koala::GenerateRequest r = koala::defaultRequest();
    r.prompt = "a koala";
    r.width = r.height = 64;
    r.steps = 10;
    koala::CancelToken cancel;
    int lastStep = 0;
    koala::Callbacks cb;
    cb.progress = [&](const koala::Progress& p) {
        lastStep = p.step;
        if (p.step == 3) cancel.cancel();
    };
    KT_CHECK_THROWS(model->generate(r, cb, &cancel), koala::ErrorKind::Cancelled, "cancel");
    KT_CHECK_EQ(lastStep, 3);
    r.width = 100;
    KT_CHECK_THROWS(model->generate(r), koala::ErrorKind::InvalidArgument, "multiples of 8");
    r.width = 64;
    r.steps = 0;
    KT_CHECK_THROWS(model->generate(r), koala::ErrorKind::InvalidArgument, "steps");
    // The model still works after a cancel and refused requests.
    r.steps = 2;
    auto res = model->generate(r);
    KT_CHECK_EQ(int(res.images.size()), 1);
    KT_CHECK_EQ(res.images[0].width, 64);
}

KT_TEST(batch_of_images_and_guidance_off) {
    auto model = loadCpu("tiny-koala-1b");
    koala::GenerateRequest r = koala::defaultRequest();
    r.prompt = "a koala";
    r.width = 64;
    r.height = 96;
    r.steps = 3;
    r.numImages = 2;
    r.guidance = 1.0f;  // CFG off: one UNet pass per step
    auto res = model->generate(r);
    KT_CHECK_EQ(int(res.images.size()), 2);
    KT_CHECK_EQ(res.images[1].height, 96);
    KT_CHECK(res.images[0].rgb != res.images[1].rgb);  // different noise per batch item
}

KT_TEST(models_with_identical_text_encoders_share_them) {
    koala::LoadOptions lo = koala::defaultLoadOptions();
    lo.device = koala::Device::Cpu;
    auto a = koala::Model::load(kt::fixturePath("tiny-koala-700m"), lo);
    auto b = koala::Model::load(kt::fixturePath("tiny-koala-1b"), lo, a);
    KT_CHECK(b->info().sharesTextEncoders);
    KT_CHECK(koala::ModelAccess::impl(*a).text->encoder1.get() == koala::ModelAccess::impl(*b).text->encoder1.get());
    KT_CHECK(koala::ModelAccess::impl(*a).text->encoder2.get() == koala::ModelAccess::impl(*b).text->encoder2.get());
    // Different tokenizer file formats (vocab.json + merges.txt vs tokenizer.json), same ids.
    KT_CHECK(koala::ModelAccess::impl(*a).text->tokenizer1.get() !=
             koala::ModelAccess::impl(*b).text->tokenizer1.get());
    KT_CHECK_EQ(a->countTokens("a koala astronaut"), b->countTokens("a koala astronaut"));
    auto counter = koala::PromptTokenizer::load(kt::fixturePath("tiny-koala-700m"));
    KT_CHECK_EQ(counter->count("a koala astronaut"), a->countTokens("a koala astronaut"));
    KT_CHECK_EQ(counter->count(""), 0);
    KT_CHECK_THROWS(koala::PromptTokenizer::load("/nonexistent"), koala::ErrorKind::ModelFormat, "does not exist");
    KT_CHECK(koala::ModelAccess::impl(*a).vae.get() == koala::ModelAccess::impl(*b).vae.get());
    KT_CHECK(koala::ModelAccess::impl(*a).unet.get() != koala::ModelAccess::impl(*b).unet.get());
    KT_CHECK_EQ(a->info().name, std::string("tiny-koala-700m"));
    KT_CHECK(a->info().unetParameters > 0);
}

// ---- koala-cli -----------------------------------------------------------------------------------------------
namespace {

// Decodes the PNGs koala::writePng makes (8-bit RGB, filter 0 on every row) to check their pixels.
bool decodeOwnPng(const std::string& path, koala::Image& img) {
    std::ifstream in(path, std::ios::binary);
    std::string d((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto be32 = [&](std::size_t p) {
        return (std::uint32_t(std::uint8_t(d[p])) << 24) | (std::uint32_t(std::uint8_t(d[p + 1])) << 16) |
               (std::uint32_t(std::uint8_t(d[p + 2])) << 8) | std::uint32_t(std::uint8_t(d[p + 3]));
    };
    std::string z;
    for (std::size_t p = 8; p + 12 <= d.size();) {
        std::uint32_t len = be32(p);
        std::string type = d.substr(p + 4, 4);
        if (type == "IHDR") {
            img.width = int(be32(p + 8));
            img.height = int(be32(p + 12));
        } else if (type == "IDAT") {
            z += d.substr(p + 8, len);
        }
        p += 12 + len;
    }
    std::size_t stride = std::size_t(img.width) * 3;
    std::string raw((stride + 1) * img.height, '\0');
    uLongf rawLen = uLongf(raw.size());
    if (uncompress(reinterpret_cast<Bytef*>(raw.data()), &rawLen, reinterpret_cast<const Bytef*>(z.data()),
                   uLong(z.size())) != Z_OK)
        return false;
    img.rgb.clear();
    for (int y = 0; y < img.height; ++y) {
        if (raw[y * (stride + 1)] != 0) return false;
        img.rgb.insert(img.rgb.end(), raw.begin() + y * (stride + 1) + 1, raw.begin() + (y + 1) * (stride + 1));
    }
    return true;
}

}  // namespace

KT_TEST(cli_reproduces_every_fixture_run) {
    for (const char* pipe : kPipelines) {
        auto ref = referenceJson(pipe);
        const std::string file = refFile(pipe);
        for (const auto& run : ref["runs"]) {
            const std::string id = run["id"];
            const std::string png = kt::tempDir() + "/" + pipe + "-" + id + ".png";
            const std::string lat = kt::tempDir() + "/" + pipe + "-" + id + ".safetensors";
            std::string args =
                "--model " + shellQuote(kt::fixturePath(pipe)) + " --prompt " +
                shellQuote(run["prompt"].get<std::string>()) + " --seed " +
                std::to_string(run["seed"].get<long long>()) + " --steps " + std::to_string(run["steps"].get<int>()) +
                " --guidance " + std::to_string(run["guidance"].get<double>()) + " --scheduler " +
                run["sched"].get<std::string>() + " --width " + std::to_string(run["w"].get<int>()) + " --height " +
                std::to_string(run["h"].get<int>()) + " --device cpu --dtype fp32 --out " + shellQuote(png) +
                " --save-latents " + shellQuote(lat);
            if (!run["neg"].is_null()) args += " --negative " + shellQuote(run["neg"].get<std::string>());
            std::string err;
            int rc = runCli(args, err);
            KT_CHECK_MSG(rc == 0, pipe << "/" << id << ": koala-cli exited " << rc << ": " << err);
            if (rc != 0) continue;
            auto noise = kt::loadTensor(lat, "initial_noise");
            KT_CHECK(at::equal(noise, kt::loadTensor(file, "run." + id + ".initial_noise")));
            KT_CHECK_REL(kt::loadTensor(lat, "latents"), kt::loadTensor(file, "run." + id + ".final_latents"), 1e-3);
            koala::Image img;
            KT_CHECK(decodeOwnPng(png, img));
            int diff = maxLevelDiff(img, kt::loadTensor(file, "run." + id + ".image"));
            KT_CHECK_MSG(diff <= 1, id << ": PNG differs by " << diff << " levels");
            std::vector<std::pair<std::string, std::string>> text;
            KT_CHECK(koala::readPngText(png, text));
            bool hasParams = false, hasKoala = false;
            for (auto& [k, v] : text) {
                if (k == "parameters")
                    hasParams = v.find("Seed: " + std::to_string(run["seed"].get<long long>())) != std::string::npos;
                if (k == "koala") {
                    // The engine's versioned schema, read back by the one reader the studio uses too.
                    auto meta = koala::parseKoalaMetadata(v);
                    hasKoala = meta && meta->steps == run["steps"].get<int>() &&
                               meta->seed == std::optional<std::uint64_t>(run["seed"].get<std::uint64_t>());
                }
            }
            KT_CHECK(hasParams);
            KT_CHECK(hasKoala);
            KT_CHECK(err.find("step 1/") != std::string::npos);  // progress goes to stderr
        }
    }
}

KT_TEST(cli_bad_input_gives_one_clear_line) {
    std::string err;
    const std::string model = shellQuote(kt::fixturePath("tiny-koala-700m"));
    KT_CHECK_EQ(runCli("--model /nonexistent/koala --prompt x --device cpu", err), 1);
    KT_CHECK(err.find("does not exist") != std::string::npos);
    KT_CHECK(err.find("c10") == std::string::npos && err.find("Exception raised") == std::string::npos);
    KT_CHECK_EQ(
        runCli("--model " + shellQuote(kt::fixturePath("tiny-koala-700m/unet")) + " --prompt x --device cpu", err), 1);
    KT_CHECK(err.find("not a diffusers model folder") != std::string::npos);
    KT_CHECK_EQ(runCli("--model " + model + " --prompt x --width 100 --device cpu", err), 1);
    KT_CHECK(err.find("multiples of 8") != std::string::npos);
    KT_CHECK_EQ(runCli("--model " + model + " --prompt x --scheduler heun", err), 2);
    KT_CHECK(err.find("unknown scheduler") != std::string::npos);
    KT_CHECK_EQ(runCli("--model " + model + " --prompt x --steps many", err), 2);
    KT_CHECK_EQ(runCli("--prompt x", err), 2);
    KT_CHECK(err.find("--model is required") != std::string::npos);
    // Seeds: a full uint64 or nothing; a negative or too large seed is refused, never wrapped into another number.
    for (const char* bad : {"-1", "18446744073709551616", "1e5", "+3", "0x10"}) {
        KT_CHECK_EQ(runCli("--model " + model + " --prompt x --seed " + std::string(bad), err), 2);
        KT_CHECK_MSG(err.find("invalid seed") != std::string::npos, bad << ": " << err);
    }
    KT_CHECK_EQ(runCli("--info /nonexistent.png", err), 1);
    KT_CHECK(err.find("cannot be read as a PNG") != std::string::npos);
}

// A real-repo layout end to end: a Hugging Face cache folder whose snapshot files are symlinks into blobs/, with
// the weights stored as `.fp16` variant files (as the released KOALA repos ship them), loaded with variant "fp16".
KT_TEST(hf_cache_snapshot_with_fp16_variant_files_reproduces_a_run) {
    namespace fs = std::filesystem;
    const fs::path src = kt::fixturePath("tiny-koala-700m");
    const fs::path repo = fs::path(kt::tempDir()) / "hub" / "models--etri-vilab--koala-700m-llava-cap";
    const fs::path snap = repo / "snapshots" / "0123abcd";
    fs::create_directories(repo / "blobs");
    fs::create_directories(repo / "refs");
    std::ofstream(repo / "refs" / "main") << "0123abcd";
    int blob = 0;
    for (auto& e : fs::recursive_directory_iterator(src)) {
        if (!e.is_regular_file()) continue;
        fs::path rel = fs::relative(e.path(), src);
        if (rel.filename() == "reference.safetensors" || rel.filename() == "reference.json") continue;
        std::string name = rel.filename().string();
        const std::string ext = ".safetensors";
        if (name.size() > ext.size() && name.compare(name.size() - ext.size(), ext.size(), ext) == 0)
            name = name.substr(0, name.size() - ext.size()) + ".fp16" + ext;  // the variant file name
        const fs::path blobPath = repo / "blobs" / ("blob" + std::to_string(blob++));
        fs::copy_file(e.path(), blobPath);
        fs::create_directories(snap / rel.parent_path());
        fs::create_symlink(fs::relative(blobPath, snap / rel.parent_path()), snap / rel.parent_path() / name);
    }
    koala::LoadOptions lo = koala::defaultLoadOptions();
    lo.device = koala::Device::Cpu;
    // Without the variant the plain files are missing; the message says what to do.
    KT_CHECK_THROWS(koala::Model::load(repo.string(), lo), koala::ErrorKind::ModelFormat, "fp16");
    lo.variant = "fp16";
    auto model = koala::Model::load(repo.string(), lo);
    KT_CHECK_EQ(model->info().name, std::string("koala-700m-llava-cap"));
    KT_CHECK_EQ(model->info().path, snap.lexically_normal().string());
    auto ref = referenceJson("tiny-koala-700m");
    const auto& run = ref["runs"][0];
    auto res = model->generate(requestFor(run));
    KT_CHECK_REL(fromFloatTensor(res.finalLatents),
                 kt::loadTensor(refFile("tiny-koala-700m"), "run." + run["id"].get<std::string>() + ".final_latents"),
                 1e-3);
}
