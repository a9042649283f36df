#include <QtTest>

#include "EngineWorker.h"

// The worker without its thread: runJob() runs synchronously here, so the signal order can be checked exactly.
class TestEngineWorker : public QObject {
    Q_OBJECT

private slots:
    void runsJobAndReportsImages();
    void cancelledBeforeStart();
    void errorMessages();
    void toQImage();

private:
    static Job quickJob(qint64 id);
};

Job TestEngineWorker::quickJob(qint64 id) {
    Job job;
    job.id = id;
    job.params = GenerationParams::defaults();
    job.params.modelPath = QStringLiteral(KOALA_TEST_DATA "/fixtures/tiny-koala-700m");
    job.params.prompt = QStringLiteral("a koala");
    job.params.steps = 2;
    job.params.width = 64;
    job.params.height = 64;
    job.seeds = {5, 9};
    job.load.device = QStringLiteral("cpu");
    return job;
}

void TestEngineWorker::runsJobAndReportsImages() {
    EngineWorker worker;
    QStringList order;
    QList<GalleryItem> items;
    QList<int> indices;
    connect(&worker, &EngineWorker::jobStarted, this, [&](qint64) { order << QStringLiteral("started"); });
    connect(&worker, &EngineWorker::modelLoading, this,
            [&](qint64, const QString&) { order << QStringLiteral("loading"); });
    connect(&worker, &EngineWorker::imageReady, this,
            [&](qint64 id, int index, const QImage& image, const GalleryItem& item) {
                if (id != 7) return;  // later jobs of this test
                QCOMPARE(image.size(), QSize(64, 64));
                indices << index;
                items << item;
                order << QStringLiteral("image");
            });
    connect(&worker, &EngineWorker::jobFinished, this, [&](qint64) { order << QStringLiteral("finished"); });
    QSignalSpy failed(&worker, &EngineWorker::jobFailed);

    worker.runJob(quickJob(7));
    QVERIFY2(failed.isEmpty(), failed.isEmpty() ? "" : qPrintable(failed.first().at(1).toString()));
    QCOMPARE(order, (QStringList{"started", "loading", "image", "image", "finished"}));
    QCOMPARE(indices, (QList<int>{0, 1}));
    QCOMPARE(items.at(0).params.seed, std::optional<quint64>(5));
    QCOMPARE(items.at(1).params.seed, std::optional<quint64>(9));
    QVERIFY(items.at(0).timings.loadSeconds > 0);  // the first image paid for the load
    QCOMPARE(items.at(1).timings.loadSeconds, 0.0);
    QCOMPARE(items.at(0).device, QStringLiteral("cpu"));
    QVERIFY(items.at(0).id.isEmpty());  // storing is the receiver's job
    QCOMPARE(worker.currentJob(), qint64(0));

    // The model stays cached for the next job with the same settings.
    QSignalSpy loading(&worker, &EngineWorker::modelLoading);
    worker.runJob(quickJob(8));
    QCOMPARE(loading.count(), 0);
    worker.releaseModels();
    worker.runJob(quickJob(9));
    QCOMPARE(loading.count(), 1);
}

void TestEngineWorker::cancelledBeforeStart() {
    EngineWorker worker;
    QSignalSpy cancelled(&worker, &EngineWorker::jobCancelled);
    QSignalSpy images(&worker, &EngineWorker::imageReady);
    QSignalSpy started(&worker, &EngineWorker::jobStarted);
    worker.cancel(3);
    worker.runJob(quickJob(3));
    QCOMPARE(cancelled.count(), 1);
    QCOMPARE(images.count(), 0);
    QCOMPARE(started.count(), 0);
    // Cancelling one job leaves the next one alone.
    QSignalSpy finished(&worker, &EngineWorker::jobFinished);
    worker.runJob(quickJob(4));
    QCOMPARE(finished.count(), 1);
    QCOMPARE(images.count(), 2);
    // A cancel that arrives after its job ended is dropped (it used to be kept for ever: one id per late cancel).
    QCOMPARE(worker.pendingCancels(), 0);
    worker.cancel(4);
    QCOMPARE(worker.pendingCancels(), 0);
    worker.cancel(5);  // not begun yet: kept until it starts
    QCOMPARE(worker.pendingCancels(), 1);
    worker.runJob(quickJob(5));
    QCOMPARE(cancelled.count(), 2);
    QCOMPARE(worker.pendingCancels(), 0);
}

void TestEngineWorker::errorMessages() {
    const QString oom = EngineWorker::errorMessage(
        koala::Error(koala::ErrorKind::OutOfMemory, "CUDA out of memory.\nTried to allocate 2 GiB"),
        QStringLiteral("Generating image 1 of 1"));
    QVERIFY(oom.startsWith(QLatin1String("Generating image 1 of 1: Out of memory")));
    QVERIFY(oom.contains(QLatin1String("low")));
    QVERIFY(!oom.contains(QLatin1Char('\n')));
    const QString format = EngineWorker::errorMessage(
        koala::Error(koala::ErrorKind::ModelFormat, "missing tensor conv_in.weight in /m/unet/x.safetensors"));
    QCOMPARE(format, QStringLiteral("missing tensor conv_in.weight in /m/unet/x.safetensors"));
}

void TestEngineWorker::toQImage() {
    koala::Image image;
    image.width = 2;
    image.height = 1;
    image.rgb = {255, 0, 0, 0, 0, 255};
    const QImage q = EngineWorker::toQImage(image);
    QCOMPARE(q.size(), QSize(2, 1));
    QCOMPARE(q.pixelColor(0, 0), QColor(255, 0, 0));
    QCOMPARE(q.pixelColor(1, 0), QColor(0, 0, 255));
    image.rgb.resize(3);  // too short: no image rather than a read past the end
    QVERIFY(EngineWorker::toQImage(image).isNull());
}

QTEST_GUILESS_MAIN(TestEngineWorker)
#include "tst_engineworker.moc"
