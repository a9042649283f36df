#pragma once

#include <QList>
#include <QString>
#include <QStringList>
#include <QWidget>

class QLabel;
class QFrame;
class QTimer;
class QToolButton;

// Non-blocking messages above the main content. Errors never open a modal dialog; they land here, so a failed job
// does not interrupt the next one. One message is shown at a time, so a burst never pushes the layout down: the
// newest, with "+N more" when older ones wait behind it. Each dismisses itself after its level's lifetime (or with
// its close button), and the next waiting one takes its place.
class MessageBar final : public QWidget {
    Q_OBJECT

public:
    enum class Level { Info, Warning, Error };

    explicit MessageBar(QWidget* parent = nullptr);

    void showMessage(const QString& text, Level level = Level::Error);
    void clearMessages();
    // Dismisses the message on show (the close button).
    void dismissCurrent();
    // Messages not dismissed yet, newest first; the first one is on show.
    int messageCount() const;
    QStringList messages() const;
    QString currentText() const;

    // How long a message of `level` stays, in milliseconds (Info 8 s, Warning 15 s, Error 30 s).
    int lifetimeMs(Level level) const;
    void setLifetimesMs(int info, int warning, int error);

signals:
    void messageShown(const QString& text);

private:
    struct Message {
        QString text;
        Level level = Level::Error;
    };
    // Beyond this many waiting messages the oldest goes.
    static constexpr int MaxWaiting = 20;

    void showFront();

    QList<Message> m_messages;  // newest first
    QFrame* m_row = nullptr;
    QLabel* m_text = nullptr;
    QLabel* m_more = nullptr;
    QToolButton* m_close = nullptr;
    QTimer* m_timer = nullptr;
    int m_lifetimes[3] = {8000, 15000, 30000};
};
