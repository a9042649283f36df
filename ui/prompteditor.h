#pragma once

#include <functional>

#include <QList>
#include <QWidget>

class QLabel;
class QPlainTextEdit;

// A multi-line prompt box with a live token counter. CLIP reads 77 tokens at a time, start and end markers
// included. Under the AUTOMATIC1111 syntax ("a1111", the default) a longer prompt is encoded in several 77-token
// chunks: the counter says "94 tokens · 2 chunks" and the editor tints every other chunk so each chunk's end shows.
// Under "plain" anything past 77 is dropped by the text encoder: the counter turns red and the dropped text is
// marked. Ctrl+Up / Ctrl+Down change the weight of the selected words (or the word under the cursor) as
// AUTOMATIC1111's edit-attention does.
class PromptEditor final : public QWidget {
    Q_OBJECT

public:
    // Returns the number of tokens of `text` without start/end markers, or -1 when no tokenizer is available.
    using TokenCounter = std::function<int(const QString& text)>;

    // ---- prompt syntax (issue 10) ----
    // How a text is read under a syntax ("a1111" or "plain"); positions are indices in the text.
    struct TokenLayout {
        int tokens = -1;  // without start/end markers (a1111: as AUTOMATIC1111 counts); -1 = unknown
        int chunks = 1;
        QList<int> chunkStarts;  // where each chunk starts; may be empty when unknown
        int cut = -1;            // plain: where the text stops being read; -1 = all of it is read (or unknown)
    };
    using LayoutCounter = std::function<TokenLayout(const QString& text, const QString& syntax)>;

    static constexpr int TokenLimit = 77;
    static constexpr int ChunkTokens = 75;  // 77 minus the start and end markers

    PromptEditor(const QString& title, const QString& placeholder, QWidget* parent = nullptr);

    QString text() const;
    void setText(const QString& text);
    // `exact` false: the count is an estimate and is shown as "≈n". A count-only counter knows no chunk positions.
    void setTokenCounter(TokenCounter counter, bool exact = true);
    void setLayoutCounter(LayoutCounter counter, bool exact = true);
    bool isExact() const;

    // "a1111" (default) or "plain"; anything else reads as "a1111".
    void setSyntax(const QString& syntax);
    QString syntax() const;

    // Tokens including the start and end markers (what the 77 limit counts); -1 when unknown.
    int tokenCount() const;
    // Plain syntax only: more than 77 tokens (the rest is dropped). A1111 prompts go on in further chunks.
    bool isOverLimit() const;
    QString counterText() const;
    // The layout last counted (chunk starts and, under plain, the cut).
    TokenLayout layout() const;

    QPlainTextEdit* editor() const;

    // AUTOMATIC1111's edit-attention (Ctrl+Up / Ctrl+Down) on `text` with the selection [selStart, selEnd): with no
    // selection it takes the <...>, (...) or [...] block or else the word around the cursor; wraps in (words:1.1) /
    // (words:0.9), steps an existing (words:w) by `step` (removing the parentheses at 1.0), turns (((words))) and
    // [words] into explicit weights, and steps a <lora:NAME:w> tag by `extraStep`. Returns false and changes
    // nothing when there is nothing to weight; the selection is left on the weighted words.
    static bool editAttention(QString& text, int& selStart, int& selEnd, bool increase, double step = 0.1,
                              double extraStep = 0.05);

signals:
    void textChanged();

protected:
    bool eventFilter(QObject* watched, QEvent* event) override;

private:
    void updateCounter();
    void updateMarks();
    void stepWeight(bool increase);

    QPlainTextEdit* m_edit = nullptr;
    QLabel* m_counter = nullptr;
    LayoutCounter m_layoutCounter;
    TokenLayout m_layout;
    QString m_syntax = QStringLiteral("a1111");
    int m_tokenCount = -1;
    bool m_exact = true;
};
