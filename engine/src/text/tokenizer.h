// Exact CLIP byte-level BPE tokenizer (internal, no LibTorch). Reproduces transformers' CLIPTokenizer ids:
// added special tokens split out first, then NFC + whitespace collapse + strip + Unicode lowercase, the CLIP
// pre-tokenizer regex, byte-to-unicode, BPE with "</w>" end-of-word suffix.
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace koala::text {

class ClipTokenizer {
public:
    // Loads <dir>/vocab.json + merges.txt, or <dir>/tokenizer.json, plus the added/special tokens of the folder
    // (tokenizer_config.json `added_tokens_decoder`, special_tokens_map.json, tokenizer.json `added_tokens`): in
    // SDXL's tokenizer_2 "!" is the pad token and a special token (id 0). Throws koala::Error(ModelFormat) naming
    // the file.
    static std::shared_ptr<ClipTokenizer> load(const std::string& dir);

    // Token ids without start/end tokens, without truncation.
    std::vector<int> encode(const std::string& text) const;
    // [bos] + encode(text)[:maxLength-2] + [eos], padded on the right with padId() to maxLength.
    std::vector<int> encodePadded(const std::string& text, int maxLength = 77) const;

    int bosId() const { return m_bos; }
    int eosId() const { return m_eos; }
    int padId() const { return m_pad; }
    int vocabSize() const;

    ~ClipTokenizer();
    ClipTokenizer(const ClipTokenizer&) = delete;
    ClipTokenizer& operator=(const ClipTokenizer&) = delete;

private:
    ClipTokenizer();
    struct Impl;
    std::unique_ptr<Impl> m_impl;
    int m_bos = 49406, m_eos = 49407, m_pad = 49407;
};

}  // namespace koala::text
