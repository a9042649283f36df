#include "io/weights.h"

#include "core/common.h"

#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>

namespace koala::io {

namespace fs = std::filesystem;

namespace {

constexpr std::size_t kMaxListedProblems = 20;

std::string shapeString(const std::vector<std::int64_t>& shape) {
    std::string s = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
    return s + "]";
}

bool endsWith(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool startsWith(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

bool isFloat(StDType t) { return t == StDType::F64 || t == StDType::F32 || t == StDType::F16 || t == StDType::BF16; }

at::ScalarType scalarType(StDType t) {
    switch (t) {
    case StDType::F64: return at::kDouble;
    case StDType::F32: return at::kFloat;
    case StDType::F16: return at::kHalf;
    case StDType::BF16: return at::kBFloat16;
    case StDType::I64: return at::kLong;
    case StDType::I32: return at::kInt;
    case StDType::I16: return at::kShort;
    case StDType::I8: return at::kChar;
    case StDType::U8: return at::kByte;
    case StDType::BOOL: return at::kBool;
    }
    return at::kFloat;
}

bool isFile(const std::string& p) {
    std::error_code ec;
    return fs::is_regular_file(p, ec);  // follows symlinks
}

// The files of a component folder that say something about its weights, sorted, for error messages.
std::vector<std::string> weightFilesIn(const std::string& dir) {
    std::vector<std::string> out;
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        std::string n = it->path().filename().string();
        if (endsWith(n, ".safetensors") || endsWith(n, ".index.json") || endsWith(n, ".bin")) out.push_back(n);
    }
    std::sort(out.begin(), out.end());
    return out;
}

std::string joinList(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
    return s.empty() ? "none" : s;
}

nlohmann::json readIndex(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail(ErrorKind::Io, "cannot read " + path);
    try {
        return nlohmann::json::parse(in);
    } catch (const nlohmann::json::parse_error& e) {
        fail(ErrorKind::ModelFormat, path + ": malformed JSON (byte " + std::to_string(e.byte) + ")");
    } catch (const nlohmann::json::exception& e) {
        // A number JSON allows but a double cannot hold (1e999) is out_of_range 406, not a parse_error (fuzzing).
        fail(ErrorKind::ModelFormat, path + ": malformed JSON (" + e.what() + ")");
    }
}

// FNV-1a: a stable per-name seed, so random tensors do not depend on the order models take them in.
std::uint64_t nameHash(const std::string& s) {
    std::uint64_t h = 1469598103934665603ull;
    for (unsigned char c : s) {
        h ^= c;
        h *= 1099511628211ull;
    }
    return h;
}

}  // namespace

WeightStore::WeightStore(std::string component, std::vector<std::shared_ptr<SafetensorsFile>> files)
    : m_component(std::move(component)), m_files(std::move(files)) {}

WeightStore WeightStore::random(std::string component, std::uint64_t seed) {
    WeightStore s(std::move(component), {});
    s.m_random = true;
    s.m_seed = seed;
    return s;
}

WeightStore WeightStore::openComponent(const std::string& dir, const std::string& stem, const std::string& variant,
                                       const std::string& component) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) fail(ErrorKind::ModelFormat, component + ": folder " + dir + " does not exist");
    auto in = [&](const std::string& name) { return (fs::path(dir) / name).string(); };

    const std::string single = variant.empty() ? stem + ".safetensors" : stem + "." + variant + ".safetensors";
    std::vector<std::string> indexNames;
    if (variant.empty()) {
        indexNames.push_back(stem + ".safetensors.index.json");
    } else {
        indexNames.push_back(stem + "." + variant + ".safetensors.index.json");
        indexNames.push_back(stem + ".safetensors." + variant + ".index.json");  // diffusers' _add_variant spelling
        indexNames.push_back(stem + ".safetensors.index." + variant + ".json");  // transformers' older spelling
    }

    if (isFile(in(single))) {
        WeightStore s(component, {SafetensorsFile::open(in(single))});
        s.m_source = in(single);
        return s;
    }
    for (const auto& idxName : indexNames) {
        const std::string idxPath = in(idxName);
        if (!isFile(idxPath)) continue;
        nlohmann::json j = readIndex(idxPath);
        if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
            fail(ErrorKind::ModelFormat, idxPath + ": no 'weight_map' object");
        // Sorted by shard name so the file order (and describe()) does not depend on the tensor names.
        std::map<std::string, std::shared_ptr<SafetensorsFile>> shards;
        const auto& wm = j["weight_map"];
        for (auto it = wm.begin(); it != wm.end(); ++it) {
            if (!it.value().is_string())
                fail(ErrorKind::ModelFormat, idxPath + ": weight_map entry for " + it.key() + " is not a file name");
            shards.emplace(it.value().get<std::string>(), nullptr);
        }
        if (shards.empty()) fail(ErrorKind::ModelFormat, idxPath + ": weight_map is empty");
        for (auto& [file, ptr] : shards) {
            if (file.find('/') != std::string::npos || file == ".." || file.empty())
                fail(ErrorKind::ModelFormat, idxPath + ": shard name '" + file + "' is not a file in " + dir);
            if (!isFile(in(file)))
                fail(ErrorKind::ModelFormat, idxPath + ": shard " + file + " is missing from " + dir);
            ptr = SafetensorsFile::open(in(file));
        }
        for (auto it = wm.begin(); it != wm.end(); ++it) {
            const auto& shard = shards.at(it.value().get<std::string>());
            if (!shard->find(it.key()))
                fail(ErrorKind::ModelFormat, idxPath + ": tensor " + it.key() + " is listed in " +
                                                 it.value().get<std::string>() + " but that file does not hold it");
        }
        std::vector<std::shared_ptr<SafetensorsFile>> files;
        for (auto& kv : shards) files.push_back(kv.second);
        WeightStore s(component, std::move(files));
        s.m_source = idxPath;
        return s;
    }

    // Nothing to load: say what the folder holds and what the user can do about it.
    const auto present = weightFilesIn(dir);
    const std::string where = component + ": ";
    if (!variant.empty()) {
        bool plain = isFile(in(stem + ".safetensors")) || isFile(in(stem + ".safetensors.index.json"));
        fail(ErrorKind::ModelFormat, where + "no '" + variant + "' variant in " + dir + " (expected " + single +
                                         "); the folder holds: " + joinList(present) +
                                         (plain ? "; load it without --variant" : ""));
    }
    std::vector<std::string> variants;
    for (const auto& n : present)
        if (startsWith(n, stem + ".") && (endsWith(n, ".safetensors") || endsWith(n, ".index.json")))
            variants.push_back(n);
    if (!variants.empty()) {
        // "<stem>.<variant>.safetensors[...]": suggest the variant by name.
        std::string rest = variants.front().substr(stem.size() + 1);
        std::string v = rest.substr(0, rest.find('.'));
        if (v == "safetensors") v = "fp16";  // an index spelling like <stem>.safetensors.fp16.index.json
        fail(ErrorKind::ModelFormat, where + "no " + single + " in " + dir + ", only variant weights (" +
                                         joinList(variants) + "); load it with --variant " + v);
    }
    for (const auto& n : present)
        if (endsWith(n, ".bin"))
            fail(ErrorKind::ModelFormat,
                 where + dir + " holds " + n + ": PyTorch .bin weights are not supported; convert them to safetensors");
    std::vector<std::string> st;
    for (const auto& n : present)
        if (endsWith(n, ".safetensors")) st.push_back(n);
    fail(ErrorKind::ModelFormat,
         where + "no weights in " + dir + ": expected " + single + "; .safetensors files there: " + joinList(st));
}

std::string WeightStore::chooseVariant(const std::string& dir, const std::string& stem, const std::string& requested,
                                       bool halfPrecision) {
    if (requested != "auto") return requested;
    auto has = [&](const std::string& variant) {
        auto in = [&](const std::string& name) { return (fs::path(dir) / name).string(); };
        if (variant.empty()) return isFile(in(stem + ".safetensors")) || isFile(in(stem + ".safetensors.index.json"));
        return isFile(in(stem + "." + variant + ".safetensors")) ||
               isFile(in(stem + "." + variant + ".safetensors.index.json")) ||
               isFile(in(stem + ".safetensors." + variant + ".index.json")) ||
               isFile(in(stem + ".safetensors.index." + variant + ".json"));
    };
    const bool plain = has(""), half = has("fp16");
    if (plain && half) return halfPrecision ? "fp16" : "";
    return half ? "fp16" : "";  // neither: "" gives openComponent's message about what the folder holds
}

void WeightStore::setAliases(std::function<std::vector<std::string>(const std::string&)> aliases) {
    m_aliases = std::move(aliases);
}

void WeightStore::setTarget(at::ScalarType dtype, at::Device device) {
    m_dtype = dtype;
    m_device = device;
}

const TensorView* WeightStore::lookup(const std::string& name) const {
    std::vector<std::string> candidates;
    if (m_aliases) candidates = m_aliases(name);
    if (candidates.empty()) candidates.push_back(name);
    for (const auto& c : candidates)
        for (const auto& f : m_files)
            if (const TensorView* v = f->find(c)) return v;
    return nullptr;
}

at::Tensor WeightStore::take(const std::string& name, const std::vector<std::int64_t>& shape) {
    if (m_random) return takeRandom(name, shape);
    const TensorView* v = lookup(name);
    if (!v) {
        m_problems.push_back("missing tensor " + name);
        return {};
    }
    const std::string stored = v->name == name ? "" : " (stored as " + v->name + ")";
    if (!isFloat(v->dtype)) {
        m_problems.push_back("tensor " + name + stored + " has dtype " + stDTypeName(v->dtype) +
                             ", not a floating-point type");
        return {};
    }
    if (v->shape != shape) {
        // LDM-format VAE attention stores its q/k/v/proj projections as 1x1 convolutions.
        bool squeezable = shape.size() == 2 && v->shape.size() == 4 && v->shape[0] == shape[0] &&
                          v->shape[1] == shape[1] && v->shape[2] == 1 && v->shape[3] == 1;
        if (!squeezable) {
            m_problems.push_back("wrong shape for " + name + stored + ": expected " + shapeString(shape) +
                                 ", file has " + shapeString(v->shape));
            return {};
        }
    }

    // Always a copy out of the mapping, never a view of it: a model outlives its load, and a view would crash the
    // process with SIGBUS at the next generation if the file were truncated or rewritten in place meanwhile
    // (docs/hardening.md). The copy itself is guarded (TensorView::copyTo); at::empty memory is aligned for kernels.
    at::Tensor owned = at::empty(shape, at::TensorOptions().dtype(scalarType(v->dtype)));
    v->copyTo(owned.data_ptr());
    // Converts dtype and moves to the device in one step; a no-op when both already match.
    return owned.to(m_device, m_dtype);
}

at::Tensor WeightStore::takeRandom(const std::string& name, const std::vector<std::int64_t>& shape) {
    std::int64_t numel = 1;
    for (auto d : shape) numel *= d;
    m_randomParams += numel;
    const auto options = at::TensorOptions().dtype(m_dtype).device(m_device);
    if (endsWith(name, "bias") || shape.empty()) return at::zeros(shape, options);
    if (shape.size() == 1 && name.find("norm") != std::string::npos) return at::ones(shape, options);
    // A private generator seeded per tensor, without touching the global RNG state that noise generation relies on.
    // On the CPU a fresh one (the same stream as a clone of the default generator re-seeded: set_current_seed resets
    // the mt19937 and the cached normal); other devices clone their default generator (LibTorch 1.13 never frees a
    // cloned CPU generator, hence not on the CPU).
    at::Generator gen;
    const std::uint64_t seed = m_seed ^ nameHash(name);
    if (m_device.is_cpu()) {
        gen = at::detail::createCPUGenerator(seed);
    } else {
        at::Generator def = at::globalContext().defaultGenerator(m_device);
        std::lock_guard<std::mutex> lock(def.mutex());
        gen = def.clone();
        gen.set_current_seed(seed);
    }
    at::Tensor t = at::empty(shape, options.dtype(at::kFloat));
    t.normal_(0.0, 0.02, gen);
    return m_dtype == at::kFloat ? t : t.to(m_dtype);
}

bool WeightStore::has(const std::string& name) const { return m_random || lookup(name) != nullptr; }

const TensorView* WeightStore::view(const std::string& name) const { return m_random ? nullptr : lookup(name); }

void WeightStore::finish() const {
    if (m_problems.empty()) return;
    std::string msg = m_component + " (" + describe() + "): ";
    for (std::size_t i = 0; i < m_problems.size() && i < kMaxListedProblems; ++i)
        msg += (i ? "; " : "") + m_problems[i];
    if (m_problems.size() > kMaxListedProblems)
        msg += "; and " + std::to_string(m_problems.size() - kMaxListedProblems) + " more";
    fail(ErrorKind::ModelFormat, msg);
}

std::string WeightStore::describe() const {
    if (m_random) return "random weights, seed " + std::to_string(m_seed);
    if (!m_source.empty()) return m_source;
    std::string s;
    for (const auto& f : m_files) s += (s.empty() ? "" : ", ") + f->path();
    return s.empty() ? "no files" : s;
}

std::vector<std::string> WeightStore::files() const {
    std::vector<std::string> out;
    for (const auto& f : m_files) {
        std::error_code ec;
        auto p = fs::absolute(f->path(), ec);
        out.push_back(ec ? f->path() : p.lexically_normal().string());
    }
    return out;
}

StDType WeightStore::dominantDType() const {
    if (m_random) {
        if (m_dtype == at::kHalf) return StDType::F16;
        if (m_dtype == at::kBFloat16) return StDType::BF16;
        if (m_dtype == at::kDouble) return StDType::F64;
        return StDType::F32;
    }
    std::map<StDType, std::uint64_t> bytes;
    for (const auto& f : m_files)
        for (const auto& t : f->tensors())
            if (isFloat(t.dtype)) bytes[t.dtype] += t.nbytes;
    StDType best = StDType::F32;
    std::uint64_t most = 0;
    for (const auto& [dt, n] : bytes)
        if (n > most) {
            most = n;
            best = dt;
        }
    return best;
}

std::int64_t WeightStore::parameterCount() const {
    if (m_random) return m_randomParams;
    std::int64_t n = 0;
    for (const auto& f : m_files)
        for (const auto& t : f->tensors())
            if (isFloat(t.dtype)) n += t.numel();
    return n;
}

}  // namespace koala::io
