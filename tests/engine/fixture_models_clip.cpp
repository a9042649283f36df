// Both CLIP text encoders of the tiny pipelines against what transformers computes (fixtures/README.md).
#include "harness.h"

#include "io/model_folder.h"
#include "io/weights.h"
#include "models/clip.h"

#include <cmath>
#include <memory>
#include <string>

using koala::models::ClipTextConfig;
using koala::models::ClipTextEncoder;
using koala::models::ClipTextOutput;

namespace {

const char* kPipelines[] = {"tiny-koala-700m", "tiny-koala-1b"};

std::shared_ptr<ClipTextEncoder> loadEncoder(const std::string& pipeline, const std::string& sub, bool projection) {
    const std::string dir = kt::fixturePath(pipeline + "/" + sub);
    auto cfg = ClipTextConfig::fromConfig(koala::io::Config::load(dir + "/config.json"));
    auto weights = koala::io::WeightStore::openComponent(dir, "model", "", sub);
    // The encoders are fp16 on disk; the references come from the same weights loaded into float32.
    weights.setTarget(at::kFloat, at::kCPU);
    auto enc = ClipTextEncoder::load(cfg, weights, projection);
    weights.finish();
    return enc;
}

std::string ref(const std::string& pipeline) { return kt::fixturePath(pipeline + "/reference.safetensors"); }

at::Tensor ids(const std::string& pipeline, const std::string& key) {
    return kt::loadTensor(ref(pipeline), key).to(at::kLong);  // stored as float32 in the fixture
}

}  // namespace

KT_TEST(te1_matches_transformers) {
    for (const char* p : kPipelines) {
        auto enc = loadEncoder(p, "text_encoder", false);
        KT_CHECK(!enc->hasProjection());
        KT_CHECK(enc->dtype() == at::kFloat);
        for (int k = 0; k < 3; ++k) {
            const std::string pre = "te1." + std::to_string(k) + ".";
            auto out = enc->forward(ids(p, pre + "input_ids"));
            KT_CHECK_REL(out.hiddenPenultimate, kt::loadTensor(ref(p), pre + "penultimate"), 1e-4);
            KT_CHECK_REL(out.lastHiddenState, kt::loadTensor(ref(p), pre + "last_hidden_state"), 1e-4);
            KT_CHECK_REL(out.pooled, kt::loadTensor(ref(p), pre + "pooler_output"), 1e-4);
            KT_CHECK(!out.textEmbeds.defined());
        }
    }
}

KT_TEST(te2_matches_transformers) {
    for (const char* p : kPipelines) {
        auto enc = loadEncoder(p, "text_encoder_2", true);
        KT_CHECK(enc->hasProjection());
        for (int k = 0; k < 3; ++k) {
            const std::string pre = "te2." + std::to_string(k) + ".";
            auto out = enc->forward(ids(p, pre + "input_ids"));
            KT_CHECK_REL(out.hiddenPenultimate, kt::loadTensor(ref(p), pre + "penultimate"), 1e-4);
            KT_CHECK_REL(out.textEmbeds, kt::loadTensor(ref(p), pre + "text_embeds"), 1e-4);
            KT_CHECK_EQ(out.textEmbeds.size(1), std::int64_t(enc->config().projectionDim));
        }
    }
}

// A batch gives the same rows as single prompts (the pooled index and the mask are per row).
KT_TEST(batch_equals_single_rows) {
    const std::string p = "tiny-koala-1b";
    auto enc = loadEncoder(p, "text_encoder_2", true);
    at::Tensor batch = at::cat({ids(p, "te2.0.input_ids"), ids(p, "te2.2.input_ids")}, 0);
    auto out = enc->forward(batch);
    KT_CHECK_REL(out.hiddenPenultimate.select(0, 1), kt::loadTensor(ref(p), "te2.2.penultimate").select(0, 0), 1e-4);
    KT_CHECK_REL(out.textEmbeds.select(0, 0), kt::loadTensor(ref(p), "te2.0.text_embeds").select(0, 0), 1e-4);
    KT_CHECK_REL(out.textEmbeds.select(0, 1), kt::loadTensor(ref(p), "te2.2.text_embeds").select(0, 0), 1e-4);
}

// clip_skip k selects hidden_states[-(k+2)]: with 3 layers, k = 2 is the embeddings, k = 1 is after layer 0.
KT_TEST(clip_skip_selects_earlier_hidden_states) {
    const std::string p = "tiny-koala-700m";
    auto enc = loadEncoder(p, "text_encoder", false);
    KT_CHECK_EQ(enc->config().numLayers, 3);
    at::Tensor x = ids(p, "te1.0.input_ids");
    auto o0 = enc->forward(x, 0), o1 = enc->forward(x, 1), o2 = enc->forward(x, 2);
    // The final outputs do not depend on clip skip.
    KT_CHECK_REL(o1.lastHiddenState, o0.lastHiddenState, 1e-7);
    KT_CHECK_REL(o2.pooled, o0.pooled, 1e-7);
    KT_CHECK(kt::relErr(o1.hiddenPenultimate, o0.hiddenPenultimate) > 1e-3);
    KT_CHECK(kt::relErr(o2.hiddenPenultimate, o1.hiddenPenultimate) > 1e-3);
    // hidden_states[0] is token + position embedding, computed here independently of the encoder.
    const std::string file = kt::fixturePath(p + "/text_encoder/model.safetensors");
    at::Tensor tok = kt::loadTensor(file, "embeddings.token_embedding.weight").to(at::kFloat);
    at::Tensor pos = kt::loadTensor(file, "embeddings.position_embedding.weight").to(at::kFloat);
    at::Tensor emb = tok.index_select(0, x.view({-1})).unsqueeze(0) + pos.unsqueeze(0);
    KT_CHECK_REL(o2.hiddenPenultimate, emb, 1e-6);
    KT_CHECK_THROWS(enc->forward(x, 3), koala::ErrorKind::InvalidArgument, "clip skip");
    KT_CHECK_THROWS(enc->forward(x, -1), koala::ErrorKind::InvalidArgument, "clip skip");
}

// Pooling: eos_token_id 2 takes the first maximum id; another eos_token_id takes its first occurrence.
KT_TEST(pooling_position) {
    const std::string p = "tiny-koala-700m";
    const std::string dir = kt::fixturePath(p + "/text_encoder");
    auto json = koala::io::readJson(dir + "/config.json");
    at::Tensor x = ids(p, "te1.0.input_ids");
    // Put token 400 at position 1: with eos_token_id 400 it is pooled there; with 2, the first 49407 wins.
    x.index_put_({0, 1}, 400);  // NOLINT
    auto full = [&](int eos) {
        json["eos_token_id"] = eos;
        auto cfg = ClipTextConfig::fromConfig(koala::io::Config(json, dir + "/config.json"));
        auto weights = koala::io::WeightStore::openComponent(dir, "model", "", "text_encoder");
        weights.setTarget(at::kFloat, at::kCPU);
        auto enc = ClipTextEncoder::load(cfg, weights, false);
        weights.finish();
        return enc->forward(x);
    };
    auto legacy = full(2);
    auto byId = full(400);
    const std::int64_t firstEos = x.argmax(-1).item<std::int64_t>();
    KT_CHECK(x[0][firstEos].item<std::int64_t>() == 49407);
    KT_CHECK_REL(legacy.pooled.select(0, 0), legacy.lastHiddenState[0][firstEos], 1e-7);
    KT_CHECK_REL(byId.pooled.select(0, 0), byId.lastHiddenState[0][1], 1e-7);
}

// Moving the weights (memory mode "low") keeps the results, and every weight really moved.
KT_TEST(to_moves_every_weight) {
    const std::string p = "tiny-koala-1b";
    auto enc = loadEncoder(p, "text_encoder_2", true);
    enc->to(at::kCPU, at::kDouble);
    KT_CHECK(enc->dtype() == at::kDouble);
    auto out = enc->forward(ids(p, "te2.1.input_ids"));  // a float weight left behind would throw here
    KT_CHECK(out.textEmbeds.scalar_type() == at::kDouble);
    KT_CHECK_REL(out.textEmbeds, kt::loadTensor(ref(p), "te2.1.text_embeds"), 1e-4);
    enc->to(at::kCPU, at::kFloat);
    out = enc->forward(ids(p, "te2.1.input_ids"));
    KT_CHECK(out.hiddenPenultimate.scalar_type() == at::kFloat);
    KT_CHECK_REL(out.hiddenPenultimate, kt::loadTensor(ref(p), "te2.1.penultimate"), 1e-4);
}

// Reduced precision: finfo(bfloat16).min in the causal mask must not turn the softmax into NaN.
KT_TEST(bfloat16_stays_finite) {
    const std::string p = "tiny-koala-1b";
    auto enc = loadEncoder(p, "text_encoder_2", true);
    enc->to(at::kCPU, at::kBFloat16);
    ClipTextOutput out;
    try {
        out = enc->forward(ids(p, "te2.0.input_ids"));
    } catch (const c10::Error& e) {
        kt::skip(std::string("bfloat16 kernels missing on this LibTorch: ") + e.what_without_backtrace());
    }
    KT_CHECK(out.hiddenPenultimate.scalar_type() == at::kBFloat16);
    KT_CHECK(out.hiddenPenultimate.isfinite().all().item<bool>());
    KT_CHECK(out.textEmbeds.isfinite().all().item<bool>());
    KT_CHECK_REL(out.textEmbeds, kt::loadTensor(ref(p), "te2.0.text_embeds"), 5e-2);
}

KT_TEST(config_errors_name_the_key) {
    const std::string file = kt::fixturePath("tiny-koala-1b/text_encoder/config.json");
    auto json = koala::io::readJson(file);
    auto cfg = ClipTextConfig::fromConfig(koala::io::Config(json, file));
    KT_CHECK_EQ(cfg.hiddenSize, 24);
    KT_CHECK_EQ(cfg.numHeads, 4);
    KT_CHECK_EQ(cfg.projectionDim, 24);
    KT_CHECK_EQ(cfg.hiddenAct, std::string("quick_gelu"));
    for (const char* act : {"gelu", "gelu_new", "gelu_pytorch_tanh"}) {
        auto j = json;
        j["hidden_act"] = act;
        KT_CHECK_EQ(ClipTextConfig::fromConfig(koala::io::Config(j, file)).hiddenAct, std::string(act));
    }
    auto bad = json;
    bad["hidden_act"] = "swish_deluxe";
    KT_CHECK_THROWS(ClipTextConfig::fromConfig(koala::io::Config(bad, file)), koala::ErrorKind::ModelFormat,
                    "hidden_act");
    auto missing = json;
    missing.erase("hidden_size");
    KT_CHECK_THROWS(ClipTextConfig::fromConfig(koala::io::Config(missing, file)), koala::ErrorKind::ModelFormat,
                    "hidden_size");
    auto heads = json;
    heads["num_attention_heads"] = 5;
    KT_CHECK_THROWS(ClipTextConfig::fromConfig(koala::io::Config(heads, file)), koala::ErrorKind::ModelFormat,
                    "num_attention_heads");
}

// A weight file for a wider model reports the mismatched tensor by name.
KT_TEST(wrong_shape_names_the_tensor) {
    const std::string dir = kt::fixturePath("tiny-koala-1b/text_encoder");
    auto json = koala::io::readJson(dir + "/config.json");
    json["intermediate_size"] = 96;
    auto cfg = ClipTextConfig::fromConfig(koala::io::Config(json, dir + "/config.json"));
    auto weights = koala::io::WeightStore::openComponent(dir, "model", "", "text_encoder");
    ClipTextEncoder::load(cfg, weights, false);
    // This file has no "text_model." prefix (transformers 5 saves CLIPTextModel that way).
    KT_CHECK_THROWS(weights.finish(), koala::ErrorKind::ModelFormat, "wrong shape for encoder.layers.0.mlp.fc1.weight");
    KT_CHECK_THROWS(weights.finish(), koala::ErrorKind::ModelFormat, "mlp.fc2.weight");
}
