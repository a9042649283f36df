// CLIP byte-level BPE tokenizer, reproducing what transformers 5 (`CLIPTokenizer`, a `tokenizers` backend) returns:
//   1. added tokens with normalized=false are split out of the raw text (leftmost-longest, like tokenizers'
//      Aho-Corasick matcher);
//   2. each remaining segment is normalized: NFC -> Replace(\s+, " ") -> Lowercase (Rust char::to_lowercase);
//   3. added tokens with normalized=true are split out of the normalized text;
//   4. pre-tokenizer: Split(CLIP pattern, Removed, invert) -- onig regex with IGNORECASE -- then ByteLevel with
//      use_regex=true, which applies the GPT-2 pattern to every piece again (it can only split further);
//   5. byte-to-unicode, BPE with "</w>" on the last symbol, merges applied in tokenizers' order (lowest rank, then
//      leftmost position).
// Nothing is dropped besides whitespace: NUL, control characters and U+FFFD are byte-level tokens (transformers 4's
// slow tokenizer without ftfy removed them; v5, the fixture's oracle, does not).
#include "text/tokenizer.h"

#include "core/common.h"

#include <utf8proc.h>
#include <nlohmann/json.hpp>

#include <sys/stat.h>
#include <algorithm>
#include <array>
#include <cstdint>
#include <fstream>
#include <functional>
#include <mutex>
#include <queue>
#include <sstream>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace koala::text {

namespace {

using Codepoints = std::vector<std::int32_t>;

// ---- files ---------------------------------------------------------------------------------------------------------

bool isFile(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string readFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail(ErrorKind::ModelFormat, path + ": cannot open the tokenizer file");
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) fail(ErrorKind::ModelFormat, path + ": cannot read the tokenizer file");
    return ss.str();
}

nlohmann::json parseJson(const std::string& path) {
    std::string text = readFile(path);
    try {
        return nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
        fail(ErrorKind::ModelFormat, path + ": malformed JSON (" + e.what() + ")");
    }
}

// ---- UTF-8 / Unicode -----------------------------------------------------------------------------------------------

void appendUtf8(std::string& out, std::int32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

// The engine takes std::string; a caller may hand in bytes that are not UTF-8. Python's decode(errors="replace")
// turns each maximal ill-formed subpart into one U+FFFD; do the same so the text is valid before NFC.
std::string sanitizeUtf8(const std::string& in) {
    std::string out;
    out.reserve(in.size());
    const auto* s = reinterpret_cast<const unsigned char*>(in.data());
    std::size_t n = in.size(), i = 0;
    while (i < n) {
        unsigned char b = s[i];
        if (b < 0x80) {
            out += static_cast<char>(b);
            ++i;
            continue;
        }
        int need = 0;
        unsigned char lo = 0x80, hi = 0xBF;
        if (b >= 0xC2 && b <= 0xDF) {
            need = 1;
        } else if (b >= 0xE0 && b <= 0xEF) {
            need = 2;
            if (b == 0xE0) lo = 0xA0;
            if (b == 0xED) hi = 0x9F;  // no surrogates
        } else if (b >= 0xF0 && b <= 0xF4) {
            need = 3;
            if (b == 0xF0) lo = 0x90;
            if (b == 0xF4) hi = 0x8F;
        }
        std::size_t j = i + 1;
        int got = 0;
        while (got < need && j < n) {
            unsigned char c = s[j];
            unsigned char l = got == 0 ? lo : 0x80, h = got == 0 ? hi : 0xBF;
            if (c < l || c > h) break;
            ++j;
            ++got;
        }
        if (need > 0 && got == need) {
            out.append(in, i, j - i);
        } else {
            appendUtf8(out, 0xFFFD);
            if (need == 0) j = i + 1;  // a stray continuation byte or an invalid lead byte: one U+FFFD each
        }
        i = j;
    }
    return out;
}

enum class CharClass : std::uint8_t { Space, Letter, Number, Other };

// Classes as oniguruma (tokenizers' regex engine) sees them in Unicode mode: \s is 0009-000D, 0085 and Z*;
// \p{L} is L*; \p{N} is N*.
CharClass baseClass(std::int32_t cp) {
    if (cp < 0x80) {
        if ((cp >= 9 && cp <= 13) || cp == 32) return CharClass::Space;
        if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z')) return CharClass::Letter;
        if (cp >= '0' && cp <= '9') return CharClass::Number;
        return CharClass::Other;
    }
    if (cp == 0x85) return CharClass::Space;
    switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_ZS:
    case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP: return CharClass::Space;
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO: return CharClass::Letter;
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO: return CharClass::Number;
    default: return CharClass::Other;
    }
}

// The CLIP pattern is compiled with IGNORECASE, and onig closes character classes under case folding: U+0345
// (combining ypogegrammeni, Mn) folds to iota, so [\p{L}] matches it and [^\s\p{L}\p{N}] does not. It is the only
// non-letter whose fold class contains a letter.
CharClass clipClass(std::int32_t cp) { return cp == 0x345 ? CharClass::Letter : baseClass(cp); }

// Case-insensitive comparison of a normalized code point with a lowercase ASCII pattern character (onig simple
// case folding): U+017F long s folds to 's', U+212A Kelvin to 'k'.
bool foldEquals(std::int32_t cp, char ascii) {
    if (cp == ascii) return true;
    if (ascii == 's' && cp == 0x17F) return true;
    if (ascii == 'k' && cp == 0x212A) return true;
    return cp < 0x80 && cp >= 'A' && cp <= 'Z' && cp + 32 == ascii;
}

// Length of the case-insensitive match of `lit` at cps[pos], or 0.
std::size_t matchLiteral(const Codepoints& cps, std::size_t pos, std::size_t end, const char* lit, bool ignoreCase) {
    std::size_t k = 0;
    for (; lit[k]; ++k) {
        if (pos + k >= end) return 0;
        std::int32_t cp = cps[pos + k];
        if (ignoreCase ? !foldEquals(cp, lit[k]) : cp != lit[k]) return 0;
    }
    return k;
}

const char* const kContractions[] = {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};

// Rust's char::to_lowercase (what tokenizers' Lowercase uses): the simple mapping, except U+0130, the one character
// whose unconditional lowercase is two code points.
void appendLower(Codepoints& out, std::int32_t cp) {
    if (cp < 0x80) {
        out.push_back(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp);
    } else if (cp == 0x130) {
        out.push_back('i');
        out.push_back(0x307);
    } else {
        out.push_back(utf8proc_tolower(cp));
    }
}

// NFC -> Replace(\s+, " ") -> Lowercase, on valid UTF-8. No strip: the pre-tokenizer drops whitespace anyway.
Codepoints normalize(const std::string& utf8) {
    Codepoints nfc;
    bool ascii = std::all_of(utf8.begin(), utf8.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
    if (ascii) {
        nfc.assign(utf8.begin(), utf8.end());
    } else {
        // Explicit length (no NULLTERM) so an embedded NUL is a character, as in Rust.
        const auto opts = static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE);
        const auto* src = reinterpret_cast<const utf8proc_uint8_t*>(utf8.data());
        auto len = static_cast<utf8proc_ssize_t>(utf8.size());
        nfc.resize(utf8.size() + 8);
        utf8proc_ssize_t n = utf8proc_decompose(src, len, nfc.data(), static_cast<utf8proc_ssize_t>(nfc.size()), opts);
        if (n > static_cast<utf8proc_ssize_t>(nfc.size())) {
            nfc.resize(static_cast<std::size_t>(n));
            n = utf8proc_decompose(src, len, nfc.data(), n, opts);
        }
        if (n < 0)
            fail(ErrorKind::InvalidArgument,
                 std::string("tokenizer: cannot normalize the prompt (") + utf8proc_errmsg(n) + ")");
        n = utf8proc_normalize_utf32(nfc.data(), n, opts);
        if (n < 0)
            fail(ErrorKind::InvalidArgument,
                 std::string("tokenizer: cannot normalize the prompt (") + utf8proc_errmsg(n) + ")");
        nfc.resize(static_cast<std::size_t>(n));
    }
    Codepoints out;
    out.reserve(nfc.size());
    bool inSpace = false;
    for (std::int32_t cp : nfc) {
        if (baseClass(cp) == CharClass::Space) {
            if (!inSpace) out.push_back(' ');
            inSpace = true;
        } else {
            inSpace = false;
            appendLower(out, cp);
        }
    }
    return out;
}

// ---- streaming JSON (the vocabulary is 49k keys; a DOM costs several times the parse) -------------------------------

struct BpeFileData {
    std::vector<std::pair<std::string, int>> vocab;
    std::vector<std::pair<std::string, std::string>> merges;
    struct Added {
        std::string content;
        int id = -1;
        bool normalized = false;
    };
    std::vector<Added> added;
    std::string modelType, eowSuffix = "</w>", unkToken, padToken;
    bool hasEowSuffix = false;
};

// Collects what the tokenizer needs from vocab.json ({token: id}) or tokenizer.json (model.vocab, model.merges as
// "a b" strings or ["a", "b"] pairs, added_tokens, padding.pad_token) and skips everything else.
class BpeSax : public nlohmann::json_sax<nlohmann::json> {
public:
    enum class Ctx {
        Other,
        VocabRoot,
        Root,
        Model,
        ModelVocab,
        ModelMerges,
        MergePair,
        AddedTokens,
        AddedToken,
        Padding
    };

    BpeSax(BpeFileData& d, bool vocabOnly, std::string file) : m_d(d), m_vocabOnly(vocabOnly), m_file(std::move(file)) {
        m_d.vocab.reserve(50000);
        m_d.merges.reserve(50000);
    }

    bool null() override { return m_stack.empty() ? error("expected a JSON object") : true; }
    bool boolean(bool v) override {
        if (m_stack.empty()) return error("expected a JSON object");
        const Frame& f = m_stack.back();
        if (f.ctx == Ctx::AddedToken && f.key == "normalized") m_d.added.back().normalized = v;
        return true;
    }
    bool number_integer(number_integer_t v) override { return number(static_cast<long long>(v)); }
    bool number_unsigned(number_unsigned_t v) override {
        return number(v > 0x7fffffffULL ? -1 : static_cast<long long>(v));
    }
    bool number_float(number_float_t, const string_t&) override {
        if (m_stack.empty()) return error("expected a JSON object");
        if (m_stack.back().ctx == Ctx::ModelVocab || m_stack.back().ctx == Ctx::VocabRoot)
            return error("token id of '" + m_stack.back().key + "' is not an integer");
        return true;
    }
    bool string(string_t& v) override {
        if (m_stack.empty()) return error("expected a JSON object");
        Frame& f = m_stack.back();
        switch (f.ctx) {
        case Ctx::ModelVocab:
        case Ctx::VocabRoot: return error("token id of '" + f.key + "' is not an integer");
        case Ctx::ModelMerges: {
            auto sp = v.find(' ');
            if (sp == std::string::npos || sp == 0 || sp + 1 == v.size() || v.find(' ', sp + 1) != std::string::npos)
                return error("model.merges entry '" + v + "' is not two tokens separated by a space");
            m_d.merges.emplace_back(v.substr(0, sp), v.substr(sp + 1));
            return true;
        }
        case Ctx::MergePair:
            if (f.index == 0)
                m_d.merges.emplace_back(v, std::string());
            else if (f.index == 1)
                m_d.merges.back().second = v;
            ++f.index;
            return true;
        case Ctx::Model:
            if (f.key == "type")
                m_d.modelType = v;
            else if (f.key == "end_of_word_suffix")
                m_d.eowSuffix = v, m_d.hasEowSuffix = true;
            else if (f.key == "unk_token")
                m_d.unkToken = v;
            return true;
        case Ctx::AddedToken:
            if (f.key == "content") m_d.added.back().content = v;
            return true;
        case Ctx::Padding:
            if (f.key == "pad_token") m_d.padToken = v;
            return true;
        default: return true;
        }
    }
    bool binary(binary_t&) override { return true; }
    bool start_object(std::size_t) override {
        Ctx c = Ctx::Other;
        if (m_stack.empty()) {
            c = m_vocabOnly ? Ctx::VocabRoot : Ctx::Root;
        } else {
            const Frame& p = m_stack.back();
            if (p.ctx == Ctx::Root && p.key == "model")
                c = Ctx::Model;
            else if (p.ctx == Ctx::Root && p.key == "padding")
                c = Ctx::Padding;
            else if (p.ctx == Ctx::Model && p.key == "vocab")
                c = Ctx::ModelVocab;
            else if (p.ctx == Ctx::AddedTokens) {
                c = Ctx::AddedToken;
                m_d.added.emplace_back();
            } else if (p.ctx == Ctx::ModelVocab || p.ctx == Ctx::VocabRoot) {
                return error("token id of '" + p.key + "' is not an integer");
            }
        }
        m_stack.push_back({c, {}, 0});
        return true;
    }
    bool key(string_t& k) override {
        m_stack.back().key = std::move(k);
        return true;
    }
    bool end_object() override {
        if (m_stack.back().ctx == Ctx::AddedToken) {
            const auto& a = m_d.added.back();
            if (a.id < 0 || a.content.empty()) return error("added_tokens entry without 'id' or 'content'");
        }
        m_stack.pop_back();
        return true;
    }
    bool start_array(std::size_t) override {
        Ctx c = Ctx::Other;
        if (m_stack.empty()) return error("expected a JSON object");
        const Frame& p = m_stack.back();
        if (p.ctx == Ctx::Root && p.key == "added_tokens")
            c = Ctx::AddedTokens;
        else if (p.ctx == Ctx::Model && p.key == "merges")
            c = Ctx::ModelMerges;
        else if (p.ctx == Ctx::ModelMerges)
            c = Ctx::MergePair;
        else if (p.ctx == Ctx::ModelVocab || p.ctx == Ctx::VocabRoot)
            return error("token id of '" + p.key + "' is not an integer");
        m_stack.push_back({c, {}, 0});
        return true;
    }
    bool end_array() override {
        if (m_stack.back().ctx == Ctx::MergePair && m_stack.back().index != 2)
            return error("model.merges entry is not a pair of tokens");
        m_stack.pop_back();
        return true;
    }
    bool parse_error(std::size_t pos, const std::string&, const nlohmann::detail::exception& e) override {
        m_error = "malformed JSON at byte " + std::to_string(pos) + " (" + e.what() + ")";
        return false;
    }

    const std::string& errorText() const { return m_error; }

private:
    struct Frame {
        Ctx ctx;
        std::string key;
        int index;
    };

    bool number(long long v) {
        if (m_stack.empty()) return error("expected a JSON object");
        Frame& f = m_stack.back();
        if (f.ctx == Ctx::ModelVocab || f.ctx == Ctx::VocabRoot) {
            if (v < 0) return error("token id of '" + f.key + "' is out of range");
            m_d.vocab.emplace_back(std::move(f.key), static_cast<int>(v));
        } else if (f.ctx == Ctx::AddedToken && f.key == "id") {
            if (v < 0) return error("added_tokens id out of range");
            m_d.added.back().id = static_cast<int>(v);
        } else if (f.ctx == Ctx::MergePair) {
            return error("model.merges entry is not a pair of tokens");
        }
        return true;
    }
    bool error(const std::string& what) {
        m_error = what;
        return false;
    }

    BpeFileData& m_d;
    bool m_vocabOnly;
    std::string m_file;
    std::vector<Frame> m_stack;
    std::string m_error;
};

void parseBpeJson(const std::string& path, bool vocabOnly, BpeFileData& d) {
    std::string text = readFile(path);
    BpeSax sax(d, vocabOnly, path);
    bool ok = false;
    try {
        ok = nlohmann::json::sax_parse(text, &sax);
    } catch (const nlohmann::json::exception& e) {
        fail(ErrorKind::ModelFormat, path + ": malformed JSON (" + e.what() + ")");
    }
    if (!ok) fail(ErrorKind::ModelFormat, path + ": " + (sax.errorText().empty() ? "malformed JSON" : sax.errorText()));
}

void parseMergesTxt(const std::string& path, BpeFileData& d) {
    std::string text = readFile(path);
    std::size_t pos = 0, lineNo = 0;
    while (pos < text.size()) {
        std::size_t eol = text.find('\n', pos);
        if (eol == std::string::npos) eol = text.size();
        std::string line = text.substr(pos, eol - pos);
        pos = eol + 1;
        ++lineNo;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty() || (lineNo == 1 && line.rfind("#version", 0) == 0)) continue;
        auto sp = line.find(' ');
        if (sp == std::string::npos || sp == 0 || sp + 1 == line.size() || line.find(' ', sp + 1) != std::string::npos)
            fail(ErrorKind::ModelFormat,
                 path + ": line " + std::to_string(lineNo) + " is not two tokens separated by a space");
        d.merges.emplace_back(line.substr(0, sp), line.substr(sp + 1));
    }
}

// A special-token entry of tokenizer_config.json / special_tokens_map.json: "text" or {"content": "text", ...}.
bool tokenEntry(const nlohmann::json& v, std::string& content, bool& normalized, bool& hasNormalized) {
    hasNormalized = false;
    if (v.is_string()) {
        content = v.get<std::string>();
        return !content.empty();
    }
    if (v.is_object() && v.contains("content") && v["content"].is_string()) {
        content = v["content"].get<std::string>();
        if (v.contains("normalized") && v["normalized"].is_boolean()) {
            normalized = v["normalized"].get<bool>();
            hasNormalized = true;
        }
        return !content.empty();
    }
    return false;
}

std::string pathJoin(const std::string& dir, const std::string& name) {
    if (dir.empty() || dir.back() == '/') return dir + name;
    return dir + "/" + name;
}

// Open-addressing tables: the 49k-token vocabulary and 48k merges are built at every load, and node-based
// unordered_maps spend most of the load time on allocation and cache misses.
std::uint64_t fnv1a(std::string_view s) {
    std::uint64_t h = 1469598103934665603ULL;
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
    return h;
}

std::size_t tableSize(std::size_t n) {
    std::size_t cap = 16;
    while (cap < n * 2) cap <<= 1;
    return cap;
}

// token -> id over the (moved-in) vocabulary entries; a repeated key keeps the last id, like a JSON object read
// into a dict.
class VocabIndex {
public:
    explicit VocabIndex(std::vector<std::pair<std::string, int>>& entries) : m_entries(entries) {
        m_slots.assign(tableSize(entries.size()), -1);
        for (std::size_t i = 0; i < entries.size(); ++i) {
            std::size_t s = slotOf(entries[i].first);
            if (m_slots[s] >= 0)
                entries[static_cast<std::size_t>(m_slots[s])].second = entries[i].second;
            else
                m_slots[s] = static_cast<std::int32_t>(i);
        }
    }
    int find(std::string_view key) const {
        std::int32_t e = m_slots[slotOf(key)];
        return e < 0 ? -1 : m_entries[static_cast<std::size_t>(e)].second;
    }

private:
    std::size_t slotOf(std::string_view key) const {
        const std::size_t mask = m_slots.size() - 1;
        for (std::size_t s = fnv1a(key) & mask;; s = (s + 1) & mask) {
            std::int32_t e = m_slots[s];
            if (e < 0 || m_entries[static_cast<std::size_t>(e)].first == key) return s;
        }
    }
    const std::vector<std::pair<std::string, int>>& m_entries;
    std::vector<std::int32_t> m_slots;
};

// (left id, right id) -> (rank, merged id).
class MergeTable {
public:
    struct Merge {
        int rank;
        int newId;
    };
    void reserve(std::size_t n) {
        m_keys.assign(tableSize(n), kEmpty);
        m_vals.assign(m_keys.size(), Merge{0, 0});
    }
    // The first occurrence of a pair keeps its rank.
    void insert(int a, int b, Merge m) {
        std::size_t s = slotOf(key(a, b));
        if (m_keys[s] == kEmpty) m_keys[s] = key(a, b), m_vals[s] = m;
    }
    const Merge* find(int a, int b) const {
        std::size_t s = slotOf(key(a, b));
        return m_keys[s] == kEmpty ? nullptr : &m_vals[s];
    }

private:
    static constexpr std::uint64_t kEmpty = ~0ULL;
    static std::uint64_t key(int a, int b) {
        return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32) | static_cast<std::uint32_t>(b);
    }
    std::size_t slotOf(std::uint64_t k) const {
        const std::size_t mask = m_keys.size() - 1;
        for (std::size_t s = static_cast<std::size_t>((k * 0x9E3779B97F4A7C15ULL) >> 20) & mask;; s = (s + 1) & mask)
            if (m_keys[s] == kEmpty || m_keys[s] == k) return s;
    }
    std::vector<std::uint64_t> m_keys{kEmpty};
    std::vector<Merge> m_vals{Merge{0, 0}};
};

struct TokenizerFiles {
    BpeFileData data;
    std::string tokJson, configJson, mapJson;  // tokJson may not exist
    std::string vocabFile, mergesFile;         // where the vocabulary and merges came from, for messages
};

// The vocabulary and merges of a tokenizer folder: tokenizer.json, or vocab.json + merges.txt.
TokenizerFiles readTokenizerFiles(const std::string& dir) {
    TokenizerFiles f;
    const std::string tokJson = pathJoin(dir, "tokenizer.json");
    f.tokJson = tokJson;
    f.configJson = pathJoin(dir, "tokenizer_config.json");
    f.mapJson = pathJoin(dir, "special_tokens_map.json");
    const std::string vocabJson = pathJoin(dir, "vocab.json");
    const std::string mergesTxt = pathJoin(dir, "merges.txt");

    BpeFileData& d = f.data;
    std::string& vocabFile = f.vocabFile;
    std::string& mergesFile = f.mergesFile;
    if (isFile(tokJson)) {
        parseBpeJson(tokJson, false, d);
        vocabFile = mergesFile = tokJson;
        if (!d.modelType.empty() && d.modelType != "BPE")
            fail(ErrorKind::ModelFormat, tokJson + ": model.type is '" + d.modelType + "', expected 'BPE'");
        if (d.hasEowSuffix && d.eowSuffix != "</w>")
            fail(ErrorKind::ModelFormat,
                 tokJson + ": model.end_of_word_suffix is '" + d.eowSuffix + "', expected '</w>' (a CLIP tokenizer)");
    } else {
        if (!isFile(vocabJson))
            fail(ErrorKind::ModelFormat, vocabJson +
                                             ": missing (a tokenizer folder needs vocab.json + merges.txt "
                                             "or tokenizer.json)");
        if (!isFile(mergesTxt)) fail(ErrorKind::ModelFormat, mergesTxt + ": missing (vocab.json needs merges.txt)");
        parseBpeJson(vocabJson, true, d);
        parseMergesTxt(mergesTxt, d);
        vocabFile = vocabJson;
        mergesFile = mergesTxt;
    }
    if (d.vocab.empty()) fail(ErrorKind::ModelFormat, vocabFile + ": the vocabulary is empty");

    return f;
}

}  // namespace

// ---- the tokenizer ---------------------------------------------------------------------------------------------------

struct ClipTokenizer::Impl {
    struct Special {
        std::string content;       // as written in the files
        Codepoints normalizedCps;  // for normalized=true: the content after normalize(), matched on normalized text
        int id = -1;
        bool normalized = false;
    };
    std::array<int, 256> byteId{};     // id of the byte's unicode char
    std::array<int, 256> byteEowId{};  // id of the char + "</w>"
    MergeTable merges;
    std::vector<Special> specials;
    bool anyNormalizedSpecial = false;
    int unk = 49407;
    int maxId = -1;

    // Loading (ClipTokenizer::load), in order.
    struct SpecialIds {
        int bos = -1, eos = -1, pad = -1;
    };
    void buildByteTable(const VocabIndex& vocab);
    // Added tokens and the named special tokens; sets unk and returns bos/eos/pad.
    SpecialIds loadSpecialTokens(const TokenizerFiles& f, const VocabIndex& vocab);
    // Normalized specials, unknown bytes, merge ranks.
    void finishTables(const TokenizerFiles& f, const VocabIndex& vocab);

    mutable std::mutex cacheMutex;
    mutable std::unordered_map<std::string, std::vector<int>> cache;

    // tokenizers' Word::merge_all: a min-heap of (rank, position); stale entries are skipped when popped.
    std::vector<int> bpe(const std::string& piece) const {
        const std::size_t n = piece.size();
        std::vector<int> ids(n), prev(n), next(n);
        std::vector<char> alive(n, 1);
        for (std::size_t i = 0; i < n; ++i) {
            auto b = static_cast<unsigned char>(piece[i]);
            ids[i] = i + 1 == n ? byteEowId[b] : byteId[b];
            prev[i] = static_cast<int>(i) - 1;
            next[i] = i + 1 < n ? static_cast<int>(i) + 1 : -1;
        }
        struct Item {
            int rank, pos, newId;
            bool operator>(const Item& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
        };
        std::priority_queue<Item, std::vector<Item>, std::greater<Item>> heap;
        auto pushPair = [&](int pos) {
            int nx = next[pos];
            if (nx < 0) return;
            if (const auto* m = merges.find(ids[pos], ids[nx])) heap.push({m->rank, pos, m->newId});
        };
        for (std::size_t i = 0; i + 1 < n; ++i) pushPair(static_cast<int>(i));
        while (!heap.empty()) {
            Item top = heap.top();
            heap.pop();
            int pos = top.pos;
            if (!alive[pos] || next[pos] < 0) continue;
            int nx = next[pos];
            const auto* m = merges.find(ids[pos], ids[nx]);
            if (!m || m->newId != top.newId) continue;
            ids[pos] = top.newId;
            alive[nx] = 0;
            next[pos] = next[nx];
            if (next[nx] >= 0) prev[next[nx]] = pos;
            if (prev[pos] >= 0) pushPair(prev[pos]);
            pushPair(pos);
        }
        std::vector<int> out;
        for (int i = n ? 0 : -1; i >= 0; i = next[i]) out.push_back(ids[i]);
        return out;
    }

    void bpeCached(const std::string& piece, std::vector<int>& out) const {
        {
            std::lock_guard<std::mutex> lock(cacheMutex);
            auto it = cache.find(piece);
            if (it != cache.end()) {
                out.insert(out.end(), it->second.begin(), it->second.end());
                return;
            }
        }
        std::vector<int> ids = bpe(piece);
        out.insert(out.end(), ids.begin(), ids.end());
        std::lock_guard<std::mutex> lock(cacheMutex);
        if (cache.size() >= 100000) cache.clear();  // bound memory for a long-running app
        cache.emplace(piece, std::move(ids));
    }

    // ByteLevel's own GPT-2 split ('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+, case-sensitive)
    // of one CLIP piece, then BPE of each part.
    void encodePiece(const Codepoints& cps, std::size_t begin, std::size_t end, std::vector<int>& out) const {
        std::string bytes;
        std::size_t p = begin;
        while (p < end) {
            std::size_t len = 0;
            if (cps[p] == '\'') {
                for (const char* c : kContractions)
                    if ((len = matchLiteral(cps, p, end, c, false)) != 0) break;
            }
            if (len == 0) {
                CharClass cls = baseClass(cps[p]);
                std::size_t q = p + 1;
                while (q < end && baseClass(cps[q]) == cls) ++q;
                len = q - p;
            }
            bytes.clear();
            for (std::size_t k = p; k < p + len; ++k) appendUtf8(bytes, cps[k]);
            bpeCached(bytes, out);
            p += len;
        }
    }

    // The CLIP pattern (IGNORECASE), leftmost-first alternation, whitespace dropped:
    // <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
    void encodeNormalized(const Codepoints& cps, std::size_t begin, std::size_t end, std::vector<int>& out) const {
        std::size_t p = begin;
        while (p < end) {
            std::int32_t cp = cps[p];
            std::size_t len = 0;
            if (cp == '<') {
                len = matchLiteral(cps, p, end, "<|startoftext|>", true);
                if (!len) len = matchLiteral(cps, p, end, "<|endoftext|>", true);
            } else if (cp == '\'') {
                for (const char* c : kContractions)
                    if ((len = matchLiteral(cps, p, end, c, true)) != 0) break;
            }
            if (len == 0) {
                CharClass cls = clipClass(cp);
                if (cls == CharClass::Space) {
                    ++p;
                    continue;
                }
                std::size_t q = p + 1;
                if (cls != CharClass::Number)
                    while (q < end && clipClass(cps[q]) == cls) ++q;
                len = q - p;
            }
            encodePiece(cps, p, p + len, out);
            p += len;
        }
    }

    // Leftmost-longest search for added tokens (tokenizers uses Aho-Corasick with LeftmostLongest).
    template <class Seq, class Get>
    void splitSpecials(const Seq& seq, bool normalizedPass, Get contentOf,
                       const std::function<void(std::size_t, std::size_t)>& onText, std::vector<int>& out) const {
        std::size_t start = 0, p = 0, n = seq.size();
        while (p < n) {
            std::size_t bestLen = 0;
            int bestId = -1;
            for (const Special& s : specials) {
                if (s.normalized != normalizedPass) continue;
                const auto& c = contentOf(s);
                if (c.size() > bestLen && c.size() <= n - p && std::equal(c.begin(), c.end(), seq.begin() + p)) {
                    bestLen = c.size();
                    bestId = s.id;
                }
            }
            if (bestLen == 0) {
                ++p;
                continue;
            }
            if (p > start) onText(start, p);
            out.push_back(bestId);
            p += bestLen;
            start = p;
        }
        if (n > start) onText(start, n);
    }

    void encodeSegment(const std::string& raw, std::vector<int>& out) const {
        Codepoints cps = normalize(raw);
        if (!anyNormalizedSpecial) {
            encodeNormalized(cps, 0, cps.size(), out);
            return;
        }
        splitSpecials(
            cps, true, [](const Special& s) -> const Codepoints& { return s.normalizedCps; },
            [&](std::size_t a, std::size_t b) { encodeNormalized(cps, a, b, out); }, out);
    }

    std::vector<int> encode(const std::string& text) const {
        std::string clean = sanitizeUtf8(text);
        std::vector<int> out;
        splitSpecials(
            clean, false, [](const Special& s) -> const std::string& { return s.content; },
            [&](std::size_t a, std::size_t b) { encodeSegment(clean.substr(a, b - a), out); }, out);
        return out;
    }
};

ClipTokenizer::ClipTokenizer() : m_impl(std::make_unique<Impl>()) {}
ClipTokenizer::~ClipTokenizer() = default;

int ClipTokenizer::vocabSize() const { return m_impl->maxId + 1; }

std::vector<int> ClipTokenizer::encode(const std::string& text) const { return m_impl->encode(text); }

std::vector<int> ClipTokenizer::encodePadded(const std::string& text, int maxLength) const {
    if (maxLength < 2)
        fail(ErrorKind::InvalidArgument, "tokenizer: max length " + std::to_string(maxLength) +
                                             " leaves no room for "
                                             "the start and end tokens");
    std::vector<int> ids = encode(text);
    std::vector<int> out;
    out.reserve(static_cast<std::size_t>(maxLength));
    out.push_back(m_bos);
    std::size_t keep = std::min(ids.size(), static_cast<std::size_t>(maxLength - 2));
    out.insert(out.end(), ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(keep));
    out.push_back(m_eos);
    out.resize(static_cast<std::size_t>(maxLength), m_pad);
    return out;
}

// Byte-to-unicode (GPT-2): printable bytes map to themselves, the rest to U+0100 upwards.
void ClipTokenizer::Impl::buildByteTable(const VocabIndex& vocab) {
    std::array<std::int32_t, 256> byteChar{};
    std::array<bool, 256> direct{};
    for (int b = 0; b < 256; ++b) direct[b] = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
    int extra = 0;
    for (int b = 0; b < 256; ++b) byteChar[b] = direct[b] ? b : 256 + extra++;
    for (int b = 0; b < 256; ++b) {
        std::string s;
        appendUtf8(s, byteChar[b]);
        byteId[b] = vocab.find(s);
        byteEowId[b] = vocab.find(s + "</w>");
    }
}

ClipTokenizer::Impl::SpecialIds ClipTokenizer::Impl::loadSpecialTokens(const TokenizerFiles& f,
                                                                       const VocabIndex& vocab) {
    SpecialIds ids;
    // Added tokens: tokenizer.json's first, then tokenizer_config.json's added_tokens_decoder, then the named special
    // tokens (bos/eos/unk/pad/additional) of tokenizer_config.json overridden by special_tokens_map.json.
    auto addSpecial = [&](const std::string& content, int id, bool normalized) {
        for (const auto& s : specials)
            if (s.content == content) return;
        Impl::Special s;
        s.content = content;
        s.id = id;
        s.normalized = normalized;
        specials.push_back(std::move(s));
        maxId = std::max(maxId, id);
    };
    for (const auto& a : f.data.added) addSpecial(a.content, a.id, a.normalized);

    std::string bosName = "<|startoftext|>", eosName = "<|endoftext|>", unkName = "<|endoftext|>", padName;
    std::string bosFile, eosFile, unkFile, padFile;  // where each name came from, for errors
    if (!f.data.unkToken.empty()) unkName = f.data.unkToken, unkFile = f.tokJson;
    if (!f.data.padToken.empty()) padName = f.data.padToken, padFile = f.tokJson;
    struct Named {
        std::string content, file;
        bool normalized = false;
    };
    std::vector<Named> named;  // named special tokens, added after the explicit added tokens
    auto readNamed = [&](const std::string& file) {
        if (!isFile(file)) return nlohmann::json();
        nlohmann::json j = parseJson(file);
        if (!j.is_object()) fail(ErrorKind::ModelFormat, file + ": expected a JSON object");
        const std::pair<const char*, std::string*> keys[] = {
            {"bos_token", &bosName}, {"eos_token", &eosName}, {"unk_token", &unkName}, {"pad_token", &padName}};
        std::string* files[] = {&bosFile, &eosFile, &unkFile, &padFile};
        for (int k = 0; k < 4; ++k) {
            if (!j.contains(keys[k].first) || j[keys[k].first].is_null()) continue;
            std::string c;
            bool norm = false, hasNorm = false;
            if (!tokenEntry(j[keys[k].first], c, norm, hasNorm))
                fail(ErrorKind::ModelFormat, file + ": '" + keys[k].first + "' is not a token");
            *keys[k].second = c;
            *files[k] = file;
            named.push_back({c, file, hasNorm && norm});
        }
        for (const char* listKey : {"additional_special_tokens", "extra_special_tokens"}) {
            if (!j.contains(listKey) || !j[listKey].is_array()) continue;
            for (const auto& v : j[listKey]) {
                std::string c;
                bool norm = false, hasNorm = false;
                if (!tokenEntry(v, c, norm, hasNorm))
                    fail(ErrorKind::ModelFormat, file + ": an entry of '" + listKey + "' is not a token");
                named.push_back({c, file, hasNorm && norm});
            }
        }
        return j;
    };
    nlohmann::json config = readNamed(f.configJson);
    if (config.is_object() && config.contains("added_tokens_decoder")) {
        const auto& dec = config["added_tokens_decoder"];
        if (!dec.is_object()) fail(ErrorKind::ModelFormat, f.configJson + ": 'added_tokens_decoder' is not an object");
        for (auto it = dec.begin(); it != dec.end(); ++it) {
            std::string c;
            bool norm = false, hasNorm = false;
            int id = -1;
            try {
                id = std::stoi(it.key());
            } catch (const std::exception&) {}
            if (id < 0 || !tokenEntry(it.value(), c, norm, hasNorm))
                fail(ErrorKind::ModelFormat,
                     f.configJson + ": added_tokens_decoder entry '" + it.key() + "' is invalid");
            addSpecial(c, id, hasNorm && norm);
        }
    }
    readNamed(f.mapJson);  // later keys override tokenizer_config.json's, as in transformers
    for (const auto& nm : named) {
        if (std::any_of(specials.begin(), specials.end(), [&](const auto& s) { return s.content == nm.content; }))
            continue;
        int id = vocab.find(nm.content);
        if (id < 0)
            fail(ErrorKind::ModelFormat, nm.file + ": special token '" + nm.content + "' is not in the vocabulary");
        addSpecial(nm.content, id, nm.normalized);
    }

    auto resolve = [&](const std::string& name, const std::string& file, const char* what) {
        for (const auto& s : specials)
            if (s.content == name) return s.id;
        int id = vocab.find(name);
        if (id < 0)
            fail(ErrorKind::ModelFormat,
                 (file.empty() ? f.vocabFile : file) + ": " + what + " '" + name + "' is not in the vocabulary");
        return id;
    };
    ids.bos = resolve(bosName, bosFile, "bos_token");
    ids.eos = resolve(eosName, eosFile, "eos_token");
    unk = resolve(unkName, unkFile, "unk_token");
    // CLIPTokenizer's default pad token is <|endoftext|>.
    ids.pad = padName.empty() ? resolve("<|endoftext|>", "", "pad_token") : resolve(padName, padFile, "pad_token");

    return ids;
}

void ClipTokenizer::Impl::finishTables(const TokenizerFiles& f, const VocabIndex& vocab) {
    for (auto& s : specials) {
        if (s.normalized) {
            s.normalizedCps = normalize(sanitizeUtf8(s.content));
            anyNormalizedSpecial = true;
        }
    }
    for (int b = 0; b < 256; ++b) {
        if (byteId[b] < 0) byteId[b] = unk;
        if (byteEowId[b] < 0) byteEowId[b] = unk;
    }

    // Merge ranks: the line/entry index. A merge whose parts or result are not in the vocabulary is a broken file
    // (tokenizers refuses it too).
    merges.reserve(f.data.merges.size());
    int rank = 0;
    std::string joined;
    for (const auto& [a, b] : f.data.merges) {
        joined.assign(a).append(b);
        int ia = vocab.find(a), ib = vocab.find(b), ic = vocab.find(joined);
        if (ia < 0 || ib < 0 || ic < 0)
            fail(ErrorKind::ModelFormat, f.mergesFile + ": merge '" + a + " " + b + "' (rank " + std::to_string(rank) +
                                             ") uses a token that is not in the vocabulary");
        merges.insert(ia, ib, MergeTable::Merge{rank, ic});
        ++rank;
    }
}

std::shared_ptr<ClipTokenizer> ClipTokenizer::load(const std::string& dir) {
    TokenizerFiles f = readTokenizerFiles(dir);  // VocabIndex sorts the vocabulary in place
    auto tok = std::shared_ptr<ClipTokenizer>(new ClipTokenizer());
    Impl& im = *tok->m_impl;
    VocabIndex vocab(f.data.vocab);
    for (const auto& e : f.data.vocab) im.maxId = std::max(im.maxId, e.second);
    im.buildByteTable(vocab);
    const Impl::SpecialIds ids = im.loadSpecialTokens(f, vocab);
    tok->m_bos = ids.bos;
    tok->m_eos = ids.eos;
    tok->m_pad = ids.pad;
    im.finishTables(f, vocab);
    return tok;
}

}  // namespace koala::text
