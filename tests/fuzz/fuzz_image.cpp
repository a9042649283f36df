// Fuzz target: an image file from anywhere as img2img and inpainting read it (engine/src/core/image_io.cpp):
// koala::readImage through libpng / libjpeg-turbo (PNG: every colour type and depth, palette, tRNS, interlacing;
// JPEG: baseline, progressive, grey) as RGB and as the alpha channel of a mask. Bad input must give koala::Error
// naming the file; a decoded image has the size it says; a header claiming more pixels than PIL's bomb limit is
// refused before any allocation. The input is the file (its first bytes choose the decoder).
#include "fuzz_util.h"

#include "koala/engine.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const std::string path = fuzz::scratchDir() + "/input.img";
    fuzz::writeFile(path, data, size);
    for (const auto channel : {koala::ImageChannel::Rgb, koala::ImageChannel::Alpha}) {
        fuzz::guarded<koala::Error>("image", [&] {
            const koala::Image img = koala::readImage(path, channel);
            if (img.width <= 0 || img.height <= 0 ||
                img.rgb.size() != std::size_t(img.width) * std::size_t(img.height) * 3) {
                std::fprintf(stderr, "fuzz image: decoded %dx%d with %zu bytes\n", img.width, img.height,
                             img.rgb.size());
                std::abort();
            }
        });
    }
    return 0;
}
