// WeightStore: component folders (single, sharded, variants), take() conversions, aliases, problem reports and the
// random store.
#include "harness.h"
#include "unit_io_helpers.h"

#include "io/weights.h"

#include <filesystem>

using koala::ErrorKind;
using koala::io::SafetensorsFile;
using koala::io::StDType;
using koala::io::WeightStore;
namespace fs = std::filesystem;

namespace {

// A fresh, empty folder under the test's scratch folder.
std::string freshDir(const std::string& name) {
    std::string d = kt::tempDir() + "/" + name;
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
}

WeightStore storeOf(const std::string& path, const std::string& label = "unet") {
    return WeightStore(label, {SafetensorsFile::open(path)});
}

std::string errorOf(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const koala::Error& e) {
        return e.what();
    }
    return "";
}

}  // namespace

// Every tensor is a copy, never a view of the mapping: once loaded, the model does not depend on the file any more,
// so a file truncated, rewritten or deleted later cannot crash a generation with SIGBUS (docs/hardening.md).
KT_TEST(tensorsAreCopiedOutOfTheMapping) {
    const std::string dir = freshDir("copied");
    auto w = at::randn({16, 8});
    auto big = at::randn({256, 256});  // 256 KiB: pages past the truncation point below
    auto h = at::randn({4, 4}).to(at::kHalf);
    iotest::writeSt(dir + "/m.safetensors", {{"w", w}, {"h", h}, {"big", big}});
    at::Tensor t, t16, tBig;
    {
        WeightStore s = storeOf(dir + "/m.safetensors");
        const auto* v = s.view("w");
        KT_CHECK(v != nullptr);
        if (!v) return;
        t = s.take("w", {16, 8});
        KT_CHECK(t.defined() && t.scalar_type() == at::kFloat);
        const auto* p = static_cast<const std::uint8_t*>(t.data_ptr());
        KT_CHECK(p + t.nbytes() <= v->data || p >= v->data + v->nbytes);  // not inside the mapping
        KT_CHECK(t.equal(w));

        // F16 on disk, F32 target: one converted copy.
        t16 = s.take("h", {4, 4});
        KT_CHECK(t16.scalar_type() == at::kFloat && t16.equal(h.to(at::kFloat)));
        tBig = s.take("big", {256, 256});
        s.finish();
        // Truncated while the store still maps it: the tensors taken are unaffected; taking one that now lies past
        // the end is an Io error naming the file.
        fs::resize_file(dir + "/m.safetensors", 4096);
        KT_CHECK(t.equal(w) && tBig.equal(big));
        KT_CHECK_THROWS(s.take("big", {256, 256}), koala::ErrorKind::Io, "m.safetensors: the file changed");
    }
    fs::remove(dir + "/m.safetensors");
    KT_CHECK(t.equal(w) && tBig.equal(big));
}

KT_TEST(dtypeConversions) {
    const std::string dir = freshDir("convert");
    auto w = at::randn({3, 4});
    iotest::writeSt(dir + "/m.safetensors", {{"f32", w}, {"f16", w.to(at::kHalf)}, {"bf16", w.to(at::kBFloat16)}});
    WeightStore s = storeOf(dir + "/m.safetensors");
    s.setTarget(at::kHalf, at::kCPU);
    auto a = s.take("f32", {3, 4});
    KT_CHECK(a.scalar_type() == at::kHalf && a.equal(w.to(at::kHalf)));
    auto b = s.take("f16", {3, 4});  // same dtype on CPU: a plain copy
    KT_CHECK(b.scalar_type() == at::kHalf && b.equal(w.to(at::kHalf)));
    s.setTarget(at::kFloat, at::kCPU);
    auto c = s.take("bf16", {3, 4});
    KT_CHECK(c.scalar_type() == at::kFloat && c.equal(w.to(at::kBFloat16).to(at::kFloat)));
    s.setTarget(at::kBFloat16, at::kCPU);
    auto d = s.take("f16", {3, 4});
    KT_CHECK(d.scalar_type() == at::kBFloat16 && d.equal(w.to(at::kHalf).to(at::kBFloat16)));
    s.finish();
}

KT_TEST(unalignedDataIsCopied) {
    const std::string dir = freshDir("unaligned");
    auto w = at::randn({5, 3});
    iotest::writeSt(dir + "/m.safetensors", {{"w", w}}, {}, /*align=*/false);
    WeightStore s = storeOf(dir + "/m.safetensors");
    KT_CHECK(reinterpret_cast<std::uintptr_t>(s.view("w")->data) % 4 != 0);
    auto t = s.take("w", {5, 3});
    KT_CHECK(t.equal(w));
    KT_CHECK(reinterpret_cast<std::uintptr_t>(t.data_ptr()) % 4 == 0);
}

KT_TEST(missingAndWrongShapeReportedTogether) {
    const std::string dir = freshDir("problems");
    const std::string file = dir + "/diffusion_pytorch_model.safetensors";
    iotest::writeSt(file, {{"conv_in.weight", at::zeros({32, 4, 5, 5})},
                           {"conv_in.bias", at::zeros({32})},
                           {"text_model.embeddings.position_ids", at::arange(77, at::kLong).reshape({1, 77})}});
    WeightStore s = WeightStore::openComponent(dir, "diffusion_pytorch_model", "", "unet");
    KT_CHECK(!s.take("down_blocks.0.resnets.0.conv1.weight", {32, 32, 3, 3}).defined());
    KT_CHECK(!s.take("conv_in.weight", {32, 4, 3, 3}).defined());
    KT_CHECK(s.take("conv_in.bias", {32}).defined());
    KT_CHECK(!s.take("text_model.embeddings.position_ids", {1, 77}).defined());  // integer: not a weight
    std::string msg = errorOf([&] { s.finish(); });
    KT_CHECK_MSG(msg.find("unet (" + file +
                          "): missing tensor down_blocks.0.resnets.0.conv1.weight; "
                          "wrong shape for conv_in.weight: expected [32,4,3,3], file has [32,4,5,5]") == 0,
                 msg);
    KT_CHECK_MSG(msg.find("text_model.embeddings.position_ids has dtype I64") != std::string::npos, msg);
    KT_CHECK_THROWS(s.finish(), ErrorKind::ModelFormat, "missing tensor");
    // Extra tensors (position_ids) are not a problem by themselves; integer buffers are not parameters.
    KT_CHECK_EQ(s.parameterCount(), std::int64_t(32 * 4 * 25 + 32));
}

KT_TEST(problemListIsCapped) {
    const std::string dir = freshDir("cap");
    iotest::writeSt(dir + "/model.safetensors", {{"x", at::zeros({2})}});
    WeightStore s = WeightStore::openComponent(dir, "model", "", "text_encoder");
    for (int i = 0; i < 25; ++i) s.take("t" + std::to_string(i), {2});
    std::string msg = errorOf([&] { s.finish(); });
    KT_CHECK_MSG(msg.find("missing tensor t19; and 5 more") != std::string::npos, msg);
    KT_CHECK_MSG(msg.find("t20") == std::string::npos, msg);
}

KT_TEST(legacyAliasAndSqueeze) {
    const std::string dir = freshDir("legacy");
    auto q = at::randn({8, 8, 1, 1});
    auto qb = at::randn({8});
    iotest::writeSt(dir + "/diffusion_pytorch_model.safetensors",
                    {{"decoder.mid_block.attentions.0.query.weight", q},
                     {"decoder.mid_block.attentions.0.query.bias", qb},
                     {"decoder.conv_in.weight", at::randn({8, 4, 3, 3})}});
    WeightStore s = WeightStore::openComponent(dir, "diffusion_pytorch_model", "", "vae");
    s.setAliases([](const std::string& n) {
        std::vector<std::string> out{n};
        auto pos = n.find(".to_q.");
        if (pos != std::string::npos) out.push_back(n.substr(0, pos) + ".query." + n.substr(pos + 6));
        return out;
    });
    KT_CHECK(s.has("decoder.mid_block.attentions.0.to_q.weight"));
    auto w = s.take("decoder.mid_block.attentions.0.to_q.weight", {8, 8});
    KT_CHECK(w.defined() && w.sizes() == at::IntArrayRef({8, 8}) && w.equal(q.reshape({8, 8})));
    auto b = s.take("decoder.mid_block.attentions.0.to_q.bias", {8});
    KT_CHECK(b.defined() && b.equal(qb));
    // Squeezing is only for [C,C,1,1] → [C,C]; a real 3x3 conv asked as 2-D is a shape error.
    KT_CHECK(!s.take("decoder.conv_in.weight", {8, 4}).defined());
    KT_CHECK(!s.take("decoder.mid_block.attentions.0.to_q.weight", {8, 4}).defined());
    std::string msg = errorOf([&] { s.finish(); });
    KT_CHECK_MSG(
        msg.find("wrong shape for decoder.conv_in.weight: expected [8,4], file has [8,4,3,3]") != std::string::npos,
        msg);
    KT_CHECK_MSG(msg.find("(stored as decoder.mid_block.attentions.0.query.weight)") != std::string::npos, msg);
}

KT_TEST(shardedIndex) {
    const std::string dir = freshDir("sharded");
    auto a = at::randn({4, 4}), b = at::randn({6}), c = at::randn({2, 3}).to(at::kHalf);
    iotest::writeSt(dir + "/diffusion_pytorch_model-00001-of-00002.safetensors", {{"a", a}, {"b", b}});
    iotest::writeSt(dir + "/diffusion_pytorch_model-00002-of-00002.safetensors", {{"c", c}});
    nlohmann::json idx = {{"metadata", {{"total_size", 100}}},
                          {"weight_map",
                           {{"a", "diffusion_pytorch_model-00001-of-00002.safetensors"},
                            {"b", "diffusion_pytorch_model-00001-of-00002.safetensors"},
                            {"c", "diffusion_pytorch_model-00002-of-00002.safetensors"}}}};
    { std::ofstream(dir + "/diffusion_pytorch_model.safetensors.index.json") << idx.dump(2); }

    WeightStore s = WeightStore::openComponent(dir, "diffusion_pytorch_model", "", "unet");
    KT_CHECK_EQ(s.files().size(), std::size_t(2));
    KT_CHECK(s.files().size() == 2 && s.files()[0].find("00001-of-00002") != std::string::npos);
    KT_CHECK(fs::path(s.files()[0]).is_absolute());
    KT_CHECK(s.describe().find("diffusion_pytorch_model.safetensors.index.json") != std::string::npos);
    KT_CHECK(s.take("a", {4, 4}).equal(a));
    KT_CHECK(s.take("c", {2, 3}).equal(c.to(at::kFloat)));
    KT_CHECK(s.take("b", {6}).equal(b));
    s.finish();
    KT_CHECK_EQ(s.parameterCount(), std::int64_t(16 + 6 + 6));
    KT_CHECK(s.dominantDType() == StDType::F32);

    // The index lists a tensor its shard does not hold.
    idx["weight_map"]["ghost"] = "diffusion_pytorch_model-00002-of-00002.safetensors";
    { std::ofstream(dir + "/diffusion_pytorch_model.safetensors.index.json") << idx.dump(2); }
    KT_CHECK_THROWS(WeightStore::openComponent(dir, "diffusion_pytorch_model", "", "unet"), ErrorKind::ModelFormat,
                    "tensor ghost is listed in diffusion_pytorch_model-00002-of-00002.safetensors");
    // A shard that is missing.
    idx["weight_map"].erase("ghost");
    idx["weight_map"]["d"] = "diffusion_pytorch_model-00003-of-00003.safetensors";
    { std::ofstream(dir + "/diffusion_pytorch_model.safetensors.index.json") << idx.dump(2); }
    KT_CHECK_THROWS(WeightStore::openComponent(dir, "diffusion_pytorch_model", "", "unet"), ErrorKind::ModelFormat,
                    "shard diffusion_pytorch_model-00003-of-00003.safetensors is missing");
    { std::ofstream(dir + "/diffusion_pytorch_model.safetensors.index.json") << "{\"weight_map\": 3}"; }
    KT_CHECK_THROWS(WeightStore::openComponent(dir, "diffusion_pytorch_model", "", "unet"), ErrorKind::ModelFormat,
                    "no 'weight_map' object");
}

KT_TEST(variantChosenOnlyWhenAsked) {
    const std::string dir = freshDir("variant");
    auto w = at::randn({4, 4});
    iotest::writeSt(dir + "/model.safetensors", {{"w", w}});
    iotest::writeSt(dir + "/model.fp16.safetensors", {{"w", w.to(at::kHalf)}});
    WeightStore plain = WeightStore::openComponent(dir, "model", "", "text_encoder");
    KT_CHECK(plain.dominantDType() == StDType::F32);
    KT_CHECK(plain.files().size() == 1 && fs::path(plain.files()[0]).filename() == "model.safetensors");
    WeightStore half = WeightStore::openComponent(dir, "model", "fp16", "text_encoder");
    KT_CHECK(half.dominantDType() == StDType::F16);
    KT_CHECK(half.files().size() == 1 && fs::path(half.files()[0]).filename() == "model.fp16.safetensors");
    KT_CHECK(half.take("w", {4, 4}).equal(w.to(at::kHalf).to(at::kFloat)));
}

KT_TEST(autoVariantFollowsPrecisionAndWhatExists) {
    const std::string both = freshDir("auto-both"), plainOnly = freshDir("auto-plain"),
                      halfOnly = freshDir("auto-half");
    auto w = at::randn({2, 2});
    iotest::writeSt(both + "/model.safetensors", {{"w", w}});
    iotest::writeSt(both + "/model.fp16.safetensors", {{"w", w.to(at::kHalf)}});
    iotest::writeSt(plainOnly + "/model.safetensors", {{"w", w}});
    iotest::writeSt(halfOnly + "/model.fp16.safetensors", {{"w", w.to(at::kHalf)}});
    KT_CHECK_EQ(WeightStore::chooseVariant(both, "model", "auto", true), std::string("fp16"));
    KT_CHECK_EQ(WeightStore::chooseVariant(both, "model", "auto", false), std::string(""));
    KT_CHECK_EQ(WeightStore::chooseVariant(plainOnly, "model", "auto", true), std::string(""));
    KT_CHECK_EQ(WeightStore::chooseVariant(halfOnly, "model", "auto", false), std::string("fp16"));
    // An explicit choice is kept as it is (and fails in openComponent when absent).
    KT_CHECK_EQ(WeightStore::chooseVariant(plainOnly, "model", "fp16", true), std::string("fp16"));
    KT_CHECK_EQ(WeightStore::chooseVariant(halfOnly, "model", "", true), std::string(""));
}

KT_TEST(shardedVariant) {
    const std::string dir = freshDir("sharded-variant");
    auto a = at::randn({3}).to(at::kHalf);
    iotest::writeSt(dir + "/model.fp16-00001-of-00001.safetensors", {{"a", a}});
    nlohmann::json idx = {{"weight_map", {{"a", "model.fp16-00001-of-00001.safetensors"}}}};
    { std::ofstream(dir + "/model.fp16.safetensors.index.json") << idx.dump(); }
    WeightStore s = WeightStore::openComponent(dir, "model", "fp16", "text_encoder_2");
    KT_CHECK(s.take("a", {3}).equal(a.to(at::kFloat)));
    KT_CHECK_THROWS(WeightStore::openComponent(dir, "model", "", "text_encoder_2"), ErrorKind::ModelFormat,
                    "--variant fp16");
}

KT_TEST(missingVariantAndMissingPlain) {
    const std::string dir = freshDir("novariant");
    iotest::writeSt(dir + "/diffusion_pytorch_model.safetensors", {{"w", at::zeros({2})}});
    std::string msg = errorOf([&] { WeightStore::openComponent(dir, "diffusion_pytorch_model", "fp16", "vae"); });
    KT_CHECK_MSG(msg.find("vae: no 'fp16' variant in " + dir) == 0, msg);
    KT_CHECK_MSG(msg.find("diffusion_pytorch_model.safetensors") != std::string::npos, msg);
    KT_CHECK_MSG(msg.find("without --variant") != std::string::npos, msg);

    const std::string only = freshDir("onlyvariant");
    iotest::writeSt(only + "/diffusion_pytorch_model.fp16.safetensors", {{"w", at::zeros({2})}});
    msg = errorOf([&] { WeightStore::openComponent(only, "diffusion_pytorch_model", "", "vae"); });
    KT_CHECK_MSG(msg.find(only) != std::string::npos, msg);
    KT_CHECK_MSG(msg.find("diffusion_pytorch_model.fp16.safetensors") != std::string::npos, msg);
    KT_CHECK_MSG(msg.find("with --variant fp16") != std::string::npos, msg);

    const std::string other = freshDir("otherfiles");
    iotest::writeSt(other + "/something_else.safetensors", {{"w", at::zeros({2})}});
    KT_CHECK_THROWS(WeightStore::openComponent(other, "model", "", "text_encoder"), ErrorKind::ModelFormat,
                    "no weights in " + other +
                        ": expected model.safetensors; .safetensors files there: "
                        "something_else.safetensors");
    KT_CHECK_THROWS(WeightStore::openComponent(other + "/nope", "model", "", "text_encoder"), ErrorKind::ModelFormat,
                    "does not exist");
}

KT_TEST(binOnlyFolder) {
    const std::string dir = freshDir("bin");
    { std::ofstream(dir + "/diffusion_pytorch_model.bin") << "PK"; }
    KT_CHECK_THROWS(WeightStore::openComponent(dir, "diffusion_pytorch_model", "", "unet"), ErrorKind::ModelFormat,
                    "PyTorch .bin weights are not supported; convert them to safetensors");
}

KT_TEST(fixtureComponents) {
    const std::string root = kt::fixturePath("tiny-koala-700m");
    WeightStore unet = WeightStore::openComponent(root + "/unet", "diffusion_pytorch_model", "", "unet");
    KT_CHECK(unet.dominantDType() == StDType::F32);
    std::int64_t expected = 0;
    for (const auto& n : kt::tensorNames(unet.files()[0])) expected += kt::loadTensor(unet.files()[0], n).numel();
    KT_CHECK_EQ(unet.parameterCount(), expected);
    const auto* v = unet.view("conv_in.weight");
    KT_CHECK(v != nullptr);
    if (v) {
        auto t = unet.take("conv_in.weight", v->shape);
        KT_CHECK(t.equal(kt::loadTensor(unet.files()[0], "conv_in.weight")));
    }
    unet.finish();
    WeightStore te = WeightStore::openComponent(root + "/text_encoder", "model", "", "text_encoder");
    KT_CHECK(te.dominantDType() == StDType::F16);
}

KT_TEST(randomStore) {
    WeightStore s = WeightStore::random("unet", 7);
    KT_CHECK(s.isRandom() && s.files().empty() && s.has("anything") && s.view("anything") == nullptr);
    auto w = s.take("down_blocks.0.attentions.0.proj_in.weight", {64, 128});
    KT_CHECK(w.scalar_type() == at::kFloat && w.sizes() == at::IntArrayRef({64, 128}));
    double sd = w.std().item<double>();
    KT_CHECK_MSG(sd > 0.018 && sd < 0.022, sd);
    KT_CHECK(std::abs(w.mean().item<double>()) < 0.002);
    KT_CHECK(s.take("conv_norm_out.weight", {32}).equal(at::ones({32})));
    KT_CHECK(s.take("mid_block.attentions.0.transformer_blocks.0.norm1.weight", {16}).equal(at::ones({16})));
    KT_CHECK(s.take("conv_norm_out.bias", {32}).equal(at::zeros({32})));
    KT_CHECK(s.take("conv_in.bias", {8}).equal(at::zeros({8})));
    auto conv = s.take("conv_in.weight", {8, 4, 3, 3});
    KT_CHECK(conv.sizes() == at::IntArrayRef({8, 4, 3, 3}) && conv.abs().sum().item<double>() > 0);
    KT_CHECK_EQ(s.parameterCount(), std::int64_t(64 * 128 + 32 + 16 + 32 + 8 + 8 * 4 * 9));
    s.finish();  // never has problems

    // Deterministic per name and seed, independent of the order of take().
    WeightStore s2 = WeightStore::random("unet", 7);
    s2.take("conv_in.weight", {8, 4, 3, 3});
    KT_CHECK(s2.take("down_blocks.0.attentions.0.proj_in.weight", {64, 128}).equal(w));
    WeightStore s3 = WeightStore::random("unet", 8);
    KT_CHECK(!s3.take("down_blocks.0.attentions.0.proj_in.weight", {64, 128}).equal(w));
    KT_CHECK(!s.take("conv_out.weight", {8, 4, 3, 3}).equal(conv));

    s3.setTarget(at::kHalf, at::kCPU);
    auto h = s3.take("x.weight", {4, 4});
    KT_CHECK(h.scalar_type() == at::kHalf && s3.dominantDType() == StDType::F16);
    KT_CHECK(s3.describe().find("random") != std::string::npos);
}
