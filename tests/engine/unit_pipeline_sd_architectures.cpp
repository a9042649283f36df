// Full-size Stable Diffusion 1.5 / 2.x UNets (issue 11) built from their diffusers unet/config.json with random
// weights: the parameter counts of the model cards (SD 1.5: 859,520,964; SD 2.x: 865,910,724), i.e. the 4-level
// block layout, int attention_head_dim (SD 1.5: 8 heads) vs per-block head counts with linear projections (SD 2),
// 1×1-conv proj_in/proj_out and no addition embedding are all the right size; one forward pass of each on a tiny
// latent gives finite values.
#include "harness.h"

#include "pipeline/random_model.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

json sd15UnetConfig() {  // runwayml/stable-diffusion-v1-5 unet/config.json
    return {
        {"_class_name", "UNet2DConditionModel"},
        {"_diffusers_version", "0.6.0"},
        {"act_fn", "silu"},
        {"attention_head_dim", 8},
        {"block_out_channels", {320, 640, 1280, 1280}},
        {"center_input_sample", false},
        {"cross_attention_dim", 768},
        {"down_block_types", {"CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"}},
        {"downsample_padding", 1},
        {"flip_sin_to_cos", true},
        {"freq_shift", 0},
        {"in_channels", 4},
        {"layers_per_block", 2},
        {"mid_block_scale_factor", 1},
        {"norm_eps", 1e-05},
        {"norm_num_groups", 32},
        {"out_channels", 4},
        {"sample_size", 64},
        {"up_block_types", {"UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"}}};
}

json sd2UnetConfig() {  // stabilityai/stable-diffusion-2 unet/config.json
    json j = sd15UnetConfig();
    j["_diffusers_version"] = "0.10.0.dev0";
    j["attention_head_dim"] = {5, 10, 20, 20};
    j["cross_attention_dim"] = 1024;
    j["dual_cross_attention"] = false;
    j["use_linear_projection"] = true;
    j["upcast_attention"] = true;
    j["sample_size"] = 96;
    return j;
}

std::string folderWith(const std::string& name, const json& unet) {
    const fs::path dir = fs::path(kt::tempDir()) / name;
    fs::create_directories(dir / "unet");
    std::ofstream(dir / "unet" / "config.json") << unet.dump(2);
    return dir.string();
}

}  // namespace

KT_TEST(sd2_text_encoder_is_openclip_h_with_23_layers) {
    // stabilityai/stable-diffusion-2-1 text_encoder/config.json as the built-in "sd2" uses it; SD 1.5 uses CLIP-L.
    const auto h = koala::openClipHConfig();
    KT_CHECK_EQ(h.hiddenSize, 1024);
    KT_CHECK_EQ(h.numLayers, 23);
    KT_CHECK_EQ(h.numHeads, 16);
    KT_CHECK_EQ(h.intermediateSize, 4096);
    KT_CHECK_EQ(h.projectionDim, 512);
    KT_CHECK_EQ(h.hiddenAct, std::string("gelu"));
    KT_CHECK(koala::sdVaeConfig().scalingFactor == 0.18215);
    KT_CHECK_EQ(koala::randomUnetConfigJson("sd2")["cross_attention_dim"].get<int>(), h.hiddenSize);
    KT_CHECK_EQ(koala::randomUnetConfigJson("sd15")["cross_attention_dim"].get<int>(), koala::clipLConfig().hiddenSize);
}

KT_TEST(sd_unet_parameter_counts_match_the_model_cards) {
    const std::vector<std::tuple<std::string, json, std::int64_t>> cards{{"sd15", sd15UnetConfig(), 859520964},
                                                                         {"sd2", sd2UnetConfig(), 865910724}};
    for (const auto& [name, cfg, card] : cards) {
        const auto t0 = std::chrono::steady_clock::now();
        auto unet = koala::buildRandomUnet(folderWith(name, cfg), at::kCPU, at::kBFloat16, 1);
        KT_CHECK_EQ(unet->parameterCount(), card);
        KT_CHECK_EQ(koala::unetParameterCountOf(unet->config()), card);
        // koala-bench --random-config sd15|sd2 builds the same UNet from its built-in config.
        json builtIn = koala::randomUnetConfigJson(name);
        json expected = cfg;
        expected.erase("_diffusers_version");
        KT_CHECK(builtIn == expected);
        KT_CHECK_EQ(koala::modelCardUnetParameters(name), card);
        // One UNet call on a 32×32 latent (256 px), in bf16 like the weights.
        const std::int64_t ctxDim = cfg["cross_attention_dim"];
        auto x = at::randn({1, 4, 32, 32}).to(at::kBFloat16);
        auto ctx = at::randn({1, 77, ctxDim}).to(at::kBFloat16);
        auto out = unet->forward(x, 500, ctx, at::Tensor(), at::Tensor());
        KT_CHECK(out.sizes() == x.sizes());
        KT_CHECK(at::isfinite(out.to(at::kFloat)).all().item<bool>());
        std::fprintf(stderr, "  %s: %lld parameters (%.1f s)\n", name.c_str(), (long long)unet->parameterCount(),
                     std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
}
