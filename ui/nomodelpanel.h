#pragma once

#include <QWidget>

// Shown instead of the gallery when no model was found: how to download one, and a button to point at a folder.
class NoModelPanel final : public QWidget {
    Q_OBJECT

public:
    explicit NoModelPanel(QWidget* parent = nullptr);

    void setScanErrors(const QStringList& errors);

signals:
    void addModelFolderRequested();
    void rescanRequested();

private:
    class QLabel* m_errors = nullptr;
};
