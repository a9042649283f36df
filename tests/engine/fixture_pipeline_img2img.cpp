// img2img and inpainting (4-channel UNet) against diffusers 0.42.1's StableDiffusionXLImg2ImgPipeline /
// StableDiffusionXLInpaintPipeline (tests/data/fixtures/img2img, made by tools/reference/img2img_reference.py):
// the VAE encoder, PIL preprocessing, timesteps after strength, noise, every step, final latents and images,
// through koala::Model and through the koala-cli binary; the bad inputs koala-cli refuses in one line (exit 2).
#include "harness.h"
#include "pipeline_runs.h"

#include "core/image_io.h"
#include "pipeline/img2img.h"
#include "pipeline/model_impl.h"
#include "sampling/noise.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>

namespace {

using kt::fromFloatTensor;
using kt::runCli;
using kt::shellQuote;

const std::string kPipe = "tiny-koala-700m";

std::string dataPath(const std::string& name) { return kt::fixturePath("img2img/" + name); }
std::string refPath() { return dataPath("reference.safetensors"); }
const nlohmann::json& ref() {
    static const nlohmann::json j = [] {
        std::ifstream in(dataPath("reference.json"));
        return nlohmann::json::parse(in);
    }();
    return j;
}
at::Tensor refT(const std::string& key) { return kt::loadTensor(refPath(), key); }

std::shared_ptr<koala::Model> loadCpu() {
    koala::LoadOptions lo = koala::defaultLoadOptions();
    lo.device = koala::Device::Cpu;
    lo.dtype = koala::DType::F32;
    return koala::Model::load(kt::fixturePath(kPipe), lo);
}

bool isInpaint(const nlohmann::json& run) { return run["kind"] == "inpaint"; }
std::string prefixOf(const nlohmann::json& run) {
    return run["kind"].get<std::string>() + "." + run["id"].get<std::string>() + ".";
}

koala::GenerateRequest requestFor(const nlohmann::json& run) {
    koala::GenerateRequest r = koala::defaultRequest();
    r.prompt = run["prompt"];
    r.negative = run["negative"].get<std::string>();
    r.seed = run["seed"];
    r.steps = run["steps"];
    r.guidance = run["guidance"];
    r.strength = run["strength"].get<double>();
    KT_CHECK(koala::fromString(run["sched"].get<std::string>(), r.scheduler));
    r.initImage = koala::readImage(dataPath(run["init_image"]));
    if (isInpaint(run)) {
        r.mask = koala::readImage(dataPath(run["mask_image"]));
        r.width = run["width"];
        r.height = run["height"];
    }
    r.keepLatents = true;
    return r;
}

double relErr(const at::Tensor& a, const at::Tensor& b) { return kt::relErr(a, b); }

}  // namespace

KT_TEST(vae_encoder_matches_diffusers) {
    auto model = loadCpu();
    auto& impl = koala::ModelAccess::impl(*model);
    KT_CHECK(!impl.vae->encoder);  // text-to-image never loads it
    const at::Tensor x = refT("vae_enc.image");
    auto moments = koala::vaeEncoder(impl).encode(x).to(at::kFloat);
    KT_CHECK(impl.vae->encoder != nullptr);  // cached on the (shared) VaeStack
    auto post = koala::models::vaePosterior(moments);
    KT_CHECK_REL(post.mean, refT("vae_enc.mean"), 1e-4);
    KT_CHECK_REL(post.std, refT("vae_enc.std"), 1e-4);
    std::fprintf(stderr, "  vae_enc mean rel %.3e std rel %.3e\n", relErr(post.mean, refT("vae_enc.mean")),
                 relErr(post.std, refT("vae_enc.std")));
    for (int seed : ref()["vae_enc"]["sample_seeds"]) {
        at::Generator g = koala::sampling::makeCpuGenerator(std::uint64_t(seed));
        auto eps = koala::sampling::randnCpu(g, post.mean.sizes());
        auto z = post.mean + post.std * eps;
        KT_CHECK_REL(z, refT("vae_enc.sample_seed" + std::to_string(seed)), 1e-4);
    }
    // The preprocessed image itself: PIL → /255 → 2x−1, exactly.
    auto img = koala::readImage(dataPath("init_a.png"));
    KT_CHECK(at::equal(koala::preprocessImage(img, img.width, img.height), x));
}

KT_TEST(preprocessing_is_pil_exact) {
    for (const auto& run : ref()["runs"]) {
        const std::string p = prefixOf(run);
        auto r = requestFor(run);
        int w = 0, h = 0;
        koala::imageio::imageRequestSize(r, w, h);
        KT_CHECK_EQ(w, run["width"].get<int>());
        KT_CHECK_EQ(h, run["height"].get<int>());
        auto x = koala::preprocessImage(*r.initImage, w, h);
        KT_CHECK_MSG(at::equal(x, refT(p + "image_in")), p << "image_in differs (LANCZOS / normalisation)");
        if (isInpaint(run)) {
            auto m = koala::preprocessMask(*r.mask, w, h, 0);
            KT_CHECK_MSG(at::equal(m, refT(p + "mask_in")), p << "mask_in differs");
            auto lat = at::upsample_nearest2d(m, {h / 8, w / 8});
            KT_CHECK_MSG(at::equal(lat, refT(p + "mask_latent")), p << "mask_latent differs");
        }
    }
    // --mask-blur: PIL's GaussianBlur(4) of mask_a.png, byte for byte (the reference file was made by diffusers'
    // mask_processor.blur).
    auto mask = koala::readImage(dataPath("mask_a.png"));
    auto blurredRef = koala::readImage(dataPath("mask_a_blur4.png"));
    auto ours = koala::imageio::gaussianBlur(koala::imageio::toGray(mask), mask.width, mask.height, 4.0f);
    auto theirs = koala::imageio::toGray(blurredRef);
    int maxDiff = 0;
    for (std::size_t i = 0; i < ours.size(); ++i) maxDiff = std::max(maxDiff, std::abs(int(ours[i]) - int(theirs[i])));
    KT_CHECK_MSG(maxDiff == 0, "GaussianBlur(4) differs from PIL by " << maxDiff << " levels");
}

KT_TEST(timesteps_after_strength_and_add_noise_match) {
    auto model = loadCpu();
    auto& impl = koala::ModelAccess::impl(*model);
    for (const auto& run : ref()["runs"]) {
        const std::string p = prefixOf(run);
        auto r = requestFor(run);
        auto sched = koala::sampling::Scheduler::create(r.scheduler, r.spacing, impl.schedulerConfig);
        sched->setTimesteps(r.steps);
        const int n = koala::img2imgSteps(r.steps, *r.strength);
        KT_CHECK_EQ(n, run["timesteps_run"].get<int>());
        const int begin = r.steps - n;
        if (!run["begin_index"].is_null()) KT_CHECK_EQ(begin, run["begin_index"].get<int>());
        auto ts = refT(p + "timesteps").to(at::kDouble);
        KT_CHECK_EQ(int(ts.numel()), n);
        for (int i = 0; i < n; ++i)
            KT_CHECK_MSG(sched->timesteps()[std::size_t(begin + i)] == ts[i].item<double>(),
                         p << "timestep " << i << " differs");
        at::Tensor noised;
        if (isInpaint(run) && *r.strength == 1.0)
            noised = refT(p + "noise") * sched->initNoiseSigma();
        else
            noised = sched->addNoise(refT(p + "image_latents"), refT(p + "noise"), begin);
        KT_CHECK_REL(noised, refT(p + "noised_latents"), 1e-6);
    }
}

KT_TEST(runs_match_diffusers_step_by_step) {
    auto model = loadCpu();
    double worst = 0;
    for (const auto& run : ref()["runs"]) {
        const std::string p = prefixOf(run);
        auto req = requestFor(run);
        std::vector<at::Tensor> steps;
        koala::Callbacks cb;
        cb.latents = [&](int, const koala::FloatTensor& t) { steps.push_back(fromFloatTensor(t)); };
        auto res = model->generate(req, cb);
        KT_CHECK_MSG(at::equal(fromFloatTensor(res.addedNoise), refT(p + "noise")), p << "noise not bit-identical");
        KT_CHECK_MSG(at::equal(fromFloatTensor(res.initialNoise), refT(p + "noise")), p << "initialNoise != noise");
        KT_CHECK_REL(fromFloatTensor(res.imageLatents), refT(p + "image_latents"), 1e-4);
        KT_CHECK_EQ(int(steps.size()), run["timesteps_run"].get<int>());
        for (std::size_t i = 0; i < steps.size(); ++i)
            KT_CHECK_REL(steps[i], refT(p + "step" + std::to_string(i) + ".latents"), 1e-3);
        const double e = relErr(fromFloatTensor(res.finalLatents), refT(p + "final_latents"));
        KT_CHECK_MSG(e < 1e-3, p << "final latents rel err " << e);
        worst = std::max(worst, e);
        KT_CHECK_EQ(int(res.images.size()), 1);
        KT_CHECK_EQ(res.images[0].width, run["width"].get<int>());
        KT_CHECK_EQ(res.images[0].height, run["height"].get<int>());
        const int diff = kt::maxLevelDiff(res.images[0], refT(p + "image"));
        KT_CHECK_MSG(diff <= 1, p << "8-bit image differs by " << diff << " levels");
        KT_CHECK(res.timings.encodeImageSeconds > 0);
        std::fprintf(stderr, "  %-40s final rel %.3e, image_latents rel %.3e, image max %d level(s)\n", p.c_str(), e,
                     relErr(fromFloatTensor(res.imageLatents), refT(p + "image_latents")), diff);
    }
    std::fprintf(stderr, "  worst final latents rel err %.3e\n", worst);
}

KT_TEST(no_step_left_is_refused_as_diffusers_cannot_run_it) {
    auto model = loadCpu();
    for (const auto& c : ref()["expect_error"]) {
        koala::GenerateRequest r = koala::defaultRequest();
        r.prompt = c["prompt"];
        r.steps = c["steps"];
        r.strength = c["strength"].get<double>();
        r.initImage = koala::readImage(dataPath(c["init_image"]));
        if (c["kind"] == "inpaint") {
            r.mask = koala::readImage(dataPath(c["mask_image"]));
            r.width = c["width"];
            r.height = c["height"];
        }
        KT_CHECK_EQ(c["int_steps_times_strength"].get<int>(), 0);
        KT_CHECK_THROWS(model->generate(r), koala::ErrorKind::InvalidArgument, "leaves no denoising step");
    }
}

// ---- koala-cli -----------------------------------------------------------------------------------------------
namespace {

std::string baseArgs(const nlohmann::json& run) {
    std::string a = "--model " + shellQuote(kt::fixturePath(kPipe)) + " --prompt " +
                    shellQuote(run["prompt"].get<std::string>()) + " --negative " +
                    shellQuote(run["negative"].get<std::string>()) + " --seed " +
                    std::to_string(run["seed"].get<long long>()) + " --steps " +
                    std::to_string(run["steps"].get<int>()) + " --guidance " +
                    std::to_string(run["guidance"].get<double>()) + " --scheduler " + run["sched"].get<std::string>() +
                    " --device cpu --dtype fp32 --init-image " + shellQuote(dataPath(run["init_image"]));
    char s[64];
    std::snprintf(s, sizeof s, " --strength %.17g", run["strength"].get<double>());
    a += s;
    if (isInpaint(run))
        a += " --mask " + shellQuote(dataPath(run["mask_image"])) + " --width " +
             std::to_string(run["width"].get<int>()) + " --height " + std::to_string(run["height"].get<int>());
    return a;
}

int lines(const std::string& s) {
    int n = 0;
    for (char c : s) n += c == '\n';
    return n;
}

}  // namespace

KT_TEST(cli_reproduces_every_img2img_and_inpainting_run) {
    const std::string initHash = koala::fileSha256(dataPath("init_a.png")).substr(0, 10);
    for (const auto& run : ref()["runs"]) {
        const std::string p = prefixOf(run);
        const std::string png = kt::tempDir() + "/" + p + "png";
        const std::string lat = kt::tempDir() + "/" + p + "safetensors";
        std::string err;
        const int rc = runCli(baseArgs(run) + " --out " + shellQuote(png) + " --save-latents " + shellQuote(lat), err);
        KT_CHECK_MSG(rc == 0, p << ": koala-cli exited " << rc << ": " << err);
        if (rc != 0) continue;
        KT_CHECK(at::equal(kt::loadTensor(lat, "noise"), refT(p + "noise")));
        KT_CHECK_REL(kt::loadTensor(lat, "image_latents"), refT(p + "image_latents"), 1e-4);
        const double e = relErr(kt::loadTensor(lat, "latents"), refT(p + "final_latents"));
        KT_CHECK_MSG(e < 1e-3, p << "final latents rel err " << e);
        auto img = koala::readImage(png);
        const int diff = kt::maxLevelDiff(img, refT(p + "image"));
        KT_CHECK_MSG(diff <= 1, p << "PNG differs by " << diff << " levels");
        std::fprintf(stderr, "  cli %-36s final rel %.3e, PNG max %d level(s)\n", p.c_str(), e, diff);
        // Metadata: both chunks, read back by the engine's one reader.
        auto md = koala::readImageMetadata(png);
        KT_CHECK(md.source == koala::MetadataSource::Koala);
        KT_CHECK(md.metadata.strength && *md.metadata.strength == run["strength"].get<double>());
        KT_CHECK_EQ(md.metadata.initImage, run["init_image"].get<std::string>());
        if (run["init_image"] == "init_a.png") KT_CHECK_EQ(md.metadata.initImageHash, initHash);
        KT_CHECK_EQ(md.metadata.width, run["width"].get<int>());
        if (isInpaint(run)) KT_CHECK_EQ(md.metadata.maskImage, run["mask_image"].get<std::string>());
        std::vector<std::pair<std::string, std::string>> text;
        KT_CHECK(koala::readPngText(png, text));
        for (auto& [k, v] : text)
            if (k == "parameters") {
                KT_CHECK(v.find("Denoising strength: ") != std::string::npos);
                KT_CHECK((v.find("Mask blur: 0") != std::string::npos) == isInpaint(run));
                auto a = koala::parseA1111Parameters(v);
                KT_CHECK(a && a->strength && std::abs(*a->strength - run["strength"].get<double>()) < 1e-9);
            }
    }
}

KT_TEST(cli_mask_blur_equals_the_pre_blurred_mask) {
    // The blur4 run used a mask blurred by diffusers' mask_processor.blur; --mask-blur 4 on the unblurred mask
    // must give the same run.
    for (const auto& run : ref()["runs"]) {
        if (run["mask_blur"].is_null()) continue;
        nlohmann::json r2 = run;
        r2["mask_image"] = run["mask_source"];
        const std::string p = prefixOf(run);
        const std::string png = kt::tempDir() + "/blur.png", lat = kt::tempDir() + "/blur.safetensors";
        std::string err;
        const int rc = runCli(baseArgs(r2) + " --mask-blur " + std::to_string(run["mask_blur"].get<int>()) + " --out " +
                                  shellQuote(png) + " --save-latents " + shellQuote(lat),
                              err);
        KT_CHECK_MSG(rc == 0, err);
        if (rc != 0) continue;
        KT_CHECK_REL(kt::loadTensor(lat, "latents"), refT(p + "final_latents"), 1e-3);
        auto md = koala::readImageMetadata(png);
        KT_CHECK_EQ(md.metadata.maskBlur, run["mask_blur"].get<int>());
    }
}

KT_TEST(cli_bad_image_input_is_one_line_and_exit_2) {
    const nlohmann::json& run = ref()["runs"][0];
    const std::string model = "--model " + shellQuote(kt::fixturePath(kPipe)) + " --prompt x --device cpu";
    const std::string init = " --init-image " + shellQuote(dataPath("init_a.png"));
    std::string err;
    struct Case {
        std::string args, expect;
    };
    const std::string empty = kt::tempDir() + "/empty.png";
    std::ofstream(empty).close();
    const std::string notImage = kt::tempDir() + "/not-an-image.png";
    std::ofstream(notImage) << "hello";
    const std::vector<Case> cases = {
        {model + init + " --strength 0", "--strength must be greater than 0 and at most 1"},
        {model + init + " --strength 1.5", "--strength must be greater than 0 and at most 1"},
        {model + init + " --strength -0.2", "--strength must be greater than 0 and at most 1"},
        {model + init + " --steps 3 --strength 0.2", "leaves no denoising step"},
        {model + init + " --mask " + shellQuote(dataPath("init_b.png")), "but the init image is 72x56"},
        {model + " --init-image /nonexistent/x.png", "/nonexistent/x.png"},
        {model + " --init-image " + shellQuote(empty), "is empty"},
        {model + " --init-image " + shellQuote(notImage), "not a PNG or JPEG"},
        {model + " --mask " + shellQuote(dataPath("mask_a.png")), "--mask needs --init-image"},
        {model + init + " --mask " + shellQuote(dataPath("mask_a.png")) + " --mask-blur -1", "--mask-blur must be"},
    };
    for (const auto& c : cases) {
        KT_CHECK_EQ(runCli(c.args, err), 2);
        KT_CHECK_MSG(err.find(c.expect) != std::string::npos, c.args << " → " << err);
        KT_CHECK_MSG(lines(err) == 1, c.args << ": not one line: " << err);
        KT_CHECK(err.rfind("koala-cli: error: ", 0) == 0);
    }
    (void)run;
}
