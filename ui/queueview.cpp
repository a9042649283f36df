#include "queueview.h"

#include <functional>

#include <QDropEvent>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QMimeData>
#include <QProgressBar>
#include <QPushButton>
#include <QShortcut>
#include <QStyle>
#include <QToolButton>
#include <QTreeWidget>
#include <QVBoxLayout>

namespace {
enum Column { JobColumn, StateColumn, ProgressColumn, PromptColumn, ColumnCount };

constexpr int JobIdRole = Qt::UserRole + 1;

// The list takes drags of its own rows and hands the drop row to the view, which asks the queue to move the jobs;
// the rows then follow the queue's jobMoved signal (a QTreeWidget's own internal move would drop the progress bars).
class QueueTree final : public QTreeWidget {
public:
    explicit QueueTree(QWidget* parent) : QTreeWidget(parent) {}
    std::function<bool(int row)> dropOnRow;

protected:
    // Rows of this list only (the model's own drag format); the base class draws the drop indicator and scrolls.
    bool ownRows(const QDropEvent* event) const {
        return event->mimeData() && event->mimeData()->hasFormat(model()->mimeTypes().value(0));
    }
    void dragEnterEvent(QDragEnterEvent* event) override {
        QTreeWidget::dragEnterEvent(event);
        if (ownRows(event)) event->acceptProposedAction();
    }
    void dragMoveEvent(QDragMoveEvent* event) override {
        QTreeWidget::dragMoveEvent(event);
        if (ownRows(event)) event->acceptProposedAction();
    }
    void dropEvent(QDropEvent* event) override {
        if (!ownRows(event)) return;
        const QPoint pos = event->position().toPoint();
        int row = topLevelItemCount();
        if (QTreeWidgetItem* item = itemAt(pos)) {
            row = indexOfTopLevelItem(item);
            if (pos.y() > visualItemRect(item).center().y()) ++row;
        }
        if (dropOnRow) dropOnRow(row);
        // Not a move for the drag source: the rows are rearranged by the queue's signal, not removed here.
        event->setDropAction(Qt::CopyAction);
        event->accept();
    }
};

// Darker shades on a light list, lighter ones on a dark list (the dark theme).
QColor stateColour(const Job::State state, const bool darkBase) {
    switch (state) {
    case Job::State::Done: return darkBase ? QColor(0x81, 0xc7, 0x84) : QColor(0x2e, 0x7d, 0x32);       // green
    case Job::State::Failed: return darkBase ? QColor(0xef, 0x9a, 0x9a) : QColor(0xc6, 0x28, 0x28);     // red
    case Job::State::Cancelled: return darkBase ? QColor(0x9e, 0x9e, 0x9e) : QColor(0x75, 0x75, 0x75);  // grey
    case Job::State::Running: return darkBase ? QColor(0x90, 0xca, 0xf9) : QColor(0x15, 0x65, 0xc0);    // blue
    default: return {};
    }
}

QIcon stateIcon(const QStyle* style, const Job::State state) {
    switch (state) {
    case Job::State::Queued: return style->standardIcon(QStyle::SP_FileDialogListView);
    case Job::State::Running: return style->standardIcon(QStyle::SP_MediaPlay);
    case Job::State::Done: return style->standardIcon(QStyle::SP_DialogApplyButton);
    case Job::State::Failed: return style->standardIcon(QStyle::SP_MessageBoxCritical);
    case Job::State::Cancelled: return style->standardIcon(QStyle::SP_DialogCancelButton);
    }
    return {};
}
}  // namespace

QueueView::QueueView(JobQueue* queue, QWidget* parent)
    : QWidget(parent),
      m_queue(queue),
      m_tree(new QueueTree(this)),
      m_remove(new QPushButton(tr("&Remove"), this)),
      m_cancel(new QPushButton(tr("Cancel"), this)),
      m_clear(new QPushButton(tr("Clear finished"), this)),
      m_up(new QToolButton(this)),
      m_down(new QToolButton(this)),
      m_timeLeft(new QLabel(this)) {
    m_tree->setObjectName(QStringLiteral("queueTree"));
    m_tree->setColumnCount(ColumnCount);
    m_tree->setHeaderLabels({tr("Job"), tr("State"), tr("Progress"), tr("Prompt")});
    m_tree->setRootIsDecorated(false);
    m_tree->setSelectionMode(QAbstractItemView::ExtendedSelection);
    m_tree->header()->setStretchLastSection(true);
    m_tree->setColumnWidth(JobColumn, 64);
    m_tree->setColumnWidth(StateColumn, 88);
    m_tree->setColumnWidth(ProgressColumn, 110);
    m_tree->setDragEnabled(true);
    m_tree->setAcceptDrops(true);
    m_tree->viewport()->setAcceptDrops(true);
    m_tree->setDropIndicatorShown(true);
    m_tree->setDragDropMode(QAbstractItemView::DragDrop);
    m_tree->setDefaultDropAction(Qt::MoveAction);
    m_tree->setToolTip(tr("Drag queued jobs to change the order they run in"));
    static_cast<QueueTree*>(m_tree)->dropOnRow = [this](int row) { return moveSelectedTo(row); };
    m_up->setObjectName(QStringLiteral("queueUpButton"));
    m_up->setArrowType(Qt::UpArrow);
    m_up->setToolTip(tr("Run the selected queued jobs earlier"));
    m_down->setObjectName(QStringLiteral("queueDownButton"));
    m_down->setArrowType(Qt::DownArrow);
    m_down->setToolTip(tr("Run the selected queued jobs later"));
    m_timeLeft->setObjectName(QStringLiteral("queueTimeLeftLabel"));
    m_timeLeft->setWordWrap(true);
    m_remove->setObjectName(QStringLiteral("queueRemoveButton"));
    m_remove->setToolTip(tr("Remove the selected queued jobs"));
    m_cancel->setObjectName(QStringLiteral("queueCancelButton"));

    // Two short rows, so the side panel stays narrow (issue 13 item 7): the time left with the order arrows, then
    // the buttons.
    auto* orderRow = new QHBoxLayout;
    orderRow->addWidget(m_timeLeft, 1);
    orderRow->addWidget(m_up);
    orderRow->addWidget(m_down);
    auto* buttons = new QHBoxLayout;
    buttons->addWidget(m_remove);
    buttons->addWidget(m_cancel);
    buttons->addStretch();
    buttons->addWidget(m_clear);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(m_tree);
    layout->addLayout(orderRow);
    layout->addLayout(buttons);

    connect(m_remove, &QPushButton::clicked, this, &QueueView::removeSelected);
    connect(m_cancel, &QPushButton::clicked, this, &QueueView::cancelSelected);
    connect(m_clear, &QPushButton::clicked, m_queue, &JobQueue::clearFinished);
    // The same from the keyboard while the list has focus (listed in Help → Keyboard shortcuts).
    m_tree->setAccessibleName(tr("Queue"));
    for (const int delta : {-1, +1}) {
        auto* shortcut = new QShortcut(QKeySequence(Qt::CTRL | (delta < 0 ? Qt::Key_Up : Qt::Key_Down)), m_tree);
        shortcut->setContext(Qt::WidgetWithChildrenShortcut);
        shortcut->setWhatsThis(delta < 0 ? tr("Run the selected queued jobs earlier")
                                         : tr("Run the selected queued jobs later"));
        connect(shortcut, &QShortcut::activated, this, [this, delta]() { moveSelected(delta); });
    }
    connect(m_up, &QToolButton::clicked, this, [this]() { moveSelected(-1); });
    connect(m_down, &QToolButton::clicked, this, [this]() { moveSelected(+1); });
    connect(m_tree, &QTreeWidget::itemSelectionChanged, this, &QueueView::updateButtons);

    connect(m_queue, &JobQueue::jobAdded, this, &QueueView::addJob);
    connect(m_queue, &JobQueue::jobRemoved, this, &QueueView::removeJob);
    connect(m_queue, &JobQueue::jobStateChanged, this, &QueueView::updateJob);
    connect(m_queue, &JobQueue::jobProgress, this, &QueueView::updateJob);
    connect(m_queue, &JobQueue::imageReady, this, &QueueView::updateJob);
    connect(m_queue, &JobQueue::jobMoved, this, &QueueView::reorderRows);
    connect(m_queue, &JobQueue::jobAdded, this, &QueueView::updateTimeLeft);
    connect(m_queue, &JobQueue::jobRemoved, this, &QueueView::updateTimeLeft);
    connect(m_queue, &JobQueue::jobMoved, this, &QueueView::updateTimeLeft);
    connect(m_queue, &JobQueue::jobStateChanged, this, &QueueView::updateTimeLeft);
    connect(m_queue, &JobQueue::jobProgress, this, &QueueView::updateTimeLeft);

    for (const Job& job : m_queue->jobs()) addJob(job.id);
    updateButtons();
    updateTimeLeft();
}

void QueueView::changeEvent(QEvent* event) {
    QWidget::changeEvent(event);
    // A theme change: the state colours follow the new background.
    if (event->type() == QEvent::PaletteChange) {
        for (const qint64 id : rowOrder()) updateJob(id);
    }
}

QList<qint64> QueueView::rowOrder() const {
    QList<qint64> ids;
    for (int i = 0; i < m_tree->topLevelItemCount(); ++i)
        ids << m_tree->topLevelItem(i)->data(JobColumn, JobIdRole).toLongLong();
    return ids;
}

QString QueueView::timeLeftText() const { return m_timeLeft->text(); }

QString QueueView::formatDuration(const double seconds) {
    const qint64 s = qint64(seconds + 0.5);
    if (s < 60) return tr("%1 s").arg(s);
    if (s < 3600) return (s % 60) ? tr("%1 min %2 s").arg(s / 60).arg(s % 60) : tr("%1 min").arg(s / 60);
    const qint64 minutes = (s + 30) / 60;
    return (minutes % 60) ? tr("%1 h %2 min").arg(minutes / 60).arg(minutes % 60) : tr("%1 h").arg(minutes / 60);
}

void QueueView::updateTimeLeft() {
    int waiting = 0;
    bool running = false;
    for (const Job& job : m_queue->jobs()) {
        if (job.state == Job::State::Queued) ++waiting;
        if (job.state == Job::State::Running) running = true;
    }
    if (waiting == 0 && !running) {
        m_timeLeft->setText(tr("Queue empty"));
        return;
    }
    const QString jobs = running ? tr("1 running, %n waiting", nullptr, waiting) : tr("%n waiting", nullptr, waiting);
    const double left = m_queue->secondsLeft();
    m_timeLeft->setText(left < 0 ? tr("%1 · time left known after the first steps").arg(jobs)
                                 : tr("%1 · about %2 left").arg(jobs, formatDuration(left)));
}

bool QueueView::moveSelectedTo(const int row) {
    const QList<qint64> order = rowOrder();
    QList<qint64> moving;
    for (const qint64 id : order) {
        const QTreeWidgetItem* item = rowFor(id);
        const auto job = m_queue->job(id);
        if (item && item->isSelected() && job && job->state == Job::State::Queued) moving << id;
    }
    if (moving.isEmpty()) return false;
    QList<qint64> others;
    int insertAt = 0;
    for (int i = 0; i < order.size(); ++i) {
        if (moving.contains(order[i])) continue;
        if (i < row) ++insertAt;
        others << order[i];
    }
    QList<qint64> desired = others.mid(0, insertAt) + moving + others.mid(insertAt);
    if (desired == order) return false;
    // Front to back: a place that wants a dragged job gets it; one that holds a dragged job meant for later sends that
    // job on. Only the dragged (queued) jobs are moved; the others keep their order.
    const auto current = [this]() {
        QList<qint64> ids;
        for (const Job& job : m_queue->jobs()) ids << job.id;
        return ids;
    };
    for (int i = 0, guard = 0; i < desired.size() && guard < desired.size() * desired.size() + 1; ++guard) {
        const QList<qint64> now = current();
        if (now.value(i) == desired[i]) {
            ++i;
        } else if (moving.contains(desired[i])) {
            if (!m_queue->move(desired[i], i)) break;
        } else if (!m_queue->move(now.value(i), int(desired.indexOf(now.value(i))))) {
            break;
        }
    }
    return true;
}

void QueueView::moveSelected(const int delta) {
    QList<qint64> moving;
    for (const qint64 id : rowOrder()) {
        const QTreeWidgetItem* item = rowFor(id);
        const auto job = m_queue->job(id);
        if (item && item->isSelected() && job && job->state == Job::State::Queued) moving << id;
    }
    // Up: the topmost first; down: the bottom one first, so the selected jobs keep their order.
    if (delta > 0) std::reverse(moving.begin(), moving.end());
    for (const qint64 id : moving) {
        if (!(delta < 0 ? m_queue->moveUp(id) : m_queue->moveDown(id))) break;
    }
}

void QueueView::reorderRows() {
    QList<qint64> selected;
    for (QTreeWidgetItem* row : m_tree->selectedItems()) selected << row->data(JobColumn, JobIdRole).toLongLong();
    // Rebuilt in the queue's order: taking a row out of a QTreeWidget drops its progress bar, so every row is new.
    while (m_tree->topLevelItemCount() > 0) delete m_tree->takeTopLevelItem(0);
    for (const Job& job : m_queue->jobs()) addJob(job.id);
    for (const qint64 id : selected) {
        if (QTreeWidgetItem* row = rowFor(id)) row->setSelected(true);
    }
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
    // Short, so the narrow panel shows it whole: "#3 ×4" (four images), "#5 A|B" (a comparison); the tooltip says it.
    const int images = int(job->seeds.size());
    const bool compare = job->kind == Job::Kind::Compare;
    row->setText(JobColumn,
                 compare ? QStringLiteral("#%1 A|B").arg(id) : QStringLiteral("#%1 ×%2").arg(id).arg(images));
    row->setToolTip(JobColumn, compare ? tr("Job %1: compare two models, %2 seed(s)").arg(id).arg(images)
                                       : (images == 1 ? tr("Job %1: 1 image").arg(id)
                                                      : tr("Job %1: %2 images").arg(id).arg(images)));
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
    row->setIcon(StateColumn, stateIcon(style(), job->state));
    const QColor colour = stateColour(job->state, palette().color(QPalette::Base).lightness() < 128);
    for (const int column : {JobColumn, StateColumn, PromptColumn}) {
        if (colour.isValid())
            row->setForeground(column, colour);
        else
            row->setData(column, Qt::ForegroundRole, QVariant());
    }
    row->setToolTip(StateColumn, job->error);
    // Only queued jobs can be dragged.
    Qt::ItemFlags flags = Qt::ItemIsEnabled | Qt::ItemIsSelectable;
    if (job->state == Job::State::Queued) flags |= Qt::ItemIsDragEnabled;
    row->setFlags(flags);
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
    bool movable = false;
    for (QTreeWidgetItem* row : m_tree->selectedItems()) {
        const auto job = m_queue->job(row->data(JobColumn, JobIdRole).toLongLong());
        if (job && job->state == Job::State::Queued) movable = true;
    }
    m_up->setEnabled(movable);
    m_down->setEnabled(movable);
}

QTreeWidgetItem* QueueView::rowFor(const qint64 id) const {
    for (int i = 0; i < m_tree->topLevelItemCount(); ++i) {
        QTreeWidgetItem* row = m_tree->topLevelItem(i);
        if (row->data(JobColumn, JobIdRole).toLongLong() == id) return row;
    }
    return nullptr;
}
