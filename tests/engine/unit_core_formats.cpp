// Enum string round-trips, request validation, PNG text chunks and safetensors writing (engine core).
#include "harness.h"

#include <zlib.h>

#include <fstream>
#include <optional>
#include <sstream>

KT_TEST(enum_names_round_trip) {
    for (auto k : koala::allSchedulers()) {
        koala::SchedulerKind back = koala::SchedulerKind::Default;
        KT_CHECK(koala::fromString(koala::toString(k), back));
        KT_CHECK(back == k);
    }
    koala::DType d;
    KT_CHECK(koala::fromString("FP16", d) && d == koala::DType::F16);
    KT_CHECK(koala::fromString("bf16", d) && d == koala::DType::BF16);
    KT_CHECK(!koala::fromString("int8", d));
    koala::TimestepSpacing s;
    KT_CHECK(koala::fromString("trailing", s) && s == koala::TimestepSpacing::Trailing);
    KT_CHECK_EQ(std::string(koala::toString(koala::SchedulerKind::EulerAncestral)), std::string("euler_a"));
    koala::Device dev;
    KT_CHECK(koala::fromString("cuda", dev) && dev == koala::Device::Cuda);
}

KT_TEST(validation_names_the_problem) {
    auto r = koala::defaultRequest();
    KT_CHECK_EQ(r.steps, 25);
    KT_CHECK_EQ(r.width, 1024);
    koala::validate(r);
    r.height = 1020;
    KT_CHECK_THROWS(koala::validate(r), koala::ErrorKind::InvalidArgument, "multiples of 8");
    r.height = 8192;
    KT_CHECK_THROWS(koala::validate(r), koala::ErrorKind::InvalidArgument, "between 64 and 4096");
    r = koala::defaultRequest();
    r.numImages = 0;
    KT_CHECK_THROWS(koala::validate(r), koala::ErrorKind::InvalidArgument, "number of images");
}

KT_TEST(one_table_of_limits) {
    const koala::Limits& L = koala::kLimits;
    auto r = koala::defaultRequest();
    KT_CHECK_EQ(r.steps, L.defaultSteps);
    KT_CHECK_EQ(r.width, L.defaultSize);
    KT_CHECK(double(r.guidance) == L.defaultGuidance);
    r.steps = L.maxSteps;
    koala::validate(r);
    r.steps = L.maxSteps + 1;
    KT_CHECK_THROWS(koala::validate(r), koala::ErrorKind::InvalidArgument, "steps must be between");
    r = koala::defaultRequest();
    r.guidance = float(L.maxGuidance) + 1;
    KT_CHECK_THROWS(koala::validate(r), koala::ErrorKind::InvalidArgument, "guidance must be between 0 and 30");
    KT_CHECK(koala::validSize(L.minSize) && koala::validSize(L.maxSize) && !koala::validSize(L.maxSize + 8));
    KT_CHECK(!koala::validSize(100) && koala::validSize(104));
    // The resolution rules.
    KT_CHECK(koala::resolveDevice(koala::Device::Auto, true) == koala::Device::Cuda);
    KT_CHECK(koala::resolveDevice(koala::Device::Auto, false) == koala::Device::Cpu);
    KT_CHECK(koala::resolveDevice(koala::Device::Cpu, true) == koala::Device::Cpu);
    KT_CHECK(koala::resolveDevice(koala::Device::Cuda, false) == koala::Device::Cuda);  // refused later, by the load
    KT_CHECK(koala::resolveDType(koala::Device::Cuda, koala::DType::Auto) == koala::DType::F16);
    KT_CHECK(koala::resolveDType(koala::Device::Cpu, koala::DType::Auto) == koala::DType::F32);
    KT_CHECK(koala::resolveVaeDType(koala::Device::Cuda, koala::DType::F16) == koala::DType::BF16);
    KT_CHECK(koala::resolveVaeDType(koala::Device::Cuda, koala::DType::F32) == koala::DType::F32);
    KT_CHECK(koala::resolveVaeDType(koala::Device::Cpu, koala::DType::BF16) == koala::DType::F32);
}

KT_TEST(seeds_are_full_uint64_and_never_wrapped) {
    KT_CHECK(koala::parseSeed("0") == std::optional<std::uint64_t>(0));
    KT_CHECK(koala::parseSeed(" 42 ") == std::optional<std::uint64_t>(42));
    KT_CHECK(koala::parseSeed("18446744073709551615") == std::optional<std::uint64_t>(UINT64_MAX));
    KT_CHECK(!koala::parseSeed("18446744073709551616"));
    KT_CHECK(!koala::parseSeed("9999999999999999999999"));
    KT_CHECK(!koala::parseSeed("-1"));
    KT_CHECK(!koala::parseSeed("+5"));
    KT_CHECK(!koala::parseSeed("12a"));
    KT_CHECK(!koala::parseSeed(""));
    KT_CHECK(!koala::parseSeed("1e5"));
    for (int i = 0; i < 16; ++i) KT_CHECK(koala::randomSeed() <= 0xffffffffull);
    // A run of seeds (one per image) stops at the top of the range instead of wrapping to 0.
    KT_CHECK(koala::seedInRun(5, 3) == std::optional<std::uint64_t>(8));
    KT_CHECK(koala::seedInRun(UINT64_MAX, 0) == std::optional<std::uint64_t>(UINT64_MAX));
    KT_CHECK(koala::seedInRun(UINT64_MAX - 2, 2) == std::optional<std::uint64_t>(UINT64_MAX));
    KT_CHECK(!koala::seedInRun(UINT64_MAX - 2, 3));
    KT_CHECK(!koala::seedInRun(UINT64_MAX, UINT64_MAX));
    KT_CHECK(koala::seedRunFits(0, 0) && koala::seedRunFits(UINT64_MAX, 0) && koala::seedRunFits(UINT64_MAX, 1));
    KT_CHECK(koala::seedRunFits(UINT64_MAX - 63, 64));
    KT_CHECK(!koala::seedRunFits(UINT64_MAX - 62, 64));
    KT_CHECK(koala::seedRunFits(1, UINT64_MAX) && !koala::seedRunFits(2, UINT64_MAX));
}

KT_TEST(png_text_round_trip_including_utf8) {
    koala::Image img;
    img.width = 3;
    img.height = 2;
    img.rgb = {255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30, 40, 50, 60, 70, 80, 90};
    const std::string path = kt::tempDir() + "/t.png";
    koala::writePng(path, img, {{"parameters", "a koala\nSteps: 4, Seed: 7"}, {"koala", "{\"prompt\":\"코알라 🐨\"}"}});
    std::vector<std::pair<std::string, std::string>> text;
    KT_CHECK(koala::readPngText(path, text));
    KT_CHECK_EQ(int(text.size()), 2);
    KT_CHECK_EQ(text[0].second, std::string("a koala\nSteps: 4, Seed: 7"));
    KT_CHECK_EQ(text[1].second, std::string("{\"prompt\":\"코알라 🐨\"}"));
    std::vector<std::pair<std::string, std::string>> none;
    std::ofstream(kt::tempDir() + "/not.png") << "hello";
    KT_CHECK(!koala::readPngText(kt::tempDir() + "/not.png", none));
    KT_CHECK_THROWS(koala::writePng("/nonexistent-dir/x.png", img), koala::ErrorKind::Io, "/nonexistent-dir/x.png");
}

namespace {

std::string be32(std::uint32_t v) { return {char(v >> 24), char(v >> 16), char(v >> 8), char(v)}; }

std::string pngChunk(const std::string& type, const std::string& data) {
    const std::string td = type + data;
    return be32(std::uint32_t(data.size())) + td +
           be32(std::uint32_t(crc32(0, reinterpret_cast<const Bytef*>(td.data()), uInt(td.size()))));
}

std::string deflated(const std::string& raw) {
    uLongf n = compressBound(uLong(raw.size()));
    std::string z(n, '\0');
    KT_CHECK(compress2(reinterpret_cast<Bytef*>(z.data()), &n, reinterpret_cast<const Bytef*>(raw.data()),
                       uLong(raw.size()), 9) == Z_OK);
    z.resize(n);
    return z;
}

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

}  // namespace

// What other tools write: zTXt (Latin-1 by the PNG spec, compressed), compressed iTXt; a zip bomb is refused, a
// chunk cut short ends the reading with what came before kept.
KT_TEST(png_text_chunks_from_other_writers) {
    koala::Image img;
    img.width = 1;
    img.height = 1;
    img.rgb = {1, 2, 3};
    const std::string base = kt::tempDir() + "/base.png";
    koala::writePng(base, img);
    std::string png = slurp(base);
    const std::size_t iend = png.size() - 12;
    KT_CHECK_EQ(png.substr(iend + 4, 4), std::string("IEND"));
    const std::string extra =
        pngChunk("zTXt", std::string("latin", 6) + '\0' + deflated("caf\xe9 au lait")) +
        pngChunk("iTXt", std::string("utf8\0\x01\0en\0\0", 11) + deflated("코알라")) +
        pngChunk("zTXt", std::string("bomb", 5) + '\0' + deflated(std::string((64u << 20) + 1, 'a'))) +
        pngChunk("tEXt", std::string("empty-key-next", 15)) + pngChunk("tEXt", std::string("\0x", 2)) +
        pngChunk("tEXt", std::string("after", 6) + "bomb");
    const std::string withText = png.substr(0, iend) + extra + png.substr(iend);
    const std::string path = kt::tempDir() + "/others.png";
    std::ofstream(path, std::ios::binary) << withText;
    std::vector<std::pair<std::string, std::string>> text;
    KT_CHECK(koala::readPngText(path, text));
    KT_CHECK_EQ(int(text.size()), 4);
    if (text.size() != 4) return;
    for (const auto& [key, value] : text) KT_CHECK(value.size() < 100);  // the bomb's text is not there
    KT_CHECK_EQ(text[0].first, std::string("latin"));
    KT_CHECK_EQ(text[0].second, std::string("caf\xc3\xa9 au lait"));
    KT_CHECK_EQ(text[1].second, std::string("코알라"));
    KT_CHECK_EQ(text[2].first, std::string("empty-key-next"));
    KT_CHECK_EQ(text[3].second, std::string("bomb"));  // the 64 MiB + 1 chunk was dropped, the next one read

    // Cut inside the last text chunk: the chunks before it are still read.
    const std::string cut = kt::tempDir() + "/cut.png";
    std::ofstream(cut, std::ios::binary) << withText.substr(0, iend + extra.size() - 8);
    text.clear();
    KT_CHECK(koala::readPngText(cut, text));
    KT_CHECK_EQ(int(text.size()), 3);
}

KT_TEST(png_text_added_to_an_encoded_png) {
    koala::Image img;
    img.width = 2;
    img.height = 1;
    img.rgb = {1, 2, 3, 4, 5, 6};
    const std::string base = kt::tempDir() + "/plain.png";
    koala::writePng(base, img);
    const std::string png = slurp(base);
    const std::string out = koala::addPngText(png, {{"parameters", "ascii\nSteps: 4"}, {"koala", "caf\xc3\xa9"}});
    KT_CHECK_EQ(out.substr(37, 4), std::string("tEXt"));   // right after IHDR (8 + 25), printable ASCII as tEXt
    KT_CHECK(out.find("iTXtkoala") != std::string::npos);  // anything else as UTF-8 iTXt
    const std::string path = kt::tempDir() + "/added.png";
    std::ofstream(path, std::ios::binary) << out;
    std::vector<std::pair<std::string, std::string>> text;
    KT_CHECK(koala::readPngText(path, text));
    KT_CHECK_EQ(int(text.size()), 2);
    KT_CHECK_EQ(text[1].second, std::string("caf\xc3\xa9"));
    KT_CHECK_THROWS(koala::addPngText("GIF89a", {}), koala::ErrorKind::InvalidArgument, "not an encoded PNG");
    KT_CHECK_THROWS(koala::addPngText(png.substr(0, 20), {}), koala::ErrorKind::InvalidArgument, "IHDR");
}

KT_TEST(safetensors_writer_output_reads_back) {
    koala::FloatTensor t;
    t.shape = {2, 3};
    t.data = {1, 2, 3, 4, 5, 6.5f};
    const std::string path = kt::tempDir() + "/l.safetensors";
    koala::writeSafetensors(path, {{"latents", t}});
    auto back = kt::loadTensor(path, "latents");
    KT_CHECK(back.sizes() == at::IntArrayRef({2, 3}));
    KT_CHECK_EQ(back[1][2].item<float>(), 6.5f);
}

KT_TEST(latent_preview_is_the_fixed_linear_map) {
    std::vector<float> lat(4 * 2 * 2, 0.0f);  // zeros → the bias only
    auto img = koala::latentPreview(lat.data(), 2, 2);
    KT_CHECK_EQ(img.width, 2);
    KT_CHECK_EQ(int(img.rgb.size()), 12);
    KT_CHECK_EQ(int(img.rgb[0]), int(std::lround((0.1084 + 1) * 0.5 * 255)));
    lat[0] = 10.0f;  // channel 0 strongly positive at pixel 0 → bright
    img = koala::latentPreview(lat.data(), 2, 2);
    KT_CHECK_EQ(int(img.rgb[0]), 255);
}

// ---- image metadata (the one schema of koala-cli's and the studio's PNGs) -----------------------------------------
KT_TEST(metadata_koala_chunk_round_trip_and_version) {
    koala::ImageMetadata m;
    m.prompt = "a koala, \"quoted\"\nsecond line";
    m.negative = "";
    m.seed = 18446744073709551615ull;  // the largest seed torch's generator takes: exact, as a string in JSON
    m.steps = 31;
    m.guidance = 6.25;
    m.scheduler = "dpmpp_2m_karras";
    m.spacing = "trailing";
    m.width = 832;
    m.height = 1216;
    m.modelName = "koala-1b-llava-cap";
    m.generator = "test";
    const std::string js = koala::toKoalaMetadata(m, R"({"extra":1})");
    KT_CHECK(js.find("\"version\":1") != std::string::npos);
    KT_CHECK(js.find("\"extra\":1") != std::string::npos);
    auto back = koala::parseKoalaMetadata(js);
    KT_CHECK(back.has_value());
    KT_CHECK_EQ(back->prompt, m.prompt);
    KT_CHECK(back->negative.has_value() && back->negative->empty());
    KT_CHECK(back->seed.has_value() && *back->seed == 18446744073709551615ull);
    KT_CHECK_EQ(back->steps, 31);
    KT_CHECK_EQ(back->scheduler, std::string("dpmpp_2m_karras"));
    KT_CHECK_EQ(back->spacing, std::string("trailing"));
    KT_CHECK_EQ(back->height, 1216);
    KT_CHECK_EQ(back->modelName, m.modelName);
    KT_CHECK_EQ(back->generator, std::string("test"));
    KT_CHECK(!koala::parseKoalaMetadata(R"({"version":2,"params":{"prompt":"x"}})"));
    KT_CHECK(!koala::parseKoalaMetadata(R"({"prompt":"flat","seed":1})"));
    KT_CHECK(!koala::parseKoalaMetadata("{not json"));
}

KT_TEST(metadata_a1111_text_round_trip) {
    koala::ImageMetadata m;
    m.prompt = "masterpiece, a koala: in a tree";
    m.negative = "blurry";
    m.seed = 42;
    m.steps = 20;
    m.guidance = 7;
    m.scheduler = "euler_karras";
    m.width = 1024;
    m.height = 768;
    m.modelName = "odd, name: here";
    m.guidanceRescale = 0.7;
    const std::string text = koala::toA1111Parameters(m);
    KT_CHECK_EQ(text,
                std::string("masterpiece, a koala: in a tree\nNegative prompt: blurry\nSteps: 20, Sampler: Euler, "
                            "Schedule type: Karras, CFG scale: 7, Seed: 42, Size: 1024x768, "
                            "Model: \"odd, name: here\", Guidance rescale: 0.7"));
    auto back = koala::parseA1111Parameters(text);
    KT_CHECK(back.has_value());
    KT_CHECK_EQ(back->prompt, m.prompt);
    KT_CHECK(back->negative && *back->negative == "blurry");
    KT_CHECK(back->seed && *back->seed == 42);
    KT_CHECK_EQ(back->scheduler, std::string("euler_karras"));
    KT_CHECK_EQ(back->modelName, m.modelName);
    KT_CHECK_EQ(back->width, 1024);
    KT_CHECK_EQ(back->height, 768);
    // The older combined sampler name, a random seed, and text that is not A1111's.
    auto old = koala::parseA1111Parameters("x\nSteps: 5, Sampler: DPM++ 2M Karras, CFG scale: 3, Seed: -1");
    KT_CHECK(old && old->scheduler == "dpmpp_2m_karras" && !old->seed);
    KT_CHECK(!koala::parseA1111Parameters("just a caption"));
    KT_CHECK_EQ(koala::schedulerFromA1111("euler a"), std::string("euler_a"));
    KT_CHECK_EQ(koala::schedulerFromA1111("DDIM", "Karras"), std::string("ddim"));
    KT_CHECK_EQ(koala::schedulerFromA1111("Heun"), std::string());
}
