#pragma once

#include <QWidget>

#include "JobQueue.h"

class QLabel;
class QPushButton;
class QToolButton;
class QTreeWidget;
class QTreeWidgetItem;

// The job list: one row per job with its state and progress. Queued jobs can be removed, reordered (drag, or the
// up/down buttons: the queue runs them in that order) and cancelled, the running one cancelled. Done, cancelled and
// failed jobs look different (icon and colour), and a line under the list says how long the whole queue has left.
// It follows JobQueue's signals only; it never changes a job itself except through the queue's public calls.
class QueueView final : public QWidget {
    Q_OBJECT

public:
    explicit QueueView(JobQueue* queue, QWidget* parent = nullptr);

    int rowCount() const;
    QString stateText(qint64 jobId) const;
    int progressPercent(qint64 jobId) const;
    // What the job's progress bar says ("cancelled · 1/4 kept" for a cancelled job).
    QString progressText(qint64 jobId) const;
    // The job ids from top to bottom.
    QList<qint64> rowOrder() const;
    // The line under the list: "3 jobs waiting · about 2 min 10 s left".
    QString timeLeftText() const;
    // What a drop of the selected rows onto `row` does (the drag-and-drop handler calls it): the dragged queued jobs
    // go before that row (after the last row for row >= rowCount()). False when nothing moved.
    bool moveSelectedTo(int row);
    // "2 min 10 s", "45 s", "1 h 5 min".
    static QString formatDuration(double seconds);

protected:
    void changeEvent(QEvent* event) override;

private:
    void addJob(qint64 id);
    void updateJob(qint64 id);
    void removeJob(qint64 id);
    void removeSelected();
    void cancelSelected();
    void moveSelected(int delta);
    void updateButtons();
    void updateTimeLeft();
    // Puts the rows in the queue's order (after a move), keeping the selection.
    void reorderRows();
    QTreeWidgetItem* rowFor(qint64 id) const;

    JobQueue* m_queue = nullptr;
    QTreeWidget* m_tree = nullptr;
    QPushButton* m_remove = nullptr;
    QPushButton* m_cancel = nullptr;
    QPushButton* m_clear = nullptr;
    QToolButton* m_up = nullptr;
    QToolButton* m_down = nullptr;
    QLabel* m_timeLeft = nullptr;
};
