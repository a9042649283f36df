#include "messagebar.h"

#include <QFrame>
#include <QHBoxLayout>
#include <QLabel>
#include <QTimer>
#include <QToolButton>
#include <QVBoxLayout>

namespace {
QString styleFor(const MessageBar::Level level) {
    switch (level) {
    case MessageBar::Level::Info:
        return QStringLiteral(
            "QFrame#messageRow { background: #e3f2fd; border: 1px solid #90caf9; border-radius: 3px; }"
            "QLabel { color: #0d47a1; }");
    case MessageBar::Level::Warning:
        return QStringLiteral(
            "QFrame#messageRow { background: #fff8e1; border: 1px solid #ffcc80; border-radius: 3px; }"
            "QLabel { color: #6d4c00; }");
    case MessageBar::Level::Error: break;
    }
    return QStringLiteral(
        "QFrame#messageRow { background: #ffebee; border: 1px solid #ef9a9a; border-radius: 3px; }"
        "QLabel { color: #b71c1c; }");
}
}  // namespace

MessageBar::MessageBar(QWidget* parent)
    : QWidget(parent),
      m_row(new QFrame(this)),
      m_text(new QLabel(m_row)),
      m_more(new QLabel(m_row)),
      m_close(new QToolButton(m_row)),
      m_timer(new QTimer(this)) {
    m_row->setObjectName(QStringLiteral("messageRow"));
    m_text->setObjectName(QStringLiteral("messageText"));
    m_text->setWordWrap(true);
    m_text->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_more->setObjectName(QStringLiteral("messageMore"));
    m_close->setObjectName(QStringLiteral("messageClose"));
    m_close->setText(QStringLiteral("\u2715"));
    m_close->setAutoRaise(true);
    m_close->setToolTip(tr("Dismiss"));
    m_timer->setSingleShot(true);

    auto* rowLayout = new QHBoxLayout(m_row);
    rowLayout->setContentsMargins(6, 2, 2, 2);
    rowLayout->addWidget(m_text, 1);
    rowLayout->addWidget(m_more, 0, Qt::AlignTop);
    rowLayout->addWidget(m_close, 0, Qt::AlignTop);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(4, 2, 4, 2);
    layout->addWidget(m_row);

    connect(m_close, &QToolButton::clicked, this, &MessageBar::dismissCurrent);
    connect(m_timer, &QTimer::timeout, this, &MessageBar::dismissCurrent);
    setVisible(false);
}

void MessageBar::showMessage(const QString& text, const Level level) {
    // The same text again (a retried job failing the same way) moves to the front instead of queueing twice.
    for (int i = 0; i < m_messages.size(); ++i) {
        if (m_messages[i].text == text) {
            m_messages.removeAt(i);
            break;
        }
    }
    m_messages.prepend({text, level});
    while (m_messages.size() > MaxWaiting) m_messages.removeLast();
    showFront();
    emit messageShown(text);
}

void MessageBar::dismissCurrent() {
    if (!m_messages.isEmpty()) m_messages.removeFirst();
    showFront();
}

void MessageBar::clearMessages() {
    m_messages.clear();
    showFront();
}

void MessageBar::showFront() {
    m_timer->stop();
    if (m_messages.isEmpty()) {
        m_text->clear();
        setVisible(false);
        return;
    }
    const Message& front = m_messages.first();
    m_row->setStyleSheet(styleFor(front.level));
    m_text->setText(front.text);
    const int waiting = int(m_messages.size()) - 1;
    m_more->setText(waiting > 0 ? tr("+%1 more").arg(waiting) : QString());
    m_more->setVisible(waiting > 0);
    m_timer->start(lifetimeMs(front.level));
    setVisible(true);
}

int MessageBar::messageCount() const { return int(m_messages.size()); }

QStringList MessageBar::messages() const {
    QStringList result;
    for (const Message& m : m_messages) result << m.text;
    return result;
}

QString MessageBar::currentText() const { return m_messages.isEmpty() ? QString() : m_messages.first().text; }

int MessageBar::lifetimeMs(const Level level) const { return m_lifetimes[int(level)]; }

void MessageBar::setLifetimesMs(const int info, const int warning, const int error) {
    m_lifetimes[int(Level::Info)] = info;
    m_lifetimes[int(Level::Warning)] = warning;
    m_lifetimes[int(Level::Error)] = error;
    showFront();
}
