#pragma once

#include <functional>

#include <QWidget>

class QLabel;
class QPlainTextEdit;

// A multi-line prompt box with a live token counter. CLIP reads at most 77 tokens, start and end markers
// included; anything past that is silently dropped by the text encoder, so the counter turns red to say so.
class PromptEditor final : public QWidget {
    Q_OBJECT

public:
    // Returns the number of tokens of `text` without start/end markers, or -1 when no tokenizer is available.
    using TokenCounter = std::function<int(const QString& text)>;

    static constexpr int TokenLimit = 77;

    PromptEditor(const QString& title, const QString& placeholder, QWidget* parent = nullptr);

    QString text() const;
    void setText(const QString& text);
    // `exact` false: the count is an estimate and is shown as "≈n".
    void setTokenCounter(TokenCounter counter, bool exact = true);
    bool isExact() const;

    // Tokens including the start and end markers (what the 77 limit counts); -1 when unknown.
    int tokenCount() const;
    bool isOverLimit() const;
    QString counterText() const;

    QPlainTextEdit* editor() const;

signals:
    void textChanged();

private:
    void updateCounter();

    QPlainTextEdit* m_edit = nullptr;
    QLabel* m_counter = nullptr;
    TokenCounter m_tokenCounter;
    int m_tokenCount = -1;
    bool m_exact = true;
};
