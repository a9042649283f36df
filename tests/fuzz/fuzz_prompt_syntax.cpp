// Fuzz target: AUTOMATIC1111's prompt syntax (engine/src/text/prompt_syntax.cpp): the attention parser, <lora:...>
// tags and the 75-token chunking with the comma back-off, on the fixture tokenizer. Checks the invariants the
// pipeline relies on: tag ranges inside the text, 77 ids and 77 weights per chunk, chunk offsets inside the text.
#include "fuzz_util.h"

#include "koala/engine.h"
#include "text/prompt_syntax.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    namespace text = koala::text;
    static const auto tok = text::ClipTokenizer::load(KOALA_FUZZ_FIXTURES "/tiny-koala-700m/tokenizer");
    const std::string input(reinterpret_cast<const char*>(data), size);
    try {
        auto runs = text::parsePromptAttention(input);
        if (runs.empty()) std::abort();
        std::vector<text::LoraTag> tags;
        const std::string rest = text::extractLoraTags(input, &tags);
        for (const auto& t : tags)
            if (t.begin > t.end || t.end > input.size()) {
                std::fprintf(stderr, "lora tag [%zu,%zu) outside the text (%zu bytes)\n", t.begin, t.end, input.size());
                std::abort();
            }
        auto chunked = text::chunkPrompt(*tok, rest, true);
        for (const auto& c : chunked.chunks)
            if (c.ids.size() != 77 || c.weights.size() != 77) std::abort();
        for (std::size_t s : chunked.chunkStarts)
            if (s > rest.size()) {
                std::fprintf(stderr, "chunk start %zu outside the text (%zu bytes)\n", s, rest.size());
                std::abort();
            }
        auto plain = text::plainChunk(*tok, input);
        if (plain.ids.size() != 77) std::abort();
    } catch (const koala::Error&) {
    } catch (const std::exception& e) {
        fuzz::unexpected("prompt_syntax", e);
    }
    return 0;
}
