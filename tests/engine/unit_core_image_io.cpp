// img2img / inpainting in the core: image files, sha256, PIL's LANCZOS identity, steps after strength and the
// request rules validate() applies to image requests (each a one-line koala::Error naming the field).
#include "harness.h"

#include "core/image_io.h"

#include <zlib.h>

#include <fstream>

namespace {

koala::Image solid(int w, int h, std::uint8_t v) {
    koala::Image im;
    im.width = w;
    im.height = h;
    im.rgb.assign(std::size_t(w) * h * 3, v);
    return im;
}

koala::GenerateRequest imageRequest() {
    koala::GenerateRequest r = koala::defaultRequest();
    r.prompt = "x";
    r.steps = 10;
    r.initImage = solid(72, 56, 128);
    return r;
}

}  // namespace

KT_TEST(sha256_of_known_content) {
    const std::string f = kt::tempDir() + "/abc.txt";
    std::ofstream(f, std::ios::binary) << "abc";
    KT_CHECK_EQ(koala::fileSha256(f), std::string("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    const std::string e = kt::tempDir() + "/empty.txt";
    std::ofstream(e).close();
    KT_CHECK_EQ(koala::fileSha256(e), std::string("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    KT_CHECK_THROWS(koala::fileSha256("/nonexistent/file"), koala::ErrorKind::Io, "/nonexistent/file");
}

KT_TEST(read_image_errors_name_the_file) {
    KT_CHECK_THROWS(koala::readImage("/nonexistent/a.png"), koala::ErrorKind::Io, "/nonexistent/a.png");
    const std::string empty = kt::tempDir() + "/empty.png";
    std::ofstream(empty).close();
    KT_CHECK_THROWS(koala::readImage(empty), koala::ErrorKind::Io, "is empty");
    const std::string text = kt::tempDir() + "/text.png";
    std::ofstream(text) << "not an image";
    KT_CHECK_THROWS(koala::readImage(text), koala::ErrorKind::Io, "not a PNG or JPEG");
    const std::string trunc = kt::tempDir() + "/truncated.png";
    std::ofstream(trunc, std::ios::binary) << std::string("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16);
    if (koala::imageFormatsSupported().find("png") != std::string::npos)
        KT_CHECK_THROWS(koala::readImage(trunc), koala::ErrorKind::Io, trunc);
}

// A header that claims more pixels than PIL's decompression-bomb limit is refused before anything is allocated
// (10^10 pixels here: 40 GB of RGBA), as diffusers' load_image (PIL) refuses it.
KT_TEST(read_image_refuses_a_decompression_bomb_header) {
    if (koala::imageFormatsSupported().find("png") == std::string::npos) kt::skip("built without libpng");
    auto be32 = [](std::uint32_t v) { return std::string{char(v >> 24), char(v >> 16), char(v >> 8), char(v)}; };
    auto chunk = [&](const std::string& type, const std::string& data) {
        const std::string td = type + data;
        return be32(std::uint32_t(data.size())) + td +
               be32(std::uint32_t(crc32(0, reinterpret_cast<const Bytef*>(td.data()), uInt(td.size()))));
    };
    const std::string ihdr = be32(100000) + be32(100000) + std::string("\x08\x02\x00\x00\x00", 5);
    const std::string f = kt::tempDir() + "/bomb.png";
    std::ofstream(f, std::ios::binary) << std::string("\x89PNG\r\n\x1a\n", 8) + chunk("IHDR", ihdr) +
                                              chunk("IDAT", std::string(16, '\0')) + chunk("IEND", "");
    KT_CHECK_THROWS(koala::readImage(f), koala::ErrorKind::Io, "100000x100000 pixels");
    KT_CHECK_THROWS(koala::readImage(f), koala::ErrorKind::Io, "decompression-bomb");
}

// A JPEG that ends before its image does is refused, as PIL refuses it ("image file is truncated"): libjpeg would
// fill the rest in grey, and 237 bytes declaring 1544x47360 pixels took 30 s (found by fuzz_image).
KT_TEST(read_image_refuses_a_truncated_jpeg) {
    if (koala::imageFormatsSupported().find("jpeg") == std::string::npos) kt::skip("built without libjpeg");
    const std::string f = KOALA_TEST_DATA "/../fuzz/regressions/image/truncated-progressive-jpeg-1544x47360";
    KT_CHECK_THROWS(koala::readImage(f), koala::ErrorKind::Io, "truncated");
}

// Transparency from tRNS survives the decoder skipping every other ancillary chunk: a 4-bit palette whose tRNS makes
// entry 0 transparent and entry 1 half so (fuzz seed palette4_trns_4x3.png: pixel (x, y) = entry (x + y) % 3).
KT_TEST(read_image_keeps_trns_transparency) {
    if (koala::imageFormatsSupported().find("png") == std::string::npos) kt::skip("built without libpng");
    const std::string f = KOALA_TEST_DATA "/../fuzz/corpus/image/palette4_trns_4x3.png";
    const koala::Image alpha = koala::readImage(f, koala::ImageChannel::Alpha);
    KT_CHECK_EQ(alpha.width, 4);
    KT_CHECK_EQ(int(alpha.rgb[0]), 0);
    KT_CHECK_EQ(int(alpha.rgb[3]), 128);
    KT_CHECK_EQ(int(alpha.rgb[6]), 255);
    const koala::Image rgb = koala::readImage(f);
    KT_CHECK_EQ(int(rgb.rgb[3]), 0);  // entry 1 is green
    KT_CHECK_EQ(int(rgb.rgb[4]), 255);
}

KT_TEST(png_round_trip_through_our_writer) {
    if (koala::imageFormatsSupported().find("png") == std::string::npos) kt::skip("built without libpng");
    koala::Image im;
    im.width = 5;
    im.height = 3;
    for (int i = 0; i < 45; ++i) im.rgb.push_back(std::uint8_t(i * 5));
    const std::string f = kt::tempDir() + "/rt.png";
    koala::writePng(f, im);
    auto back = koala::readImage(f);
    KT_CHECK_EQ(back.width, 5);
    KT_CHECK_EQ(back.height, 3);
    KT_CHECK(back.rgb == im.rgb);
    auto alpha = koala::readImage(f, koala::ImageChannel::Alpha);  // no alpha: opaque
    for (auto v : alpha.rgb) KT_CHECK_EQ(int(v), 255);
}

KT_TEST(lanczos_keeps_size_and_constant_images) {
    auto im = solid(101, 70, 77);
    auto same = koala::resizeLanczos(im, 101, 70);
    KT_CHECK(same.rgb == im.rgb);
    auto down = koala::resizeLanczos(im, 96, 64);
    KT_CHECK_EQ(down.width, 96);
    for (auto v : down.rgb) KT_CHECK_EQ(int(v), 77);  // normalised coefficients: a constant stays constant
}

KT_TEST(steps_after_strength_truncate_like_python) {
    KT_CHECK_EQ(koala::img2imgSteps(50, 0.58), 28);  // 50 * 0.58 = 28.999999999999996
    KT_CHECK_EQ(koala::img2imgSteps(10, 0.7), 7);    // 7.000000000000001
    KT_CHECK_EQ(koala::img2imgSteps(10, 0.3), 3);
    KT_CHECK_EQ(koala::img2imgSteps(100, 0.29), 28);
    KT_CHECK_EQ(koala::img2imgSteps(3, 0.2), 0);
    KT_CHECK_EQ(koala::img2imgSteps(8, 1.0), 8);
}

KT_TEST(image_requests_are_validated_in_one_line) {
    auto r = imageRequest();
    koala::validate(r);  // 72x56: below text-to-image's 64-pixel minimum, fine for an image request
    r.strength = 0.0;
    KT_CHECK_THROWS(koala::validate(r), koala::ErrorKind::InvalidArgument, "strength must be greater than 0");
    r.strength = 1.5;
    KT_CHECK_THROWS(koala::validate(r), koala::ErrorKind::InvalidArgument, "at most 1");
    r.strength = 0.05;
    KT_CHECK_THROWS(koala::validate(r), koala::ErrorKind::InvalidArgument, "leaves no denoising step");
    r.strength = 0.5;
    r.mask = solid(73, 56, 255);
    KT_CHECK_THROWS(koala::validate(r), koala::ErrorKind::InvalidArgument, "must be the same size");
    r.mask = solid(72, 56, 255);
    r.width = 72;
    r.height = 56;
    koala::validate(r);
    r.width = 100;
    KT_CHECK_THROWS(koala::validate(r), koala::ErrorKind::InvalidArgument, "multiples of 8");
    r.width = 72;
    r.maskBlur = -1;
    KT_CHECK_THROWS(koala::validate(r), koala::ErrorKind::InvalidArgument, "mask blur");
    r.maskBlur = 0;
    r.initImage = koala::Image{};
    KT_CHECK_THROWS(koala::validate(r), koala::ErrorKind::InvalidArgument, "init image is empty");
    r.initImage.reset();
    KT_CHECK_THROWS(koala::validate(r), koala::ErrorKind::InvalidArgument, "a mask needs an init image");
    auto tiny = imageRequest();
    tiny.initImage = solid(7, 30, 1);  // rounds down to 0 pixels wide
    KT_CHECK_THROWS(koala::validate(tiny), koala::ErrorKind::InvalidArgument, "out of range");
    // Every message is one line.
    try {
        koala::validate(tiny);
    } catch (const koala::Error& e) {
        KT_CHECK(std::string(e.what()).find('\n') == std::string::npos);
    }
}
