#include "prompteditor.h"

#include <QHBoxLayout>
#include <QLabel>
#include <QPlainTextEdit>
#include <QVBoxLayout>

PromptEditor::PromptEditor(const QString& title, const QString& placeholder, QWidget* parent)
    : QWidget(parent), m_edit(new QPlainTextEdit(this)), m_counter(new QLabel(this)) {
    auto* header = new QHBoxLayout;
    auto* titleLabel = new QLabel(title, this);
    titleLabel->setBuddy(m_edit);
    header->addWidget(titleLabel);
    header->addStretch();
    header->addWidget(m_counter);

    m_edit->setPlaceholderText(placeholder);
    m_edit->setTabChangesFocus(true);
    // Prompts are a few lines; a small minimum keeps both editors visible on a 1366x768 screen.
    m_edit->setMinimumHeight(52);
    m_edit->setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Expanding);
    m_counter->setObjectName(QStringLiteral("tokenCounter"));
    m_counter->setToolTip(tr("CLIP reads at most %1 tokens, including its start and end markers;\n"
                             "words past the limit are ignored by the model.")
                              .arg(TokenLimit));

    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->setSpacing(2);
    layout->addLayout(header);
    layout->addWidget(m_edit);

    connect(m_edit, &QPlainTextEdit::textChanged, this, [this]() {
        updateCounter();
        emit textChanged();
    });
    updateCounter();
}

QString PromptEditor::text() const { return m_edit->toPlainText(); }

void PromptEditor::setText(const QString& text) {
    if (text != m_edit->toPlainText()) m_edit->setPlainText(text);
}

void PromptEditor::setTokenCounter(TokenCounter counter, const bool exact) {
    m_tokenCounter = std::move(counter);
    m_exact = exact;
    updateCounter();
}

bool PromptEditor::isExact() const { return m_exact; }

int PromptEditor::tokenCount() const { return m_tokenCount; }

bool PromptEditor::isOverLimit() const { return m_tokenCount > TokenLimit; }

QString PromptEditor::counterText() const { return m_counter->text(); }

QPlainTextEdit* PromptEditor::editor() const { return m_edit; }

void PromptEditor::updateCounter() {
    const int n = m_tokenCounter ? m_tokenCounter(m_edit->toPlainText()) : -1;
    m_tokenCount = (n < 0) ? -1 : (n + 2);
    if (m_tokenCount < 0) {
        // No tokenizer yet (no model selected): say so rather than guessing a number.
        m_counter->setText(tr("? / %1 tokens").arg(TokenLimit));
        m_counter->setStyleSheet({});
        return;
    }
    const QString count =
        m_exact ? QString::number(m_tokenCount) : (QStringLiteral("≈") + QString::number(m_tokenCount));
    m_counter->setText(tr("%1 / %2 tokens").arg(count).arg(TokenLimit));
    m_counter->setStyleSheet(isOverLimit() ? QStringLiteral("color: #d32f2f; font-weight: bold;") : QString());
}
