// Model folder resolution (plain diffusers folders and Hugging Face cache layouts) and JSON config access.
#include "io/model_folder.h"
#include "core/common.h"

#include <algorithm>
#include <cctype>
#include <climits>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;

namespace koala::io {

std::string joinPath(const std::string& a, const std::string& b) { return (fs::path(a) / b).string(); }

bool fileExists(const std::string& path) {
    std::error_code ec;
    return fs::is_regular_file(path, ec);  // follows symlinks (HF cache snapshots)
}

bool dirExists(const std::string& path) {
    std::error_code ec;
    return fs::is_directory(path, ec);
}

namespace {

std::string snapshotFromRepo(const fs::path& repo) {
    const fs::path snapshots = repo / "snapshots";
    std::error_code ec;
    // refs/main names the revision the hub client last downloaded; prefer it.
    std::ifstream ref(repo / "refs" / "main");
    std::string rev;
    if (ref && std::getline(ref, rev)) {
        rev.erase(std::remove_if(rev.begin(), rev.end(), [](char c) { return std::isspace((unsigned char)c); }),
                  rev.end());
        if (!rev.empty() && fs::is_regular_file(snapshots / rev / "model_index.json", ec))
            return (snapshots / rev).string();
    }
    // Otherwise the most recently modified snapshot that is a model.
    fs::path best;
    fs::file_time_type bestTime{};
    for (auto it = fs::directory_iterator(snapshots, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
        if (!fs::is_regular_file(it->path() / "model_index.json", ec)) continue;
        auto t = fs::last_write_time(it->path(), ec);
        if (best.empty() || t > bestTime) {
            best = it->path();
            bestTime = t;
        }
    }
    return best.string();
}

}  // namespace

std::string resolveModelFolder(const std::string& path) {
    std::error_code ec;
    if (path.empty()) fail(ErrorKind::ModelFormat, "no model folder given");
    // Normalised, without a trailing separator, so callers can take filename() as the model or repo name.
    fs::path p = fs::absolute(path, ec).lexically_normal();
    if (!p.has_filename() && p.has_parent_path()) p = p.parent_path();
    if (!fs::exists(p, ec)) fail(ErrorKind::ModelFormat, "model folder " + path + " does not exist");
    if (!fs::is_directory(p, ec))
        fail(ErrorKind::ModelFormat,
             path + " is not a folder (expected a diffusers model folder with model_index.json)");
    if (fs::is_regular_file(p / "model_index.json", ec)) return p.string();
    if (fs::is_directory(p / "snapshots", ec)) {
        std::string snap = snapshotFromRepo(p);
        if (!snap.empty()) return fs::path(snap).lexically_normal().string();
        fail(ErrorKind::ModelFormat, path +
                                         " is a Hugging Face cache folder but none of its snapshots holds a "
                                         "complete model (no model_index.json); download it again");
    }
    fail(ErrorKind::ModelFormat, path + " is not a diffusers model folder: no model_index.json");
}

nlohmann::json readJson(const std::string& path) {
    std::error_code ec;
    // An ifstream opens a directory without complaint on Linux and then reads nothing.
    if (fs::is_directory(path, ec)) fail(ErrorKind::ModelFormat, path + " is a folder, expected a JSON file");
    std::ifstream in(path);
    if (!in) {
        if (!fs::exists(path)) fail(ErrorKind::ModelFormat, "missing file " + path);
        fail(ErrorKind::Io, "cannot read " + path);
    }
    std::stringstream ss;
    ss << in.rdbuf();
    try {
        return nlohmann::json::parse(ss.str());
    } catch (const nlohmann::json::parse_error& e) {
        fail(ErrorKind::ModelFormat, path + " is not valid JSON (byte " + std::to_string(e.byte) + ")");
    } catch (const nlohmann::json::exception& e) {
        // A number JSON allows but a double cannot hold (1e999) is out_of_range 406, not a parse_error (fuzz_config).
        fail(ErrorKind::ModelFormat, path + " is not valid JSON (" + e.what() + ")");
    }
}

bool Config::has(const std::string& key) const { return m_json.contains(key) && !m_json.at(key).is_null(); }

namespace {
[[noreturn]] void typeError(const std::string& file, const std::string& key, const char* what) {
    fail(ErrorKind::ModelFormat, file + ": config key '" + key + "' must be " + what);
}
}  // namespace

#define KOALA_REQUIRE_KEY(key) \
    if (!has(key)) fail(ErrorKind::ModelFormat, m_file + ": missing config key '" + key + "'");

long long Config::getInt(const std::string& key) const {
    KOALA_REQUIRE_KEY(key);
    const auto& v = m_json.at(key);
    if (v.is_number_unsigned() && v.get<unsigned long long>() > (unsigned long long)LLONG_MAX)
        typeError(m_file, key, "an integer below 2^63");
    if (v.is_number_integer()) return v.get<long long>();
    // Some configs are written by tools that emit 4.0 for 4; accept integral floats, but range-check before the
    // cast (out-of-range double → integer conversion is undefined behaviour).
    if (v.is_number_float()) {
        double d = v.get<double>();
        if (std::isfinite(d) && std::fabs(d) < 9.0e18 && d == std::floor(d)) return (long long)d;
    }
    typeError(m_file, key, "an integer");
}

double Config::getDouble(const std::string& key) const {
    KOALA_REQUIRE_KEY(key);
    const auto& v = m_json.at(key);
    if (!v.is_number()) typeError(m_file, key, "a number");
    return v.get<double>();
}

std::string Config::getString(const std::string& key) const {
    KOALA_REQUIRE_KEY(key);
    const auto& v = m_json.at(key);
    if (!v.is_string()) typeError(m_file, key, "a string");
    return v.get<std::string>();
}

bool Config::getBool(const std::string& key) const {
    KOALA_REQUIRE_KEY(key);
    const auto& v = m_json.at(key);
    if (!v.is_boolean()) typeError(m_file, key, "true or false");
    return v.get<bool>();
}

std::vector<long long> Config::getIntList(const std::string& key) const {
    KOALA_REQUIRE_KEY(key);
    const auto& v = m_json.at(key);
    if (!v.is_array()) typeError(m_file, key, "a list of integers");
    std::vector<long long> out;
    for (const auto& e : v) {
        if (!e.is_number_integer()) typeError(m_file, key, "a list of integers");
        out.push_back(e.get<long long>());
    }
    return out;
}

std::vector<std::string> Config::getStringList(const std::string& key) const {
    KOALA_REQUIRE_KEY(key);
    const auto& v = m_json.at(key);
    if (!v.is_array()) typeError(m_file, key, "a list of strings");
    std::vector<std::string> out;
    for (const auto& e : v) {
        if (!e.is_string()) typeError(m_file, key, "a list of strings");
        out.push_back(e.get<std::string>());
    }
    return out;
}

long long Config::getInt(const std::string& key, long long def) const { return has(key) ? getInt(key) : def; }
double Config::getDouble(const std::string& key, double def) const { return has(key) ? getDouble(key) : def; }
std::string Config::getString(const std::string& key, const std::string& def) const {
    return has(key) ? getString(key) : def;
}
bool Config::getBool(const std::string& key, bool def) const { return has(key) ? getBool(key) : def; }

void Config::unsupported(const std::string& key, const std::string& why) const {
    std::string value = m_json.contains(key) ? m_json.at(key).dump() : "<absent>";
    fail(ErrorKind::ModelFormat, m_file + ": unsupported value for '" + key + "': " + value + " (" + why + ")");
}

}  // namespace koala::io
