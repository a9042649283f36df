// Fuzz target: a PNG from anywhere, as the engine reads it (engine/src/core/metadata.cpp, image_io.cpp): the
// tEXt/iTXt/zTXt chunk reader (koala::readPngText) and the classification of the chunks into koala / A1111 /
// ComfyUI metadata (koala::readImageMetadata, koala::interpretMetadata). The input is the file.
#include "fuzz_util.h"

#include "koala/engine.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const std::string path = fuzz::scratchDir() + "/input.png";
    fuzz::writeFile(path, data, size);
    try {
        std::vector<std::pair<std::string, std::string>> text;
        if (koala::readPngText(path, text)) (void)koala::interpretMetadata(text);
    } catch (const koala::Error&) {
    } catch (const std::exception& e) {
        fuzz::unexpected("png_metadata", e);
    }
    try {
        auto r = koala::readImageMetadata(path);
        (void)koala::toString(r.source);
    } catch (const koala::Error&) {
    } catch (const std::exception& e) {
        fuzz::unexpected("png_metadata", e);
    }
    return 0;
}
