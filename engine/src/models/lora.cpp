// LoRA files: see lora.h.
#include "models/lora.h"

#include "core/common.h"
#include "core/sha256.h"
#include "io/safetensors.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>

namespace koala::models {
namespace {

[[noreturn]] void refuse(const std::string& path, const std::string& why) {
    fail(ErrorKind::ModelFormat, path + ": " + why);
}

bool endsWith(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
bool startsWith(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

at::Tensor toFloat(const io::TensorView& v) {
    at::ScalarType t;
    switch (v.dtype) {
    case io::StDType::F64: t = at::kDouble; break;
    case io::StDType::F32: t = at::kFloat; break;
    case io::StDType::F16: t = at::kHalf; break;
    case io::StDType::BF16: t = at::kBFloat16; break;
    case io::StDType::I64: t = at::kLong; break;
    case io::StDType::I32: t = at::kInt; break;
    case io::StDType::I16: t = at::kShort; break;
    case io::StDType::I8: t = at::kChar; break;
    case io::StDType::U8: t = at::kByte; break;
    default: t = at::kBool; break;
    }
    at::Tensor owned = at::empty(v.shape, at::TensorOptions().dtype(t));
    v.copyTo(owned.data_ptr());  // guarded: a file truncated meanwhile is an error, not a SIGBUS
    return owned.to(at::kFloat);
}

// LyCORIS and other network types we do not merge, recognised by their key names.
const char* lycorisType(const std::string& key) {
    if (key.find(".hada_") != std::string::npos) return "LoHa (LyCORIS)";
    if (key.find(".lokr_") != std::string::npos) return "LoKr (LyCORIS)";
    if (key.find(".oft_") != std::string::npos || key.find("oft_blocks") != std::string::npos) return "OFT (LyCORIS)";
    if (key.find(".lora_mid.") != std::string::npos) return "LoCon with a Tucker mid weight (LyCORIS)";
    if (endsWith(key, ".dora_scale")) return "DoRA";
    if (endsWith(key, ".a1.weight") || endsWith(key, ".b1.weight")) return "GLoRA (LyCORIS)";
    if (endsWith(key, ".diff") || endsWith(key, ".diff_b")) return "full weight difference (LyCORIS)";
    if (endsWith(key, ".w_norm") || endsWith(key, ".b_norm")) return "norm weights (LyCORIS)";
    if (key.find("ia3") != std::string::npos || endsWith(key, ".on_input")) return "IA3";
    return nullptr;
}

struct PairParts {
    const io::TensorView* down = nullptr;
    const io::TensorView* up = nullptr;
    const io::TensorView* alpha = nullptr;
    std::string downKey, upKey;
};

// Splits a key into (module, role) for the suffixes we know. Returns false for anything else.
bool splitKey(const std::string& key, std::string& module, std::string& role) {
    static const std::array<std::pair<const char*, const char*>, 8> kSuffixes{
        {{".lora_down.weight", "down"},
         {".lora_up.weight", "up"},
         {".lora_A.weight", "down"},
         {".lora_B.weight", "up"},
         {".lora.down.weight", "down"},
         {".lora.up.weight", "up"},
         {".lora_linear_layer.down.weight", "down"},
         {".lora_linear_layer.up.weight", "up"}}};
    for (const auto& [suffix, r] : kSuffixes)
        if (endsWith(key, suffix)) {
            module = key.substr(0, key.size() - std::strlen(suffix));
            role = r;
            return true;
        }
    if (endsWith(key, ".alpha")) {
        module = key.substr(0, key.size() - 6);
        role = "alpha";
        return true;
    }
    return false;
}

// PEFT's alpha and rank patterns: the key matches a module name when equal to it or a dotted suffix of it.
bool patternMatches(const std::string& pattern, const std::string& module) {
    return module == pattern || endsWith(module, "." + pattern);
}

struct PeftConfig {
    std::optional<double> alpha;
    nlohmann::json alphaPattern = nlohmann::json::object();
    bool rslora = false;
};

}  // namespace

LoraFile readLoraFile(const std::string& path) {
    auto file = io::SafetensorsFile::open(path);
    LoraFile out;
    out.path = path;
    std::map<std::string, PairParts> pairs;  // ordered: modules come out in key order
    for (const auto& v : file->tensors()) {
        if (const char* type = lycorisType(v.name))
            refuse(path, std::string("a ") + type + " network ('" + v.name +
                             "'), not a LoRA: only plain LoRA (kohya/A1111 lora_down/lora_up, diffusers/PEFT "
                             "lora_A/lora_B) is supported");
        std::string module, role;
        if (!splitKey(v.name, module, role))
            refuse(path, "unknown key '" + v.name + "' (not a LoRA down/up weight or alpha)");
        auto& p = pairs[module];
        if (role == "down") {
            p.down = &v;
            p.downKey = v.name;
        } else if (role == "up") {
            p.up = &v;
            p.upKey = v.name;
        } else {
            p.alpha = &v;
        }
    }
    if (pairs.empty()) refuse(path, "no LoRA weights in the file");

    // diffusers/PEFT alpha: `lora_adapter_metadata` = {"unet.lora_alpha": 2, "unet.r": 4, ...}.
    std::map<std::string, PeftConfig> peft;
    if (auto it = file->metadata().find("lora_adapter_metadata"); it != file->metadata().end()) {
        nlohmann::json j = nlohmann::json::parse(it->second, nullptr, false);
        if (!j.is_object()) refuse(path, "the lora_adapter_metadata is not a JSON object");
        for (auto& [k, val] : j.items()) {
            const auto dot = k.rfind('.');
            if (dot == std::string::npos) continue;
            const std::string comp = k.substr(0, dot), field = k.substr(dot + 1);
            if (field == "lora_alpha" && val.is_number()) peft[comp].alpha = val.get<double>();
            if (field == "alpha_pattern" && val.is_object()) peft[comp].alphaPattern = val;
            if (field == "use_rslora" && val.is_boolean()) peft[comp].rslora = val.get<bool>();
        }
    }

    bool sawKohya = false, sawPeft = false;
    for (auto& [module, p] : pairs) {
        if (!p.down || !p.up) {
            const std::string have = p.down ? p.downKey : p.up ? p.upKey : module + ".alpha";
            refuse(path, "incomplete LoRA pair for '" + module + "': '" + have + "' has no " +
                             (p.down ? "up" : "down") + " weight");
        }
        if (p.alpha && p.alpha->numel() < 1)
            refuse(path, "the alpha '" + module + ".alpha' is empty; it must hold one number");
        LoraModule m;
        m.down = toFloat(*p.down);
        m.up = toFloat(*p.up);
        const auto ds = m.down.sizes(), us = m.up.sizes();
        const bool downOk = ds.size() == 2 || ds.size() == 4;
        const bool upOk = us.size() == 2 || (us.size() == 4 && us[2] == 1 && us[3] == 1);
        if (!downOk || !upOk || us[1] != ds[0])
            refuse(path, "the ranks of '" + p.downKey + "' " + std::string(c10::str(ds)) + " and '" + p.upKey + "' " +
                             std::string(c10::str(us)) + " disagree (down [rank, in...], up [out, rank...])");
        const double rank = double(ds[0]);
        if (startsWith(module, "lora_unet_") || startsWith(module, "lora_te1_") || startsWith(module, "lora_te2_") ||
            startsWith(module, "lora_te_")) {
            sawKohya = true;
            m.kohya = true;
            m.key = module;
            m.component = startsWith(module, "lora_unet_")  ? LoraComponent::Unet
                          : startsWith(module, "lora_te2_") ? LoraComponent::TextEncoder2
                                                            : LoraComponent::TextEncoder1;
            // kohya/A1111: scale alpha/rank, 1 without alpha.
            if (p.alpha) m.scale = toFloat(*p.alpha).reshape({-1})[0].item<double>() / rank;
        } else {
            sawPeft = true;
            std::string comp;
            for (const char* c : {"unet.", "text_encoder_2.", "text_encoder."})
                if (startsWith(module, c)) {
                    comp = c;
                    break;
                }
            if (comp.empty())
                refuse(path, "'" + p.downKey +
                                 "': neither a kohya (lora_unet_/lora_te1_/lora_te2_) nor a "
                                 "diffusers (unet./text_encoder./text_encoder_2.) LoRA key");
            m.key = module.substr(comp.size());
            comp.pop_back();
            m.component = comp == "unet"             ? LoraComponent::Unet
                          : comp == "text_encoder_2" ? LoraComponent::TextEncoder2
                                                     : LoraComponent::TextEncoder1;
            const PeftConfig cfg = peft.count(comp) ? peft[comp] : PeftConfig{};
            double alpha = rank;
            if (p.alpha)
                alpha = toFloat(*p.alpha).reshape({-1})[0].item<double>();
            else if (cfg.alpha)
                alpha = *cfg.alpha;
            for (auto& [pat, val] : cfg.alphaPattern.items())
                if (val.is_number() && patternMatches(pat, m.key)) alpha = val.get<double>();
            m.scale = cfg.rslora ? alpha / std::sqrt(rank) : alpha / rank;
        }
        out.modules.push_back(std::move(m));
    }
    out.format = sawKohya && sawPeft ? "mixed" : sawKohya ? "kohya" : "peft";
    return out;
}

std::string sha256Hex(const std::uint8_t* data, std::size_t size) {
    Sha256 s;
    s.update(data, size);
    return s.hex();
}

std::string loraHash(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail(ErrorKind::Io, "cannot open " + path);
    std::uint8_t lenBytes[8];
    if (!in.read(reinterpret_cast<char*>(lenBytes), 8)) fail(ErrorKind::ModelFormat, path + ": not a safetensors file");
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | lenBytes[i];
    in.seekg(std::streamoff(8 + n));
    if (!in) fail(ErrorKind::ModelFormat, path + ": the header runs past the end of the file");
    Sha256 s;
    std::vector<char> buf(1 << 20);
    while (in) {
        in.read(buf.data(), std::streamsize(buf.size()));
        if (in.gcount() > 0) s.update(reinterpret_cast<const std::uint8_t*>(buf.data()), std::size_t(in.gcount()));
    }
    return s.hex();
}

namespace {

// The safetensors JSON header alone (no mapping, no validation of the data).
nlohmann::json readHeader(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail(ErrorKind::Io, "cannot open " + path);
    std::uint8_t lenBytes[8];
    if (!in.read(reinterpret_cast<char*>(lenBytes), 8)) fail(ErrorKind::ModelFormat, path + ": not a safetensors file");
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | lenBytes[i];
    if (n > (100u << 20)) fail(ErrorKind::ModelFormat, path + ": header too large");
    std::string header(n, '\0');
    if (!in.read(header.data(), std::streamsize(n))) fail(ErrorKind::ModelFormat, path + ": truncated header");
    nlohmann::json j = nlohmann::json::parse(header, nullptr, false);
    if (!j.is_object()) fail(ErrorKind::ModelFormat, path + ": the header is not a JSON object");
    return j;
}

}  // namespace

std::vector<std::string> loraTriggerWords(const std::string& path, std::size_t maxTags) {
    const nlohmann::json h = readHeader(path);
    std::vector<std::string> out;
    auto meta = h.find("__metadata__");
    if (meta == h.end() || !meta->is_object()) return out;
    auto trim = [](std::string s) {
        const auto b = s.find_first_not_of(" \t\n");
        const auto e = s.find_last_not_of(" \t\n");
        return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
    };
    if (auto it = meta->find("modelspec.trigger_phrase"); it != meta->end() && it->is_string()) {
        std::string s = it->get<std::string>();
        std::size_t start = 0;
        while (start <= s.size()) {
            auto comma = s.find(',', start);
            if (comma == std::string::npos) comma = s.size();
            std::string w = trim(s.substr(start, comma - start));
            if (!w.empty()) out.push_back(w);
            start = comma + 1;
        }
        if (!out.empty()) return out;
    }
    if (auto it = meta->find("ss_tag_frequency"); it != meta->end() && it->is_string()) {
        // {"<dataset folder>": {"tag": count, ...}, ...}: the most frequent tags over all folders.
        nlohmann::json j = nlohmann::json::parse(it->get<std::string>(), nullptr, false);
        std::map<std::string, double> freq;
        if (j.is_object())
            for (auto& [dir, tags] : j.items())
                if (tags.is_object())
                    for (auto& [tag, n] : tags.items())
                        if (n.is_number()) freq[trim(tag)] += n.get<double>();
        std::vector<std::pair<std::string, double>> v(freq.begin(), freq.end());
        std::stable_sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
        for (auto& [tag, n] : v) {
            if (out.size() >= maxTags) break;
            if (!tag.empty()) out.push_back(tag);
        }
    }
    return out;
}

std::string loraFormatOf(const std::string& path) {
    const nlohmann::json h = readHeader(path);
    bool kohya = false, peft = false;
    for (auto& [k, v] : h.items()) {
        (void)v;
        if (startsWith(k, "lora_unet_") || startsWith(k, "lora_te")) kohya = true;
        if (k.find(".lora_A.") != std::string::npos || k.find(".lora.down.") != std::string::npos) peft = true;
    }
    return kohya ? "kohya" : peft ? "peft" : "";
}

}  // namespace koala::models
