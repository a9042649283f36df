// AUTOMATIC1111's prompt syntax: see prompt_syntax.h. Follows modules/prompt_parser.py (parse_prompt_attention),
// modules/extra_networks.py (the `<name:args>` tags) and modules/sd_hijack_clip.py (tokenize_line) step by step.
// Bytes stand for Python's code points: every character the grammar knows is ASCII, and UTF-8 continuation bytes are
// never ASCII.
#include "text/prompt_syntax.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <utility>

namespace koala::text {
namespace {

bool isSpace(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
// Python's \w on a str: letters, digits, underscore; any non-ASCII byte counts as a letter (approximation).
bool isWord(unsigned char c) { return std::isalnum(c) || c == '_' || c >= 0x80; }
bool isSpecial(char c) { return c == '\\' || c == '(' || c == ')' || c == '[' || c == ']' || c == ':'; }

// A run of text with the source byte offset of each of its bytes.
struct Run {
    std::string text;
    std::vector<std::size_t> src;
    double weight = 1.0;
};

void appendRun(std::vector<Run>& res, const std::string& s, std::size_t srcBegin, double weight) {
    Run r;
    r.text = s;
    r.weight = weight;
    for (std::size_t i = 0; i < s.size(); ++i) r.src.push_back(srcBegin + i);
    res.push_back(std::move(r));
}

// re.split(r"\s*\bBREAK\b\s*", text): the pieces with their start offsets.
std::vector<std::pair<std::string, std::size_t>> splitBreak(const std::string& t, std::size_t base) {
    std::vector<std::pair<std::string, std::size_t>> parts;
    std::size_t pieceStart = 0, i = 0;
    while (i < t.size()) {
        // Leftmost match: the start of the whitespace run that directly precedes a BREAK word, or the BREAK itself.
        std::size_t ws = i;
        while (ws < t.size() && isSpace(static_cast<unsigned char>(t[ws]))) ++ws;
        const std::size_t b = ws;
        const bool boundaryBefore = b == 0 || !isWord(static_cast<unsigned char>(t[b - 1]));
        const bool word = t.compare(b, 5, "BREAK") == 0;
        const bool boundaryAfter = b + 5 >= t.size() || !isWord(static_cast<unsigned char>(t[b + 5]));
        if (word && boundaryBefore && boundaryAfter) {
            std::size_t e = b + 5;
            while (e < t.size() && isSpace(static_cast<unsigned char>(t[e]))) ++e;
            parts.emplace_back(t.substr(pieceStart, i - pieceStart), base + pieceStart);
            pieceStart = i = e;
            continue;
        }
        i = ws > i ? ws : i + 1;
    }
    parts.emplace_back(t.substr(pieceStart), base + pieceStart);
    return parts;
}

// `:\s*([+-]?[.\d]+)\s*\)` at `pos` (which holds ':'). Returns the match length (0 = no match) and the number text.
std::size_t matchWeight(const std::string& s, std::size_t pos, std::string& number) {
    std::size_t i = pos + 1;
    while (i < s.size() && isSpace(static_cast<unsigned char>(s[i]))) ++i;
    const std::size_t numBegin = i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    const std::size_t digits = i;
    while (i < s.size() && (s[i] == '.' || std::isdigit(static_cast<unsigned char>(s[i])))) ++i;
    if (i == digits) return 0;
    number = s.substr(numBegin, i - numBegin);
    while (i < s.size() && isSpace(static_cast<unsigned char>(s[i]))) ++i;
    if (i >= s.size() || s[i] != ')') return 0;
    return i + 1 - pos;
}

// Python's float() on [+-]?[.\d]+: at most one dot and at least one digit.
bool pythonFloat(const std::string& s, double& out) {
    int dots = 0, digits = 0;
    for (char c : s) {
        if (c == '.') ++dots;
        if (std::isdigit(static_cast<unsigned char>(c))) ++digits;
    }
    if (dots > 1 || digits == 0) return false;
    out = std::strtod(s.c_str(), nullptr);
    return true;
}

std::vector<Run> parseRuns(const std::string& s) {
    std::vector<Run> res;
    std::vector<std::size_t> round, square;
    auto multiplyRange = [&](std::size_t start, double m) {
        for (std::size_t p = start; p < res.size(); ++p) res[p].weight *= m;
    };
    const double roundMul = 1.1, squareMul = 1 / 1.1;
    std::size_t i = 0;
    while (i < s.size()) {
        const char c = s[i];
        if (c == '\\') {
            // \( \) \[ \] \\ are two-character literals; a lone backslash is dropped (text[1:] of "\").
            const bool pair = i + 1 < s.size() && (s[i + 1] == '(' || s[i + 1] == ')' || s[i + 1] == '[' ||
                                                   s[i + 1] == ']' || s[i + 1] == '\\');
            if (pair) {
                appendRun(res, s.substr(i + 1, 1), i + 1, 1.0);
                i += 2;
            } else {
                appendRun(res, "", i, 1.0);
                i += 1;
            }
            continue;
        }
        if (c == '(') {
            round.push_back(res.size());
            ++i;
            continue;
        }
        if (c == '[') {
            square.push_back(res.size());
            ++i;
            continue;
        }
        if (c == ':') {
            std::string number;
            const std::size_t len = matchWeight(s, i, number);
            double w = 0;
            if (len > 0 && !round.empty() && pythonFloat(number, w)) {
                multiplyRange(round.back(), w);
                round.pop_back();
                i += len;
                continue;
            }
            // The weight syntax without an open bracket is literal text (the whole match, as A1111).
            const std::size_t take = len > 0 ? len : 1;
            appendRun(res, s.substr(i, take), i, 1.0);
            i += take;
            continue;
        }
        if (c == ')' && !round.empty()) {
            multiplyRange(round.back(), roundMul);
            round.pop_back();
            ++i;
            continue;
        }
        if (c == ']' && !square.empty()) {
            multiplyRange(square.back(), squareMul);
            square.pop_back();
            ++i;
            continue;
        }
        if (c == ')' || c == ']') {
            appendRun(res, std::string(1, c), i, 1.0);
            ++i;
            continue;
        }
        std::size_t e = i;
        while (e < s.size() && !isSpecial(s[e])) ++e;
        const auto parts = splitBreak(s.substr(i, e - i), i);
        for (std::size_t k = 0; k < parts.size(); ++k) {
            if (k > 0) appendRun(res, "BREAK", parts[k].second, -1.0);
            appendRun(res, parts[k].first, parts[k].second, 1.0);
        }
        i = e;
    }
    for (std::size_t pos : round) multiplyRange(pos, roundMul);
    for (std::size_t pos : square) multiplyRange(pos, squareMul);
    if (res.empty()) res.push_back(Run{});
    for (std::size_t k = 0; k + 1 < res.size();) {
        if (res[k].weight == res[k + 1].weight) {
            res[k].text += res[k + 1].text;
            res[k].src.insert(res[k].src.end(), res[k + 1].src.begin(), res[k + 1].src.end());
            res.erase(res.begin() + std::ptrdiff_t(k + 1));
        } else {
            ++k;
        }
    }
    return res;
}

}  // namespace

std::vector<WeightedText> parsePromptAttention(const std::string& text) {
    std::vector<WeightedText> out;
    for (auto& r : parseRuns(text)) out.push_back({r.text, r.weight});
    return out;
}

std::string extractLoraTags(const std::string& text, std::vector<LoraTag>* tags) {
    // re_extra_net = r"<(\w+):([^>]+)>"; args split on ':'; lora: NAME[:TE_WEIGHT[:UNET_WEIGHT]].
    std::string out;
    std::size_t i = 0;
    while (i < text.size()) {
        if (text[i] == '<') {
            std::size_t j = i + 1;
            while (j < text.size() && isWord(static_cast<unsigned char>(text[j])) && text[j] != '>') ++j;
            const std::string kind = text.substr(i + 1, j - i - 1);
            if (!kind.empty() && j < text.size() && text[j] == ':') {
                const std::size_t close = text.find('>', j + 1);
                if (close != std::string::npos && close > j + 1 && (kind == "lora" || kind == "lyco")) {
                    const std::string args = text.substr(j + 1, close - j - 1);
                    LoraTag tag;
                    const std::size_t colon = args.find(':');
                    tag.name = args.substr(0, colon);
                    if (colon != std::string::npos) {
                        std::string w = args.substr(colon + 1);
                        if (auto c2 = w.find(':'); c2 != std::string::npos) w = w.substr(0, c2);
                        char* end = nullptr;
                        const double v = std::strtod(w.c_str(), &end);
                        if (end != w.c_str()) tag.weight = v;
                    }
                    tag.begin = i;
                    tag.end = close + 1;
                    if (tags) tags->push_back(tag);
                    i = close + 1;
                    continue;
                }
            }
        }
        out += text[i++];
    }
    return out;
}

bool TokenChunk::allOnes() const {
    return std::all_of(weights.begin(), weights.end(), [](float w) { return w == 1.0f; });
}

ChunkedPrompt chunkPrompt(const ClipTokenizer& tok, const std::string& text, bool withOffsets) {
    const std::vector<Run> parsed = parseRuns(text);
    const std::vector<int> commaIds = tok.encode(",");
    const int comma = commaIds.size() == 1 ? commaIds[0] : -1;
    const int bos = tok.bosId(), eos = tok.eosId(), pad = tok.padId();

    struct Src {
        int frag = -1, local = 0;
    };
    struct Building {
        std::vector<int> ids;
        std::vector<float> weights;
        std::vector<Src> src;
    };
    ChunkedPrompt out;
    std::vector<Src> chunkSrc;  // where each chunk's first token came from
    Building chunk;
    int lastComma = -1;
    std::vector<std::vector<int>> fragTokens;
    auto nextChunk = [&](bool isLast) {
        out.tokenCount += isLast ? int(chunk.ids.size()) : kChunkLength;
        chunkSrc.push_back(chunk.src.empty() ? Src{} : chunk.src.front());
        TokenChunk c;
        c.ids.push_back(bos);
        c.weights.push_back(1.0f);
        c.ids.insert(c.ids.end(), chunk.ids.begin(), chunk.ids.end());
        c.weights.insert(c.weights.end(), chunk.weights.begin(), chunk.weights.end());
        while (int(c.ids.size()) < kChunkLength + 1) {
            c.ids.push_back(eos);
            c.weights.push_back(1.0f);
        }
        c.ids.push_back(eos);
        c.weights.push_back(1.0f);
        // sd_hijack_clip process_tokens: everything after the first EOS becomes the pad id (SD2 / OpenCLIP).
        if (pad != eos) {
            auto first = std::find(c.ids.begin(), c.ids.end(), eos);
            if (first != c.ids.end()) std::fill(first + 1, c.ids.end(), pad);
        }
        out.chunks.push_back(std::move(c));
        lastComma = -1;
        chunk = Building{};
    };
    for (std::size_t f = 0; f < parsed.size(); ++f) {
        const Run& run = parsed[f];
        fragTokens.push_back(tok.encode(run.text));
        if (run.text == "BREAK" && run.weight == -1) {
            nextChunk(false);
            continue;
        }
        const std::vector<int>& tokens = fragTokens.back();
        for (std::size_t pos = 0; pos < tokens.size(); ++pos) {
            const int t = tokens[pos];
            if (t == comma) {
                lastComma = int(chunk.ids.size());
            } else if (kCommaBacktrack != 0 && int(chunk.ids.size()) == kChunkLength && lastComma != -1 &&
                       int(chunk.ids.size()) - lastComma <= kCommaBacktrack) {
                const std::size_t at = std::size_t(lastComma + 1);
                Building reloc;
                reloc.ids.assign(chunk.ids.begin() + std::ptrdiff_t(at), chunk.ids.end());
                reloc.weights.assign(chunk.weights.begin() + std::ptrdiff_t(at), chunk.weights.end());
                reloc.src.assign(chunk.src.begin() + std::ptrdiff_t(at), chunk.src.end());
                chunk.ids.resize(at);
                chunk.weights.resize(at);
                chunk.src.resize(at);
                nextChunk(false);
                chunk = std::move(reloc);
            }
            if (int(chunk.ids.size()) == kChunkLength) nextChunk(false);
            chunk.ids.push_back(t);
            chunk.weights.push_back(float(run.weight));
            chunk.src.push_back(Src{int(f), int(pos)});
        }
    }
    if (!chunk.ids.empty() || out.chunks.empty()) nextChunk(true);

    if (withOffsets) {
        // The byte where token `local` of fragment `frag` starts: the shortest prefix of the fragment whose tokens
        // begin with the whole fragment's first `local` tokens and have one more ends inside that token. (A prefix
        // that cuts a word can take more tokens than the whole word — "koa" is 2, "koala" 1 — so the count alone
        // is not enough.)
        for (std::size_t c = 0; c < chunkSrc.size(); ++c) {
            if (c == 0) {
                out.chunkStarts.push_back(0);
                continue;
            }
            const Src s = chunkSrc[c];
            if (s.frag < 0) {
                out.chunkStarts.push_back(text.size());
                continue;
            }
            const Run& run = parsed[std::size_t(s.frag)];
            const std::vector<int> whole = tok.encode(run.text);
            std::size_t startByte = 0;
            for (std::size_t p = 1; p <= run.text.size(); ++p) {
                if (p < run.text.size() && (static_cast<unsigned char>(run.text[p]) & 0xC0) == 0x80) continue;
                const std::vector<int> pt = tok.encode(run.text.substr(0, p));
                if (int(pt.size()) > s.local && int(whole.size()) >= s.local &&
                    std::equal(pt.begin(), pt.begin() + s.local, whole.begin())) {
                    std::size_t b = p - 1;
                    while (b > 0 && (static_cast<unsigned char>(run.text[b]) & 0xC0) == 0x80) --b;
                    startByte = b;
                    break;
                }
            }
            out.chunkStarts.push_back(run.src.empty() ? text.size() : run.src[std::min(startByte, run.src.size() - 1)]);
        }
    }
    return out;
}

TokenChunk plainChunk(const ClipTokenizer& tok, const std::string& text) {
    TokenChunk c;
    c.ids = tok.encodePadded(text, kChunkLength + 2);
    c.weights.assign(c.ids.size(), 1.0f);
    return c;
}

}  // namespace koala::text
