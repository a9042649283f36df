// Writing float32 tensors as safetensors (for koala-cli --save-latents).
#include "core/atomic_file.h"
#include "core/common.h"

#include <nlohmann/json.hpp>

namespace koala {

void writeSafetensors(const std::string& path, const std::vector<std::pair<std::string, FloatTensor>>& tensors) {
    nlohmann::json header = nlohmann::json::object();
    std::string data;
    for (const auto& [name, t] : tensors) {
        std::int64_t n = 1;
        for (auto d : t.shape) n *= d;
        if (n != std::int64_t(t.data.size()))
            fail(ErrorKind::InvalidArgument, "tensor " + name + ": shape does not match its data");
        const std::size_t begin = data.size();
        data.append(reinterpret_cast<const char*>(t.data.data()), t.data.size() * sizeof(float));
        header[name] = {{"dtype", "F32"}, {"shape", t.shape}, {"data_offsets", {begin, data.size()}}};
    }
    std::string h = header.dump();
    while ((8 + h.size()) % 8 != 0) h.push_back(' ');  // keep the data 8-byte aligned, as the reference writer does
    std::string out(8, '\0');
    std::uint64_t len = h.size();
    for (int i = 0; i < 8; ++i) out[i] = char((len >> (8 * i)) & 0xFF);
    out += h;
    out += data;
    writeFileAtomically(path, out);
}

}  // namespace koala
