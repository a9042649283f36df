// Fuzz target: a sharded component (engine/src/io/weights.cpp WeightStore::openComponent). The input is the
// model.safetensors.index.json of a folder that also holds two valid shards (model-00001-of-00002.safetensors with
// tensors a, b and model-00002-of-00002.safetensors with c); text after a line "--SHARD--" becomes a third file,
// model-extra.safetensors, so the index and a shard can be fuzzed together.
#include "fuzz_util.h"

#include "io/weights.h"
#include "koala/engine.h"

#include <filesystem>

namespace {

std::string stFile(const std::string& header, std::size_t dataBytes) {
    std::string out(8, '\0');
    for (int i = 0; i < 8; ++i) out[i] = char((std::uint64_t(header.size()) >> (8 * i)) & 0xff);
    return out + header + std::string(dataBytes, '\x01');
}

const std::string& folder() {
    static const std::string dir = [] {
        std::string d = fuzz::scratchDir() + "/unet";
        std::filesystem::create_directories(d);
        fuzz::writeFile(d + "/model-00001-of-00002.safetensors",
                        stFile(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                               R"("b":{"dtype":"F16","shape":[2,2],"data_offsets":[8,16]}})",
                               16));
        fuzz::writeFile(d + "/model-00002-of-00002.safetensors",
                        stFile(R"({"__metadata__":{"format":"pt"},"c":{"dtype":"BF16","shape":[3],)"
                               R"("data_offsets":[0,6]}})",
                               6));
        return d;
    }();
    return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string& dir = folder();
    auto parts = fuzz::split(data, size, "\n--SHARD--\n", 2);
    fuzz::writeFile(dir + "/model.safetensors.index.json", parts[0]);
    std::error_code ec;
    std::filesystem::remove(dir + "/model-extra.safetensors", ec);
    if (parts.size() > 1) fuzz::writeFile(dir + "/model-extra.safetensors", parts[1]);
    try {
        auto store = koala::io::WeightStore::openComponent(dir, "model", "", "unet");
        (void)store.describe();
        (void)store.files();
        (void)store.parameterCount();
        (void)store.dominantDType();
        for (const char* n : {"a", "b", "c", "d"})
            if (store.has(n) != (store.view(n) != nullptr)) std::abort();
        store.finish();
    } catch (const koala::Error&) {
    } catch (const std::exception& e) {
        fuzz::unexpected("shard_index", e);
    }
    return 0;
}
