// LoRA against diffusers/PEFT (issue 10; tests/data/fixtures/lora, tools/reference/lora_reference.py): the merged
// weights, both text encoders, one UNet call and whole runs at weight 1 and 0.5 (also through koala-cli and a
// <lora:> tag), PEFT and kohya files alike; exact removal; shared text encoders left alone; refused files.
#include "harness.h"
#include "pipeline_runs.h"

#include "pipeline/model_impl.h"

#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;

namespace {

using kt::runCli;
using kt::shellQuote;
const char* kPipe = "tiny-koala-700m";
std::string loraPath(const std::string& f) { return kt::fixturePath("lora/" + f); }
std::string ref() { return loraPath("reference.safetensors"); }

std::shared_ptr<koala::Model> loadCpu(std::shared_ptr<koala::Model> shareWith = nullptr) {
    koala::LoadOptions lo = koala::defaultLoadOptions();
    lo.device = koala::Device::Cpu;
    lo.dtype = koala::DType::F32;
    return koala::Model::load(kt::fixturePath(kPipe), lo, shareWith);
}

koala::GenerateRequest withLora(const std::string& file, double w) {
    koala::GenerateRequest r = koala::defaultRequest();
    if (!file.empty()) r.loras.push_back({loraPath(file), "", w});
    return r;
}

std::string tag(double w) { return w == 1.0 ? "lora.w1.0." : "lora.w0.5."; }

// Every LoRA-targetable weight of the model (UNet and both encoders), for exact comparisons.
std::vector<at::Tensor> allWeights(koala::Model& m) {
    auto& impl = koala::ModelAccess::impl(m);
    std::vector<at::Tensor> out;
    for (auto& [n, t] : impl.unet->loraTargets()) out.push_back(*t);
    for (auto& [n, t] : impl.text->encoder1->loraTargets()) out.push_back(*t);
    for (auto& [n, t] : impl.text->encoder2->loraTargets()) out.push_back(*t);
    return out;
}

bool identical(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (!at::equal(a[i], b[i])) return false;
    return true;
}

at::Tensor targetOf(koala::Model& m, const std::string& refName) {
    auto& impl = koala::ModelAccess::impl(m);
    std::vector<std::pair<std::string, at::Tensor*>> targets;
    std::string name;
    if (refName.rfind("unet.", 0) == 0) {
        targets = impl.unet->loraTargets();
        name = refName.substr(5);
    } else {
        targets =
            refName.rfind("te1.", 0) == 0 ? impl.text->encoder1->loraTargets() : impl.text->encoder2->loraTargets();
        name = refName.substr(4);
        if (name.rfind("text_model.", 0) != 0) name = "text_model." + name;
    }
    for (auto& [n, t] : targets)
        if (n == name) return *t;
    return at::Tensor();
}

nlohmann::json loraJson() {
    std::ifstream in(loraPath("reference.json"));
    return nlohmann::json::parse(in);
}

}  // namespace

KT_TEST(merged_weights_encoders_and_unet_match_diffusers) {
    auto j = loraJson();
    for (const char* file :
         {"peft_lora.safetensors", "kohya_lora.safetensors", "kohya_lora_te1_text_model.safetensors"}) {
        auto model = loadCpu();
        auto& impl = koala::ModelAccess::impl(*model);
        for (double w : {1.0, 0.5}) {
            auto applied = impl.applyLoras(withLora(file, w));
            KT_CHECK_EQ(applied.size(), std::size_t(1));
            KT_CHECK_MSG(applied[0].appliedKeys == 163 && applied[0].missingKeys == 0,
                         file << ": " << applied[0].report);
            for (const auto& mod : j["merge_modules"]) {
                const std::string name = mod;
                at::Tensor t = targetOf(*model, name);
                KT_CHECK_MSG(t.defined(), name);
                if (t.defined()) KT_CHECK_REL(t, kt::loadTensor(ref(), tag(w) + "weight." + name), 1e-6);
            }
            koala::GenerateRequest r = withLora(file, w);
            r.prompt = j["prompt"];
            r.negative = j["negative"].get<std::string>();
            auto e = impl.encodePrompt(r, true);
            const std::string p = tag(w);
            KT_CHECK_REL(e.prompt, kt::loadTensor(ref(), p + "encode.prompt_embeds"), 1e-5);
            KT_CHECK_REL(e.negative, kt::loadTensor(ref(), p + "encode.negative_prompt_embeds"), 1e-5);
            KT_CHECK_REL(e.pooled, kt::loadTensor(ref(), p + "encode.pooled_prompt_embeds"), 1e-5);
            KT_CHECK_REL(e.negativePooled, kt::loadTensor(ref(), p + "encode.negative_pooled_prompt_embeds"), 1e-5);
            auto out = impl.unet->forward(
                kt::loadTensor(ref(), "unet.sample"), 500.0, kt::loadTensor(ref(), "unet.encoder_hidden_states"),
                kt::loadTensor(ref(), "unet.text_embeds"), kt::loadTensor(ref(), "unet.time_ids"));
            KT_CHECK_REL(out, kt::loadTensor(ref(), p + "unet.t500.out"), 1e-5);
            std::printf("  %s w=%.1f: encode %.2e, unet %.2e\n", file, w,
                        kt::relErr(e.prompt, kt::loadTensor(ref(), p + "encode.prompt_embeds")),
                        kt::relErr(out, kt::loadTensor(ref(), p + "unet.t500.out")));
        }
    }
}

KT_TEST(runs_match_diffusers_and_removal_is_exact) {
    auto j = loraJson();
    auto model = loadCpu();
    const auto fresh = allWeights(*model);
    std::vector<at::Tensor> freshCopy;
    for (auto& t : fresh) freshCopy.push_back(t.clone());
    const auto& run = j["run"];
    for (double w : {1.0, 0.5}) {
        koala::GenerateRequest r = kt::requestFor(run);
        r.loras.push_back({loraPath("peft_lora.safetensors"), "", w});
        auto res = model->generate(r);
        const std::string p = tag(w);
        KT_CHECK_REL(kt::fromFloatTensor(res.finalLatents), kt::loadTensor(ref(), p + "run.final_latents"), 1e-4);
        const int lv = kt::maxLevelDiff(res.images[0], kt::loadTensor(ref(), p + "run.image"));
        KT_CHECK_MSG(lv <= 1, "w=" << w << ": image differs by " << lv << " levels");
        std::printf("  run w=%.1f: final latents %.2e, image %d levels\n", w,
                    kt::relErr(kt::fromFloatTensor(res.finalLatents), kt::loadTensor(ref(), p + "run.final_latents")),
                    lv);
        KT_CHECK_EQ(res.loras.size(), std::size_t(1));
        KT_CHECK_EQ(res.loras[0].shortHash, std::string("985fcb1ca2a1"));
    }
    // Without LoRA: the weights are the loaded ones bit for bit, and the run is the reference's base run.
    koala::GenerateRequest r = kt::requestFor(run);
    auto base = model->generate(r);
    KT_CHECK(base.loras.empty());
    KT_CHECK(identical(allWeights(*model), freshCopy));
    KT_CHECK_REL(kt::fromFloatTensor(base.finalLatents), kt::loadTensor(ref(), "base.run.final_latents"), 1e-4);
    // Switching between two sets also goes through the loaded weights.
    koala::ModelAccess::impl(*model).applyLoras(withLora("kohya_lora.safetensors", 0.5));
    koala::ModelAccess::impl(*model).applyLoras(withLora("peft_lora.safetensors", 1.0));
    koala::ModelAccess::impl(*model).removeLoras();
    KT_CHECK(identical(allWeights(*model), freshCopy));
}

KT_TEST(shared_text_encoders_are_not_changed_under_the_other_model) {
    auto a = loadCpu();
    auto b = loadCpu(a);
    KT_CHECK(b->info().sharesTextEncoders);
    koala::GenerateRequest r = koala::defaultRequest();
    r.prompt = "a koala";
    auto before = koala::ModelAccess::impl(*a).encodePrompt(r, false);
    koala::ModelAccess::impl(*b).applyLoras(withLora("peft_lora.safetensors", 1.0));
    auto afterA = koala::ModelAccess::impl(*a).encodePrompt(r, false);
    auto withB = koala::ModelAccess::impl(*b).encodePrompt(r, false);
    KT_CHECK(at::equal(before.prompt, afterA.prompt));
    KT_CHECK(!at::equal(before.prompt, withB.prompt));
    koala::ModelAccess::impl(*b).removeLoras();
    KT_CHECK(koala::ModelAccess::impl(*b).text->encoder1 ==
             koala::ModelAccess::impl(*a).text->encoder1);  // shared again
}

KT_TEST(malformed_files_are_refused) {
    auto model = loadCpu();
    auto& impl = koala::ModelAccess::impl(*model);
    const auto fresh = allWeights(*model);
    std::vector<at::Tensor> freshCopy;
    for (auto& t : fresh) freshCopy.push_back(t.clone());
    const std::vector<std::pair<std::string, std::string>> cases{
        {"malformed/loha.safetensors", "LoHa"},
        {"malformed/lokr.safetensors", "LoKr"},
        {"malformed/rank_mismatch.safetensors", "disagree"},
        {"malformed/peft_rank_mismatch.safetensors", "disagree"},
        {"malformed/missing_up.safetensors", "incomplete"},
        {"malformed/truncated.safetensors", "truncated"},
        {"malformed/truncated_header.safetensors", "truncated"}};
    for (const auto& [file, what] : cases) {
        koala::GenerateRequest r = withLora(file, 1.0);
        KT_CHECK_THROWS(model->generate(r), koala::ErrorKind::ModelFormat, what);
        try {
            impl.applyLoras(r);
        } catch (const koala::Error& e) {
            KT_CHECK_MSG(std::string(e.what()).find(fs::path(file).filename().string()) != std::string::npos, e.what());
        }
        KT_CHECK(identical(allWeights(*model), freshCopy));
    }
    koala::GenerateRequest r = koala::defaultRequest();
    r.prompt = "a <lora:no_such_lora:1>";
    KT_CHECK_THROWS(model->generate(r), koala::ErrorKind::InvalidArgument, "no_such_lora");
}

KT_TEST(koala_cli_lora_option_tag_and_metadata) {
    auto j = loraJson();
    const auto& run = j["run"];
    const std::string dir = kt::tempDir() + "/loras";
    fs::create_directories(dir);
    fs::copy_file(loraPath("peft_lora.safetensors"), dir + "/my_style.safetensors",
                  fs::copy_options::overwrite_existing);
    const std::string model = shellQuote(kt::fixturePath(kPipe));
    const std::string common = "--model " + model + " --device cpu --dtype fp32 --seed 42 --steps 4 --guidance 5 " +
                               "--scheduler euler --width 64 --height 64 --negative " +
                               shellQuote(run["neg"].get<std::string>());
    const std::string prompt = run["prompt"];
    for (double w : {1.0, 0.5}) {
        const std::string out = kt::tempDir() + "/lora.png", lat = kt::tempDir() + "/lora.safetensors";
        std::string err;
        // --lora FILE:WEIGHT
        const std::string ws = w == 1.0 ? "1" : "0.5";
        int rc = runCli(common + " --prompt " + shellQuote(prompt) + " --lora " +
                            shellQuote(loraPath("peft_lora.safetensors") + ":" + ws) + " --out " + shellQuote(out) +
                            " --save-latents " + shellQuote(lat),
                        err);
        KT_CHECK_MSG(rc == 0, err);
        if (rc == 0)
            KT_CHECK_REL(kt::loadTensor(lat, "latents"), kt::loadTensor(ref(), tag(w) + "run.final_latents"), 1e-4);
        // <lora:NAME:WEIGHT> found in --lora-dir
        rc = runCli(common + " --prompt " + shellQuote(prompt + " <lora:my_style:" + ws + ">") + " --lora-dir " +
                        shellQuote(dir) + " --out " + shellQuote(out) + " --save-latents " + shellQuote(lat),
                    err);
        KT_CHECK_MSG(rc == 0, err);
        if (rc != 0) continue;
        KT_CHECK_REL(kt::loadTensor(lat, "latents"), kt::loadTensor(ref(), tag(w) + "run.final_latents"), 1e-4);
        KT_CHECK(err.find("applied 163 of 163 keys (0 without a target)") != std::string::npos);
        // The PNG records the LoRA (koala chunk and A1111's Lora hashes), and reading it restores them.
        auto md = koala::readImageMetadata(out);
        KT_CHECK(md.source == koala::MetadataSource::Koala);
        KT_CHECK_EQ(md.metadata.loras.size(), std::size_t(1));
        if (md.metadata.loras.size() == 1) {
            KT_CHECK_EQ(md.metadata.loras[0].name, std::string("my_style"));
            KT_CHECK_EQ(md.metadata.loras[0].weight, w);
            KT_CHECK_EQ(md.metadata.loras[0].hash, std::string("985fcb1ca2a1"));
            KT_CHECK(md.metadata.loras[0].fromPrompt);
        }
        std::vector<std::pair<std::string, std::string>> text;
        koala::readPngText(out, text);
        for (auto& [k, v] : text)
            if (k == "parameters") {
                KT_CHECK_MSG(v.find("Lora hashes: \"my_style: 985fcb1ca2a1\"") != std::string::npos, v);
                auto a = koala::parseA1111Parameters(v);
                KT_CHECK(a && a->loras.size() == 1 && a->loras[0].name == "my_style" && a->loras[0].weight == w &&
                         a->loras[0].hash == "985fcb1ca2a1");
            }
    }
    std::string err;
    KT_CHECK_EQ(runCli(common + " --prompt x --lora " + shellQuote(loraPath("malformed/loha.safetensors")), err), 1);
    KT_CHECK(err.find("LoHa") != std::string::npos);
    KT_CHECK_EQ(runCli(common + " --prompt x --prompt-syntax fancy", err), 2);
}

KT_TEST(lora_files_listing) {
    auto files = koala::listLoraFiles({kt::fixturePath("lora")});
    KT_CHECK_EQ(files.size(), std::size_t(4));  // three LoRAs and reference.safetensors (format "")
    for (const auto& f : files) {
        if (f.name == "peft_lora") {
            KT_CHECK_EQ(f.shortHash, std::string("985fcb1ca2a1"));
            KT_CHECK_EQ(f.format, std::string("peft"));
        }
        if (f.name == "kohya_lora") {
            KT_CHECK_EQ(f.shortHash, std::string("89ab21fd2cd7"));
            KT_CHECK_EQ(f.format, std::string("kohya"));
        }
    }
    KT_CHECK_EQ(koala::findLoraFile("peft_lora", {kt::fixturePath("lora")}),
                kt::fixturePath("lora/peft_lora.safetensors"));
    KT_CHECK(koala::findLoraFile("nope", {kt::fixturePath("lora")}).empty());
}
