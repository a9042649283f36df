// PNG writing/reading with text chunks (zlib, no Qt, so koala-cli can use it) and the latent preview.
#include "core/atomic_file.h"
#include "core/common.h"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>

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

bool isLatin1Printable(const std::string& s) {
    for (unsigned char c : s)
        if (c >= 0x80 || (c < 0x20 && c != '\n')) return false;
    return true;
}

std::uint32_t get32(const unsigned char* p) {
    return (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) | p[3];
}

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
        if (out.size() > (64u << 20)) break;  // a text chunk this big is not metadata
    }
    inflateEnd(&zs);
    return rc == Z_STREAM_END;
}

}  // namespace

void writePng(const std::string& path, const Image& image,
              const std::vector<std::pair<std::string, std::string>>& text) {
    if (image.width <= 0 || image.height <= 0 || image.rgb.size() != std::size_t(image.width) * image.height * 3)
        fail(ErrorKind::InvalidArgument, "cannot write " + path + ": the image buffer does not match its size");
    std::string png("\x89PNG\r\n\x1a\n", 8);
    std::string ihdr;
    put32(ihdr, std::uint32_t(image.width));
    put32(ihdr, std::uint32_t(image.height));
    ihdr += std::string("\x08\x02\x00\x00\x00", 5);  // 8-bit RGB, deflate, no filter method, no interlace
    chunk(png, "IHDR", ihdr);
    for (const auto& [key, value] : text) {
        if (isLatin1Printable(value)) {
            chunk(png, "tEXt", key + std::string(1, '\0') + value);
        } else {  // UTF-8 needs iTXt: keyword, 0, compression flag 0, method 0, empty language, 0, empty key, 0
            chunk(png, "iTXt", key + std::string("\0\0\0\0\0", 5) + value);
        }
    }
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

bool readPngText(const std::string& path, std::vector<std::pair<std::string, std::string>>& text) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return false;
    std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (data.size() < 8 || data.compare(0, 8, std::string("\x89PNG\r\n\x1a\n", 8)) != 0) return false;
    std::size_t pos = 8;
    while (pos + 12 <= data.size()) {
        auto p = reinterpret_cast<const unsigned char*>(data.data() + pos);
        std::uint32_t len = get32(p);
        if (len > data.size() - pos - 12) break;
        std::string type(data, pos + 4, 4);
        std::string body(data, pos + 8, len);
        pos += 12 + std::size_t(len);
        auto nul = body.find('\0');
        if (nul == std::string::npos) continue;
        std::string key = body.substr(0, nul);
        if (type == "tEXt") {
            std::string v = body.substr(nul + 1);
            std::string utf8;  // tEXt is Latin-1
            for (unsigned char c : v) {
                if (c < 0x80)
                    utf8.push_back(char(c));
                else {
                    utf8.push_back(char(0xC0 | (c >> 6)));
                    utf8.push_back(char(0x80 | (c & 0x3F)));
                }
            }
            text.emplace_back(key, utf8);
        } else if (type == "zTXt" && body.size() > nul + 2) {
            std::string v;
            if (inflateAll(body.substr(nul + 2), v)) text.emplace_back(key, v);
        } else if (type == "iTXt" && body.size() > nul + 3) {
            bool compressed = body[nul + 1] != 0;
            std::size_t langEnd = body.find('\0', nul + 3);
            if (langEnd == std::string::npos) continue;
            std::size_t keyEnd = body.find('\0', langEnd + 1);
            if (keyEnd == std::string::npos) continue;
            std::string v = body.substr(keyEnd + 1);
            if (compressed) {
                std::string u;
                if (!inflateAll(v, u)) continue;
                v = u;
            }
            text.emplace_back(key, v);
        } else if (type == "IEND") {
            break;
        }
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
