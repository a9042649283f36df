#include "TokenCounter.h"

#include <koala/engine.h>

TokenCounter::TokenCounter() = default;
TokenCounter::~TokenCounter() = default;

std::shared_ptr<const koala::PromptTokenizer> TokenCounter::tokenizerFor(const QString& modelPath) {
    if (modelPath.isEmpty()) return nullptr;
    const std::lock_guard<std::mutex> lock(m_mutex);
    const auto known = m_byPath.constFind(modelPath);
    if (known != m_byPath.constEnd()) return known.value();
    std::shared_ptr<const koala::PromptTokenizer> tokenizer;
    try {
        const QString folder = QString::fromStdString(koala::resolveModelFolder(modelPath.toStdString()));
        tokenizer = m_byFolder.value(folder);
        if (!tokenizer) {
            tokenizer = koala::PromptTokenizer::load(folder.toStdString());
            m_byFolder.insert(folder, tokenizer);
        }
    } catch (const std::exception&) {
        tokenizer = nullptr;
    }
    m_byPath.insert(modelPath, tokenizer);
    return tokenizer;
}

int TokenCounter::count(const QString& modelPath, const QString& text) {
    const auto tokenizer = tokenizerFor(modelPath);
    if (!tokenizer) return -1;
    try {
        return tokenizer->count(text.toStdString());
    } catch (const std::exception&) {
        return -1;
    }
}

// ---- prompt syntax (issue 10) ----
TokenCounter::Layout TokenCounter::layout(const QString& modelPath, const QString& text, const QString& syntax) {
    Layout out;
    const auto tokenizer = tokenizerFor(modelPath);
    if (!tokenizer) return out;
    koala::PromptSyntax s = koala::PromptSyntax::A1111;
    koala::fromString(syntax.toStdString(), s);
    try {
        const QByteArray utf8 = text.toUtf8();
        const koala::PromptTokenizer::Layout l = tokenizer->layout(utf8.toStdString(), s);
        out.tokens = l.tokens;
        out.chunks = l.chunks;
        for (const std::size_t byte : l.chunkStarts) {
            int at = int(QString::fromUtf8(utf8.constData(), qsizetype(qMin<std::size_t>(byte, utf8.size()))).size());
            // The engine finds a chunk's first token by growing a prefix until it has one token too many, and a
            // word cut short can take more tokens than the whole word: its offset may land inside the last word of
            // the chunk before. A chunk starts at a word, so move on to the next one.
            if (at > 0 && at < text.size() && text.at(at - 1).isLetterOrNumber() && text.at(at).isLetterOrNumber()) {
                while (at < text.size() && text.at(at).isLetterOrNumber()) ++at;
                while (at < text.size() && text.at(at).isSpace()) ++at;
            }
            out.chunkStarts << at;
        }
        if (out.chunkStarts.isEmpty()) out.chunkStarts << 0;
        constexpr int kReadable = 75;  // 77 minus the start and end tokens
        if (s == koala::PromptSyntax::Plain && l.tokens > kReadable) {
            // The longest prefix that still fits: everything after it is dropped by the text encoder.
            const auto tokensOf = [&](const int n) { return tokenizer->layout(text.left(n).toStdString(), s).tokens; };
            int fits = 0, over = int(text.size());
            while (over - fits > 1) {
                const int mid = (fits + over) / 2;
                (tokensOf(mid) <= kReadable ? fits : over) = mid;
            }
            while (fits < text.size() && text.at(fits).isSpace()) ++fits;
            out.cut = fits;
        }
    } catch (const std::exception&) {
        return {};
    }
    return out;
}

bool TokenCounter::isAvailable(const QString& modelPath) { return tokenizerFor(modelPath) != nullptr; }

void TokenCounter::clear() {
    const std::lock_guard<std::mutex> lock(m_mutex);
    m_byPath.clear();
    m_byFolder.clear();
}
