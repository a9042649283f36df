// Fuzz target: the safetensors reader (engine/src/io/safetensors.cpp). The input is a whole file: 8-byte header
// length, JSON header, data area. A bad file must give koala::Error; a file that opens must describe tensors that lie
// inside the mapping (every byte of every tensor is read here, so a wrong bound crashes).
#include "fuzz_util.h"

#include "io/safetensors.h"
#include "koala/engine.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const std::string path = fuzz::scratchDir() + "/input.safetensors";
    fuzz::writeFile(path, data, size);
    try {
        auto f = koala::io::SafetensorsFile::open(path);
        unsigned sum = 0;
        for (const auto& t : f->tensors()) {
            const std::size_t expected = std::size_t(t.numel()) * koala::io::stDTypeSize(t.dtype);
            if (expected != t.nbytes) {
                std::fprintf(stderr, "tensor %s: %zu bytes for numel %lld\n", t.name.c_str(), t.nbytes,
                             static_cast<long long>(t.numel()));
                std::abort();
            }
            for (std::size_t i = 0; i < t.nbytes; ++i) sum += t.data[i];
            if (f->find(t.name) == nullptr) std::abort();
            (void)koala::io::stDTypeName(t.dtype);
        }
        for (const auto& [k, v] : f->metadata()) sum += unsigned(k.size() + v.size());
        volatile unsigned sink = sum;
        (void)sink;
    } catch (const koala::Error&) {
    } catch (const std::exception& e) {
        fuzz::unexpected("safetensors", e);
    }
    return 0;
}
