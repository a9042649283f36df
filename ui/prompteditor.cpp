#include "prompteditor.h"

#include <cmath>

#include <QEvent>
#include <QHBoxLayout>
#include <QKeyEvent>
#include <QLabel>
#include <QPlainTextEdit>
#include <QRegularExpression>
#include <QTextBlock>
#include <QVBoxLayout>

namespace {

bool isPlain(const QString& syntax) { return syntax == QLatin1String("plain"); }

// AUTOMATIC1111's defaults: keyedit_delimiters plus the whitespace ones (tab, carriage return, line feed).
const QString& wordDelimiters() {
    static const QString d = QStringLiteral(".,\\/!?%^*;:{}=`~() \t\r\n");
    return d;
}

QChar charAt(const QString& text, const int i) { return (i >= 0 && i < text.size()) ? text.at(i) : QChar(); }

// With no selection: the text inside the OPEN...CLOSE block around the cursor (without its ":weight"), if any.
bool selectBlock(const QString& text, int& selStart, int& selEnd, const QChar open, const QChar close) {
    if (selStart != selEnd) return false;
    const QString before = text.left(selStart);
    const int openBefore = int(before.lastIndexOf(open));
    if (openBefore < 0) return false;
    if (const int closeBefore = int(before.lastIndexOf(close)); closeBefore > openBefore) return false;
    const QString after = text.mid(selStart);
    const int closeAfter = int(after.indexOf(close));
    if (closeAfter < 0) return false;
    if (const int openAfter = int(after.indexOf(open)); openAfter >= 0 && openAfter < closeAfter) return false;
    const QString content = text.mid(openBefore + 1, selStart + closeAfter - openBefore - 1);
    static const QRegularExpression weighted(QStringLiteral(":-?[\\d.]+"));
    selStart = openBefore + 1;
    selEnd = selStart + (content.contains(weighted) ? int(content.lastIndexOf(QLatin1Char(':'))) : int(content.size()));
    return true;
}

// With no selection: the word around the cursor, without the spaces around it.
void selectWord(const QString& text, int& selStart, int& selEnd) {
    if (selStart != selEnd) return;
    while (selStart > 0 && !wordDelimiters().contains(text.at(selStart - 1))) --selStart;
    while (selEnd < text.size() && !wordDelimiters().contains(text.at(selEnd))) ++selEnd;
    while (selStart < selEnd && text.at(selStart) == QLatin1Char(' ')) ++selStart;
    while (selEnd > selStart && text.at(selEnd - 1) == QLatin1Char(' ')) --selEnd;
}

// parseFloat: the number at the start of `s` (after spaces); NaN when there is none.
double leadingNumber(const QString& s) {
    static const QRegularExpression number(QStringLiteral("^\\s*([-+]?(?:\\d+\\.?\\d*|\\.\\d+)(?:[eE][-+]?\\d+)?)"));
    const QRegularExpressionMatch m = number.match(s);
    return m.hasMatch() ? m.captured(1).toDouble() : std::nan("");
}

// JavaScript's weight formatting after toPrecision(12): "1.2", "0.85", and whole numbers as "1.0".
QString formatWeight(double w) {
    w = QString::number(w, 'g', 12).toDouble();
    if (w == std::floor(w) && std::abs(w) < 1e15) return QString::number(qint64(w)) + QStringLiteral(".0");
    return QString::number(w, 'g', 12);
}

}  // namespace

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
    m_edit->setToolTip(
        tr("Ctrl+Up / Ctrl+Down: more or less weight for the selected words or the word under the "
           "cursor, as (words:1.1)"));
    m_edit->installEventFilter(this);
    m_counter->setObjectName(QStringLiteral("tokenCounter"));

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
    if (!counter) {
        setLayoutCounter({}, exact);
        return;
    }
    // A count alone: the chunks follow from the count, their positions are unknown.
    setLayoutCounter(
        [counter = std::move(counter)](const QString& text, const QString& syntax) {
            TokenLayout l;
            l.tokens = counter(text);
            if (l.tokens > ChunkTokens && !isPlain(syntax)) l.chunks = (l.tokens + ChunkTokens - 1) / ChunkTokens;
            return l;
        },
        exact);
}

void PromptEditor::setLayoutCounter(LayoutCounter counter, const bool exact) {
    m_layoutCounter = std::move(counter);
    m_exact = exact;
    updateCounter();
}

bool PromptEditor::isExact() const { return m_exact; }

void PromptEditor::setSyntax(const QString& syntax) {
    const QString s = isPlain(syntax) ? QStringLiteral("plain") : QStringLiteral("a1111");
    if (s == m_syntax) return;
    m_syntax = s;
    updateCounter();
}

QString PromptEditor::syntax() const { return m_syntax; }

int PromptEditor::tokenCount() const { return m_tokenCount; }

bool PromptEditor::isOverLimit() const { return isPlain(m_syntax) && m_tokenCount > TokenLimit; }

QString PromptEditor::counterText() const { return m_counter->text(); }

PromptEditor::TokenLayout PromptEditor::layout() const { return m_layout; }

QPlainTextEdit* PromptEditor::editor() const { return m_edit; }

void PromptEditor::updateCounter() {
    m_layout = m_layoutCounter ? m_layoutCounter(m_edit->toPlainText(), m_syntax) : TokenLayout{};
    m_tokenCount = (m_layout.tokens < 0) ? -1 : (m_layout.tokens + 2);
    updateMarks();
    if (m_tokenCount < 0) {
        // No tokenizer yet (no model selected): say so rather than guessing a number.
        m_counter->setText(tr("? / %1 tokens").arg(TokenLimit));
        m_counter->setStyleSheet({});
        m_counter->setToolTip(tr("No tokenizer: choose a model to count tokens."));
        return;
    }
    const QString approx = m_exact ? QString() : QStringLiteral("≈");
    if (!isPlain(m_syntax) && m_layout.chunks > 1) {
        // AUTOMATIC1111 counts the text tokens: 75 per full chunk plus the last chunk's.
        m_counter->setText(tr("%1%2 tokens · %3 chunks").arg(approx).arg(m_layout.tokens).arg(m_layout.chunks));
        m_counter->setToolTip(tr("AUTOMATIC1111 syntax: the prompt is encoded in %1 chunks of %2 tokens (BREAK starts "
                                 "a new one);\nthe tinted text is every other chunk.")
                                  .arg(m_layout.chunks)
                                  .arg(TokenLimit));
    } else {
        m_counter->setText(tr("%1%2 / %3 tokens").arg(approx).arg(m_tokenCount).arg(TokenLimit));
        m_counter->setToolTip(isPlain(m_syntax) ? tr("Plain syntax: CLIP reads at most %1 tokens, including its start "
                                                     "and end markers;\nthe marked words past the limit are ignored.")
                                                      .arg(TokenLimit)
                                                : tr("CLIP reads %1 tokens at a time, including its start and end "
                                                     "markers;\nunder the AUTOMATIC1111 syntax a longer prompt goes on "
                                                     "in another chunk.")
                                                      .arg(TokenLimit));
    }
    m_counter->setStyleSheet(isOverLimit() ? QStringLiteral("color: #d32f2f; font-weight: bold;") : QString());
}

void PromptEditor::updateMarks() {
    QList<QTextEdit::ExtraSelection> marks;
    const int length = int(m_edit->toPlainText().size());
    const auto mark = [&](const int from, const int to, const QTextCharFormat& format) {
        if (from < 0 || from >= to || to > length) return;
        QTextEdit::ExtraSelection s;
        s.cursor = QTextCursor(m_edit->document());
        s.cursor.setPosition(from);
        s.cursor.setPosition(to, QTextCursor::KeepAnchor);
        s.format = format;
        marks << s;
    };
    if (isPlain(m_syntax)) {
        if (m_layout.cut >= 0) {
            QTextCharFormat dropped;
            dropped.setBackground(QColor(211, 47, 47, 60));
            dropped.setFontStrikeOut(true);
            dropped.setToolTip(tr("Past %1 tokens: not read by the model").arg(TokenLimit));
            mark(m_layout.cut, length, dropped);
        }
    } else if (m_layout.chunkStarts.size() > 1) {
        QColor tint = palette().color(QPalette::Highlight);
        tint.setAlpha(45);
        QTextCharFormat odd;
        odd.setBackground(tint);
        // Every other chunk tinted: where the tint starts or stops, a chunk ends.
        for (int i = 1; i < m_layout.chunkStarts.size(); i += 2) {
            const int end = (i + 1 < m_layout.chunkStarts.size()) ? m_layout.chunkStarts.at(i + 1) : length;
            mark(m_layout.chunkStarts.at(i), end, odd);
        }
    }
    m_edit->setExtraSelections(marks);
}

bool PromptEditor::eventFilter(QObject* watched, QEvent* event) {
    if (watched == m_edit && event->type() == QEvent::KeyPress) {
        const auto* key = static_cast<QKeyEvent*>(event);
        const bool ctrl = key->modifiers() & (Qt::ControlModifier | Qt::MetaModifier);
        if (ctrl && (key->key() == Qt::Key_Up || key->key() == Qt::Key_Down)) {
            stepWeight(key->key() == Qt::Key_Up);
            return true;
        }
    }
    return QWidget::eventFilter(watched, event);
}

void PromptEditor::stepWeight(const bool increase) {
    QTextCursor cursor = m_edit->textCursor();
    QString text = m_edit->toPlainText();
    int start = cursor.selectionStart();
    int end = cursor.selectionEnd();
    if (!editAttention(text, start, end, increase)) return;
    // One edit block: a single Ctrl+Z undoes the step.
    cursor.beginEditBlock();
    cursor.select(QTextCursor::Document);
    cursor.insertText(text);
    cursor.endEditBlock();
    cursor.setPosition(start);
    cursor.setPosition(end, QTextCursor::KeepAnchor);
    m_edit->setTextCursor(cursor);
}

bool PromptEditor::editAttention(QString& text, int& selStart, int& selEnd, const bool increase, const double step,
                                 const double extraStep) {
    QString t = text;
    int start = qBound(0, qMin(selStart, selEnd), int(t.size()));
    int end = qBound(0, qMax(selStart, selEnd), int(t.size()));
    if (!selectBlock(t, start, end, QLatin1Char('<'), QLatin1Char('>')) &&
        !selectBlock(t, start, end, QLatin1Char('('), QLatin1Char(')')) &&
        !selectBlock(t, start, end, QLatin1Char('['), QLatin1Char(']')))
        selectWord(t, start, end);
    selStart = start;
    selEnd = end;

    QChar close = QLatin1Char(')');
    double delta = step;
    const QChar before = charAt(t, start - 1);
    const QChar after = charAt(t, end);
    if (before == QLatin1Char('<')) {
        close = QLatin1Char('>');
        delta = extraStep;
    } else if ((before == QLatin1Char('(') && after == QLatin1Char(')')) ||
               (before == QLatin1Char('[') && after == QLatin1Char(']'))) {
        // Old-style emphasis, (((words))) or [words]: one explicit weight instead.
        int n = 0;
        while (charAt(t, start - n - 1) == before && charAt(t, end + n) == after) ++n;
        double w = std::pow(before == QLatin1Char('[') ? 1.0 / 1.1 : 1.1, n);
        w = std::round(w / step) * step;
        t = t.left(start - n) + QLatin1Char('(') + t.mid(start, end - start) + QLatin1Char(':') +
            QString::number(w, 'g', 12) + QLatin1Char(')') + t.mid(end + n);
        start -= n - 1;
        end -= n - 1;
    } else if (before != QLatin1Char('(')) {
        while (end > start && t.at(end - 1) == QLatin1Char(' ')) --end;
        if (start == end) return false;
        t = t.left(start) + QLatin1Char('(') + t.mid(start, end - start) + QStringLiteral(":1.0)") + t.mid(end);
        ++start;
        ++end;
    }

    if (charAt(t, end) != QLatin1Char(':')) return false;
    const int weightLength = int(t.mid(end + 1).indexOf(close)) + 1;
    double weight = leadingNumber(t.mid(end + 1, qMax(0, weightLength - 1)));
    if (std::isnan(weight)) return false;
    weight += increase ? delta : -delta;
    const QString formatted = formatWeight(weight);
    if (close == QLatin1Char(')') && formatted == QLatin1String("1.0")) {
        // Back to the plain words.
        const int closeAt = int(t.mid(end).indexOf(QLatin1Char(')')));
        t = t.left(start - 1) + t.mid(start, end - start) + t.mid(end + closeAt + 1);
        --start;
        --end;
    } else {
        t = t.left(end + 1) + formatted + t.mid(end + weightLength);
    }
    text = t;
    selStart = start;
    selEnd = end;
    return true;
}
