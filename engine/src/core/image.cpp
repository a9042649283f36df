// PNG writing/reading with text chunks (zlib, no Qt, so koala-cli can use it) and the latent preview.
#include "core/atomic_file.h"
#include "core/common.h"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <utility>

namespace koala {
namespace {

void put32(std::string& s, std::uint32_t v) {
    s.push_back(char(v >> 24));
    s.push_back(char(v >> 16));
    s.push_back(char(v >> 8));
    s.push_back(char(v));
}

void chunk(std::string& out, const char* type, const std::string& data) {
    put32(out, std::uint32_t(data.size()));
    std::string td(type, 4);
    td += data;
    out += td;
    put32(out, std::uint32_t(crc32(0, reinterpret_cast<const Bytef*>(td.data()), uInt(td.size()))));
}

bool isPrintableAscii(const std::string& s) {
    for (unsigned char c : s)
        if (c >= 0x80 || (c < 0x20 && c != '\n')) return false;
    return true;
}

std::uint32_t get32(const unsigned char* p) {
    return (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) | p[3];
}

constexpr std::size_t kMaxInflated = 64u << 20;

bool inflateAll(const std::string& in, std::string& out) {
    z_stream zs{};
    if (inflateInit(&zs) != Z_OK) return false;
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    zs.avail_in = uInt(in.size());
    char buf[16384];
    int rc = Z_OK;
    while (rc == Z_OK) {
        zs.next_out = reinterpret_cast<Bytef*>(buf);
        zs.avail_out = sizeof buf;
        rc = inflate(&zs, Z_NO_FLUSH);
        out.append(buf, sizeof buf - zs.avail_out);
        if (out.size() > kMaxInflated) break;  // a text chunk this big is not metadata (nor a zip bomb's output)
    }
    inflateEnd(&zs);
    return rc == Z_STREAM_END && out.size() <= kMaxInflated;
}

// One text chunk: tEXt when the value is printable ASCII (so every reader shows it), otherwise iTXt with UTF-8
// (keyword, 0, compression flag 0, method 0, empty language tag, 0, empty translated keyword, 0, text): what
// AUTOMATIC1111 (PIL) writes too.
void textChunk(std::string& out, const std::string& key, const std::string& value) {
    if (isPrintableAscii(value)) {
        chunk(out, "tEXt", key + std::string(1, '\0') + value);
    } else {
        chunk(out, "iTXt", key + std::string("\0\0\0\0\0", 5) + value);
    }
}

// tEXt and zTXt hold Latin-1 by the PNG specification.
std::string latin1ToUtf8(const std::string& v) {
    std::string utf8;
    utf8.reserve(v.size());
    for (unsigned char c : v) {
        if (c < 0x80) {
            utf8.push_back(char(c));
        } else {
            utf8.push_back(char(0xC0 | (c >> 6)));
            utf8.push_back(char(0x80 | (c & 0x3F)));
        }
    }
    return utf8;
}

// A text chunk's (key, value) in UTF-8; nothing when the chunk is malformed or its compressed text does not inflate.
void readTextChunk(const std::string& type, const std::string& body,
                   std::vector<std::pair<std::string, std::string>>& text) {
    const auto nul = body.find('\0');
    if (nul == std::string::npos || nul == 0) return;
    std::string key = body.substr(0, nul);
    if (type == "tEXt") {
        text.emplace_back(key, latin1ToUtf8(body.substr(nul + 1)));
    } else if (type == "zTXt" && body.size() > nul + 2) {
        std::string v;
        if (inflateAll(body.substr(nul + 2), v)) text.emplace_back(key, latin1ToUtf8(v));
    } else if (type == "iTXt" && body.size() > nul + 3) {
        const bool compressed = body[nul + 1] != 0;
        const std::size_t langEnd = body.find('\0', nul + 3);
        if (langEnd == std::string::npos) return;
        const std::size_t keyEnd = body.find('\0', langEnd + 1);
        if (keyEnd == std::string::npos) return;
        std::string v = body.substr(keyEnd + 1);
        if (compressed) {
            std::string u;
            if (!inflateAll(v, u)) return;
            v = std::move(u);
        }
        text.emplace_back(key, v);
    }
}

const char kPngSignature[] = "\x89PNG\r\n\x1a\n";
constexpr std::uint32_t kMaxTextChunk = 64u << 20;  // a text chunk this big is not metadata

}  // namespace

void writePng(const std::string& path, const Image& image,
              const std::vector<std::pair<std::string, std::string>>& text) {
    if (image.width <= 0 || image.height <= 0 || image.rgb.size() != std::size_t(image.width) * image.height * 3)
        fail(ErrorKind::InvalidArgument, "cannot write " + path + ": the image buffer does not match its size");
    std::string png(kPngSignature, 8);
    std::string ihdr;
    put32(ihdr, std::uint32_t(image.width));
    put32(ihdr, std::uint32_t(image.height));
    ihdr += std::string("\x08\x02\x00\x00\x00", 5);  // 8-bit RGB, deflate, no filter method, no interlace
    chunk(png, "IHDR", ihdr);
    for (const auto& [key, value] : text) textChunk(png, key, value);
    const std::size_t stride = std::size_t(image.width) * 3;
    std::string raw;
    raw.reserve((stride + 1) * image.height);
    for (int y = 0; y < image.height; ++y) {
        raw.push_back('\0');  // filter type none
        raw.append(reinterpret_cast<const char*>(image.rgb.data()) + y * stride, stride);
    }
    uLongf zlen = compressBound(uLong(raw.size()));
    std::string z(zlen, '\0');
    if (compress2(reinterpret_cast<Bytef*>(z.data()), &zlen, reinterpret_cast<const Bytef*>(raw.data()),
                  uLong(raw.size()), 6) != Z_OK)
        fail(ErrorKind::Internal, "zlib failed to compress the image for " + path);
    z.resize(zlen);
    chunk(png, "IDAT", z);
    chunk(png, "IEND", "");
    writeFileAtomically(path, png);
}

std::string addPngText(const std::string& png, const std::vector<std::pair<std::string, std::string>>& text) {
    // IHDR comes first: the signature (8), then length, type, 13 bytes of data and the CRC (25).
    constexpr std::size_t afterIhdr = 8 + 25;
    if (png.size() < afterIhdr || png.compare(0, 8, kPngSignature, 8) != 0 || png.compare(12, 4, "IHDR") != 0 ||
        get32(reinterpret_cast<const unsigned char*>(png.data()) + 8) != 13)
        fail(ErrorKind::InvalidArgument, "not an encoded PNG (no signature and IHDR at its start)");
    std::string chunks;
    for (const auto& [key, value] : text) textChunk(chunks, key, value);
    std::string out;
    out.reserve(png.size() + chunks.size());
    out.append(png, 0, afterIhdr).append(chunks).append(png, afterIhdr, std::string::npos);
    return out;
}

bool readPngText(const std::string& path, std::vector<std::pair<std::string, std::string>>& text, int* width,
                 int* height) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return false;
    char sig[8];
    if (!in.read(sig, 8) || std::memcmp(sig, kPngSignature, 8) != 0) return false;
    in.seekg(0, std::ios::end);
    const auto fileSize = std::uint64_t(in.tellg());
    in.seekg(8);
    // Chunk by chunk: text chunks are read, everything else (the pixels) is skipped with a seek, so that a gallery
    // scan does not read whole images. A chunk cut short ends the reading; what was read before stays.
    if (width) *width = 0;
    if (height) *height = 0;
    unsigned char head[8];
    bool first = true;
    while (in.read(reinterpret_cast<char*>(head), 8)) {
        const std::uint32_t len = get32(head);
        const std::string type(reinterpret_cast<const char*>(head) + 4, 4);
        if (std::exchange(first, false) && type == "IHDR" && len == 13) {  // the size, from the first chunk
            unsigned char ihdr[17];                                        // 13 bytes of data and the CRC
            if (!in.read(reinterpret_cast<char*>(ihdr), sizeof ihdr)) break;
            const std::uint32_t w = get32(ihdr), h = get32(ihdr + 4);
            if (w > 0 && h > 0 && w <= 0x7fffffffu && h <= 0x7fffffffu) {
                if (width) *width = int(w);
                if (height) *height = int(h);
            }
            continue;
        }
        if (type == "IEND") break;
        if ((type != "tEXt" && type != "zTXt" && type != "iTXt") || len > kMaxTextChunk) {
            if (!in.seekg(std::streamoff(len) + 4, std::ios::cur)) break;
            continue;
        }
        if (std::uint64_t(in.tellg()) + len > fileSize) break;  // cut short: nothing allocated for what is not there
        std::string body(len, '\0');
        if (!in.read(body.data(), std::streamsize(len))) break;
        in.ignore(4);  // the CRC (not checked: a damaged chunk's text is still worth showing)
        readTextChunk(type, body, text);
    }
    return true;
}

Image latentPreview(const float* latents, int height, int width) {
    // SDXL latent → RGB factors (as published with ComfyUI's latent formats); output in [-1, 1].
    static const float kFactors[4][3] = {{0.3651f, 0.4232f, 0.4341f},
                                         {-0.2533f, -0.0042f, 0.1068f},
                                         {0.1076f, 0.1111f, -0.0362f},
                                         {-0.3165f, -0.2492f, -0.2188f}};
    static const float kBias[3] = {0.1084f, -0.0175f, -0.0011f};
    Image img;
    img.width = width;
    img.height = height;
    img.rgb.resize(std::size_t(width) * height * 3);
    const std::size_t plane = std::size_t(width) * height;
    for (std::size_t i = 0; i < plane; ++i) {
        for (int c = 0; c < 3; ++c) {
            float v = kBias[c];
            for (int k = 0; k < 4; ++k) v += latents[k * plane + i] * kFactors[k][c];
            float u = std::clamp((v + 1.0f) * 0.5f, 0.0f, 1.0f);
            img.rgb[i * 3 + c] = std::uint8_t(std::lround(u * 255.0f));
        }
    }
    return img;
}

}  // namespace koala
