// Full-size random architectures (pipeline/random_model.h): the UNet parameter counts of the model cards, the real
// SDXL text encoders and VAE, and a random pipeline that runs end to end on the CPU.
#include "harness.h"

#include "io/model_folder.h"
#include "io/weights.h"
#include "pipeline/random_model.h"

#include <chrono>
#include <cmath>
#include <cstdio>

namespace {

double secondsSince(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

koala::GenerateRequest smallRequest() {
    koala::GenerateRequest r = koala::defaultRequest();
    r.prompt = "a photo of a koala astronaut, highly detailed";
    r.negative = std::string("blurry, low quality");
    r.seed = 42;
    r.steps = 3;
    r.guidance = 5.0f;
    r.width = r.height = 64;
    r.keepLatents = true;
    return r;
}

bool allFinite(const koala::FloatTensor& t) {
    for (float v : t.data)
        if (!std::isfinite(v)) return false;
    return !t.data.empty();
}

}  // namespace

KT_TEST(full_size_unet_parameter_counts_match_the_model_cards) {
    // bf16 halves the memory of the random weights (SDXL-base: 5.1 GB instead of 10.3 GB); the count does not
    // depend on the dtype. One UNet at a time.
    const std::vector<std::pair<std::string, std::int64_t>> cards{
        {"koala-700m", 782822724}, {"koala-1b", 1161184324}, {"sdxl-base", 2567463684}};
    // sd15 / sd2: unit_pipeline_sd_architectures.cpp.
    KT_CHECK(koala::randomArchitectures() ==
             std::vector<std::string>({"koala-700m", "koala-1b", "sdxl-base", "sd15", "sd2"}));
    for (const auto& [arch, card] : cards) {
        const auto t0 = std::chrono::steady_clock::now();
        KT_CHECK(koala::isRandomArchitecture(arch));
        KT_CHECK_EQ(koala::modelCardUnetParameters(arch), card);
        auto unet = koala::buildRandomUnet(arch, at::kCPU, at::kBFloat16, 1);
        KT_CHECK_EQ(unet->parameterCount(), card);
        KT_CHECK_EQ(unet->shapeName(), arch);
        KT_CHECK(unet->dtype() == at::kBFloat16);
        const auto& c = unet->config();
        KT_CHECK_EQ(c.midBlockType.empty(), arch == "koala-700m");
        std::fprintf(stderr, "  %s: %lld parameters (%.1f s)\n", arch.c_str(), (long long)unet->parameterCount(),
                     secondsSince(t0));
    }
    KT_CHECK_EQ(koala::modelCardUnetParameters("koala-2b"), 0);
    KT_CHECK_THROWS(koala::randomUnetConfigJson("koala-2b"), koala::ErrorKind::InvalidArgument, "koala-2b");
    KT_CHECK_THROWS(koala::buildRandomUnet("no-such-arch", at::kCPU, at::kFloat), koala::ErrorKind::InvalidArgument,
                    "no-such-arch");
}

KT_TEST(card_table_figures_come_from_the_configs_without_weights) {
    // koala-bench --card-table: the KOALA model card's U-Net comparison (SDM-v2.0, SDXL-Base-1.0, KOALA-1B,
    // KOALA-700M: "Tx blocks" [1,1,1,1] / [0,2,10] / [0,2,6] / [0,2,5]; the card counts SD 2's mid block as a fourth
    // entry, the config has no attention in its fourth down stage) plus SD 1.5, counted without allocating.
    struct Row {
        std::string arch;
        std::int64_t card;
        std::vector<int> tx;
        std::string mid;
        int midDepth, size;
        std::string pipeline;
    };
    const std::vector<Row> rows{
        {"sd2", 865910724, {1, 1, 1, 0}, "cross-attention", 1, 768, "sd"},
        {"sd15", 859520964, {1, 1, 1, 0}, "cross-attention", 1, 512, "sd"},
        {"sdxl-base", 2567463684, {0, 2, 10}, "cross-attention", 10, 1024, "sdxl"},
        {"koala-1b", 1161184324, {0, 2, 6}, "cross-attention", 6, 1024, "sdxl"},
        {"koala-700m", 782822724, {0, 2, 5}, "none", 0, 1024, "sdxl"},
    };
    for (const auto& r : rows) {
        const koala::UnetSummary s = koala::describeUnet(r.arch);
        KT_CHECK_EQ(s.arch, r.arch);
        KT_CHECK_EQ(s.parameters, r.card);
        KT_CHECK_EQ(s.cardParameters, r.card);
        KT_CHECK(s.transformerBlocks == r.tx);
        KT_CHECK_EQ(s.midBlock, r.mid);
        KT_CHECK_EQ(s.midTransformerBlocks, r.midDepth);
        KT_CHECK_EQ(s.defaultWidth, r.size);
        KT_CHECK_EQ(s.defaultHeight, r.size);
        KT_CHECK_EQ(s.pipeline, r.pipeline);
        KT_CHECK_EQ(koala::randomPipelineOf(r.arch), r.pipeline);
    }
    KT_CHECK_THROWS(koala::describeUnet("koala-3b"), koala::ErrorKind::InvalidArgument, "koala-3b");
}

KT_TEST(config_count_equals_the_loaded_unet_for_every_fixture) {
    // The shape count behind describeUnet() against what Unet::load really takes: conv and linear projections,
    // with and without mid block, with and without the SDXL addition embedding.
    for (const char* fixture : {"tiny-koala-700m", "tiny-koala-1b", "tiny-sd15", "tiny-sd2"}) {
        const std::string dir = kt::fixturePath(fixture);
        auto unet = koala::buildRandomUnet(dir, at::kCPU, at::kFloat, 1);
        KT_CHECK_EQ(koala::unetParameterCountOf(unet->config()), unet->parameterCount());
        const koala::UnetSummary s = koala::describeUnet(dir);
        KT_CHECK_EQ(s.parameters, unet->parameterCount());
        KT_CHECK_EQ(s.cardParameters, std::int64_t(0));
        KT_CHECK_EQ(s.pipeline,
                    std::string(fixture).find("sd") != std::string::npos ? std::string("sd") : std::string("sdxl"));
        // koala::inspectModel's default size (sample_size x the VAE's scale factor).
        KT_CHECK_EQ(s.defaultWidth, koala::inspectModel(dir).defaultWidth);
    }
}

KT_TEST(random_sd_pipeline_runs_with_one_text_encoder) {
    // The SD path of buildRandomModel on the tiny SD 2 fixture's architecture (v-prediction, DDIM): one tokenizer
    // and encoder, pipeline "sd", the default size from sample_size, an empty negative encoded (no forced zeros).
    koala::RandomModelOptions o;
    o.arch = kt::fixturePath("tiny-sd2");
    o.seed = 5;
    auto m = koala::buildRandomModel(o);
    KT_CHECK(m->text && m->text->encoder1 && !m->text->encoder2 && !m->text->tokenizer2);
    KT_CHECK_EQ(m->info.pipeline, std::string("sd"));
    KT_CHECK_EQ(m->info.defaultWidth, 96);
    KT_CHECK_EQ(m->info.defaultHeight, 96);
    KT_CHECK(!m->forceZerosForEmptyPrompt);
    KT_CHECK_EQ(m->info.defaultScheduler, std::string("ddim"));
    auto r = smallRequest();
    r.steps = 2;
    auto res = m->generate(r, {}, nullptr);
    KT_CHECK_EQ(int(res.images.size()), 1);
    KT_CHECK_EQ(res.images[0].width, 64);
    KT_CHECK(allFinite(res.finalLatents));
    // A built-in SD architecture needs only tokenizer/ in its support folder; the SDXL family also tokenizer_2/.
    koala::RandomModelOptions bad;
    bad.arch = "sd2";
    bad.supportDir = kt::tempDir();
    KT_CHECK_THROWS(koala::buildRandomModel(bad), koala::ErrorKind::InvalidArgument, "tiny-sd2");
}

KT_TEST(built_in_unet_configs_have_the_section_9_keys) {
    auto j7 = koala::randomUnetConfigJson("koala-700m");
    auto j1 = koala::randomUnetConfigJson("koala-1b");
    auto js = koala::randomUnetConfigJson("sdxl-base");
    KT_CHECK(j7["mid_block_type"].is_null());
    KT_CHECK_EQ(j1["mid_block_type"].get<std::string>(), std::string("UNetMidBlock2DCrossAttn"));
    KT_CHECK_EQ(j7["layers_per_block"].get<int>(), 1);
    KT_CHECK_EQ(j1["layers_per_block"].get<int>(), 1);
    KT_CHECK_EQ(js["layers_per_block"].get<int>(), 2);
    KT_CHECK(j7["transformer_layers_per_block"] == nlohmann::json({1, 2, 5}));
    KT_CHECK(j1["transformer_layers_per_block"] == nlohmann::json({1, 2, 6}));
    KT_CHECK(js["transformer_layers_per_block"] == nlohmann::json({1, 2, 10}));
    // The parsed config sees the same structure (mid block depth = the last entry).
    auto c1 = koala::models::UnetConfig::fromConfig(koala::io::Config(j1, "koala-1b"));
    KT_CHECK_EQ(c1.transformerLayersMid, 6);
    KT_CHECK_EQ(c1.crossAttentionDim, 2048);
}

KT_TEST(sdxl_text_encoders_and_vae_have_the_reference_sizes) {
    // docs/sdxl-pipeline.md: CLIP-L 123,060,480; bigG + projection 694,659,840; VAE decoder + post_quant_conv
    // 49,490,199. The random store counts what the models take.
    {
        auto store = koala::io::WeightStore::random("text_encoder", 3);
        store.setTarget(at::kBFloat16, at::kCPU);
        auto enc = koala::models::ClipTextEncoder::load(koala::clipLConfig(), store, false);
        store.finish();
        KT_CHECK_EQ(store.parameterCount(), std::int64_t(123060480));
        KT_CHECK(!enc->hasProjection());
    }
    {
        auto store = koala::io::WeightStore::random("text_encoder_2", 4);
        store.setTarget(at::kBFloat16, at::kCPU);
        auto enc = koala::models::ClipTextEncoder::load(koala::clipBigGConfig(), store, true);
        store.finish();
        KT_CHECK_EQ(store.parameterCount(), std::int64_t(694659840));
        KT_CHECK(enc->hasProjection());
    }
    {
        auto store = koala::io::WeightStore::random("vae", 5);
        store.setTarget(at::kFloat, at::kCPU);
        auto vae = koala::models::VaeDecoder::load(koala::sdxlVaeConfig(), store);
        store.finish();
        KT_CHECK_EQ(store.parameterCount(), std::int64_t(49490199));
        KT_CHECK(vae->config().scalingFactor == 0.13025);
    }
}

KT_TEST(random_pipeline_runs_end_to_end_and_is_deterministic) {
    // The tiny fixture's architecture with random weights: the random-model path (random stores, fromParts,
    // tokenizers and scheduler from the folder) without the cost of the full-size text encoders.
    koala::RandomModelOptions o;
    o.arch = kt::fixturePath("tiny-koala-700m");
    o.seed = 7;
    auto m = koala::buildRandomModel(o);
    KT_CHECK(m->device.is_cpu());
    KT_CHECK(m->text && m->text->encoder1 && m->text->encoder2 && m->vae && m->unet);
    KT_CHECK_EQ(m->info.unetShape, std::string("custom"));
    KT_CHECK(m->info.unetParameters > 0);
    KT_CHECK_EQ(m->info.defaultScheduler, std::string("euler"));

    int previews = 0;
    koala::Callbacks cb;
    cb.preview = [&](int, const std::vector<koala::Image>& imgs) { previews += int(imgs.size()); };
    auto r = smallRequest();
    auto res = m->generate(r, cb, nullptr);
    KT_CHECK_EQ(previews, r.steps);
    KT_CHECK_EQ(int(res.images.size()), 1);
    KT_CHECK_EQ(res.images[0].width, 64);
    KT_CHECK_EQ(res.images[0].height, 64);
    KT_CHECK_EQ(res.images[0].rgb.size(), std::size_t(64 * 64 * 3));
    KT_CHECK(allFinite(res.finalLatents));
    KT_CHECK(res.timings.stepMedianSeconds > 0);
    KT_CHECK(res.timings.totalSeconds >= res.timings.denoiseSeconds);
    KT_CHECK_EQ(res.timings.peakDeviceBytes, std::int64_t(0));

    // The random weights depend only on the seed (and tensor names), not on the build.
    auto m2 = koala::buildRandomModel(o);
    auto res2 = m2->generate(r, {}, nullptr);
    KT_CHECK(res2.finalLatents.data == res.finalLatents.data);
    KT_CHECK(res2.images[0].rgb == res.images[0].rgb);
    // A different seed gives different weights, hence different latents from the same noise.
    o.seed = 8;
    auto m3 = koala::buildRandomModel(o);
    auto res3 = m3->generate(r, {}, nullptr);
    KT_CHECK(res3.initialNoise.data == res.initialNoise.data);
    KT_CHECK(res3.finalLatents.data != res.finalLatents.data);
}

KT_TEST(random_models_refuse_bad_options) {
    koala::RandomModelOptions o;
    o.arch = "koala-700m";
    o.supportDir = kt::tempDir();  // no tokenizer folders
    KT_CHECK_THROWS(koala::buildRandomModel(o), koala::ErrorKind::InvalidArgument, "tokenizer");
    o.arch = "koala-3b";
    o.supportDir = kt::fixturePath("tiny-koala-700m");
    KT_CHECK_THROWS(koala::buildRandomModel(o), koala::ErrorKind::InvalidArgument, "koala-3b");
    o.arch = kt::fixturePath("tiny-koala-700m");
    o.dtype = at::kHalf;  // fp16 on the CPU
    KT_CHECK_THROWS(koala::buildRandomModel(o), koala::ErrorKind::InvalidArgument, "fp16");
}

KT_TEST(fast_path_is_a_no_op_on_the_cpu) {
    koala::RandomModelOptions o;
    o.arch = kt::fixturePath("tiny-koala-700m");
    auto m = koala::buildRandomModel(o);
    const auto before = koala::cudaFastPathStats();
    koala::installCudaFastPath(*m);
    KT_CHECK(!m->runner);
    const auto after = koala::cudaFastPathStats();
    KT_CHECK_EQ(after.captures, before.captures);
    KT_CHECK_EQ(after.replays, before.replays);
}
