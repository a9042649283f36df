#include <QtTest>

#include <QProcess>
#include <QStandardPaths>

#include "EngineWorker.h"
#include "GalleryStore.h"
#include "JobQueue.h"
#include "PngMetadata.h"
#include "queue_test_util.h"

#include <sys/resource.h>
#include <unistd.h>

// issue 14.3: faults that lose nothing. Out of memory in a generation, a model file cut short while it is loaded,
// the output folder vanishing mid-queue and the disk filling while PNGs are written. Real engine, tiny fixture model
// on the CPU (docs/hardening.md).
class TestFaults : public QObject {
    Q_OBJECT

private slots:
    void initTestCase();
    void cleanup();
    void outOfMemoryIsReportedAndNextJobRuns_data();
    void outOfMemoryIsReportedAndNextJobRuns();
    void realMemoryLimitIsReported();
    void modelTruncatedWhileLoaded();
    void outputFolderVanishesMidQueue();
    void outputFolderReplacedMidQueueKeepsImagesInRecovery();
    void diskFullKeepsEveryImage();

private:
    static QString fixture() { return queuetest::fixture(); }
    static GenerationParams quickParams(int count = 1) {
        return queuetest::quickParams(QStringLiteral("a koala in the rain"), 300, 2, count);
    }
    static Job quickJob(qint64 id, const QString& model);
    static bool copyFolder(const QString& from, const QString& to);
    static void useCpu(JobQueue& queue) {
        queue.setLoadSettings(
            {QStringLiteral("cpu"), QStringLiteral("fp32"), QStringLiteral("default"), QStringLiteral("auto")});
    }
};

Job TestFaults::quickJob(qint64 id, const QString& model) {
    Job job;
    job.id = id;
    job.params = quickParams();
    job.params.modelPath = model;
    job.seeds = {11};
    job.load.device = QStringLiteral("cpu");
    job.load.precision = QStringLiteral("fp32");
    return job;
}

bool TestFaults::copyFolder(const QString& from, const QString& to) {
    QDir src(from);
    if (!QDir().mkpath(to)) return false;
    for (const QFileInfo& fi : src.entryInfoList(QDir::Files | QDir::Dirs | QDir::NoDotAndDotDot)) {
        const QString target = to + QLatin1Char('/') + fi.fileName();
        if (fi.isDir() ? !copyFolder(fi.filePath(), target) : !QFile::copy(fi.filePath(), target)) return false;
    }
    return true;
}

void TestFaults::initTestCase() {
    QStandardPaths::setTestModeEnabled(true);  // recovery folders go to the test locations, not the user's
    QVERIFY(QFileInfo::exists(fixture() + QStringLiteral("/model_index.json")));
}

void TestFaults::cleanup() { qunsetenv("KOALA_TEST_FAULT"); }

// An allocation that fails in the middle of a generation (injected where LibTorch would throw it) fails that job
// with advice, and the next job in the queue runs and stores its image.
void TestFaults::outOfMemoryIsReportedAndNextJobRuns_data() {
    QTest::addColumn<QString>("fault");
    QTest::addColumn<QString>("detail");
    QTest::newRow("CUDA allocator") << QStringLiteral("oom-gpu:generating") << QStringLiteral("CUDA out of memory");
    QTest::newRow("CPU allocator") << QStringLiteral("oom-cpu:generating") << QStringLiteral("out of host memory");
    QTest::newRow("operator new") << QStringLiteral("bad-alloc:generating") << QStringLiteral("out of host memory");
}

void TestFaults::outOfMemoryIsReportedAndNextJobRuns() {
    QFETCH(QString, fault);
    QFETCH(QString, detail);
    qputenv("KOALA_TEST_FAULT", fault.toUtf8());
    QTemporaryDir out;
    GalleryStore gallery(out.path());
    JobQueue queue(&gallery);
    useCpu(queue);
    QSignalSpy failed(&queue, &JobQueue::jobFailed);
    const qint64 first = queue.enqueue(quickParams());
    const qint64 second = queue.enqueue(quickParams());
    QVERIFY(queuetest::waitIdle(queue));

    QCOMPARE(queue.job(first)->state, Job::State::Failed);
    QCOMPARE(failed.count(), 1);
    const QString message = failed.first().at(1).toString();
    QVERIFY2(message.startsWith(QStringLiteral("Generating image 1 of 1: Out of memory")), qPrintable(message));
    QVERIFY2(message.contains(detail), qPrintable(message));
    for (const char* advice : {"smaller image size", "fewer images", "fp16"})
        QVERIFY2(message.contains(QLatin1String(advice)), qPrintable(message));

    QCOMPARE(queue.job(second)->state, Job::State::Done);
    QCOMPARE(gallery.items().size(), 1);
    QCOMPARE(gallery.items().first().params.seed, std::optional<quint64>(300));
}

// A request the process's address-space limit cannot hold: LibTorch's own allocator fails (no injection). The job
// fails with the out-of-memory advice and the next one runs. Skipped under sanitizers (they reserve terabytes of
// address space, so any limit is already exceeded).
void TestFaults::realMemoryLimitIsReported() {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    QSKIP("RLIMIT_AS cannot be used under AddressSanitizer/ThreadSanitizer");
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
    QSKIP("RLIMIT_AS cannot be used under AddressSanitizer/ThreadSanitizer");
#endif
#endif
    QTemporaryDir out;
    GalleryStore gallery(out.path());
    JobQueue queue(&gallery);
    useCpu(queue);
    // Load the model and warm up the threads before the limit goes on.
    const qint64 warm = queue.enqueue(quickParams());
    QVERIFY(queuetest::waitIdle(queue));
    QCOMPARE(queue.job(warm)->state, Job::State::Done);

    QFile status(QStringLiteral("/proc/self/status"));
    QVERIFY(status.open(QIODevice::ReadOnly));
    qint64 vmKiB = 0;
    for (const QByteArray& line : status.readAll().split('\n'))
        if (line.startsWith("VmSize:")) vmKiB = line.mid(7).trimmed().split(' ').first().toLongLong();
    QVERIFY(vmKiB > 0);
    rlimit old{};
    QCOMPARE(getrlimit(RLIMIT_AS, &old), 0);
    rlimit limited = old;
    limited.rlim_cur = rlim_t(vmKiB + 1024 * 1024) * 1024;  // 1 GiB above what the process has mapped now
    if (old.rlim_cur != RLIM_INFINITY && old.rlim_cur < limited.rlim_cur) limited.rlim_cur = old.rlim_cur;
    QCOMPARE(setrlimit(RLIMIT_AS, &limited), 0);

    // 2048x2048: the VAE's attention over 256x256 latents alone wants 16 GiB.
    GenerationParams big = quickParams();
    big.width = 2048;
    big.height = 2048;
    big.steps = 1;
    QSignalSpy failed(&queue, &JobQueue::jobFailed);
    const qint64 huge = queue.enqueue(big);
    const qint64 after = queue.enqueue(quickParams());
    const bool idle = queuetest::waitIdle(queue, 600000);
    QCOMPARE(setrlimit(RLIMIT_AS, &old), 0);  // before any check can return early
    QVERIFY(idle);

    QCOMPARE(queue.job(huge)->state, Job::State::Failed);
    const QString message = failed.first().at(1).toString();
    QVERIFY2(message.contains(QStringLiteral("Out of memory")), qPrintable(message));
    QVERIFY2(message.contains(QStringLiteral("smaller image size")), qPrintable(message));
    QCOMPARE(queue.job(after)->state, Job::State::Done);
    QCOMPARE(gallery.items().size(), 2);
}

// The model's weights are copied out of the file mapping at load: a file truncated (or rewritten in place) while the
// model is loaded cannot crash a later generation. Loading the truncated file fails with a message naming it; the
// restored file loads again.
void TestFaults::modelTruncatedWhileLoaded() {
    QTemporaryDir tmp;
    const QString model = tmp.filePath(QStringLiteral("model"));
    QVERIFY(copyFolder(fixture(), model));
    const QString unet = model + QStringLiteral("/unet/diffusion_pytorch_model.safetensors");
    QVERIFY(QFileInfo::exists(unet));

    EngineWorker worker;
    QList<QImage> images;
    connect(&worker, &EngineWorker::imageReady, this,
            [&](qint64, int, const QImage& image, const GalleryItem&) { images << image; });
    QSignalSpy failed(&worker, &EngineWorker::jobFailed);
    QSignalSpy finished(&worker, &EngineWorker::jobFinished);

    worker.runJob(quickJob(1, model));
    QCOMPARE(finished.count(), 1);
    QVERIFY(QFile::resize(unet, 4096));  // cut short in place, as an interrupted copy over it would
    worker.runJob(quickJob(2, model));   // the cached model: same image, no crash
    QCOMPARE(finished.count(), 2);
    QCOMPARE(images.size(), 2);
    QVERIFY(images.at(0) == images.at(1));

    worker.releaseModels();
    worker.runJob(quickJob(3, model));  // loads again from the truncated file
    QCOMPARE(failed.count(), 1);
    const QString message = failed.first().at(1).toString();
    QVERIFY2(message.contains(unet), qPrintable(message));
    QVERIFY2(message.contains(QStringLiteral("truncated")), qPrintable(message));

    QVERIFY(QFile::remove(unet));
    QVERIFY(QFile::copy(fixture() + QStringLiteral("/unet/diffusion_pytorch_model.safetensors"), unet));
    worker.runJob(quickJob(4, model));
    QCOMPARE(finished.count(), 3);
    QVERIFY(images.last() == images.first());
}

// The output folder is deleted while the queue runs (cleaned up by hand, a script): it is created again and every
// image lands in it.
void TestFaults::outputFolderVanishesMidQueue() {
    QTemporaryDir tmp;
    const QString folder = tmp.filePath(QStringLiteral("out/images"));
    GalleryStore gallery(folder);
    JobQueue queue(&gallery);
    useCpu(queue);
    int stored = 0;
    connect(&queue, &JobQueue::imageReady, this, [&](qint64, const GalleryItem& item) {
        QVERIFY(QFileInfo::exists(item.path));
        if (++stored == 1) QVERIFY(QDir(tmp.filePath(QStringLiteral("out"))).removeRecursively());
    });
    QSignalSpy saveFailed(&queue, &JobQueue::saveFailed);
    queue.enqueue(quickParams(3));
    queue.enqueue(quickParams(1));
    QVERIFY(queuetest::waitIdle(queue));
    QCOMPARE(saveFailed.count(), 0);
    QCOMPARE(stored, 4);
    QCOMPARE(QDir(folder).entryList({QStringLiteral("*.png")}, QDir::Files).size(), 3);  // the first went with it
}

// The output folder vanishes and cannot be created again (an unplugged drive leaves a file or a dead mount in its
// place): every later image is kept in the recovery folder and the message says where.
void TestFaults::outputFolderReplacedMidQueueKeepsImagesInRecovery() {
    QTemporaryDir tmp;
    const QString folder = tmp.filePath(QStringLiteral("drive"));
    GalleryStore gallery(folder);
    JobQueue queue(&gallery);
    useCpu(queue);
    int stored = 0;
    connect(&queue, &JobQueue::imageReady, this, [&](qint64, const GalleryItem&) {
        if (++stored != 1) return;
        QVERIFY(QDir(folder).removeRecursively());
        QFile blocker(folder);
        QVERIFY(blocker.open(QIODevice::WriteOnly));
    });
    QStringList kept;
    QList<quint64> keptSeeds;
    connect(&queue, &JobQueue::saveFailed, this,
            [&](qint64, const QImage& image, const GalleryItem& item, const QString& message) {
                QVERIFY(!image.isNull());
                const int at = message.indexOf(QStringLiteral("kept in "));
                QVERIFY2(at >= 0, qPrintable(message));
                QVERIFY2(message.contains(folder), qPrintable(message));  // which folder failed
                kept << message.mid(at + 8);
                keptSeeds << item.params.seed.value_or(0);
            });
    queue.enqueue(quickParams(3));
    QVERIFY(queuetest::waitIdle(queue));
    QCOMPARE(stored, 1);
    QCOMPARE(kept.size(), 2);
    for (int i = 0; i < kept.size(); ++i) {
        QVERIFY2(QFileInfo::exists(kept.at(i)), qPrintable(kept.at(i)));
        QCOMPARE(PngMetadata::readParams(kept.at(i))->seed, std::optional<quint64>(keptSeeds.at(i)));
        QVERIFY(!kept.at(i).startsWith(tmp.path()));
        QFile::remove(kept.at(i));
    }
    QCOMPARE(keptSeeds, (QList<quint64>{301, 302}));
}

// The disk fills while PNGs are written: a 16 KiB tmpfs as the output folder takes a few 64x64 images, then writes
// fail; every image is either in the output folder or kept in the recovery folder, and each failure says where.
// Needs root (mount); skipped otherwise.
void TestFaults::diskFullKeepsEveryImage() {
    QTemporaryDir tmp;
    const QString folder = tmp.filePath(QStringLiteral("small-disk"));
    QVERIFY(QDir().mkpath(folder));
    if (geteuid() != 0) QSKIP("mounting a small tmpfs needs root; the disk-full case is not tested here");
    QProcess mount;
    mount.start(QStringLiteral("mount"), {QStringLiteral("-t"), QStringLiteral("tmpfs"), QStringLiteral("-o"),
                                          QStringLiteral("size=16k"), QStringLiteral("tmpfs"), folder});
    if (!mount.waitForFinished(30000) || mount.exitStatus() != QProcess::NormalExit || mount.exitCode() != 0)
        QSKIP(qPrintable(QStringLiteral("cannot mount a tmpfs here (%1); the disk-full case is not tested")
                             .arg(QString::fromLocal8Bit(mount.readAllStandardError()).trimmed())));
    struct Unmount {
        QString dir;
        ~Unmount() { QProcess::execute(QStringLiteral("umount"), {dir}); }
    } unmount{folder};

    const int count = 8;
    QList<quint64> storedSeeds;
    QList<quint64> keptSeeds;
    {
        GalleryStore gallery(folder);
        JobQueue queue(&gallery);
        useCpu(queue);
        connect(&queue, &JobQueue::imageReady, this, [&](qint64, const GalleryItem& item) {
            QVERIFY(QFileInfo::exists(item.path));
            storedSeeds << item.params.seed.value_or(0);
        });
        connect(&queue, &JobQueue::saveFailed, this,
                [&](qint64, const QImage&, const GalleryItem& item, const QString& message) {
                    const int at = message.indexOf(QStringLiteral("kept in "));
                    QVERIFY2(at >= 0, qPrintable(message));
                    const QString kept = message.mid(at + 8);
                    QVERIFY2(QFileInfo::exists(kept), qPrintable(kept));
                    QCOMPARE(PngMetadata::readParams(kept)->seed, item.params.seed);
                    keptSeeds << item.params.seed.value_or(0);
                    QFile::remove(kept);
                });
        queue.enqueue(quickParams(count));
        QVERIFY(queuetest::waitIdle(queue));
    }
    qInfo("disk full: %lld image(s) stored on the 16 KiB tmpfs, %lld kept in the recovery folder",
          qint64(storedSeeds.size()), qint64(keptSeeds.size()));
    QVERIFY(!keptSeeds.isEmpty());  // the disk did fill
    QList<quint64> all = storedSeeds + keptSeeds;
    std::sort(all.begin(), all.end());
    QList<quint64> expected;
    for (int i = 0; i < count; ++i) expected << quint64(300 + i);
    QCOMPARE(all, expected);  // nothing lost, nothing twice
    // What the output folder lists is complete: no half-written PNGs are left behind.
    for (const QString& name : QDir(folder).entryList({QStringLiteral("*.png")}, QDir::Files))
        QVERIFY2(PngMetadata::readParams(QDir(folder).filePath(name)).has_value(), qPrintable(name));
}

QTEST_GUILESS_MAIN(TestFaults)
#include "tst_faults.moc"
