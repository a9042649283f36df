#include "queueview.h"

#include <QHBoxLayout>
#include <QHeaderView>
#include <QProgressBar>
#include <QPushButton>
#include <QTreeWidget>
#include <QVBoxLayout>

namespace {
enum Column { JobColumn, StateColumn, ProgressColumn, PromptColumn, ColumnCount };

constexpr int JobIdRole = Qt::UserRole + 1;
}  // namespace

QueueView::QueueView(JobQueue* queue, QWidget* parent)
    : QWidget(parent),
      m_queue(queue),
      m_tree(new QTreeWidget(this)),
      m_remove(new QPushButton(tr("&Remove"), this)),
      m_cancel(new QPushButton(tr("Cancel"), this)),
      m_clear(new QPushButton(tr("Clear finished"), this)) {
    m_tree->setObjectName(QStringLiteral("queueTree"));
    m_tree->setColumnCount(ColumnCount);
    m_tree->setHeaderLabels({tr("Job"), tr("State"), tr("Progress"), tr("Prompt")});
    m_tree->setRootIsDecorated(false);
    m_tree->setSelectionMode(QAbstractItemView::ExtendedSelection);
    m_tree->header()->setStretchLastSection(true);
    m_tree->setColumnWidth(JobColumn, 90);
    m_tree->setColumnWidth(StateColumn, 80);
    m_tree->setColumnWidth(ProgressColumn, 110);
    m_remove->setObjectName(QStringLiteral("queueRemoveButton"));
    m_remove->setToolTip(tr("Remove the selected queued jobs"));
    m_cancel->setObjectName(QStringLiteral("queueCancelButton"));

    auto* buttons = new QHBoxLayout;
    buttons->addWidget(m_remove);
    buttons->addWidget(m_cancel);
    buttons->addStretch();
    buttons->addWidget(m_clear);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(m_tree);
    layout->addLayout(buttons);

    connect(m_remove, &QPushButton::clicked, this, &QueueView::removeSelected);
    connect(m_cancel, &QPushButton::clicked, this, &QueueView::cancelSelected);
    connect(m_clear, &QPushButton::clicked, m_queue, &JobQueue::clearFinished);
    connect(m_tree, &QTreeWidget::itemSelectionChanged, this, &QueueView::updateButtons);

    connect(m_queue, &JobQueue::jobAdded, this, &QueueView::addJob);
    connect(m_queue, &JobQueue::jobRemoved, this, &QueueView::removeJob);
    connect(m_queue, &JobQueue::jobStateChanged, this, &QueueView::updateJob);
    connect(m_queue, &JobQueue::jobProgress, this, &QueueView::updateJob);
    connect(m_queue, &JobQueue::imageReady, this, &QueueView::updateJob);

    for (const Job& job : m_queue->jobs()) addJob(job.id);
    updateButtons();
}

int QueueView::rowCount() const { return m_tree->topLevelItemCount(); }

QString QueueView::stateText(const qint64 jobId) const {
    const QTreeWidgetItem* row = rowFor(jobId);
    return row ? row->text(StateColumn) : QString();
}

QString QueueView::progressText(const qint64 jobId) const {
    const QTreeWidgetItem* row = rowFor(jobId);
    if (!row) return {};
    const auto* bar =
        qobject_cast<QProgressBar*>(m_tree->itemWidget(const_cast<QTreeWidgetItem*>(row), ProgressColumn));
    return bar ? bar->text() : QString();
}

int QueueView::progressPercent(const qint64 jobId) const {
    const QTreeWidgetItem* row = rowFor(jobId);
    if (!row) return -1;
    const auto* bar =
        qobject_cast<QProgressBar*>(m_tree->itemWidget(const_cast<QTreeWidgetItem*>(row), ProgressColumn));
    return bar ? bar->value() : -1;
}

void QueueView::addJob(const qint64 id) {
    if (rowFor(id)) return;
    const auto job = m_queue->job(id);
    if (!job) return;
    auto* row = new QTreeWidgetItem;
    row->setData(JobColumn, JobIdRole, id);
    const QString kind =
        (job->kind == Job::Kind::Compare) ? tr("compare") : tr("%n image(s)", nullptr, int(job->seeds.size()));
    row->setText(JobColumn, QStringLiteral("#%1 %2").arg(id).arg(kind));
    row->setText(PromptColumn, job->params.prompt.simplified());
    row->setToolTip(PromptColumn, job->params.prompt);
    m_tree->addTopLevelItem(row);
    auto* bar = new QProgressBar(m_tree);
    bar->setRange(0, 100);
    bar->setTextVisible(true);
    m_tree->setItemWidget(row, ProgressColumn, bar);
    updateJob(id);
}

void QueueView::updateJob(const qint64 id) {
    QTreeWidgetItem* row = rowFor(id);
    const auto job = m_queue->job(id);
    if (!row || !job) return;
    row->setText(StateColumn, Job::toString(job->state));
    row->setToolTip(StateColumn, job->error);
    if (auto* bar = qobject_cast<QProgressBar*>(m_tree->itemWidget(row, ProgressColumn))) {
        const int percent = (job->state == Job::State::Done) ? 100 : qBound(0, int(job->progress * 100.0 + 0.5), 100);
        bar->setValue(percent);
        // A cancelled or failed job must not look half successful (ux-review 16): its bar is greyed and says so,
        // counting the images that were kept.
        const bool ended = job->state == Job::State::Cancelled || job->state == Job::State::Failed;
        bar->setEnabled(!ended);
        if (job->state == Job::State::Running && job->totalSteps > 0)
            bar->setFormat(
                tr("%1/%2 · %3/%4").arg(job->step).arg(job->totalSteps).arg(job->imagesDone).arg(job->imagesTotal));
        else if (ended)
            bar->setFormat(
                (job->state == Job::State::Cancelled ? tr("cancelled · %1/%2 kept") : tr("failed · %1/%2 kept"))
                    .arg(job->itemIds.size())
                    .arg(job->imagesTotal));
        else
            bar->setFormat(QStringLiteral("%p%"));
    }
    updateButtons();
}

void QueueView::removeJob(const qint64 id) {
    delete rowFor(id);
    updateButtons();
}

void QueueView::removeSelected() {
    const QList<QTreeWidgetItem*> selected = m_tree->selectedItems();
    for (QTreeWidgetItem* row : selected) m_queue->remove(row->data(JobColumn, JobIdRole).toLongLong());
}

void QueueView::cancelSelected() {
    const QList<QTreeWidgetItem*> selected = m_tree->selectedItems();
    if (selected.isEmpty()) {
        m_queue->cancelCurrent();
        return;
    }
    for (QTreeWidgetItem* row : selected) m_queue->cancel(row->data(JobColumn, JobIdRole).toLongLong());
}

void QueueView::updateButtons() {
    bool removable = false;
    bool cancellable = m_queue->isBusy();
    for (QTreeWidgetItem* row : m_tree->selectedItems()) {
        const auto job = m_queue->job(row->data(JobColumn, JobIdRole).toLongLong());
        if (job && (job->state != Job::State::Running)) removable = true;
        if (job && ((job->state == Job::State::Running) || (job->state == Job::State::Queued))) cancellable = true;
    }
    m_remove->setEnabled(removable);
    m_cancel->setEnabled(cancellable);
}

QTreeWidgetItem* QueueView::rowFor(const qint64 id) const {
    for (int i = 0; i < m_tree->topLevelItemCount(); ++i) {
        QTreeWidgetItem* row = m_tree->topLevelItem(i);
        if (row->data(JobColumn, JobIdRole).toLongLong() == id) return row;
    }
    return nullptr;
}
