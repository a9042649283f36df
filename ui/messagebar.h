#pragma once

#include <QWidget>

class QVBoxLayout;

// Non-blocking messages stacked above the main content: each row has its text and a close button. Errors never
// open a modal dialog; they land here (and in the status bar), so a failed job does not interrupt the next one.
class MessageBar final : public QWidget {
    Q_OBJECT

public:
    enum class Level { Info, Warning, Error };

    explicit MessageBar(QWidget* parent = nullptr);

    void showMessage(const QString& text, Level level = Level::Error);
    void clearMessages();
    int messageCount() const;
    QStringList messages() const;

signals:
    void messageShown(const QString& text);

private:
    // Beyond this many rows the oldest goes: a burst of preset errors must not push the window content away.
    static constexpr int MaxRows = 5;

    QVBoxLayout* m_layout = nullptr;
};
