#pragma once

#include <memory>
#include <mutex>

#include <QHash>
#include <QList>
#include <QString>

namespace koala {
class PromptTokenizer;
}

// Exact CLIP token counts for the prompt editors' 77-token counter. Keeps one koala::PromptTokenizer per resolved
// model folder (a model's first tokenizer, loaded alone: no weights). Thread-safe.
class TokenCounter {
public:
    TokenCounter();
    ~TokenCounter();
    TokenCounter(const TokenCounter&) = delete;
    TokenCounter& operator=(const TokenCounter&) = delete;

    // Tokens `text` takes with the tokenizer of the model at `modelPath` (see koala::resolveModelFolder), start and
    // end markers not included; -1 when that tokenizer cannot be loaded. Never throws. A failed load is remembered
    // for that path until clear().
    int count(const QString& modelPath, const QString& text);
    // ---- prompt syntax (issue 10) ----
    // How `text` is read under a syntax ("a1111" or "plain", koala::PromptSyntax names; anything else reads as
    // a1111). Positions are indices in `text` (QString, UTF-16), not the engine's byte offsets.
    struct Layout {
        int tokens = -1;         // a1111: as AUTOMATIC1111 counts (75 per full chunk); plain: as count(). -1: unknown
        int chunks = 1;          // a1111: 77-token chunks the encoder reads; plain: always 1
        QList<int> chunkStarts;  // where each chunk starts (the first at 0)
        int cut = -1;            // plain: where the text stops being read (past 75 tokens); -1 = all of it is read
    };
    Layout layout(const QString& modelPath, const QString& text, const QString& syntax);

    // Whether count() can give a number for `modelPath` (loads the tokenizer if needed).
    bool isAvailable(const QString& modelPath);
    // Forgets the loaded tokenizers and the failed loads (after the model folders changed on disk).
    void clear();

private:
    std::shared_ptr<const koala::PromptTokenizer> tokenizerFor(const QString& modelPath);

    std::mutex m_mutex;
    // By the path as given: nullptr when the load failed.
    QHash<QString, std::shared_ptr<const koala::PromptTokenizer>> m_byPath;
    // By resolved folder, so two spellings of one model share a tokenizer.
    QHash<QString, std::shared_ptr<const koala::PromptTokenizer>> m_byFolder;
};
