#pragma once

#include <QWidget>

class ModelManager;
class ModelManagerPage;

// Shown instead of the gallery when no model was found: one line on what to do, "Add model folder…" for a folder
// the user already has, and the model manager to download one.
class NoModelPanel final : public QWidget {
    Q_OBJECT

public:
    explicit NoModelPanel(ModelManager* manager, QWidget* parent = nullptr);

    void setScanErrors(const QStringList& errors);
    ModelManagerPage* modelManagerPage() const { return m_page; }

signals:
    void addModelFolderRequested();
    void rescanRequested();

private:
    class QLabel* m_errors = nullptr;
    ModelManagerPage* m_page = nullptr;
};
