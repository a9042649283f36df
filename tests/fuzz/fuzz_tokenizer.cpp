// Fuzz target: the CLIP tokenizer (engine/src/text/tokenizer.cpp) with arbitrary bytes as the prompt (invalid UTF-8,
// NULs, huge runs), on the fixture tokenizer tests/data/fixtures/tiny-koala-700m/tokenizer (SDXL's vocabulary).
// Every id must be inside the vocabulary; the padded form has exactly the asked length.
#include "fuzz_util.h"

#include "koala/engine.h"
#include "text/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const auto tok = koala::text::ClipTokenizer::load(KOALA_FUZZ_FIXTURES "/tiny-koala-700m/tokenizer");
    const std::string text(reinterpret_cast<const char*>(data), size);
    try {
        const int vocab = tok->vocabSize();
        for (int id : tok->encode(text))
            if (id < 0 || id >= vocab) {
                std::fprintf(stderr, "token id %d outside the vocabulary (%d)\n", id, vocab);
                std::abort();
            }
        auto padded = tok->encodePadded(text, 77);
        if (padded.size() != 77 || padded.front() != tok->bosId()) std::abort();
    } catch (const koala::Error&) {
    } catch (const std::exception& e) {
        fuzz::unexpected("tokenizer", e);
    }
    return 0;
}
