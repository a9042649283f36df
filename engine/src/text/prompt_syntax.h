// AUTOMATIC1111's prompt syntax (internal, no LibTorch): the attention parser (modules/prompt_parser.py
// parse_prompt_attention), `<lora:NAME:WEIGHT>` tags (modules/extra_networks.py) and the 75-token chunking with the
// comma back-off (modules/sd_hijack_clip.py). The emphasis itself (weights applied to the encoder output) is in
// pipeline/encode.cpp. Spec: docs/features-spec.md section 4.
#pragma once

#include "text/tokenizer.h"

#include <cstddef>
#include <string>
#include <vector>

namespace koala::text {

// One run of text with its weight; weight -1 with text "BREAK" is a chunk break (as A1111 marks it).
struct WeightedText {
    std::string text;
    double weight = 1.0;
    bool operator==(const WeightedText& o) const { return text == o.text && weight == o.weight; }
};

// parse_prompt_attention, exactly: `(x)` ×1.1, `[x]` ÷1.1, `(x:w)` ×w, escapes `\( \) \[ \] \\`, a lone `\` dropped,
// unmatched brackets close at the end, BREAK (whole word, with the spaces around it) splits, equal-weight runs
// merge, an empty result is [("", 1)]. A weight A1111's float() would refuse ("1.2.3") is kept as literal text here
// (A1111 raises).
std::vector<WeightedText> parsePromptAttention(const std::string& text);

// `<lora:NAME>`, `<lora:NAME:WEIGHT>` (and `<lyco:...>`) found in a prompt, removed from the text as A1111 does
// (the tag only; surrounding spaces stay).
struct LoraTag {
    std::string name;
    double weight = 1.0;
    std::size_t begin = 0, end = 0;  // byte range of the tag in the original text
};
std::string extractLoraTags(const std::string& text, std::vector<LoraTag>* tags);

// A1111's chunks for one encoder: each 77 ids ([BOS] + 75 + [EOS], padding with EOS then the tokenizer's pad id
// after the first EOS) and 77 multipliers (1 on BOS/EOS/padding).
struct TokenChunk {
    std::vector<int> ids;
    std::vector<float> weights;
    bool allOnes() const;
};
struct ChunkedPrompt {
    std::vector<TokenChunk> chunks;
    int tokenCount = 0;  // A1111's token_count: 75 per full chunk plus the tokens of the last one
    // Byte offset in the text where each chunk starts (the first is 0); only with `withOffsets`.
    std::vector<std::size_t> chunkStarts;
};
constexpr int kChunkLength = 75;
constexpr int kCommaBacktrack = 20;  // opts.comma_padding_backtrack
// `text` must already be free of LoRA tags (offsets refer to the text given).
ChunkedPrompt chunkPrompt(const ClipTokenizer& tokenizer, const std::string& text, bool withOffsets = false);

// Diffusers' plain tokenization as one chunk (literal text, cut at 77), all weights 1.
TokenChunk plainChunk(const ClipTokenizer& tokenizer, const std::string& text);

}  // namespace koala::text
