#pragma once

#include <memory>
#include <mutex>

#include <QHash>
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
