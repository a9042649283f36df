#include <QDropEvent>
#include <QLabel>
#include <QMimeData>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>
#include <QToolButton>
#include <QTreeWidget>

#include "GalleryStore.h"
#include "JobQueue.h"
#include "queueview.h"
#include "uitestutil.h"

// issue 13 item 5: the queue list reorders by drag and by the up/down buttons (the queue runs that order), says how
// long the whole queue has left, and shows done, cancelled and failed jobs each its own way.
class TestQueueView : public QObject {
    Q_OBJECT

private slots:
    void init();
    void cleanup();
    void upDownButtonsReorder();
    void dropMovesDraggedJobs();
    void totalTimeLeft();
    void distinctEndStates();

private:
    GenerationParams params(quint64 seed) const;
    QTreeWidget* tree() const { return m_view->findChild<QTreeWidget*>(QStringLiteral("queueTree")); }
    QTreeWidgetItem* row(qint64 id) const;
    void select(const QList<qint64>& ids);

    std::unique_ptr<QTemporaryDir> m_dir;
    std::unique_ptr<GalleryStore> m_gallery;
    std::unique_ptr<JobQueue> m_queue;
    std::unique_ptr<QueueView> m_view;
};

void TestQueueView::init() {
    m_dir = std::make_unique<QTemporaryDir>();
    m_gallery = std::make_unique<GalleryStore>(m_dir->path());
    m_queue = std::make_unique<JobQueue>(m_gallery.get());
    m_queue->setLoadSettings(
        {QStringLiteral("cpu"), QStringLiteral("fp32"), QStringLiteral("default"), QStringLiteral("auto")});
    m_view = std::make_unique<QueueView>(m_queue.get());
    m_view->resize(600, 400);
    m_view->show();
    QVERIFY(QTest::qWaitForWindowExposed(m_view.get()));
}

void TestQueueView::cleanup() {
    m_view.reset();
    m_queue.reset();
    m_gallery.reset();
    m_dir.reset();
}

GenerationParams TestQueueView::params(const quint64 seed) const {
    GenerationParams p = GenerationParams::defaults();
    p.modelPath = fixtureModel("tiny-koala-700m");
    p.prompt = QStringLiteral("a koala");
    p.seed = seed;
    p.steps = 2;
    p.width = 64;
    p.height = 64;
    p.count = 1;
    return p;
}

QTreeWidgetItem* TestQueueView::row(const qint64 id) const {
    const int index = int(m_view->rowOrder().indexOf(id));
    return index >= 0 ? tree()->topLevelItem(index) : nullptr;
}

void TestQueueView::select(const QList<qint64>& ids) {
    tree()->clearSelection();
    for (const qint64 id : ids) row(id)->setSelected(true);
}

void TestQueueView::upDownButtonsReorder() {
    m_queue->stop();  // every job stays queued
    const qint64 a = m_queue->enqueue(params(1)), b = m_queue->enqueue(params(2)), c = m_queue->enqueue(params(3));
    QCOMPARE(m_view->rowOrder(), (QList<qint64>{a, b, c}));
    auto* up = m_view->findChild<QToolButton*>(QStringLiteral("queueUpButton"));
    auto* down = m_view->findChild<QToolButton*>(QStringLiteral("queueDownButton"));
    QVERIFY(!up->isEnabled());  // nothing selected
    select({c});
    QVERIFY(up->isEnabled());
    QTest::mouseClick(up, Qt::LeftButton);
    QCOMPARE(m_view->rowOrder(), (QList<qint64>{a, c, b}));
    QTest::mouseClick(up, Qt::LeftButton);
    QCOMPARE(m_view->rowOrder(), (QList<qint64>{c, a, b}));
    // The queue itself has the order (it runs and saves that one), and the moved row stays selected with its bar.
    QCOMPARE(m_queue->jobs().first().id, c);
    QVERIFY(row(c)->isSelected());
    QCOMPARE(m_view->progressPercent(c), 0);
    select({a, c});
    QTest::mouseClick(down, Qt::LeftButton);
    QCOMPARE(m_view->rowOrder(), (QList<qint64>{b, c, a}));
    // Ctrl+Up in the list does the same as the button.
    select({a});
    tree()->setFocus();
    QTest::keyClick(tree(), Qt::Key_Up, Qt::ControlModifier);
    QCOMPARE(m_view->rowOrder(), (QList<qint64>{b, a, c}));
}

void TestQueueView::dropMovesDraggedJobs() {
    m_queue->stop();
    const qint64 a = m_queue->enqueue(params(1)), b = m_queue->enqueue(params(2)), c = m_queue->enqueue(params(3)),
                 d = m_queue->enqueue(params(4));
    QVERIFY(row(a)->flags() & Qt::ItemIsDragEnabled);
    // Drag a and c onto the lower half of d: both go to the end, in their order.
    select({a, c});
    std::unique_ptr<QMimeData> mime(tree()->model()->mimeData(tree()->selectionModel()->selectedIndexes()));
    const QRect target = tree()->visualItemRect(row(d));
    const QPoint at(target.center().x(), target.bottom() - 1);
    QDragEnterEvent enter(at, Qt::MoveAction, mime.get(), Qt::LeftButton, Qt::NoModifier);
    QCoreApplication::sendEvent(tree()->viewport(), &enter);
    QDragMoveEvent over(at, Qt::MoveAction, mime.get(), Qt::LeftButton, Qt::NoModifier);
    QCoreApplication::sendEvent(tree()->viewport(), &over);
    QDropEvent drop(QPointF(at), Qt::MoveAction, mime.get(), Qt::LeftButton, Qt::NoModifier);
    QCoreApplication::sendEvent(tree()->viewport(), &drop);
    QCOMPARE(m_view->rowOrder(), (QList<qint64>{b, d, a, c}));
    QCOMPARE(m_queue->jobs().at(2).id, a);
    QCOMPARE(tree()->topLevelItemCount(), 4);  // nothing removed by the drag source
    // And d dropped on the top half of b goes first.
    QVERIFY(m_view->moveSelectedTo(0));
    QCOMPARE(m_view->rowOrder(), (QList<qint64>{a, c, b, d}));
    select({d});
    QVERIFY(m_view->moveSelectedTo(1));
    QCOMPARE(m_view->rowOrder(), (QList<qint64>{a, d, c, b}));
    QVERIFY(!m_view->moveSelectedTo(2));  // where it is already
}

void TestQueueView::totalTimeLeft() {
    m_queue->stop();
    QCOMPARE(m_view->timeLeftText(), QStringLiteral("Queue empty"));
    GenerationParams p = params(1);
    p.steps = 30;
    p.count = 4;
    m_queue->enqueue(p);
    QVERIFY2(m_view->timeLeftText().contains(QLatin1String("after the first steps")),
             qPrintable(m_view->timeLeftText()));
    m_queue->recordSecondsPerStep(p.modelPath, 1.5);
    m_queue->enqueue(params(2));  // 2 more steps: 4 * 30 * 1.5 + 2 * 1.5 = 183 s
    QVERIFY2(m_view->timeLeftText().contains(QLatin1String("3 min 3 s")), qPrintable(m_view->timeLeftText()));
    QVERIFY(m_view->timeLeftText().contains(QLatin1String("2 waiting")));
    QCOMPARE(QueueView::formatDuration(59.4), QStringLiteral("59 s"));
    QCOMPARE(QueueView::formatDuration(3600 + 5 * 60), QStringLiteral("1 h 5 min"));
}

void TestQueueView::distinctEndStates() {
    GenerationParams broken = params(9);
    broken.modelPath = m_dir->filePath(QStringLiteral("no-such-model"));
    const qint64 failed = m_queue->enqueue(broken);
    GenerationParams slow = params(5);
    slow.steps = 400;
    slow.width = 256;
    slow.height = 256;
    const qint64 done = m_queue->enqueue(params(4));
    const qint64 cancelled = m_queue->enqueue(slow);
    QTRY_COMPARE_WITH_TIMEOUT(m_queue->job(done)->state, Job::State::Done, 120000);
    QTRY_COMPARE_WITH_TIMEOUT(m_queue->job(cancelled)->state, Job::State::Running, 120000);
    m_queue->cancel(cancelled);
    QTRY_COMPARE_WITH_TIMEOUT(m_queue->job(cancelled)->state, Job::State::Cancelled, 120000);
    QCOMPARE(m_queue->job(failed)->state, Job::State::Failed);

    QCOMPARE(m_view->stateText(done), QStringLiteral("done"));
    QCOMPARE(m_view->stateText(failed), QStringLiteral("failed"));
    QCOMPARE(m_view->stateText(cancelled), QStringLiteral("cancelled"));
    // Three different colours and three different icons.
    const QColor doneColour = row(done)->foreground(1).color();
    const QColor failedColour = row(failed)->foreground(1).color();
    const QColor cancelledColour = row(cancelled)->foreground(1).color();
    QVERIFY(doneColour != failedColour && failedColour != cancelledColour && doneColour != cancelledColour);
    QVERIFY(doneColour.green() > doneColour.red());
    QVERIFY(failedColour.red() > failedColour.green());
    const auto iconKey = [this](qint64 id) { return row(id)->icon(1).pixmap(16, 16).toImage(); };
    QVERIFY(!row(done)->icon(1).isNull());
    QVERIFY(iconKey(done) != iconKey(failed));
    QVERIFY(iconKey(done) != iconKey(cancelled));
    QVERIFY(iconKey(failed) != iconKey(cancelled));
    QVERIFY(m_view->progressText(cancelled).startsWith(QLatin1String("cancelled")));
    QVERIFY(!row(done)->flags().testFlag(Qt::ItemIsDragEnabled));  // finished jobs stay where they are
}

QTEST_MAIN(TestQueueView)
#include "tst_queueview.moc"
