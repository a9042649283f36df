#pragma once

#include <QWidget>

#include "JobQueue.h"

class QPushButton;
class QTreeWidget;
class QTreeWidgetItem;

// The job list: one row per job with its state and progress. Queued jobs can be removed, the running one cancelled.
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

private:
    void addJob(qint64 id);
    void updateJob(qint64 id);
    void removeJob(qint64 id);
    void removeSelected();
    void cancelSelected();
    void updateButtons();
    QTreeWidgetItem* rowFor(qint64 id) const;

    JobQueue* m_queue = nullptr;
    QTreeWidget* m_tree = nullptr;
    QPushButton* m_remove = nullptr;
    QPushButton* m_cancel = nullptr;
    QPushButton* m_clear = nullptr;
};
