#include <QtTest>

#include "GalleryStore.h"
#include "JobQueue.h"

#include <QStandardPaths>
#include "PngMetadata.h"
#include "queue_test_util.h"

// Runs the real engine on the tiny fixture models (CPU, 64x64: well under a second per image).
class TestJobQueue : public QObject {
    Q_OBJECT

private slots:
    void initTestCase();
    void singleJobStoresImagesBeforeAnnouncing();
    void cancelDuringRunSavesNothingAndNextJobRuns();
    void cancelAndRemoveQueuedJobs();
    void modelErrorFailsJobAndQueueContinues();
    void invalidParamsFailJob();
    void compareSharesTextEncodersAndStoresPair();
    void destructorCancelsRunningJob();
    void unwritableOutputKeepsImageInRecoveryFolder();
    void persistsUnfinishedWorkAndRestoresIt();
    void damagedQueueFileIsReported();
    void reorderQueuedJobs();
    void timeLeftFromMeasuredStepTimes();
    void runMeasuresStepTime();

private:
    static QString fixture(const char* name) { return queuetest::fixture(name); }
    static GenerationParams quickParams() {
        return queuetest::quickParams(QStringLiteral("a koala astronaut"), 100, 3);
    }
    static GenerationParams longParams();
};

// Long enough that a cancel sent at the first step arrives while the job still runs.
GenerationParams TestJobQueue::longParams() {
    GenerationParams p = quickParams();
    p.steps = 200;
    p.width = 256;
    p.height = 256;
    return p;
}

void TestJobQueue::initTestCase() {
    QVERIFY(QFileInfo::exists(fixture("tiny-koala-700m") + QStringLiteral("/model_index.json")));
}

void TestJobQueue::singleJobStoresImagesBeforeAnnouncing() {
    QTemporaryDir out;
    GalleryStore gallery(out.path());
    JobQueue queue(&gallery);
    queue.setLoadSettings(
        {QStringLiteral("cpu"), QStringLiteral("fp32"), QStringLiteral("default"), QStringLiteral("auto")});
    QSignalSpy progress(&queue, &JobQueue::jobProgress);
    QSignalSpy previews(&queue, &JobQueue::jobPreview);
    QSignalSpy finished(&queue, &JobQueue::jobFinished);
    QList<GalleryItem> announced;
    bool storedBeforeSignal = true;
    connect(&queue, &JobQueue::imageReady, this, [&](qint64, const GalleryItem& item) {
        storedBeforeSignal = storedBeforeSignal && QFile::exists(item.path) && gallery.item(item.id).has_value();
        announced << item;
    });

    GenerationParams p = quickParams();
    p.count = 2;
    const qint64 id = queue.enqueue(p);
    QVERIFY(id > 0);
    QCOMPARE(queue.job(id)->seeds, (QList<quint64>{100, 101}));
    QVERIFY(queuetest::waitForState(queue, id, Job::State::Done));
    QCOMPARE(finished.count(), 1);
    QCOMPARE(announced.size(), 2);
    QVERIFY(storedBeforeSignal);
    QCOMPARE(progress.count(), 2 * 3);
    QCOMPARE(progress.last().at(1).toInt(), 3);
    QCOMPARE(progress.last().at(2).toInt(), 3);
    QVERIFY(previews.count() >= 2);
    QVERIFY(!previews.first().at(2).value<QImage>().isNull());

    const Job job = *queue.job(id);
    QCOMPARE(job.imagesDone, 2);
    QCOMPARE(job.itemIds.size(), 2);
    QCOMPARE(job.progress, 1.0);

    // The files carry the metadata: a fresh store reads the seeds back.
    GalleryStore reread(out.path());
    QCOMPARE(reread.load(), 2);
    QList<quint64> seeds;
    for (const GalleryItem& item : reread.items()) {
        seeds << item.params.seed.value();
        QCOMPARE(item.width, 64);
        QCOMPARE(item.height, 64);
        QCOMPARE(item.params.prompt, p.prompt);
        QVERIFY(item.timings.totalSeconds > 0);
        QVERIFY(!item.schedulerUsed.isEmpty());
        QCOMPARE(item.modelName, announced.first().modelName);
        QVERIFY(item.compareGroup.isEmpty());
    }
    std::sort(seeds.begin(), seeds.end());
    QCOMPARE(seeds, (QList<quint64>{100, 101}));

    // Same seed, same settings: the same picture (the engine is deterministic on CPU).
    const qint64 again = queue.enqueue(quickParams());
    QVERIFY(queuetest::waitForState(queue, again, Job::State::Done));
    const QImage first(announced.at(0).path);
    const QImage repeat(announced.last().path);
    QCOMPARE(announced.size(), 3);
    QCOMPARE(first.convertToFormat(QImage::Format_RGB888), repeat.convertToFormat(QImage::Format_RGB888));

    // Random seeds: a different seed per image.
    GenerationParams random = quickParams();
    random.seed.reset();
    random.count = 3;
    const qint64 rid = queue.enqueue(random);
    const QList<quint64> rs = queue.job(rid)->seeds;
    QCOMPARE(rs.size(), 3);
    QVERIFY(rs.at(0) != rs.at(1) || rs.at(1) != rs.at(2));
    QVERIFY(queuetest::waitForState(queue, rid, Job::State::Done));
}

void TestJobQueue::cancelDuringRunSavesNothingAndNextJobRuns() {
    QTemporaryDir out;
    GalleryStore gallery(out.path());
    JobQueue queue(&gallery);
    queue.setLoadSettings(
        {QStringLiteral("cpu"), QStringLiteral("auto"), QStringLiteral("default"), QStringLiteral("auto")});
    QSignalSpy cancelled(&queue, &JobQueue::jobCancelled);
    QSignalSpy images(&queue, &JobQueue::imageReady);
    int lastStep = 0;
    int total = 0;
    qint64 id = 0;
    connect(&queue, &JobQueue::jobProgress, this, [&](qint64 jobId, int step, int t, double, double) {
        if (jobId != id) return;
        lastStep = step;
        total = t;
        if (step == 1) queue.cancel(jobId);
    });

    id = queue.enqueue(longParams());
    QVERIFY(queuetest::waitForState(queue, id, Job::State::Cancelled));
    QCOMPARE(cancelled.count(), 1);
    QCOMPARE(cancelled.first().first().toLongLong(), id);
    QCOMPARE(total, 200);
    QVERIFY2(lastStep < total, "the job ran to the end instead of being cancelled");
    QCOMPARE(images.count(), 0);
    QVERIFY(QDir(out.path()).entryList(QDir::Files).isEmpty());
    QVERIFY(gallery.items().isEmpty());
    QVERIFY(!queue.isBusy());

    // The worker is usable again (the cancel flag does not stick).
    const qint64 next = queue.enqueue(quickParams());
    QVERIFY(queuetest::waitForState(queue, next, Job::State::Done));
    QCOMPARE(images.count(), 1);
    QCOMPARE(gallery.items().size(), 1);
}

void TestJobQueue::cancelAndRemoveQueuedJobs() {
    QTemporaryDir out;
    GalleryStore gallery(out.path());
    JobQueue queue(&gallery);
    queue.setLoadSettings(
        {QStringLiteral("cpu"), QStringLiteral("auto"), QStringLiteral("default"), QStringLiteral("auto")});
    QSignalSpy removed(&queue, &JobQueue::jobRemoved);
    QSignalSpy added(&queue, &JobQueue::jobAdded);

    const qint64 running = queue.enqueue(longParams());
    const qint64 toCancel = queue.enqueue(quickParams());
    const qint64 toRemove = queue.enqueue(quickParams());
    const qint64 survivor = queue.enqueue(quickParams());
    QCOMPARE(added.count(), 4);
    QCOMPARE(queue.currentJobId(), running);
    QCOMPARE(queue.pendingCount(), 3);

    QVERIFY(!queue.remove(running));  // the running one must be cancelled instead
    QVERIFY(queue.remove(toRemove));
    QCOMPARE(removed.count(), 1);
    QVERIFY(!queue.job(toRemove));
    queue.cancel(toCancel);
    QCOMPARE(queue.job(toCancel)->state, Job::State::Cancelled);
    queue.cancelCurrent();

    QVERIFY(queuetest::waitForState(queue, running, Job::State::Cancelled));
    QVERIFY(queuetest::waitForState(queue, survivor, Job::State::Done));
    QCOMPARE(queue.job(toCancel)->state, Job::State::Cancelled);
    QCOMPARE(gallery.items().size(), 1);  // only the survivor produced an image

    queue.clearFinished();
    QVERIFY(queue.jobs().isEmpty());

    // cancelAll: the running job and everything queued.
    const qint64 a = queue.enqueue(longParams());
    const qint64 b = queue.enqueue(quickParams());
    QVERIFY(QTest::qWaitFor([&] { return queue.job(a)->step > 0; }, 60000));
    queue.cancelAll();
    QVERIFY(queuetest::waitForState(queue, a, Job::State::Cancelled));
    QCOMPARE(queue.job(b)->state, Job::State::Cancelled);
    QCOMPARE(gallery.items().size(), 1);
}

void TestJobQueue::modelErrorFailsJobAndQueueContinues() {
    QTemporaryDir out;
    QTemporaryDir notAModel;
    GalleryStore gallery(out.path());
    JobQueue queue(&gallery);
    queue.setLoadSettings(
        {QStringLiteral("cpu"), QStringLiteral("auto"), QStringLiteral("default"), QStringLiteral("auto")});
    QSignalSpy failed(&queue, &JobQueue::jobFailed);

    GenerationParams bad = quickParams();
    bad.modelPath = notAModel.path();
    const qint64 badId = queue.enqueue(bad);
    const qint64 good = queue.enqueue(quickParams());
    QVERIFY(queuetest::waitForState(queue, badId, Job::State::Failed));
    QCOMPARE(failed.count(), 1);
    const QString message = failed.first().at(1).toString();
    QVERIFY2(message.contains(notAModel.path()), qPrintable(message));
    QVERIFY2(!message.contains(QLatin1Char('\n')), qPrintable(message));
    QCOMPARE(queue.job(badId)->error, message);
    QVERIFY(queuetest::waitForState(queue, good, Job::State::Done));
    QCOMPARE(gallery.items().size(), 1);
}

void TestJobQueue::invalidParamsFailJob() {
    QTemporaryDir out;
    GalleryStore gallery(out.path());
    JobQueue queue(&gallery);
    QSignalSpy failed(&queue, &JobQueue::jobFailed);
    GenerationParams p = quickParams();
    p.width = 65;
    const qint64 id = queue.enqueue(p);
    QVERIFY(queuetest::waitForState(queue, id, Job::State::Failed));
    QVERIFY(failed.first().at(1).toString().contains(QLatin1String("Width")));

    GenerationParams one = quickParams();
    one.modelPath = fixture("tiny-koala-700m");
    one.modelPath2.clear();
    const qint64 cmp = queue.enqueueCompare(one);
    QVERIFY(queuetest::waitForState(queue, cmp, Job::State::Failed));
    QVERIFY(failed.last().at(1).toString().contains(QLatin1String("second model")));
    QVERIFY(gallery.items().isEmpty());
}

void TestJobQueue::compareSharesTextEncodersAndStoresPair() {
    QTemporaryDir out;
    GalleryStore gallery(out.path());
    JobQueue queue(&gallery);
    queue.setLoadSettings(
        {QStringLiteral("cpu"), QStringLiteral("auto"), QStringLiteral("default"), QStringLiteral("auto")});
    QSignalSpy loaded(&queue, &JobQueue::modelLoaded);
    QSignalSpy pairs(&queue, &JobQueue::compareReady);
    QSignalSpy images(&queue, &JobQueue::imageReady);

    GenerationParams p = quickParams();
    p.count = 2;
    p.modelPath = fixture("tiny-koala-700m");
    p.modelPath2 = fixture("tiny-koala-1b");
    const qint64 id = queue.enqueueCompare(p);
    QCOMPARE(queue.job(id)->kind, Job::Kind::Compare);
    QCOMPARE(queue.job(id)->imagesTotal, 4);
    QVERIFY(queuetest::waitForState(queue, id, Job::State::Done));

    QCOMPARE(loaded.count(), 2);
    QVERIFY(loaded.at(0).at(1).toString().endsWith(QLatin1String("tiny-koala-700m")));
    QCOMPARE(loaded.at(0).at(3).toBool(), false);
    QVERIFY(loaded.at(1).at(1).toString().endsWith(QLatin1String("tiny-koala-1b")));
    // Model B reuses A's text encoders and VAE: the fixtures' encoder weights are byte-identical (their tokenizers
    // hold the same vocabulary in two file formats, which does not prevent sharing the encoders).
    QCOMPARE(loaded.at(1).at(3).toBool(), true);

    QCOMPARE(images.count(), 4);
    QCOMPARE(pairs.count(), 2);
    for (const QList<QVariant>& pair : std::as_const(pairs)) {
        const QString group = pair.at(0).toString();
        const GalleryItem a = pair.at(1).value<GalleryItem>();
        const GalleryItem b = pair.at(2).value<GalleryItem>();
        QCOMPARE(a.compareGroup, group);
        QCOMPARE(b.compareGroup, group);
        QCOMPARE(a.compareSlot, 0);
        QCOMPARE(b.compareSlot, 1);
        QCOMPARE(a.params.seed, b.params.seed);
        QVERIFY(a.params.modelPath.endsWith(QLatin1String("tiny-koala-700m")));
        QVERIFY(b.params.modelPath.endsWith(QLatin1String("tiny-koala-1b")));
        QVERIFY(a.timings.totalSeconds > 0 && b.timings.totalSeconds > 0);
        // Different UNets give different pictures from the same noise.
        QVERIFY(QImage(a.path) != QImage(b.path));
    }
    QVERIFY(pairs.at(0).at(0).toString() != pairs.at(1).at(0).toString());

    // After a restart the gallery still knows the pairs.
    GalleryStore reread(out.path());
    QCOMPARE(reread.load(), 4);
    const QList<GalleryItem> pair = reread.compareGroup(pairs.at(0).at(0).toString());
    QCOMPARE(pair.size(), 2);
    QCOMPARE(pair.at(0).compareSlot, 0);
    QCOMPARE(pair.at(1).compareSlot, 1);
    QVERIFY(pair.at(0).modelName != pair.at(1).modelName || pair.at(0).params.modelPath != pair.at(1).params.modelPath);

    // A second compare reuses the cached models: nothing is loaded again.
    const qint64 second = queue.enqueueCompare(p);
    QVERIFY(queuetest::waitForState(queue, second, Job::State::Done));
    QCOMPARE(loaded.count(), 2);
}

void TestJobQueue::destructorCancelsRunningJob() {
    QTemporaryDir out;
    GalleryStore gallery(out.path());
    QElapsedTimer timer;
    {
        JobQueue queue(&gallery);
        queue.setLoadSettings(
            {QStringLiteral("cpu"), QStringLiteral("auto"), QStringLiteral("default"), QStringLiteral("auto")});
        GenerationParams p = longParams();
        p.count = 50;
        const qint64 id = queue.enqueue(p);
        QVERIFY(QTest::qWaitFor([&] { return queue.job(id)->step > 0; }, 60000));
        timer.start();
    }
    // The worker stopped at its next step instead of finishing 50 images.
    QVERIFY2(timer.elapsed() < 20000, qPrintable(QString::number(timer.elapsed())));
    QVERIFY(gallery.items().isEmpty());
}

void TestJobQueue::unwritableOutputKeepsImageInRecoveryFolder() {
    QStandardPaths::setTestModeEnabled(true);  // the recovery folder goes to the test location, not the user's
    QTemporaryDir tmp;
    const QString blocked = tmp.path() + QStringLiteral("/not-a-folder");
    QFile file(blocked);
    QVERIFY(file.open(QIODevice::WriteOnly));
    file.close();
    GalleryStore gallery(blocked);  // a file where the output folder should be: every save fails
    JobQueue queue(&gallery);
    queue.setLoadSettings(
        {QStringLiteral("cpu"), QStringLiteral("fp32"), QStringLiteral("default"), QStringLiteral("auto")});
    QSignalSpy failed(&queue, &JobQueue::saveFailed);
    const qint64 id = queue.enqueue(quickParams());
    QVERIFY(queuetest::waitForState(queue, id, Job::State::Done) ||
            queuetest::waitForState(queue, id, Job::State::Failed, 1000));
    QCOMPARE(failed.count(), 1);
    const QString message = failed.first().at(3).toString();
    const int at = message.indexOf(QStringLiteral("kept in "));
    QVERIFY2(at >= 0, qPrintable(message));
    const QString kept = message.mid(at + 8);
    QVERIFY2(QFileInfo::exists(kept), qPrintable(kept));
    QCOMPARE(PngMetadata::readParams(kept)->seed, std::optional<quint64>(100));
    QFile::remove(kept);
}

// ux-review 4: the queued jobs and the rest of the running one are kept (atomically, on every change) and come
// back with the same seeds; images already stored are not redone.
void TestJobQueue::persistsUnfinishedWorkAndRestoresIt() {
    QTemporaryDir out;
    const QString queueFile = out.filePath(QStringLiteral("state/queue.json"));
    GalleryStore gallery(out.filePath(QStringLiteral("images")));
    qint64 running = 0;
    qint64 queued = 0;
    QList<quint64> runningSeeds;
    {
        JobQueue queue(&gallery);
        queue.setLoadSettings(
            {QStringLiteral("cpu"), QStringLiteral("auto"), QStringLiteral("default"), QStringLiteral("auto")});
        queue.setPersistPath(queueFile);
        QVERIFY(QFileInfo::exists(queueFile));
        QSignalSpy images(&queue, &JobQueue::imageReady);

        GenerationParams slow = quickParams();
        slow.steps = 60;
        slow.seed = 500;
        slow.count = 3;
        running = queue.enqueue(slow);
        GenerationParams later = quickParams();
        later.seed = 900;
        later.count = 2;
        queued = queue.enqueue(later);
        {
            QFile file(queueFile);
            QVERIFY(file.open(QIODevice::ReadOnly));
            QCOMPARE(QJsonDocument::fromJson(file.readAll()).object().value(QStringLiteral("jobs")).toArray().size(),
                     2);
        }
        QTRY_VERIFY_WITH_TIMEOUT(!images.isEmpty(), 120000);
        queue.stop();
        const int done = queue.job(running)->imagesDone;
        QVERIFY(done >= 1);
        runningSeeds = QList<quint64>{500, 501, 502}.mid(done);
        QCOMPARE(queue.job(queued)->state, Job::State::Queued);  // nothing starts after stop()
        QCOMPARE(gallery.items().size(), done);
    }

    JobQueue next(&gallery);
    QSignalSpy added(&next, &JobQueue::jobAdded);
    QString error;
    const int expected = runningSeeds.isEmpty() ? 1 : 2;
    QCOMPARE(next.restoreJobs(queueFile, &error), expected);
    QVERIFY(error.isEmpty());
    const QList<Job> jobs = next.jobs();
    QCOMPARE(jobs.size(), expected);
    if (!runningSeeds.isEmpty()) {
        QCOMPARE(jobs.first().seeds, runningSeeds);
        QCOMPARE(jobs.first().params.steps, 60);
    }
    QCOMPARE(jobs.last().seeds, (QList<quint64>{900, 901}));
    QCOMPARE(jobs.last().params.prompt, quickParams().prompt);
    next.cancelAll();
}

void TestJobQueue::damagedQueueFileIsReported() {
    QTemporaryDir out;
    const QString queueFile = out.filePath(QStringLiteral("queue.json"));
    QFile file(queueFile);
    QVERIFY(file.open(QIODevice::WriteOnly));
    file.write("{\"jobs\": [ {\"kind\": ");
    file.close();
    GalleryStore gallery(out.path());
    JobQueue queue(&gallery);
    QString error;
    QCOMPARE(queue.restoreJobs(queueFile, &error), 0);
    QVERIFY2(error.contains(QLatin1String("queue.json")), qPrintable(error));
    QCOMPARE(queue.restoreJobs(out.filePath(QStringLiteral("absent.json")), &error), 0);
}

// issue 13 item 5: queued jobs can be reordered (not the running one); the order is what runs and what is saved.
void TestJobQueue::reorderQueuedJobs() {
    QTemporaryDir out;
    GalleryStore gallery(out.path());
    JobQueue queue(&gallery);
    queue.stop();  // nothing starts: every job stays queued
    const QString saved = out.filePath(QStringLiteral("queue.json"));
    queue.setPersistPath(saved);
    GenerationParams p = quickParams();
    p.seed = 1;
    const qint64 a = queue.enqueue(p);
    p.seed = 2;
    const qint64 b = queue.enqueue(p);
    p.seed = 3;
    const qint64 c = queue.enqueue(p);
    QSignalSpy moved(&queue, &JobQueue::jobMoved);
    const auto order = [&queue]() {
        QList<qint64> ids;
        for (const Job& job : queue.jobs()) ids << job.id;
        return ids;
    };
    QVERIFY(queue.move(c, 0));
    QCOMPARE(order(), (QList<qint64>{c, a, b}));
    QCOMPARE(moved.count(), 1);
    QCOMPARE(moved.at(0).at(1).toInt(), 0);
    QVERIFY(queue.moveDown(c));
    QCOMPARE(order(), (QList<qint64>{a, c, b}));
    QVERIFY(!queue.moveUp(a));    // already first
    QVERIFY(!queue.moveDown(b));  // already last
    QVERIFY(!queue.move(12345, 0));
    QVERIFY(queue.move(b, -7));  // clamped to the front
    QCOMPARE(order(), (QList<qint64>{b, a, c}));

    // The saved queue has the new order (seeds 2, 1, 3).
    JobQueue restored(&gallery);
    restored.stop();
    QCOMPARE(restored.restoreJobs(saved), 3);
    QList<quint64> seeds;
    for (const Job& job : restored.jobs()) seeds << job.seeds.first();
    QCOMPARE(seeds, (QList<quint64>{2, 1, 3}));

    // A finished (here: cancelled) job does not move.
    queue.cancel(a);
    QVERIFY(!queue.move(a, 0));
}

void TestJobQueue::timeLeftFromMeasuredStepTimes() {
    QTemporaryDir out;
    GalleryStore gallery(out.path());
    JobQueue queue(&gallery);
    queue.stop();
    QCOMPARE(queue.secondsLeft(), 0.0);  // nothing to do
    GenerationParams p = quickParams();
    p.modelPath = QStringLiteral("/models/x");
    p.steps = 10;
    p.count = 2;
    queue.enqueue(p);  // 20 steps on x
    p.modelPath = QStringLiteral("/models/y");
    p.steps = 4;
    p.count = 1;
    queue.enqueue(p);  // 4 steps on y
    p.modelPath = QStringLiteral("/models/x");
    p.modelPath2 = QStringLiteral("/models/y");
    p.steps = 5;
    const qint64 pair = queue.enqueueCompare(p);  // 5 steps on x and 5 on y
    QCOMPARE(queue.secondsLeft(), -1.0);          // nothing measured yet
    queue.recordSecondsPerStep(QStringLiteral("/models/x"), 0.5);
    QCOMPARE(queue.secondsPerStep(QStringLiteral("/models/y")), -1.0);
    // y borrows x's 0.5 s: 20 * 0.5 + 4 * 0.5 + 5 * (0.5 + 0.5)
    QCOMPARE(queue.secondsLeft(), 17.0);
    queue.recordSecondsPerStep(QStringLiteral("/models/y"), 2.0);
    QCOMPARE(queue.secondsLeft(), 20 * 0.5 + 4 * 2.0 + 5 * (0.5 + 2.0));
    queue.cancel(pair);  // cancelled work is not counted
    QCOMPARE(queue.secondsLeft(), 18.0);
}

void TestJobQueue::runMeasuresStepTime() {
    QTemporaryDir out;
    GalleryStore gallery(out.path());
    JobQueue queue(&gallery);
    queue.setLoadSettings(
        {QStringLiteral("cpu"), QStringLiteral("fp32"), QStringLiteral("default"), QStringLiteral("auto")});
    const GenerationParams p = quickParams();
    QCOMPARE(queue.secondsPerStep(p.modelPath), -1.0);
    const qint64 id = queue.enqueue(p);
    QVERIFY(queuetest::waitForState(queue, id, Job::State::Done));
    QVERIFY(queue.secondsPerStep(p.modelPath) > 0);
    QCOMPARE(queue.secondsLeft(), 0.0);
}

QTEST_GUILESS_MAIN(TestJobQueue)
#include "tst_jobqueue.moc"
