// koala-bench's LoRA speed measurement (koala/bench.h, issue 10 item 6) on the tiny KOALA-700M fixture: the random
// LoRA covers every merge target and applies all its keys, removal restores the weights bit for bit (the tool's
// hashes and, independently, the same image as before), the timings are filled in.
#include "harness.h"

#include "koala/bench.h"

#include "pipeline/model_impl.h"

#include <cstdio>

namespace {

std::shared_ptr<koala::Model> tinyModel() {
    koala::LoadOptions lo = koala::defaultLoadOptions();
    lo.device = koala::Device::Cpu;
    lo.dtype = koala::DType::F32;
    return koala::Model::load(kt::fixturePath("tiny-koala-700m"), lo);
}

koala::GenerateRequest smallRequest() {
    koala::GenerateRequest r = koala::defaultRequest();
    r.prompt = "a photo of a koala astronaut, highly detailed";
    r.negative = std::string("blurry");
    r.seed = 7;
    r.steps = 2;
    r.width = r.height = 64;
    r.previews = false;
    r.keepLatents = true;
    return r;
}

bool sameImages(const koala::GenerateResult& a, const koala::GenerateResult& b) {
    if (a.images.size() != b.images.size()) return false;
    for (std::size_t i = 0; i < a.images.size(); ++i)
        if (a.images[i].rgb != b.images[i].rgb) return false;
    return a.finalLatents.data == b.finalLatents.data;
}

std::size_t targetCount(koala::Model& model) {
    auto& m = koala::ModelAccess::impl(model);
    return m.unet->loraTargets().size() + m.text->encoder1->loraTargets().size() +
           m.text->encoder2->loraTargets().size();
}

}  // namespace

KT_TEST(random_lora_covers_every_target_and_applies_all_its_keys) {
    auto model = tinyModel();
    const std::string path = kt::tempDir() + "/random-r8.safetensors";
    koala::RandomLoraSpec spec;
    spec.rank = 8;
    const koala::RandomLoraInfo info = koala::writeRandomLora(*model, path, spec);
    KT_CHECK_EQ(info.path, path);
    KT_CHECK_EQ(std::size_t(info.modules), targetCount(*model));
    KT_CHECK_EQ(info.modules, info.unetModules + info.te1Modules + info.te2Modules);
    KT_CHECK(info.unetModules > 0 && info.te1Modules > 0 && info.te2Modules > 0);
    KT_CHECK(info.parameters > 0);
    KT_CHECK(info.bytes > info.parameters * 4);

    const koala::LoraFileInfo fi = koala::inspectLoraFile(path);
    KT_CHECK_EQ(fi.format, std::string("kohya"));
    KT_CHECK_EQ(kt::tensorNames(path).size(), std::size_t(3 * info.modules));
    // Conv modules are LoCon-shaped: down [r, in, kh, kw], up [out, r, 1, 1]; linear ones [r, in] / [out, r].
    const at::Tensor down = kt::loadTensor(path, "lora_unet_conv_in.lora_down.weight");
    const at::Tensor up = kt::loadTensor(path, "lora_unet_conv_in.lora_up.weight");
    KT_CHECK_EQ(down.dim(), 4);
    KT_CHECK_EQ(down.size(0), 8);
    KT_CHECK_EQ(up.size(1), 8);
    KT_CHECK_EQ(up.size(2), 1);
    const at::Tensor q = kt::loadTensor(path, "lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight");
    KT_CHECK_EQ(q.dim(), 2);
    KT_CHECK_EQ(q.size(0), 8);
    KT_CHECK_EQ(kt::loadTensor(path, "lora_te2_text_model_encoder_layers_0_mlp_fc2.alpha").item<float>(), 8.0f);

    koala::LoraRequest l;
    l.path = path;
    const koala::LoraTiming t = koala::timeLoraMergeAndRemove(*model, {l}, 2);
    KT_CHECK_EQ(t.totalKeys, info.modules);
    KT_CHECK_EQ(t.appliedKeys, info.modules);
    KT_CHECK_EQ(t.weightsChecked, info.modules);
    KT_CHECK_EQ(t.weightsChangedByMerge, info.modules);
    KT_CHECK(t.restoredBitIdentical);
}

KT_TEST(the_same_seed_writes_the_same_file) {
    auto model = tinyModel();
    const std::string dir = kt::tempDir();
    koala::RandomLoraSpec spec;
    spec.rank = 4;
    spec.seed = 3;
    koala::writeRandomLora(*model, dir + "/a.safetensors", spec);
    koala::writeRandomLora(*model, dir + "/b.safetensors", spec);
    spec.seed = 4;
    koala::writeRandomLora(*model, dir + "/c.safetensors", spec);
    KT_CHECK_EQ(koala::fileSha256(dir + "/a.safetensors"), koala::fileSha256(dir + "/b.safetensors"));
    KT_CHECK(koala::fileSha256(dir + "/a.safetensors") != koala::fileSha256(dir + "/c.safetensors"));
    spec.unet = false;  // text encoders only
    const auto te = koala::writeRandomLora(*model, dir + "/te.safetensors", spec);
    KT_CHECK_EQ(te.unetModules, 0);
    KT_CHECK(te.te1Modules > 0 && te.te2Modules > 0);
}

KT_TEST(removal_is_bit_identical_and_the_timings_are_filled_in) {
    auto model = tinyModel();
    const koala::GenerateRequest r = smallRequest();
    const koala::GenerateResult before = model->generate(r, {}, nullptr);

    const std::string path = kt::tempDir() + "/random-r32.safetensors";
    const koala::RandomLoraInfo info = koala::writeRandomLora(*model, path);  // rank 32 by default
    koala::LoraRequest l;
    l.path = path;
    l.weight = 0.8;

    // A set merged by an earlier run is taken off first; the model is left without LoRA.
    koala::GenerateRequest withLora = r;
    withLora.loras = {l};
    const koala::GenerateResult merged = model->generate(withLora, {}, nullptr);
    KT_CHECK_EQ(merged.loras.size(), std::size_t(1));
    KT_CHECK(!sameImages(merged, before));

    const int reps = 3;
    const koala::LoraTiming t = koala::timeLoraMergeAndRemove(*model, {l}, reps);
    KT_CHECK(t.restoredBitIdentical);
    KT_CHECK_EQ(t.appliedKeys, info.modules);
    KT_CHECK_EQ(t.mergeRuns.size(), std::size_t(reps));
    KT_CHECK_EQ(t.removeRuns.size(), std::size_t(reps));
    KT_CHECK(t.mergeSeconds > 0);
    KT_CHECK(t.removeSeconds > 0);
    for (std::size_t i = 0; i < std::size_t(reps); ++i) KT_CHECK(t.mergeRuns[i] > 0 && t.removeRuns[i] > 0);
    std::fprintf(stderr, "  tiny model, rank 32, %d keys: merge %.4f s, removal %.5f s\n", t.appliedKeys,
                 t.mergeSeconds, t.removeSeconds);

    // Independently of the tool's hashes: the same image as before any LoRA.
    const koala::GenerateResult after = model->generate(r, {}, nullptr);
    KT_CHECK(after.loras.empty());
    KT_CHECK(sameImages(after, before));

    // Two LoRAs at once: keys summed over the set.
    koala::RandomLoraSpec spec;
    spec.rank = 4;
    spec.seed = 9;
    spec.textEncoders = false;
    const auto second = koala::writeRandomLora(*model, kt::tempDir() + "/unet-r4.safetensors", spec);
    koala::LoraRequest l2;
    l2.path = second.path;
    const koala::LoraTiming t2 = koala::timeLoraMergeAndRemove(*model, {l, l2}, 1);
    KT_CHECK_EQ(t2.totalKeys, info.modules + second.modules);
    KT_CHECK_EQ(t2.appliedKeys, info.modules + second.modules);
    KT_CHECK(t2.restoredBitIdentical);
    KT_CHECK(sameImages(model->generate(r, {}, nullptr), before));
}

KT_TEST(bad_arguments_are_refused) {
    auto model = tinyModel();
    koala::RandomLoraSpec spec;
    spec.rank = 0;
    KT_CHECK_THROWS(koala::writeRandomLora(*model, kt::tempDir() + "/x.safetensors", spec),
                    koala::ErrorKind::InvalidArgument, "rank");
    KT_CHECK_THROWS(koala::timeLoraMergeAndRemove(*model, {}, 1), koala::ErrorKind::InvalidArgument, "no LoRA");
    koala::LoraRequest missing;
    missing.path = kt::tempDir() + "/missing.safetensors";
    KT_CHECK_THROWS(koala::timeLoraMergeAndRemove(*model, {missing}, 1), koala::ErrorKind::Io, "missing");
    koala::LoraRequest ok;
    ok.path = koala::writeRandomLora(*model, kt::tempDir() + "/ok.safetensors").path;
    KT_CHECK_THROWS(koala::timeLoraMergeAndRemove(*model, {ok}, 0), koala::ErrorKind::InvalidArgument, "repetitions");
}
