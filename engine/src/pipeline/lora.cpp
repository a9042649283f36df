// LoRA merge and exact removal (issue 10; docs/features-spec.md section 3).
//
// A request's LoRA set (files + weights, the prompt's <lora:...> tags included) is compared with the set merged now;
// when it differs, the merged one is taken off and the new one merged: W += w·scale·(up @ down), summed in float32
// over every LoRA that touches W, converted once to the weight's dtype, on the weight's device.
//  - UNet: on the CPU the module's slot gets a new tensor and the original tensor is kept (a view of the file's
//    mapping, no copy); on a GPU the weight is changed in place (a CUDA graph captured the address) after a clone is
//    kept. Removal puts the original back, so the weights equal a fresh load bit for bit; nothing is read from disk.
//  - Text encoders: never changed where another Model can see them. The LoRA'd Model gets its own TextStack whose
//    encoders are shallow copies (same tensors) with the touched slots replaced; removal returns to the original
//    stack (shared again with the Models it was shared with).
#include "pipeline/model_impl.h"

#include "pipeline/boundary.h"

#include "core/common.h"
#include "models/lora.h"
#include "text/prompt_syntax.h"

#include <cstdlib>
#include <filesystem>
#include <map>
#include <sstream>
#include <unordered_map>

namespace fs = std::filesystem;

namespace koala {

struct LoraState {
    struct Entry {
        std::string path;
        double weight = 1.0;
        bool fromPrompt = false;
        std::string name;
    };
    std::vector<std::pair<std::string, double>> key;  // (canonical path, weight) of what is merged now
    std::vector<GenerateResult::AppliedLora> applied;
    struct Backup {
        at::Tensor* slot;
        at::Tensor original;  // the tensor itself (CPU) or a clone (device, restored with copy_)
        bool inPlace;
    };
    std::vector<Backup> unetBackups;
    std::shared_ptr<TextStack> originalText;  // set while this Model uses its own LoRA'd text stack
    std::map<std::string, std::pair<std::string, std::int64_t>> hashCache;  // path → (hash, mtime+size)
};

namespace {

std::string underscored(const std::string& s) {
    std::string o = s;
    for (char& c : o)
        if (c == '.') c = '_';
    return o;
}

std::vector<std::string> splitDots(const std::string& s) {
    std::vector<std::string> parts;
    std::stringstream ss(s);
    std::string p;
    while (std::getline(ss, p, '.')) parts.push_back(p);
    return parts;
}

std::string joinFrom(const std::vector<std::string>& parts, std::size_t from) {
    std::string o;
    for (std::size_t i = from; i < parts.size(); ++i) o += (o.empty() ? "" : ".") + parts[i];
    return o;
}

// Resnet internals in the original (LDM/sgm) naming.
std::string sgmResnetPart(const std::string& rest) {
    if (rest == "conv1") return "in_layers.2";
    if (rest == "conv2") return "out_layers.3";
    if (rest == "time_emb_proj") return "emb_layers.1";
    if (rest == "conv_shortcut") return "skip_connection";
    return "";
}

// The LDM/sgm name of a diffusers UNet module, numbered as diffusers' _maybe_map_sgm_blocks_to_diffusers reads it
// (layers_per_block + 1 entries per level, with the model's own layers_per_block). "" when there is none.
std::string sgmName(const std::string& name, int layersPerBlock) {
    static const std::map<std::string, std::string> fixed{{"conv_in", "input_blocks.0.0"},
                                                          {"conv_out", "out.2"},
                                                          {"time_embedding.linear_1", "time_embed.0"},
                                                          {"time_embedding.linear_2", "time_embed.2"},
                                                          {"add_embedding.linear_1", "label_emb.0.0"},
                                                          {"add_embedding.linear_2", "label_emb.0.2"}};
    if (auto it = fixed.find(name); it != fixed.end()) return it->second;
    const auto p = splitDots(name);
    const int per = layersPerBlock + 1;
    auto inner = [&](std::size_t at, const std::string& kind, std::string& out) {
        const std::string rest = joinFrom(p, at);
        if (kind == "resnets") {
            const std::string r = sgmResnetPart(rest);
            if (r.empty()) return false;
            out += ".0." + r;
        } else {
            out += ".1." + rest;
        }
        return true;
    };
    try {
        if (p.size() >= 4 && p[0] == "down_blocks") {
            const int b = std::stoi(p[1]);
            if (p[2] == "downsamplers" && joinFrom(p, 3) == "0.conv")
                return "input_blocks." + std::to_string(1 + b * per + layersPerBlock) + ".0.op";
            if (p.size() < 5 || (p[2] != "resnets" && p[2] != "attentions")) return "";
            std::string out = "input_blocks." + std::to_string(1 + b * per + std::stoi(p[3]));
            return inner(4, p[2], out) ? out : "";
        }
        if (p.size() >= 4 && p[0] == "up_blocks") {
            const int b = std::stoi(p[1]);
            if (p[2] == "upsamplers" && joinFrom(p, 3) == "0.conv")
                return "output_blocks." + std::to_string(b * per + layersPerBlock) + ".2.conv";
            if (p.size() < 5 || (p[2] != "resnets" && p[2] != "attentions")) return "";
            std::string out = "output_blocks." + std::to_string(b * per + std::stoi(p[3]));
            return inner(4, p[2], out) ? out : "";
        }
        if (p.size() >= 4 && p[0] == "mid_block") {
            const int l = std::stoi(p[2]);
            const int idx = p[1] == "attentions" ? 1 : l == 0 ? 0 : 2;
            const std::string rest = joinFrom(p, 3);
            if (p[1] == "attentions") return "middle_block.1." + rest;
            const std::string r = sgmResnetPart(rest);
            return r.empty() ? "" : "middle_block." + std::to_string(idx) + "." + r;
        }
    } catch (const std::exception&) {
        return "";
    }
    return "";
}

struct TargetMap {
    std::unordered_map<std::string, at::Tensor*> byKey;
    void add(const std::string& key, at::Tensor* t) { byKey.emplace(key, t); }
    at::Tensor* find(const std::string& key) const {
        auto it = byKey.find(key);
        return it == byKey.end() ? nullptr : it->second;
    }
};

TargetMap unetTargets(models::Unet& unet) {
    TargetMap m;
    const int lpb = unet.config().layersPerBlock.empty() ? 2 : unet.config().layersPerBlock[0];
    for (auto& [name, slot] : unet.loraTargets()) {
        m.add("peft:" + name, slot);
        m.add("kohya:lora_unet_" + underscored(name), slot);
        const std::string sgm = sgmName(name, lpb);
        if (!sgm.empty()) m.add("kohya:lora_unet_" + underscored(sgm), slot);
    }
    return m;
}

TargetMap textTargets(models::ClipTextEncoder& enc, bool second) {
    TargetMap m;
    const std::string kp = second ? "lora_te2_" : "lora_te1_";
    for (auto& [name, slot] : enc.loraTargets()) {
        const std::string bare = name.rfind("text_model.", 0) == 0 ? name.substr(11) : name;
        m.add("peft:" + name, slot);
        m.add("peft:" + bare, slot);
        m.add("kohya:" + kp + underscored(name), slot);
        m.add("kohya:" + kp + underscored(bare), slot);
        if (!second) {  // SD 1.x files spell the one text encoder lora_te_
            m.add("kohya:lora_te_" + underscored(name), slot);
            m.add("kohya:lora_te_" + underscored(bare), slot);
        }
    }
    return m;
}

std::string stemOf(const std::string& path) { return fs::path(path).stem().string(); }

std::int64_t stampOf(const std::string& path) {
    std::error_code ec;
    const auto t = fs::last_write_time(path, ec).time_since_epoch().count();
    return std::int64_t(t) ^ std::int64_t(fs::file_size(path, ec));
}

}  // namespace

std::string defaultLoraFolder() {
    if (const char* x = std::getenv("XDG_DATA_HOME"); x && *x) return (fs::path(x) / "koala-studio" / "loras").string();
    const char* home = std::getenv("HOME");
    return (fs::path(home ? home : ".") / ".local" / "share" / "koala-studio" / "loras").string();
}

std::string findLoraFile(const std::string& name, const std::vector<std::string>& folders) {
    std::vector<std::string> all = folders;
    all.push_back(defaultLoraFolder());
    for (const auto& f : all) {
        std::error_code ec;
        for (const char* ext : {".safetensors", ""}) {
            const fs::path p = fs::path(f) / (name + ext);
            if (fs::is_regular_file(p, ec)) return p.string();
        }
    }
    return "";
}

LoraFileInfo inspectLoraFile(const std::string& path, bool hash) {
    return guarded("reading the LoRA file", [&] {
        LoraFileInfo i;
        i.path = path;
        i.name = stemOf(path);
        std::error_code ec;
        i.bytes = std::int64_t(fs::file_size(path, ec));
        if (ec) fail(ErrorKind::Io, "cannot read " + path + ": " + ec.message());
        i.format = models::loraFormatOf(path);
        i.triggerWords = models::loraTriggerWords(path);
        if (hash) i.shortHash = models::loraHash(path).substr(0, 12);
        return i;
    });
}

std::vector<LoraFileInfo> listLoraFiles(const std::vector<std::string>& folders, bool hashes) {
    std::vector<LoraFileInfo> out;
    std::map<std::string, bool> seen;
    for (const auto& folder : folders) {
        std::error_code ec;
        if (!fs::is_directory(folder, ec)) continue;
        std::vector<std::string> files;
        for (const auto& e : fs::directory_iterator(folder, ec))
            if (e.is_regular_file(ec) && e.path().extension() == ".safetensors") files.push_back(e.path().string());
        std::sort(files.begin(), files.end());
        for (const auto& f : files) {
            if (seen[stemOf(f)]) continue;
            seen[stemOf(f)] = true;
            try {
                out.push_back(inspectLoraFile(f, hashes));
            } catch (const Error&) {
                LoraFileInfo bad;  // listed (the user sees it), refused when used
                bad.path = f;
                bad.name = stemOf(f);
                out.push_back(bad);
            }
        }
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    return out;
}

void ModelImpl::removeLoras() {
    if (!loraState) return;
    auto& s = *loraState;
    for (auto it = s.unetBackups.rbegin(); it != s.unetBackups.rend(); ++it) {
        if (it->inPlace)
            it->slot->copy_(it->original);
        else
            *it->slot = it->original;
    }
    s.unetBackups.clear();
    if (s.originalText) {
        text = s.originalText;
        s.originalText.reset();
    }
    s.key.clear();
    s.applied.clear();
}

std::vector<GenerateResult::AppliedLora> ModelImpl::applyLoras(const GenerateRequest& r) {
    if (!loraState) loraState = std::make_shared<LoraState>();
    auto& s = *loraState;

    // What the request asks for: the listed LoRAs, then the prompt's tags.
    std::vector<LoraState::Entry> wanted;
    for (const auto& l : r.loras) {
        std::string path = l.path;
        if (path.empty()) {
            path = findLoraFile(l.name, r.loraFolders);
            if (path.empty())
                fail(ErrorKind::InvalidArgument,
                     "LoRA '" + l.name + "' not found (looked in the LoRA folders and " + defaultLoraFolder() + ")");
        }
        std::error_code ec;
        if (!fs::is_regular_file(path, ec)) fail(ErrorKind::Io, "LoRA file not found: " + path);
        wanted.push_back({path, l.weight, false, l.name.empty() ? stemOf(path) : l.name});
    }
    if (r.promptSyntax == PromptSyntax::A1111) {
        std::vector<text::LoraTag> tags;
        text::extractLoraTags(r.prompt, &tags);
        if (r.prompt2) text::extractLoraTags(*r.prompt2, &tags);
        for (const auto& t : tags) {
            const std::string path = findLoraFile(t.name, r.loraFolders);
            if (path.empty())
                fail(ErrorKind::InvalidArgument, "<lora:" + t.name + "> in the prompt: no " + t.name +
                                                     ".safetensors in the LoRA folders or " + defaultLoraFolder());
            wanted.push_back({path, t.weight, true, t.name});
        }
    }
    std::vector<std::pair<std::string, double>> key;
    for (const auto& w : wanted) {
        std::error_code ec;
        key.emplace_back(fs::weakly_canonical(w.path, ec).string() + "#" + std::to_string(stampOf(w.path)), w.weight);
    }
    if (key == s.key) return s.applied;

    std::lock_guard<std::mutex> lock(*runMutex);
    removeLoras();
    if (wanted.empty()) return {};

    // Read everything first: a refused file leaves the model as it is (without LoRA).
    std::vector<models::LoraFile> files;
    for (const auto& w : wanted) files.push_back(models::readLoraFile(w.path));

    const bool touchesText = [&] {
        for (const auto& f : files)
            for (const auto& m : f.modules)
                if (m.component != models::LoraComponent::Unet) return true;
        return false;
    }();
    if (touchesText) {
        // A private text stack: shallow copies of the encoders (their slots are replaced below, never written).
        auto own = std::make_shared<TextStack>(*text);
        own->encoder1 = text->encoder1->shallowCopy();
        own->encoder2 = text->encoder2->shallowCopy();
        own->files.clear();  // no longer the files' weights: nothing shares it
        s.originalText = text;
        text = own;
    }
    TargetMap unetMap = unetTargets(*unet);
    TargetMap te1Map = textTargets(*text->encoder1, false), te2Map = textTargets(*text->encoder2, true);

    // First the plan (which LoRA modules land on which weight, in file order), then the merge one weight at a
    // time: each weight's delta lives only while that weight is merged, so the extra memory is one weight's
    // float32 delta, not one per touched weight (a full-coverage rank-32 LoRA on KOALA-700M would otherwise hold
    // gigabytes of deltas).
    struct Contribution {
        const models::LoraModule* module;
        double weight;
    };
    std::vector<at::Tensor*> order;
    std::map<at::Tensor*, std::vector<Contribution>> plan;
    std::map<at::Tensor*, bool> isUnet;
    std::vector<GenerateResult::AppliedLora> applied;
    for (std::size_t i = 0; i < files.size(); ++i) {
        GenerateResult::AppliedLora a;
        a.path = wanted[i].path;
        a.name = wanted[i].name;
        a.weight = wanted[i].weight;
        a.fromPrompt = wanted[i].fromPrompt;
        const std::int64_t stamp = stampOf(a.path);
        auto hc = s.hashCache.find(a.path);
        if (hc == s.hashCache.end() || hc->second.second != stamp) {
            s.hashCache[a.path] = {models::loraHash(a.path).substr(0, 12), stamp};
            hc = s.hashCache.find(a.path);
        }
        a.shortHash = hc->second.first;
        a.totalKeys = int(files[i].modules.size());
        for (const auto& m : files[i].modules) {
            const TargetMap& map = m.component == models::LoraComponent::Unet           ? unetMap
                                   : m.component == models::LoraComponent::TextEncoder1 ? te1Map
                                                                                        : te2Map;
            at::Tensor* slot = map.find((m.kohya ? "kohya:" : "peft:") + m.key);
            if (!slot || !slot->defined()) continue;
            const at::Tensor& w = *slot;
            const std::int64_t out = m.up.size(0), rank = m.rank();
            if (w.size(0) != out || m.down.numel() / rank * out != w.numel()) continue;  // wrong shape: no target
            auto it = plan.find(slot);
            if (it == plan.end()) {
                plan.emplace(slot, std::vector<Contribution>{{&m, a.weight}});
                order.push_back(slot);
                isUnet[slot] = m.component == models::LoraComponent::Unet;
            } else {
                it->second.push_back({&m, a.weight});
            }
            ++a.appliedKeys;
        }
        a.missingKeys = a.totalKeys - a.appliedKeys;
        a.report = "applied " + std::to_string(a.appliedKeys) + " of " + std::to_string(a.totalKeys) + " keys (" +
                   std::to_string(a.missingKeys) + " without a target)";
        applied.push_back(a);
    }
    for (at::Tensor* slot : order) {
        const auto dev = slot->device();
        at::Tensor delta;  // summed in file order, as one delta per weight before
        for (const Contribution& c : plan[slot]) {
            const models::LoraModule& m = *c.module;
            const std::int64_t out = m.up.size(0), rank = m.rank();
            at::Tensor d = at::matmul(m.up.to(dev).reshape({out, rank}), m.down.to(dev).reshape({rank, -1}));
            d = (d * (m.scale * c.weight)).reshape(slot->sizes());
            delta = delta.defined() ? delta + d : d;
        }
        at::Tensor merged = (slot->to(at::kFloat) + delta).to(slot->scalar_type());
        delta = at::Tensor();
        if (isUnet[slot] && !slot->device().is_cpu()) {
            // The original goes to host memory (restored with one exact copy back): a full-coverage LoRA would
            // otherwise hold a second UNet on the GPU. In place, so captured CUDA graphs keep their pointers.
            s.unetBackups.push_back({slot, slot->to(at::kCPU), true});
            slot->copy_(merged);
        } else if (isUnet[slot]) {
            s.unetBackups.push_back({slot, *slot, false});
            *slot = merged.contiguous(slot->suggest_memory_format());
        } else {
            *slot = merged.contiguous();  // a private encoder copy: the original stays in s.originalText
        }
    }
    synchronizeDevice(device);
    s.key = key;
    s.applied = applied;
    return applied;
}

}  // namespace koala
