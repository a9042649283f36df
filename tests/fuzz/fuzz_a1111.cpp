// Fuzz target: the metadata texts (engine/src/core/metadata.cpp): AUTOMATIC1111's "parameters" text
// (koala::parseA1111Parameters) and the "koala" JSON chunk (koala::parseKoalaMetadata), alone and as PNG chunks
// (koala::interpretMetadata). What parses must write back and parse again (toA1111Parameters / toKoalaMetadata)
// without an exception.
#include "fuzz_util.h"

#include "koala/engine.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    try {
        if (auto m = koala::parseA1111Parameters(text)) {
            (void)koala::parseA1111Parameters(koala::toA1111Parameters(*m));
            (void)koala::parseKoalaMetadata(koala::toKoalaMetadata(*m));
        }
        if (auto m = koala::parseKoalaMetadata(text)) {
            (void)koala::parseKoalaMetadata(koala::toKoalaMetadata(*m));
            (void)koala::parseA1111Parameters(koala::toA1111Parameters(*m));
        }
        (void)koala::interpretMetadata({{"parameters", text}});
        (void)koala::interpretMetadata({{"koala", text}, {"parameters", text}});
        (void)koala::interpretMetadata({{"prompt", text}, {"workflow", text}});
        auto [sampler, schedule] = koala::a1111SamplerOf(text);
        (void)koala::schedulerFromA1111(text, schedule);
    } catch (const koala::Error&) {
    } catch (const std::exception& e) {
        fuzz::unexpected("a1111", e);
    }
    return 0;
}
