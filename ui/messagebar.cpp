#include "messagebar.h"

#include <QFrame>
#include <QHBoxLayout>
#include <QLabel>
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

MessageBar::MessageBar(QWidget* parent) : QWidget(parent), m_layout(new QVBoxLayout(this)) {
    m_layout->setContentsMargins(4, 2, 4, 2);
    m_layout->setSpacing(2);
    setVisible(false);
}

void MessageBar::showMessage(const QString& text, const Level level) {
    while (m_layout->count() >= MaxRows) {
        QLayoutItem* item = m_layout->takeAt(0);
        delete item->widget();
        delete item;
    }

    auto* row = new QFrame(this);
    row->setObjectName(QStringLiteral("messageRow"));
    row->setStyleSheet(styleFor(level));
    auto* label = new QLabel(text, row);
    label->setObjectName(QStringLiteral("messageText"));
    label->setWordWrap(true);
    label->setTextInteractionFlags(Qt::TextSelectableByMouse);
    auto* close = new QToolButton(row);
    close->setText(QStringLiteral("\u2715"));
    close->setAutoRaise(true);
    close->setToolTip(tr("Dismiss"));
    auto* rowLayout = new QHBoxLayout(row);
    rowLayout->setContentsMargins(6, 2, 2, 2);
    rowLayout->addWidget(label, 1);
    rowLayout->addWidget(close, 0, Qt::AlignTop);
    m_layout->addWidget(row);

    connect(close, &QToolButton::clicked, this, [this, row]() {
        m_layout->removeWidget(row);
        row->deleteLater();
        setVisible(m_layout->count() > 0);
    });
    setVisible(true);
    emit messageShown(text);
}

void MessageBar::clearMessages() {
    while (QLayoutItem* item = m_layout->takeAt(0)) {
        delete item->widget();
        delete item;
    }
    setVisible(false);
}

int MessageBar::messageCount() const { return m_layout->count(); }

QStringList MessageBar::messages() const {
    QStringList result;
    for (int i = 0; i < m_layout->count(); ++i) {
        if (const QWidget* w = m_layout->itemAt(i)->widget()) {
            if (const auto* label = w->findChild<QLabel*>(QStringLiteral("messageText"))) result << label->text();
        }
    }
    return result;
}
