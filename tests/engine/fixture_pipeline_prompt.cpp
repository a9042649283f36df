// The A1111 prompt syntax through the pipeline (issue 10): a prompt without syntax within 75 tokens encodes to
// diffusers' embedding bit for bit under both syntaxes; the emphasis keeps the mean; long prompts and BREAK give
// 77-token chunks; prompt and negative of different lengths are padded with the empty prompt's embedding.
#include "harness.h"
#include "pipeline_runs.h"

#include "pipeline/model_impl.h"

namespace {

std::shared_ptr<koala::Model> loadCpu(const std::string& pipe) {
    koala::LoadOptions lo = koala::defaultLoadOptions();
    lo.device = koala::Device::Cpu;
    lo.dtype = koala::DType::F32;
    return koala::Model::load(kt::fixturePath(pipe), lo);
}

koala::PromptEmbeds encode(koala::Model& m, const std::string& prompt, std::optional<std::string> negative,
                           koala::PromptSyntax syntax) {
    koala::GenerateRequest r = koala::defaultRequest();
    r.prompt = prompt;
    r.negative = negative;
    r.promptSyntax = syntax;
    return koala::ModelAccess::impl(m).encodePrompt(r, true);
}

std::string words(int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s += (i ? " " : "") + std::string(i % 2 ? "koala" : "tree");
    return s;
}

}  // namespace

KT_TEST(a1111_equals_plain_and_diffusers_without_syntax) {
    for (const char* pipe : kt::kPipelines) {
        auto model = loadCpu(pipe);
        auto ref = kt::referenceJson(pipe);
        const std::string file = kt::refFile(pipe);
        const std::string p = ref["prompts"][0], n = ref["prompts"][1];
        auto a = encode(*model, p, n, koala::PromptSyntax::A1111);
        auto b = encode(*model, p, n, koala::PromptSyntax::Plain);
        KT_CHECK(at::equal(a.prompt, b.prompt) && at::equal(a.negative, b.negative));
        KT_CHECK(at::equal(a.pooled, b.pooled) && at::equal(a.negativePooled, b.negativePooled));
        KT_CHECK_REL(a.prompt, kt::loadTensor(file, "encode.prompt_embeds"), 1e-4);
        KT_CHECK_REL(a.negative, kt::loadTensor(file, "encode.negative_prompt_embeds"), 1e-4);
        // The empty prompt and exactly 75 tokens, too.
        for (const std::string& q : {std::string(), words(75)}) {
            auto x = encode(*model, q, std::nullopt, koala::PromptSyntax::A1111);
            auto y = encode(*model, q, std::nullopt, koala::PromptSyntax::Plain);
            KT_CHECK(at::equal(x.prompt, y.prompt) && at::equal(x.pooled, y.pooled));
        }
    }
}

KT_TEST(emphasis_original_keeps_the_mean) {
    auto model = loadCpu("tiny-koala-700m");
    auto plain = encode(*model, "koala astronaut", std::nullopt, koala::PromptSyntax::Plain);
    auto w = encode(*model, "(koala:1.5) astronaut", std::nullopt, koala::PromptSyntax::A1111);
    KT_CHECK(w.prompt.sizes() == plain.prompt.sizes());
    // Per encoder half: z·w then rescaled to the unweighted mean.
    const auto d1 = koala::ModelAccess::impl(*model).text->encoder1->config().hiddenSize;
    for (auto [from, to] : {std::pair<std::int64_t, std::int64_t>{0, d1}, {d1, w.prompt.size(-1)}}) {
        auto zp = plain.prompt.slice(-1, from, to), zw = w.prompt.slice(-1, from, to);
        KT_CHECK_REL(zw.mean(), zp.mean(), 1e-5);
        // Expected: the unweighted chunk with token 1 (koala) x1.5, rescaled to the unweighted mean.
        auto wv = at::ones({1, 77, 1});
        wv[0][1][0] = 1.5;
        auto expect = zp * wv;
        expect = expect * (zp.mean() / expect.mean());
        KT_CHECK_REL(zw, expect, 1e-5);
    }
    // The pooled embedding is not weighted.
    KT_CHECK(at::equal(w.pooled, plain.pooled));
}

KT_TEST(long_prompts_break_and_padding) {
    auto model = loadCpu("tiny-koala-700m");
    auto longP = encode(*model, words(100), std::string("blurry"), koala::PromptSyntax::A1111);
    KT_CHECK_EQ(longP.prompt.size(1), 154);
    KT_CHECK_EQ(longP.negative.size(1), 154);  // padded with the empty prompt's embedding
    auto empty = encode(*model, "", std::nullopt, koala::PromptSyntax::Plain);
    auto blurry = encode(*model, "blurry", std::nullopt, koala::PromptSyntax::Plain);
    KT_CHECK(at::equal(longP.negative.slice(1, 0, 77), blurry.prompt));
    KT_CHECK(at::equal(longP.negative.slice(1, 77, 154), empty.prompt));
    // Plain cuts at 77.
    KT_CHECK_EQ(encode(*model, words(100), std::nullopt, koala::PromptSyntax::Plain).prompt.size(1), 77);
    // No negative prompt: zeros of the prompt's length.
    auto z = encode(*model, words(100), std::nullopt, koala::PromptSyntax::A1111);
    KT_CHECK(z.negative.size(1) == 154 && z.negative.abs().max().item<float>() == 0.0f);
    // BREAK: two chunks, each the plain encoding of its part; the pooled embedding is the first chunk's.
    auto br = encode(*model, "a koala BREAK a tree", std::nullopt, koala::PromptSyntax::A1111);
    auto first = encode(*model, "a koala", std::nullopt, koala::PromptSyntax::Plain);
    auto second = encode(*model, "a tree", std::nullopt, koala::PromptSyntax::Plain);
    KT_CHECK_EQ(br.prompt.size(1), 154);
    KT_CHECK(at::equal(br.prompt.slice(1, 0, 77), first.prompt));
    KT_CHECK(at::equal(br.prompt.slice(1, 77, 154), second.prompt));
    KT_CHECK(at::equal(br.pooled, first.pooled));
    // A whole run with a long prompt and a short negative goes through (the UNet takes any context length).
    koala::GenerateRequest r = koala::defaultRequest();
    r.prompt = words(100) + " BREAK (koala:1.2) [tree]";
    r.negative = "blurry";
    r.steps = 2;
    r.width = r.height = 64;
    auto res = model->generate(r);
    KT_CHECK_EQ(res.images.size(), std::size_t(1));
}

KT_TEST(layout_for_the_prompt_editor) {
    auto tok = koala::PromptTokenizer::load(kt::fixturePath("tiny-koala-700m"));
    auto l = tok->layout("a koala <lora:style:0.5> BREAK a tree");
    KT_CHECK_EQ(l.chunks, 2);
    KT_CHECK_EQ(l.tokens, 75 + 2);
    KT_CHECK_EQ(l.chunkStarts.size(), std::size_t(2));
    KT_CHECK_EQ(l.chunkStarts[1], std::string("a koala <lora:style:0.5> BREAK a tree").find("a tree"));
    // A chunk starts at a word, even where a cut word would take more tokens than the whole one ("koa" is 2
    // tokens, "koala" 1): 80 × "koala " → the second chunk starts at the 76th word.
    std::string koalas;
    for (int i = 0; i < 80; ++i) koalas += "koala ";
    auto k = tok->layout(koalas);
    KT_CHECK_EQ(k.chunks, 2);
    KT_CHECK_EQ(k.chunkStarts.size(), std::size_t(2));
    KT_CHECK_EQ(k.chunkStarts[1], std::size_t(75 * 6));
    auto p = tok->layout("a koala (tree)", koala::PromptSyntax::Plain);
    KT_CHECK_EQ(p.chunks, 1);
    KT_CHECK_EQ(p.tokens, tok->count("a koala (tree)"));
}
