// Fuzz target: LoRA files (engine/src/models/lora.cpp): key mapping (kohya lora_unet_/lora_te1_/lora_te2_, PEFT
// unet./text_encoder./text_encoder_2., LyCORIS refusals), pair and rank checks, alpha (tensor or PEFT metadata),
// trigger words and the A1111 hash. Two input forms:
//   "KEYS\n" then one line per tensor, "<key> [dim...]" (dims 0..16, default [1,1]; F32 filled with 1.0), and
//     optionally a line "META <json>" that becomes the lora_adapter_metadata (and "TRIGGER <text>",
//     "TAGS <json>" for the trigger-word metadata): a valid safetensors file is built from it, so the key logic is
//     reached on every input;
//   anything else: the bytes are the .safetensors file itself.
#include "fuzz_util.h"

#include "koala/engine.h"
#include "models/lora.h"

#include <nlohmann/json.hpp>

#include <sstream>

namespace {

// A safetensors file from "KEYS" lines; false when the description is unusable (too big).
bool buildFromKeys(const std::string& text, std::string& out) {
    nlohmann::json header = nlohmann::json::object();
    nlohmann::json meta = nlohmann::json::object();
    std::istringstream in(text);
    std::string line;
    std::uint64_t offset = 0;
    int count = 0;
    while (std::getline(in, line)) {
        if (line.rfind("META ", 0) == 0) {
            meta["lora_adapter_metadata"] = line.substr(5);
            continue;
        }
        if (line.rfind("TRIGGER ", 0) == 0) {
            meta["modelspec.trigger_phrase"] = line.substr(8);
            continue;
        }
        if (line.rfind("TAGS ", 0) == 0) {
            meta["ss_tag_frequency"] = line.substr(5);
            continue;
        }
        if (line.empty() || ++count > 64) continue;
        std::istringstream ls(line);
        std::string key;
        ls >> key;
        std::vector<std::uint64_t> shape;
        long long d = 0;
        while (shape.size() < 4 && ls >> d) shape.push_back(std::uint64_t(std::clamp(d, 0LL, 16LL)));
        if (shape.empty() && line.find(' ') == std::string::npos) shape = {1, 1};
        std::uint64_t n = 1;
        for (auto s : shape) n *= s;
        if (!nlohmann::json(key).is_string() || key == "__metadata__") continue;
        header[key] = {{"dtype", "F32"}, {"shape", shape}, {"data_offsets", {offset, offset + 4 * n}}};
        offset += 4 * n;
    }
    if (!meta.empty()) header["__metadata__"] = meta;
    std::string h;
    try {
        h = header.dump();
    } catch (const nlohmann::json::exception&) {
        return false;  // a key that is not UTF-8
    }
    out.assign(8, '\0');
    for (int i = 0; i < 8; ++i) out[i] = char((std::uint64_t(h.size()) >> (8 * i)) & 0xff);
    out += h;
    const float one = 1.0f;
    for (std::uint64_t i = 0; i < offset / 4; ++i) out.append(reinterpret_cast<const char*>(&one), 4);
    return true;
}

template <class F>
void guarded(F&& f) {
    fuzz::guarded<koala::Error>("lora", std::forward<F>(f));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const std::string path = fuzz::scratchDir() + "/lora.safetensors";
    std::string bytes(reinterpret_cast<const char*>(data), size);
    if (bytes.rfind("KEYS\n", 0) == 0) {
        std::string built;
        if (!buildFromKeys(bytes.substr(5), built)) return 0;
        bytes = std::move(built);
    }
    fuzz::writeFile(path, bytes);
    guarded([&] {
        auto f = koala::models::readLoraFile(path);
        for (const auto& m : f.modules) {
            if (!m.down.defined() || !m.up.defined() || m.key.empty()) std::abort();
            (void)m.rank();
        }
    });
    guarded([&] { (void)koala::models::loraTriggerWords(path, 10); });
    guarded([&] { (void)koala::models::loraFormatOf(path); });
    guarded([&] { (void)koala::models::loraHash(path); });
    return 0;
}
