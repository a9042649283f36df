#pragma once

#include <functional>

#include <QHash>
#include <QWidget>

class ModelManager;
class QLabel;
class QProgressBar;
class QPushButton;
class QVBoxLayout;

// The model manager: a row per model (the catalog, then the other models of the Hugging Face cache) with its size,
// its state, a progress bar and Download / Pause / Resume / Cancel / Remove / Open folder. A view over a
// ModelManager, which several pages may share. Showing the page asks the hub for the exact download sizes (off the
// GUI thread: "size…" until they come, "≈ n GB" from the catalog when the hub cannot be asked).
class ModelManagerPage final : public QWidget {
    Q_OBJECT

public:
    explicit ModelManagerPage(ModelManager* manager, QWidget* parent = nullptr);

    // Asks before Remove; the default shows a question box (tests answer it themselves).
    void setConfirmRemoval(std::function<bool(const QString& question)> confirm);

signals:
    void errorOccurred(const QString& message);

protected:
    void showEvent(QShowEvent* event) override;

private:
    struct Row {
        QWidget* widget = nullptr;
        QLabel* size = nullptr;
        QLabel* status = nullptr;
        QProgressBar* bar = nullptr;
        QPushButton* download = nullptr;
        QPushButton* pause = nullptr;
        QPushButton* resume = nullptr;
        QPushButton* cancel = nullptr;
        QPushButton* remove = nullptr;
        QPushButton* openFolder = nullptr;
    };
    void rebuildRows();
    void updateRow(const QString& repoId);
    void removeModel(const QString& repoId);

    ModelManager* m_manager = nullptr;
    QVBoxLayout* m_rowsLayout = nullptr;
    QHash<QString, Row> m_rows;
    std::function<bool(const QString&)> m_confirm;
};
