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

bool TokenCounter::isAvailable(const QString& modelPath) { return tokenizerFor(modelPath) != nullptr; }

void TokenCounter::clear() {
    const std::lock_guard<std::mutex> lock(m_mutex);
    m_byPath.clear();
    m_byFolder.clear();
}
