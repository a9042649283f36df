// The VAE decoder of the tiny pipelines against what diffusers computes (fixtures/README.md), plus tiling, legacy
// attention names and error reporting.
#include "harness.h"

#include "io/model_folder.h"
#include "io/weights.h"
#include "models/vae.h"

#include <cmath>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

using koala::models::VaeConfig;
using koala::models::VaeDecoder;

namespace {

const char* kPipelines[] = {"tiny-koala-700m", "tiny-koala-1b"};
const char* kStem = "diffusion_pytorch_model";

std::shared_ptr<VaeDecoder> loadVae(const std::string& dir) {
    auto cfg = VaeConfig::fromConfig(koala::io::Config::load(dir + "/config.json"));
    auto weights = koala::io::WeightStore::openComponent(dir, kStem, "", "vae");
    weights.setTarget(at::kFloat, at::kCPU);
    auto vae = VaeDecoder::load(cfg, weights);
    weights.finish();
    return vae;
}

std::string ref(const std::string& pipeline) { return kt::fixturePath(pipeline + "/reference.safetensors"); }

koala::FloatTensor toFloatTensor(const at::Tensor& t) {
    at::Tensor c = t.to(at::kFloat).contiguous();
    koala::FloatTensor f;
    f.shape = c.sizes().vec();
    f.data.assign(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
    return f;
}

// Copies the fixture VAE folder to `dir`, renaming (rename returns a new name, "" drops the tensor) and reshaping
// tensors on the way.
void rewriteVae(const std::string& pipeline, const std::string& dir,
                const std::function<std::string(const std::string&)>& rename,
                const std::function<at::Tensor(const std::string&, const at::Tensor&)>& reshape = nullptr) {
    const std::string src = kt::fixturePath(pipeline + "/vae");
    std::filesystem::create_directories(dir);
    std::filesystem::copy_file(src + "/config.json", dir + "/config.json",
                               std::filesystem::copy_options::overwrite_existing);
    const std::string file = src + "/" + kStem + ".safetensors";
    std::vector<std::pair<std::string, koala::FloatTensor>> out;
    for (const auto& name : kt::tensorNames(file)) {
        std::string to = rename(name);
        if (to.empty()) continue;
        at::Tensor t = kt::loadTensor(file, name);
        if (reshape) t = reshape(name, t);
        out.emplace_back(to, toFloatTensor(t));
    }
    koala::writeSafetensors(dir + "/" + kStem + ".safetensors", out);
}

}  // namespace

KT_TEST(decode_matches_diffusers) {
    for (const char* p : kPipelines) {
        auto vae = loadVae(kt::fixturePath(std::string(p) + "/vae"));
        KT_CHECK(vae->dtype() == at::kFloat);
        KT_CHECK(vae->device().is_cpu());
        const double sf = vae->config().scalingFactor;
        KT_CHECK(std::abs(sf - 0.13025) < 1e-12);
        at::Tensor latent = kt::loadTensor(ref(p), "vae.latent");
        at::Tensor expected = kt::loadTensor(ref(p), "vae.decoded");
        at::Tensor out = vae->decode(latent / sf);
        KT_CHECK(out.sizes() == expected.sizes());
        KT_CHECK_REL(out, expected, 1e-4);
        // A tile size at least as large as the latent decodes in one piece.
        KT_CHECK_REL(vae->decode(latent / sf, 12), expected, 1e-4);
    }
}

// Tiled decoding (low-memory mode) blends separately decoded tiles. With a 24x24 latent and 14-latent tiles the
// tiles start at 0 and 10 on both axes and overlap by 4 latents = 32 pixels, where the result must be the linear
// cross-fade of the neighbouring tiles (bilinear where four tiles meet) and exactly one tile elsewhere.
KT_TEST(tiled_decode_blends_tiles_linearly) {
    auto vae = loadVae(kt::fixturePath("tiny-koala-1b/vae"));
    at::Tensor small = kt::loadTensor(ref("tiny-koala-1b"), "vae.latent") / vae->config().scalingFactor;
    at::Tensor latent = at::upsample_bilinear2d(small, {24, 24}, false);
    at::Tensor tiled = vae->decode(latent, 14);
    KT_CHECK_EQ(tiled.size(2), 192);
    KT_CHECK_EQ(tiled.size(3), 192);
    // Weight of the first tile along one axis: 1 up to pixel 80, then falls linearly to 0 at pixel 112.
    std::vector<double> first(192, 0.0);
    for (int x = 0; x < 192; ++x) first[x] = x < 80 ? 1.0 : x >= 112 ? 0.0 : 1.0 - (x - 80 + 0.5) / 32.0;
    at::Tensor w0 = at::tensor(first).to(at::kFloat), w1 = 1 - w0;
    at::Tensor expected = at::zeros_like(tiled);
    for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 2; ++j) {
            at::Tensor t = vae->decode(latent.slice(2, 10 * i, 10 * i + 14).slice(3, 10 * j, 10 * j + 14));
            at::Tensor canvas = at::zeros_like(tiled);
            canvas.slice(2, 80 * i, 80 * i + 112).slice(3, 80 * j, 80 * j + 112).copy_(t);
            at::Tensor wy = (i == 0 ? w0 : w1).view({1, 1, 192, 1}), wx = (j == 0 ? w0 : w1).view({1, 1, 1, 192});
            expected += canvas * wy * wx;
        }
    KT_CHECK_REL(tiled, expected, 1e-5);
}

// Tiled output approximates the full decode: GroupNorm and the mid attention see only a tile, so it is close but
// not identical. This tiny random VAE is far more sensitive to that than a trained one: dropping one latent column
// of an 8x12 latent already changes the decode by ~18%, and a single 14x14 tile differs from the matching crop of
// the full 16x24 decode by ~41%; the blended 2x2 tiling measures ~25%.
KT_TEST(tiled_decode_is_close_to_untiled) {
    for (const char* p : kPipelines) {
        auto vae = loadVae(kt::fixturePath(std::string(p) + "/vae"));
        at::Tensor small = kt::loadTensor(ref(p), "vae.latent") / vae->config().scalingFactor;
        at::Tensor latent = at::upsample_bilinear2d(small, {16, 24}, false);  // smooth, like a real latent
        at::Tensor full = vae->decode(latent);
        at::Tensor tiled = vae->decode(latent, 14);  // a 2x2 grid of tiles
        KT_CHECK(tiled.sizes() == full.sizes());
        KT_CHECK(tiled.isfinite().all().item<bool>());
        const double e = kt::relErr(tiled, full);
        KT_CHECK_MSG(e < 0.35, "tiled vs untiled relative error " << e);
        KT_CHECK_MSG(e > 1e-6, "tiling did not happen");
        // Many small tiles (3x4 grid, with three tiles overlapping near the edges) stay finite and bounded.
        at::Tensor many = vae->decode(latent, 8);
        KT_CHECK(many.isfinite().all().item<bool>());
        KT_CHECK(many.abs().max().item<double>() < 3 * full.abs().max().item<double>());
        // A tile as large as the latent is the untiled decode.
        KT_CHECK_REL(vae->decode(latent, 24), full, 1e-7);
    }
}

// Old VAEs name the mid attention query/key/value/proj_attn with [C,C,1,1] weights; they must decode the same.
KT_TEST(legacy_attention_names) {
    const std::string p = "tiny-koala-1b";
    const std::string dir = kt::tempDir() + "/legacy-vae";
    auto rename = [](const std::string& n) {
        static const std::pair<const char*, const char*> map[] = {
            {".to_q.", ".query."}, {".to_k.", ".key."}, {".to_v.", ".value."}, {".to_out.0.", ".proj_attn."}};
        std::string out = n;
        if (n.find("mid_block.attentions.0.") == std::string::npos) return out;
        for (const auto& [a, b] : map) {
            auto pos = out.find(a);
            if (pos != std::string::npos) out.replace(pos, std::string(a).size(), b);
        }
        return out;
    };
    auto conv = [](const std::string& n, const at::Tensor& t) {
        return n.find("mid_block.attentions.0.to_") != std::string::npos && t.dim() == 2
                   ? t.view({t.size(0), t.size(1), 1, 1})
                   : t;
    };
    rewriteVae(p, dir, rename, conv);
    KT_CHECK(kt::tensorNames(dir + "/" + kStem + ".safetensors").size() ==
             kt::tensorNames(kt::fixturePath(p + "/vae/" + kStem + ".safetensors")).size());
    auto vae = loadVae(dir);
    at::Tensor latent = kt::loadTensor(ref(p), "vae.latent");
    KT_CHECK_REL(vae->decode(latent / vae->config().scalingFactor), kt::loadTensor(ref(p), "vae.decoded"), 1e-4);
}

KT_TEST(missing_tensor_is_named) {
    const std::string p = "tiny-koala-700m";
    const std::string dir = kt::tempDir() + "/missing-vae";
    const std::string dropped = "decoder.up_blocks.1.resnets.0.conv2.weight";
    rewriteVae(p, dir, [&](const std::string& n) { return n == dropped ? std::string() : n; });
    auto cfg = VaeConfig::fromConfig(koala::io::Config::load(dir + "/config.json"));
    auto weights = koala::io::WeightStore::openComponent(dir, kStem, "", "vae");
    VaeDecoder::load(cfg, weights);
    KT_CHECK_THROWS(weights.finish(), koala::ErrorKind::ModelFormat, "missing tensor " + dropped);
    // Only that one is missing.
    try {
        weights.finish();
    } catch (const koala::Error& e) {
        KT_CHECK_MSG(std::string(e.what()).find("missing tensor decoder.conv_in") == std::string::npos, e.what());
    }
}

KT_TEST(to_moves_every_weight) {
    const std::string p = "tiny-koala-1b";
    auto vae = loadVae(kt::fixturePath(p + "/vae"));
    vae->to(at::kCPU, at::kDouble);
    KT_CHECK(vae->dtype() == at::kDouble);
    at::Tensor latent = kt::loadTensor(ref(p), "vae.latent") / vae->config().scalingFactor;
    at::Tensor out = vae->decode(latent);  // a float weight left behind would throw here
    KT_CHECK(out.scalar_type() == at::kDouble);
    KT_CHECK_REL(out, kt::loadTensor(ref(p), "vae.decoded"), 1e-4);
    KT_CHECK(vae->decode(latent, 6).scalar_type() == at::kDouble);
}

KT_TEST(config_parsing_and_errors) {
    const std::string file = kt::fixturePath("tiny-koala-1b/vae/config.json");
    auto json = koala::io::readJson(file);
    auto cfg = VaeConfig::fromConfig(koala::io::Config(json, file));
    KT_CHECK(cfg.blockOutChannels == std::vector<int>({32, 32, 64, 64}));
    KT_CHECK_EQ(cfg.layersPerBlock, 1);
    KT_CHECK_EQ(cfg.latentChannels, 4);
    KT_CHECK_EQ(cfg.normNumGroups, 32);
    KT_CHECK(cfg.forceUpcast);
    KT_CHECK(cfg.usePostQuantConv);
    KT_CHECK(cfg.midBlockAddAttention);
    for (const char* key : {"latents_mean", "latents_std"}) {
        auto j = json;
        j[key] = {0.1, 0.2, 0.3, 0.4};
        KT_CHECK_THROWS(VaeConfig::fromConfig(koala::io::Config(j, file)), koala::ErrorKind::ModelFormat, key);
    }
    auto shift = json;
    shift["shift_factor"] = 0.0609;
    KT_CHECK_THROWS(VaeConfig::fromConfig(koala::io::Config(shift, file)), koala::ErrorKind::ModelFormat,
                    "shift_factor");
    auto up = json;
    up["up_block_types"][2] = "AttnUpDecoderBlock2D";
    KT_CHECK_THROWS(VaeConfig::fromConfig(koala::io::Config(up, file)), koala::ErrorKind::ModelFormat,
                    "up_block_types");
    auto missing = json;
    missing.erase("block_out_channels");
    KT_CHECK_THROWS(VaeConfig::fromConfig(koala::io::Config(missing, file)), koala::ErrorKind::ModelFormat,
                    "block_out_channels");
    auto groups = json;
    groups["norm_num_groups"] = 24;
    KT_CHECK_THROWS(VaeConfig::fromConfig(koala::io::Config(groups, file)), koala::ErrorKind::ModelFormat,
                    "norm_num_groups");
}

// Without post_quant_conv and without mid attention, the decoder asks for neither (and a full file still loads).
KT_TEST(optional_parts_follow_the_config) {
    const std::string dir = kt::fixturePath("tiny-koala-1b/vae");
    auto json = koala::io::readJson(dir + "/config.json");
    json["use_post_quant_conv"] = false;
    json["mid_block_add_attention"] = false;
    auto cfg = VaeConfig::fromConfig(koala::io::Config(json, dir + "/config.json"));
    auto weights = koala::io::WeightStore::openComponent(dir, kStem, "", "vae");
    auto vae = VaeDecoder::load(cfg, weights);
    weights.finish();
    at::Tensor latent = kt::loadTensor(ref("tiny-koala-1b"), "vae.latent") / cfg.scalingFactor;
    at::Tensor out = vae->decode(latent);
    KT_CHECK(out.isfinite().all().item<bool>());
    // It computes something else than the full decoder.
    KT_CHECK(kt::relErr(out, kt::loadTensor(ref("tiny-koala-1b"), "vae.decoded")) > 1e-3);
}

// toChannelsLast() (the CUDA fast path's hook) stores every conv weight channels_last in place and leaves the
// decode unchanged, whole and tiled, for NCHW and channels_last latents; to() keeps the layout.
KT_TEST(to_channels_last_keeps_results) {
    for (const char* p : kPipelines) {
        auto vae = loadVae(kt::fixturePath(std::string(p) + "/vae"));
        const at::Tensor latent = kt::loadTensor(ref(p), "vae.latent") / vae->config().scalingFactor;
        const at::Tensor expected = kt::loadTensor(ref(p), "vae.decoded");
        const at::Tensor before = vae->decode(latent);
        const at::Tensor beforeTiled = vae->decode(latent, 6);

        const auto nchw = vae->convWeights();
        KT_CHECK(!nchw.empty());
        bool anyNchwOnly = false;
        for (const auto& w : nchw) anyNchwOnly = anyNchwOnly || !w.is_contiguous(at::MemoryFormat::ChannelsLast);
        KT_CHECK(anyNchwOnly);

        vae->toChannelsLast();
        const auto cl = vae->convWeights();
        KT_CHECK_EQ(cl.size(), nchw.size());
        for (const auto& w : cl) {
            KT_CHECK_EQ(w.dim(), 4);
            KT_CHECK(w.is_contiguous(at::MemoryFormat::ChannelsLast));
        }

        const at::Tensor outCl = vae->decode(latent.contiguous(at::MemoryFormat::ChannelsLast));
        const at::Tensor outNchw = vae->decode(latent);
        std::printf("  %s channels_last: rel err %.3g vs before\n", p, kt::relErr(outCl, before));
        KT_CHECK(outCl.sizes() == expected.sizes());
        KT_CHECK_REL(outCl, before, 1e-5);
        KT_CHECK_REL(outNchw, before, 1e-5);
        KT_CHECK_REL(outCl, expected, 1e-4);
        KT_CHECK_REL(vae->decode(latent, 6), beforeTiled, 1e-5);

        // to() keeps channels_last weights (the fp16 → fp32 retry of the pipeline goes through it).
        vae->to(at::kCPU, at::kDouble);
        for (const auto& w : vae->convWeights()) KT_CHECK(w.is_contiguous(at::MemoryFormat::ChannelsLast));
        KT_CHECK_REL(vae->decode(latent), expected, 1e-4);
    }
}
