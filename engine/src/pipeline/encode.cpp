// Prompt encoding, as diffusers' StableDiffusionXLPipeline.encode_prompt computes it (docs/sdxl-pipeline.md
// section 3): both encoders' penultimate hidden states concatenated on features, the pooled projection of the second.
//
// Under the A1111 prompt syntax (docs/features-spec.md section 4; AUTOMATIC1111's sd_hijack_clip.py and
// sd_emphasis.py "Original"): <lora:> tags removed, the attention syntax parsed, each encoder's text cut into
// 77-token chunks (text/prompt_syntax.h), each chunk encoded alone, weighted (z *= w, then z *= mean(z_before) /
// mean(z_after)) and the chunks concatenated on the token axis; the pooled embedding is the second encoder's of the
// first chunk, unweighted. A side with fewer chunks (encoder 1 vs 2, prompt vs negative) is padded with the empty
// prompt's 77-token embedding. A chunk whose weights are all 1 skips the emphasis, so a prompt of at most 75 tokens
// without syntax gives diffusers' embedding bit for bit.
#include "pipeline/model_impl.h"

#include "core/common.h"
#include "text/prompt_syntax.h"

#include <c10/core/GradMode.h>

namespace koala {
namespace {

at::Tensor idsTensor(const std::vector<int>& ids) {
    std::vector<std::int64_t> v(ids.begin(), ids.end());
    return at::tensor(v, at::kLong).unsqueeze(0);
}

struct Encoded {
    std::vector<at::Tensor> chunks;  // [1,77,D] each
    at::Tensor pooled;               // [1,P] (second encoder only)
};

// Which hidden state a pipeline conditions on: SDXL the raw penultimate layer (clipSkip −1), Stable Diffusion
// last_hidden_state (clipSkip 0) or, with diffusers' clip_skip c ≥ 1, final_layer_norm(hidden_states[-(c+1)]).
at::Tensor encodeIds(const models::ClipTextEncoder& enc, const at::Tensor& ids, int clipSkip,
                     models::ClipTextOutput* full = nullptr) {
    auto o = enc.forward(ids, std::max(clipSkip - 1, 0));
    if (full) *full = o;
    if (clipSkip < 0) return o.hiddenPenultimate;
    if (clipSkip == 0) return o.lastHiddenState;
    return enc.finalLayerNorm(o.hiddenPenultimate);
}

Encoded encodeChunks(const models::ClipTextEncoder& enc, const std::vector<text::TokenChunk>& chunks,
                     const at::Device& device, int clipSkip = -1) {
    c10::NoGradGuard noGrad;
    Encoded e;
    for (std::size_t i = 0; i < chunks.size(); ++i) {
        models::ClipTextOutput o;
        at::Tensor z = encodeIds(enc, idsTensor(chunks[i].ids).to(device), clipSkip, &o);
        if (!chunks[i].allOnes()) {
            // sd_emphasis.EmphasisOriginal.after_transformers
            at::Tensor w = at::tensor(chunks[i].weights, at::kFloat).to(z.device(), z.scalar_type());
            at::Tensor originalMean = z.mean();
            z = z * w.reshape({1, -1, 1}).expand(z.sizes());
            at::Tensor newMean = z.mean();
            z = z * (originalMean / newMean);
        }
        e.chunks.push_back(z);
        if (i == 0) e.pooled = o.textEmbeds;
    }
    return e;
}

// StableDiffusionPipeline.encode_prompt: one CLIPTextModel, last_hidden_state (clip_skip for the prompt only, as
// diffusers), no pooled embedding; the negative defaults to "" and is always encoded. Under the A1111 syntax the
// same chunking and emphasis as for SDXL, with one encoder.
PromptEmbeds encodePromptSd(TextStack& t, const GenerateRequest& r, bool guidance, const at::Device& device) {
    const models::ClipTextEncoder& enc = *t.encoder1;
    const bool a1111 = r.promptSyntax == PromptSyntax::A1111;
    if (r.clipSkip < 0 || r.clipSkip >= enc.config().numLayers)
        fail(ErrorKind::InvalidArgument, "clip skip " + std::to_string(r.clipSkip) + " is out of range for a " +
                                             std::to_string(enc.config().numLayers) + "-layer text encoder");
    at::Tensor emptyEmbeds;
    auto emptyChunk = [&]() {
        if (!emptyEmbeds.defined())
            emptyEmbeds = encodeIds(enc, idsTensor(t.tokenizer1->encodePadded("")).to(device), 0);
        return emptyEmbeds;
    };
    auto encode = [&](const std::string& p, int clipSkip) {
        if (!a1111) return encodeIds(enc, idsTensor(t.tokenizer1->encodePadded(p)).to(device), clipSkip);
        const std::string s = text::extractLoraTags(p, nullptr);
        Encoded e = encodeChunks(enc, text::chunkPrompt(*t.tokenizer1, s).chunks, device, clipSkip);
        return e.chunks.size() == 1 ? e.chunks[0] : at::cat(e.chunks, 1);
    };
    PromptEmbeds e;
    e.prompt = encode(r.prompt, r.clipSkip);
    if (guidance) {
        e.negative = encode(r.negative.value_or(""), 0);
        const std::int64_t lp = e.prompt.size(1), ln = e.negative.size(1);
        if (lp != ln) {
            at::Tensor& shorter = lp < ln ? e.prompt : e.negative;
            std::vector<at::Tensor> parts{shorter};
            for (std::int64_t n = std::min(lp, ln); n < std::max(lp, ln); n += 77)
                parts.push_back(emptyChunk().to(shorter.scalar_type()));
            shorter = at::cat(parts, 1);
        }
    }
    return e;
}

}  // namespace

PromptEmbeds ModelImpl::encodePrompt(const GenerateRequest& r, bool guidance) {
    auto& t = *text;
    if (!t.encoder2) {  // Stable Diffusion 1.5 / 2.x
        c10::NoGradGuard noGrad;
        const bool parkedSd = memory == MemoryMode::Low && device.is_cuda();
        if (parkedSd) t.encoder1->to(device, dtype);
        PromptEmbeds e = encodePromptSd(t, r, guidance, device);
        if (parkedSd) t.encoder1->to(at::kCPU, dtype);
        return e;
    }
    const bool parked = memory == MemoryMode::Low && device.is_cuda();
    if (parked) {
        t.encoder1->to(device, dtype);
        t.encoder2->to(device, dtype);
    }
    auto encodePair = [&](const std::string& p1, const std::string& p2, at::Tensor& embeds, at::Tensor& pooled) {
        auto o1 = t.encoder1->forward(idsTensor(t.tokenizer1->encodePadded(p1)).to(device));
        auto o2 = t.encoder2->forward(idsTensor(t.tokenizer2->encodePadded(p2)).to(device));
        embeds = at::cat({o1.hiddenPenultimate, o2.hiddenPenultimate.to(o1.hiddenPenultimate.scalar_type())}, -1);
        pooled = o2.textEmbeds;
    };
    at::Tensor emptyEmbeds;  // the empty prompt's [1,77,D1+D2], for padding (A1111 only)
    auto emptyChunk = [&]() {
        if (!emptyEmbeds.defined()) {
            at::Tensor pooledUnused;
            encodePair("", "", emptyEmbeds, pooledUnused);
        }
        return emptyEmbeds;
    };
    // A1111: chunks of both encoders, padded to the same count with the empty prompt's halves.
    auto encodeA1111 = [&](const std::string& p1, const std::string& p2, at::Tensor& embeds, at::Tensor& pooled) {
        const std::string s1 = text::extractLoraTags(p1, nullptr), s2 = text::extractLoraTags(p2, nullptr);
        Encoded e1 = encodeChunks(*t.encoder1, text::chunkPrompt(*t.tokenizer1, s1).chunks, device);
        Encoded e2 = encodeChunks(*t.encoder2, text::chunkPrompt(*t.tokenizer2, s2).chunks, device);
        const std::int64_t d1 = e1.chunks[0].size(-1);
        std::vector<at::Tensor> parts;
        for (std::size_t i = 0; i < std::max(e1.chunks.size(), e2.chunks.size()); ++i) {
            at::Tensor a = i < e1.chunks.size() ? e1.chunks[i] : emptyChunk().slice(-1, 0, d1);
            at::Tensor b = i < e2.chunks.size() ? e2.chunks[i].to(a.scalar_type()) : emptyChunk().slice(-1, d1);
            parts.push_back(at::cat({a, b}, -1));
        }
        embeds = parts.size() == 1 ? parts[0] : at::cat(parts, 1);
        pooled = e2.pooled;
    };
    const bool a1111 = r.promptSyntax == PromptSyntax::A1111;
    auto encode = [&](const std::string& p1, const std::string& p2, at::Tensor& embeds, at::Tensor& pooled) {
        if (a1111)
            encodeA1111(p1, p2, embeds, pooled);
        else
            encodePair(p1, p2, embeds, pooled);
    };
    PromptEmbeds e;
    encode(r.prompt, r.prompt2.value_or(r.prompt), e.prompt, e.pooled);
    if (guidance) {
        if (!r.negative && forceZerosForEmptyPrompt) {
            e.negative = at::zeros_like(e.prompt);
            e.negativePooled = at::zeros_like(e.pooled);
        } else {
            const std::string n1 = r.negative.value_or("");
            encode(n1, r.negative2.value_or(n1), e.negative, e.negativePooled);
        }
        // Prompt and negative of different chunk counts: the shorter padded with the empty prompt's embedding.
        const std::int64_t lp = e.prompt.size(1), ln = e.negative.size(1);
        if (lp != ln) {
            at::Tensor& shorter = lp < ln ? e.prompt : e.negative;
            std::vector<at::Tensor> parts{shorter};
            for (std::int64_t n = std::min(lp, ln); n < std::max(lp, ln); n += 77)
                parts.push_back(emptyChunk().to(shorter.scalar_type()));
            shorter = at::cat(parts, 1);
        }
    }
    if (parked) {
        t.encoder1->to(at::kCPU, dtype);
        t.encoder2->to(at::kCPU, dtype);
    }
    return e;
}

}  // namespace koala
