// Image metadata: the one schema (the "koala" JSON chunk) and the one AUTOMATIC1111 "parameters" writer/parser,
// shared by koala-cli and the studio. See engine.h ("image metadata").
#include "core/common.h"

#include <nlohmann/json.hpp>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <regex>
#include <type_traits>

namespace koala {
namespace {

using json = nlohmann::json;

// Our scheduler names and AUTOMATIC1111's (sampler, schedule type): the one table.
struct SamplerName {
    const char* ours;
    const char* sampler;
    const char* schedule;
};
const SamplerName kSamplers[] = {
    {"euler", "Euler", ""},       {"euler_karras", "Euler", "Karras"},       {"euler_a", "Euler a", ""},
    {"dpmpp_2m", "DPM++ 2M", ""}, {"dpmpp_2m_karras", "DPM++ 2M", "Karras"}, {"ddim", "DDIM", ""},
    {"pndm", "PLMS", ""},
};

bool iequals(const std::string& a, const std::string& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
            return false;
    return true;
}

std::string trim(const std::string& s) {
    const char* ws = " \t\r\n";
    const auto b = s.find_first_not_of(ws);
    if (b == std::string::npos) return {};
    return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

bool startsWith(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }

std::string formatNumber(double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.10g", v);
    return buf;
}

// JSON text of `j`. Strings are bytes from anywhere (a prompt from a non-UTF-8 terminal, a Latin-1 PNG chunk): bytes
// that are not UTF-8 become U+FFFD instead of an exception that would lose the image being written (fuzz_a1111).
std::string dumpJson(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// A1111 quotes values that contain commas, colons or quotes as JSON strings.
std::string quoteIfNeeded(const std::string& v) {
    if (v.find_first_of(",:\"") == std::string::npos) return v;
    return dumpJson(json(v));
}

std::string unquote(const std::string& raw) {
    const std::string v = trim(raw);
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') {
        const json j = json::parse(v, nullptr, false);
        if (j.is_string()) return j.get<std::string>();
    }
    return v;
}

bool parseInt(const std::string& s, long long& out) {
    const std::string t = trim(s);
    if (t.empty()) return false;
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(t.c_str(), &end, 10);
    if (errno != 0 || end != t.c_str() + t.size()) return false;
    out = v;
    return true;
}

bool parseSeed(const std::string& s, std::uint64_t& out) {
    const std::string t = trim(s);
    if (t.empty() || t.find_first_not_of("0123456789") != std::string::npos) return false;
    char* end = nullptr;
    errno = 0;
    const unsigned long long v = std::strtoull(t.c_str(), &end, 10);
    if (errno != 0 || end != t.c_str() + t.size()) return false;
    out = v;
    return true;
}

bool parseDouble(const std::string& s, double& out) {
    const std::string t = trim(s);
    if (t.empty()) return false;
    char* end = nullptr;
    const double v = std::strtod(t.c_str(), &end);
    if (end != t.c_str() + t.size()) return false;
    out = v;
    return true;
}

// The key: value pairs of one line, with the pattern A1111 itself uses (modules/infotext_utils.py).
std::map<std::string, std::string> parseLine(const std::string& line) {
    static const std::regex re(R"re(\s*([A-Za-z0-9_][A-Za-z0-9_ \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$))re");
    std::map<std::string, std::string> values;
    const std::string t = trim(line);
    for (auto it = std::sregex_iterator(t.begin(), t.end(), re); it != std::sregex_iterator(); ++it) {
        const std::smatch& m = *it;
        if (m.length(0) == 0) continue;
        values[trim(m[1].str())] = unquote(m[2].str());
    }
    return values;
}

std::string lookup(const std::map<std::string, std::string>& v, const char* key) {
    auto it = v.find(key);
    return it == v.end() ? std::string() : it->second;
}

bool hasKey(const std::map<std::string, std::string>& v, const char* key) { return v.count(key) != 0; }

std::string baseName(const std::string& path) {
    std::string p = path;
    while (p.size() > 1 && p.back() == '/') p.pop_back();
    const auto slash = p.rfind('/');
    return slash == std::string::npos ? p : p.substr(slash + 1);
}

json paramsObject(const ImageMetadata& m) {
    json p;
    p["model"] = m.modelPath;
    if (!m.modelName.empty()) p["model_name"] = m.modelName;
    p["prompt"] = m.prompt;
    p["negative_prompt"] = m.negative ? json(*m.negative) : json(nullptr);
    // JSON readers that use doubles (Qt's among them) lose seeds above 2^53: those are written as strings.
    if (!m.seed)
        p["seed"] = -1;
    else if (*m.seed > (std::uint64_t(1) << 53))
        p["seed"] = std::to_string(*m.seed);
    else
        p["seed"] = *m.seed;
    p["steps"] = m.steps;
    p["guidance"] = m.guidance;
    p["guidance_rescale"] = m.guidanceRescale;
    p["scheduler"] = m.scheduler;
    p["spacing"] = m.spacing;
    p["width"] = m.width;
    p["height"] = m.height;
    p["count"] = m.count;
    // ---- img2img / inpainting: only for image requests (text-to-image PNGs keep the version 1 keys only).
    if (m.strength) p["strength"] = *m.strength;
    if (!m.initImage.empty()) p["init_image"] = m.initImage;
    if (!m.initImageHash.empty()) p["init_image_sha256"] = m.initImageHash;
    if (!m.maskImage.empty()) p["mask_image"] = m.maskImage;
    if (!m.maskImageHash.empty()) p["mask_image_sha256"] = m.maskImageHash;
    if (!m.maskImage.empty() || m.maskBlur != 0) p["mask_blur"] = m.maskBlur;
    // ---- prompt syntax and LoRA (issue 10)
    p["prompt_syntax"] = m.promptSyntax;
    if (!m.loras.empty()) {
        json loras = json::array();
        for (const auto& l : m.loras)
            loras.push_back({{"name", l.name}, {"weight", l.weight}, {"hash", l.hash}, {"from_prompt", l.fromPrompt}});
        p["loras"] = loras;
    }
    return p;
}

// ---- prompt syntax and LoRA (issue 10) ----
// The <lora:NAME[:WEIGHT[:...]]> tags of a prompt (A1111's extra-network syntax), as (name, weight).
std::vector<std::pair<std::string, double>> loraTagsOf(const std::string& prompt) {
    static const std::regex re(R"re(<(?:lora|lyco):([^:>]+)(?::([^:>]*))?[^>]*>)re");
    std::vector<std::pair<std::string, double>> out;
    for (auto it = std::sregex_iterator(prompt.begin(), prompt.end(), re); it != std::sregex_iterator(); ++it) {
        double w = 1.0;
        if ((*it)[2].matched) {
            char* end = nullptr;
            const std::string ws = (*it)[2].str();
            const double v = std::strtod(ws.c_str(), &end);
            if (end != ws.c_str()) w = v;
        }
        out.emplace_back((*it)[1].str(), w);
    }
    return out;
}

// `Lora hashes: "a: 0123456789ab, b: ..."` and the prompt's tags → ImageMetadata::loras.
void readA1111Loras(const std::string& hashes, ImageMetadata& m) {
    const auto tags = loraTagsOf(m.prompt);
    auto tagWeight = [&](const std::string& name, double& w) {
        for (const auto& [n, tw] : tags)
            if (n == name) {
                w = tw;
                return true;
            }
        return false;
    };
    std::size_t start = 0;
    while (start < hashes.size()) {
        auto comma = hashes.find(',', start);
        if (comma == std::string::npos) comma = hashes.size();
        const std::string item = trim(hashes.substr(start, comma - start));
        start = comma + 1;
        const auto colon = item.rfind(':');
        if (item.empty() || colon == std::string::npos) continue;
        ImageMetadata::Lora l;
        l.name = trim(item.substr(0, colon));
        l.hash = trim(item.substr(colon + 1));
        l.fromPrompt = tagWeight(l.name, l.weight);
        m.loras.push_back(l);
    }
    for (const auto& [n, w] : tags) {
        bool known = false;
        for (const auto& l : m.loras) known = known || l.name == n;
        if (!known) m.loras.push_back({n, w, "", true});
    }
}

}  // namespace

std::pair<std::string, std::string> a1111SamplerOf(const std::string& scheduler) {
    for (const SamplerName& s : kSamplers)
        if (scheduler == s.ours) return {s.sampler, s.schedule};
    return {};
}

std::string schedulerFromA1111(const std::string& samplerIn, const std::string& scheduleType) {
    std::string name = trim(samplerIn);
    bool karras = iequals(trim(scheduleType), "Karras");
    // Old infotexts put the schedule into the sampler name.
    if (name.size() > 7 && iequals(name.substr(name.size() - 7), " Karras")) {
        name.resize(name.size() - 7);
        karras = true;
    }
    for (const SamplerName& s : kSamplers)
        if (iequals(name, s.sampler) && karras == (s.schedule[0] != '\0')) return s.ours;
    // A Karras schedule on a sampler we only have without it: keep the sampler.
    for (const SamplerName& s : kSamplers)
        if (iequals(name, s.sampler)) return s.ours;
    return {};
}

std::string toA1111Parameters(const ImageMetadata& m) {
    std::string out = m.prompt;
    if (m.negative) out += "\nNegative prompt: " + *m.negative;
    std::vector<std::string> f;
    f.push_back("Steps: " + std::to_string(m.steps));
    const auto sampler = a1111SamplerOf(m.scheduler);
    if (!sampler.first.empty()) {
        f.push_back("Sampler: " + sampler.first);
        if (!sampler.second.empty()) f.push_back("Schedule type: " + sampler.second);
    }
    f.push_back("CFG scale: " + formatNumber(m.guidance));
    f.push_back("Seed: " + (m.seed ? std::to_string(*m.seed) : std::string("-1")));
    f.push_back("Size: " + std::to_string(m.width) + "x" + std::to_string(m.height));
    const std::string model = !m.modelName.empty() ? m.modelName : baseName(m.modelPath);
    if (!model.empty()) f.push_back("Model: " + quoteIfNeeded(model));
    if (m.guidanceRescale != 0.0) f.push_back("Guidance rescale: " + formatNumber(m.guidanceRescale));
    if (!m.spacing.empty() && m.spacing != "default") f.push_back("Timestep spacing: " + m.spacing);
    if (m.count > 1) f.push_back("Batch size: " + std::to_string(m.count));
    // ---- img2img / inpainting, as A1111 writes them
    if (m.strength) f.push_back("Denoising strength: " + formatNumber(*m.strength));
    if (!m.maskImage.empty() || m.maskBlur != 0) f.push_back("Mask blur: " + std::to_string(m.maskBlur));
    // ---- LoRA (issue 10), as A1111 writes it: Lora hashes: "name: shorthash, ..."
    if (!m.loras.empty()) {
        std::string h;
        for (const auto& l : m.loras)
            if (!l.hash.empty()) h += (h.empty() ? "" : ", ") + l.name + ": " + l.hash;
        if (!h.empty()) f.push_back("Lora hashes: \"" + h + "\"");
    }
    out += "\n";
    for (std::size_t i = 0; i < f.size(); ++i) out += (i ? ", " : "") + f[i];
    return out;
}

std::optional<ImageMetadata> parseA1111Parameters(const std::string& text) {
    const std::string all = trim(text);
    // The last line holds the key: value pairs; A1111 requires at least three of them.
    const auto lastBreak = all.rfind('\n');
    std::string head = lastBreak == std::string::npos ? std::string() : all.substr(0, lastBreak);
    auto values = parseLine(lastBreak == std::string::npos ? all : all.substr(lastBreak + 1));
    if (values.size() < 3 || !hasKey(values, "Steps")) {
        // Some writers flatten newlines into spaces: find the parameter part by its first key instead.
        const auto steps = all.rfind("Steps: ");
        if (steps == std::string::npos) return std::nullopt;
        values = parseLine(all.substr(steps));
        if (values.size() < 3 || !hasKey(values, "Steps")) return std::nullopt;
        head = all.substr(0, steps);
    }

    ImageMetadata m;
    const GenerateRequest d = defaultRequest();
    m.steps = d.steps;
    m.guidance = d.guidance;
    static const std::string tag = "Negative prompt:";
    std::size_t tagStart = std::string::npos;
    if (startsWith(head, tag))
        tagStart = 0;
    else if (auto nl = head.find("\n" + tag); nl != std::string::npos)
        tagStart = nl + 1;
    else if (auto sp = head.find(" " + tag); sp != std::string::npos)
        tagStart = sp + 1;
    if (tagStart != std::string::npos) {
        m.prompt = trim(head.substr(0, tagStart));
        m.negative = trim(head.substr(tagStart + tag.size()));
    } else {
        m.prompt = trim(head);
    }

    long long n = 0;
    double x = 0;
    if (parseInt(lookup(values, "Steps"), n)) m.steps = int(n);
    if (parseDouble(lookup(values, "CFG scale"), x)) m.guidance = x;
    std::uint64_t seed = 0;
    if (parseSeed(lookup(values, "Seed"), seed)) m.seed = seed;  // "-1" (random) and junk: unknown
    const std::string size = lookup(values, "Size");
    const auto xpos = size.find('x');
    long long w = 0, h = 0;
    if (xpos != std::string::npos && xpos > 0 && parseInt(size.substr(0, xpos), w) &&
        parseInt(size.substr(xpos + 1), h)) {
        m.width = int(w);
        m.height = int(h);
    }
    if (hasKey(values, "Sampler")) {
        const std::string ours = schedulerFromA1111(lookup(values, "Sampler"), lookup(values, "Schedule type"));
        if (!ours.empty()) m.scheduler = ours;
    }
    m.modelName = lookup(values, "Model");
    if (parseDouble(lookup(values, "Guidance rescale"), x)) m.guidanceRescale = x;
    TimestepSpacing sp;
    const std::string spacing = lookup(values, "Timestep spacing");
    if (!spacing.empty() && fromString(spacing, sp)) m.spacing = toString(sp);
    if (parseInt(lookup(values, "Batch size"), n) && n > 0) m.count = int(n);
    // ---- img2img / inpainting
    if (parseDouble(lookup(values, "Denoising strength"), x)) m.strength = x;
    if (parseInt(lookup(values, "Mask blur"), n) && n >= 0) m.maskBlur = int(n);
    // ---- prompt syntax and LoRA (issue 10): A1111's own syntax
    m.promptSyntax = "a1111";
    readA1111Loras(lookup(values, "Lora hashes"), m);
    return m;
}

std::string metadataParamsJson(const ImageMetadata& m) { return dumpJson(paramsObject(m)); }

std::string toKoalaMetadata(const ImageMetadata& m, const std::string& extraJson) {
    json j = json::parse(extraJson.empty() ? std::string("{}") : extraJson, nullptr, false);
    if (!j.is_object()) fail(ErrorKind::InvalidArgument, "image metadata: the extra keys are not a JSON object");
    j["version"] = kMetadataVersion;
    if (!m.generator.empty()) j["generator"] = m.generator;
    j["params"] = paramsObject(m);
    return dumpJson(j);
}

std::optional<ImageMetadata> parseKoalaMetadata(const std::string& text) {
    const json j = json::parse(text, nullptr, false);
    if (!j.is_object()) return std::nullopt;
    auto v = j.find("version");
    if (v == j.end() || !v->is_number_integer() || v->get<long long>() != kMetadataVersion) return std::nullopt;
    auto pit = j.find("params");
    if (pit == j.end() || !pit->is_object()) return std::nullopt;
    const json& p = *pit;
    ImageMetadata m;
    auto str = [&](const char* k, std::string& out) {
        auto it = p.find(k);
        if (it != p.end() && it->is_string()) out = it->get<std::string>();
    };
    auto num = [&](const char* k, auto& out) {
        auto it = p.find(k);
        if (it != p.end() && it->is_number()) out = it->get<std::decay_t<decltype(out)>>();
    };
    // A chunk without a prompt is not ours (or is damaged): the reader then falls back to "parameters".
    auto pr = p.find("prompt");
    if (pr == p.end() || !pr->is_string()) return std::nullopt;
    m.prompt = pr->get<std::string>();
    auto neg = p.find("negative_prompt");
    if (neg != p.end() && neg->is_string()) m.negative = neg->get<std::string>();
    auto seed = p.find("seed");
    if (seed != p.end()) {
        std::uint64_t s = 0;
        if (seed->is_number_unsigned())
            m.seed = seed->get<std::uint64_t>();
        else if (seed->is_number_integer() && seed->get<long long>() >= 0)
            m.seed = std::uint64_t(seed->get<long long>());
        else if (seed->is_number_float() && seed->get<double>() >= 0 && seed->get<double>() <= 9007199254740992.0)
            m.seed = std::uint64_t(seed->get<double>());
        else if (seed->is_string() && parseSeed(seed->get<std::string>(), s))
            m.seed = s;
    }
    num("steps", m.steps);
    num("guidance", m.guidance);
    num("guidance_rescale", m.guidanceRescale);
    str("scheduler", m.scheduler);
    str("spacing", m.spacing);
    num("width", m.width);
    num("height", m.height);
    num("count", m.count);
    str("model", m.modelPath);
    str("model_name", m.modelName);
    // ---- img2img / inpainting (absent in older PNGs)
    auto st = p.find("strength");
    if (st != p.end() && st->is_number()) m.strength = st->get<double>();
    str("init_image", m.initImage);
    str("init_image_sha256", m.initImageHash);
    str("mask_image", m.maskImage);
    str("mask_image_sha256", m.maskImageHash);
    num("mask_blur", m.maskBlur);
    // ---- prompt syntax and LoRA (issue 10); chunks from before it were plain (the engine had no other syntax)
    m.promptSyntax = "plain";
    str("prompt_syntax", m.promptSyntax);
    if (auto ls = p.find("loras"); ls != p.end() && ls->is_array())
        for (const auto& e : *ls) {
            if (!e.is_object() || !e.contains("name") || !e["name"].is_string()) continue;
            ImageMetadata::Lora l;
            l.name = e["name"].get<std::string>();
            if (e.contains("weight") && e["weight"].is_number()) l.weight = e["weight"].get<double>();
            if (e.contains("hash") && e["hash"].is_string()) l.hash = e["hash"].get<std::string>();
            if (e.contains("from_prompt") && e["from_prompt"].is_boolean()) l.fromPrompt = e["from_prompt"].get<bool>();
            m.loras.push_back(l);
        }
    auto g = j.find("generator");
    if (g != j.end() && g->is_string()) m.generator = g->get<std::string>();
    // The studio keeps the resolved scheduler and the model name beside the request.
    auto su = j.find("scheduler_used");
    if (su != j.end() && su->is_string() && !su->get<std::string>().empty()) m.scheduler = su->get<std::string>();
    auto spu = j.find("spacing_used");
    if (spu != j.end() && spu->is_string() && !spu->get<std::string>().empty()) m.spacing = spu->get<std::string>();
    auto mn = j.find("model_name");
    if (m.modelName.empty() && mn != j.end() && mn->is_string()) m.modelName = mn->get<std::string>();
    return m;
}

std::vector<std::pair<std::string, std::string>> metadataTextChunks(const ImageMetadata& m,
                                                                    const std::string& extraJson) {
    return {{"parameters", toA1111Parameters(m)}, {"koala", toKoalaMetadata(m, extraJson)}};
}

const char* toString(MetadataSource s) {
    switch (s) {
    case MetadataSource::Koala: return "koala";
    case MetadataSource::A1111: return "a1111";
    case MetadataSource::ComfyUI: return "comfyui";
    case MetadataSource::None: break;
    }
    return "none";
}

MetadataReadResult interpretMetadata(const std::vector<std::pair<std::string, std::string>>& text) {
    MetadataReadResult r;
    auto find = [&](const char* key) -> const std::string* {
        for (const auto& kv : text)
            if (kv.first == key) return &kv.second;
        return nullptr;
    };
    if (const std::string* k = find("koala")) {
        if (auto m = parseKoalaMetadata(*k)) {
            r.source = MetadataSource::Koala;
            r.metadata = *m;
            r.koalaJson = *k;
            return r;
        }
        const json j = json::parse(*k, nullptr, false);
        if (!j.is_object())
            r.note = "the koala chunk is damaged (not JSON)";
        else if (!j.contains("version") || !j["version"].is_number_integer())
            r.note = "the koala chunk has no version (an older or foreign writer)";
        else if (j["version"].get<long long>() != kMetadataVersion)
            r.note = "the koala chunk has version " + j["version"].dump() + ", this build reads version " +
                     std::to_string(kMetadataVersion);
        else
            r.note = "the koala chunk has no usable params";
    }
    if (const std::string* p = find("parameters")) {
        if (auto m = parseA1111Parameters(*p)) {
            r.source = MetadataSource::A1111;
            r.metadata = *m;
            if (!r.note.empty()) r.note += "; read the AUTOMATIC1111 parameters instead";
            return r;
        }
    }
    const std::string* prompt = find("prompt");
    const std::string* workflow = find("workflow");
    if (prompt || workflow) {
        r.source = MetadataSource::ComfyUI;
        std::string what = prompt && workflow ? "prompt graph and workflow" : prompt ? "prompt graph" : "workflow";
        const json g = json::parse(prompt ? *prompt : *workflow, nullptr, false);
        std::size_t nodes = 0;
        if (g.is_object()) nodes = g.contains("nodes") && g["nodes"].is_array() ? g["nodes"].size() : g.size();
        r.note = "a ComfyUI image (" + what + (nodes ? ", " + std::to_string(nodes) + " nodes" : std::string()) +
                 "): its settings live in a node graph, not in parameters this reader can apply";
    }
    return r;
}

MetadataReadResult readImageMetadata(const std::string& pngPath) {
    std::vector<std::pair<std::string, std::string>> text;
    if (!readPngText(pngPath, text)) fail(ErrorKind::Io, pngPath + " cannot be read as a PNG");
    return interpretMetadata(text);
}

}  // namespace koala
