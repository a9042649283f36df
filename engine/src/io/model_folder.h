// Diffusers model folders (internal): resolving a user path (plain folder, Hugging Face cache repo or snapshot,
// symlinks into blobs/) and reading JSON configs with clear errors.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace koala::io {

// Returns the absolute folder holding model_index.json. Accepts: the folder itself; a HF cache repo folder
// "models--org--name" (uses refs/main, else the newest snapshot); a snapshot folder. Throws koala::Error(ModelFormat)
// saying what is missing ("<path> is not a diffusers model folder: no model_index.json").
std::string resolveModelFolder(const std::string& path);

// Parse a JSON file. Throws koala::Error naming the file (and the parse position) when absent or malformed.
nlohmann::json readJson(const std::string& path);

// Typed config access whose errors name the file and the key.
class Config {
public:
    Config(nlohmann::json j, std::string file) : m_json(std::move(j)), m_file(std::move(file)) {}
    static Config load(const std::string& path) { return Config(readJson(path), path); }

    const nlohmann::json& json() const { return m_json; }
    const std::string& file() const { return m_file; }
    bool has(const std::string& key) const;  // present and not null
    // Required keys: throw koala::Error(ModelFormat) "<file>: missing config key 'k'" or "... 'k' must be an integer".
    long long getInt(const std::string& key) const;
    double getDouble(const std::string& key) const;
    std::string getString(const std::string& key) const;
    bool getBool(const std::string& key) const;
    std::vector<long long> getIntList(const std::string& key) const;
    std::vector<std::string> getStringList(const std::string& key) const;
    // Optional keys: the default when absent or null.
    long long getInt(const std::string& key, long long def) const;
    double getDouble(const std::string& key, double def) const;
    std::string getString(const std::string& key, const std::string& def) const;
    bool getBool(const std::string& key, bool def) const;
    // Throws koala::Error(ModelFormat) "<file>: unsupported value for 'k': <v> (<why>)".
    [[noreturn]] void unsupported(const std::string& key, const std::string& why) const;

private:
    nlohmann::json m_json;
    std::string m_file;
};

std::string joinPath(const std::string& a, const std::string& b);
bool fileExists(const std::string& path);
bool dirExists(const std::string& path);

}  // namespace koala::io
