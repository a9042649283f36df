// Helpers for the io tests: write small safetensors files by hand (valid ones and deliberately broken ones).
#pragma once

#include <ATen/ATen.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace iotest {

inline const char* dtypeName(at::ScalarType t) {
    switch (t) {
    case at::kFloat: return "F32";
    case at::kHalf: return "F16";
    case at::kBFloat16: return "BF16";
    case at::kDouble: return "F64";
    case at::kLong: return "I64";
    case at::kInt: return "I32";
    case at::kByte: return "U8";
    default: throw std::runtime_error("iotest: unsupported dtype");
    }
}

inline std::string tensorBytes(const at::Tensor& t) {
    at::Tensor c = t.contiguous().cpu();
    return std::string(static_cast<const char*>(c.data_ptr()), c.numel() * c.element_size());
}

// Write `header` (serialised as is) and `data` with the 8-byte little-endian length prefix.
inline void writeRaw(const std::string& path, const std::string& header, const std::string& data) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    std::uint64_t n = header.size();
    unsigned char len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>((n >> (8 * i)) & 0xff);
    out.write(reinterpret_cast<const char*>(len), 8);
    out << header << data;
    if (!out) throw std::runtime_error("iotest: cannot write " + path);
}

// A valid safetensors file; tensors are laid out in the given order. `align` pads the header with spaces to a
// multiple of 8 bytes, as the safetensors library does; without it, data may start at an odd address.
inline void writeSt(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                    const std::map<std::string, std::string>& metadata = {}, bool align = true) {
    nlohmann::ordered_json h;
    if (!metadata.empty()) h["__metadata__"] = metadata;
    std::string data;
    for (const auto& [name, t] : tensors) {
        std::string b = tensorBytes(t);
        h[name] = {{"dtype", dtypeName(t.scalar_type())},
                   {"shape", std::vector<std::int64_t>(t.sizes().begin(), t.sizes().end())},
                   {"data_offsets", {data.size(), data.size() + b.size()}}};
        data += b;
    }
    std::string header = h.dump();
    if (align)
        while ((8 + header.size()) % 8) header += ' ';
    else if ((8 + header.size()) % 4 == 0)
        header += ' ';  // make sure the data area is NOT 4-byte aligned
    writeRaw(path, header, data);
}

inline std::string readAll(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace iotest
