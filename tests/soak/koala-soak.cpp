// koala-soak (issue 14.4): pushes N tiny images through the real JobQueue + EngineWorker + GalleryStore, cancelling
// every K-th job at its first step, and prints the process's resident memory (VmRSS) at the start, after every 50
// jobs and at the end, with the done/cancelled/failed counts. Exit status 1 when a job failed, a job went missing, or
// the growth after warm-up exceeds --max-growth-mb. Figures: docs/hardening.md.
//
//   koala-soak [--count 500] [--cancel-every 7] [--steps 4] [--size 64] [--model DIR] [--max-growth-mb MB]
//              [--report-every 50] [--warmup 50]
#include <QCommandLineParser>
#include <QCoreApplication>
#include <QDateTime>
#include <QElapsedTimer>
#include <QFile>
#include <QTemporaryDir>
#include <QTimer>

#include <cstdio>

#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
#include <malloc.h>
#define KOALA_SOAK_MALLINFO 1
#endif

#include "GalleryStore.h"
#include "JobQueue.h"

namespace {

// VmRSS in MiB from /proc/self/status (-1 where there is none).
double residentMiB() {
    QFile status(QStringLiteral("/proc/self/status"));
    if (!status.open(QIODevice::ReadOnly)) return -1;
    for (const QByteArray& line : status.readAll().split('\n'))
        if (line.startsWith("VmRSS:")) return line.mid(6).trimmed().split(' ').first().toDouble() / 1024.0;
    return -1;
}

// Bytes malloc has handed out and not got back, in MiB (-1 where glibc's mallinfo2 is missing). Unlike VmRSS it
// does not count freed memory malloc keeps, so it tells a leak from fragmentation.
double heapInUseMiB() {
#ifdef KOALA_SOAK_MALLINFO
    const struct mallinfo2 m = mallinfo2();
    return double(m.uordblks + m.hblkhd) / (1024.0 * 1024.0);
#else
    return -1;
#endif
}

}  // namespace

int main(int argc, char** argv) {
    QCoreApplication app(argc, argv);
    QCommandLineParser parser;
    parser.setApplicationDescription(QStringLiteral("Soak run of the job queue with the tiny fixture model."));
    parser.addHelpOption();
    auto option = [&](const char* name, const char* help, const char* def) {
        QCommandLineOption o(QString::fromLatin1(name), QString::fromLatin1(help), QStringLiteral("value"),
                             QString::fromLatin1(def));
        parser.addOption(o);
        return o;
    };
    const auto countOpt = option("count", "images (one job each)", "500");
    const auto cancelOpt = option("cancel-every", "cancel every K-th job at its first step (0: never)", "7");
    const auto stepsOpt = option("steps", "denoising steps per image", "4");
    const auto sizeOpt = option("size", "image width and height", "64");
    const auto modelOpt = option("model", "model folder", KOALA_SOAK_MODEL);
    const auto growthOpt = option("max-growth-mb", "fail when RSS grows more after warm-up (0: no check)", "0");
    const auto reportOpt = option("report-every", "print RSS every N finished jobs", "50");
    const auto warmupOpt = option("warmup", "jobs before the growth baseline is taken", "50");
    parser.process(app);

    const int count = parser.value(countOpt).toInt();
    const int cancelEvery = parser.value(cancelOpt).toInt();
    const int reportEvery = qMax(1, parser.value(reportOpt).toInt());
    const int warmup = qMin(parser.value(warmupOpt).toInt(), count);
    const double maxGrowth = parser.value(growthOpt).toDouble();
    if (count <= 0) {
        std::fprintf(stderr, "koala-soak: --count must be positive\n");
        return 2;
    }

    QTemporaryDir out;  // the PNGs (removed at exit)
    if (!out.isValid()) {
        std::fprintf(stderr, "koala-soak: cannot create a temporary folder\n");
        return 2;
    }
    GalleryStore gallery(out.path());
    JobQueue queue(&gallery);
    queue.setLoadSettings(
        {QStringLiteral("cpu"), QStringLiteral("fp32"), QStringLiteral("default"), QStringLiteral("auto")});

    GenerationParams params = GenerationParams::defaults();
    params.modelPath = parser.value(modelOpt);
    params.prompt = QStringLiteral("a koala climbing a eucalyptus tree, watercolor");
    params.steps = parser.value(stepsOpt).toInt();
    params.width = params.height = parser.value(sizeOpt).toInt();
    params.count = 1;

    const double startRss = residentMiB();
    double warmRss = startRss;
    double peakRss = startRss;
    std::printf("koala-soak: %d images of %dx%d, %d steps, cancel every %d, model %s\n", count, params.width,
                params.height, params.steps, cancelEvery, qPrintable(params.modelPath));
    const double startHeap = heapInUseMiB();
    double warmHeap = startHeap;
    std::printf("%-8s %6s %9s %6s %10s %10s %8s\n", "jobs", "done", "cancelled", "failed", "rss_mib", "heap_mib",
                "seconds");
    std::printf("%-8d %6d %9d %6d %10.1f %10.1f %8.1f\n", 0, 0, 0, 0, startRss, startHeap, 0.0);
    std::fflush(stdout);

    int done = 0, cancelled = 0, failed = 0, images = 0;
    QHash<qint64, int> indexOf;  // job id -> 1-based position
    QSet<qint64> toCancel;
    QElapsedTimer timer;
    timer.start();

    auto finished = [&]() {
        const int n = done + cancelled + failed;
        const double rss = residentMiB();
        peakRss = qMax(peakRss, rss);
        if (n == warmup) {
            warmRss = rss;
            warmHeap = heapInUseMiB();
        }
        if (n % reportEvery == 0 || n == count) {
            std::printf("%-8d %6d %9d %6d %10.1f %10.1f %8.1f\n", n, done, cancelled, failed, rss, heapInUseMiB(),
                        timer.elapsed() / 1000.0);
            std::fflush(stdout);
            queue.clearFinished();  // as the user does; the gallery keeps its items
        }
        if (n == count) QTimer::singleShot(0, &app, &QCoreApplication::quit);
    };
    QObject::connect(&queue, &JobQueue::jobProgress, &app, [&](qint64 id, int step, int, double, double) {
        if (step >= 1 && toCancel.remove(id)) queue.cancel(id);
    });
    QObject::connect(&queue, &JobQueue::imageReady, &app, [&](qint64, const GalleryItem&) { ++images; });
    QObject::connect(&queue, &JobQueue::saveFailed, &app,
                     [&](qint64, const QImage&, const GalleryItem&, const QString& message) {
                         std::fprintf(stderr, "save failed: %s\n", qPrintable(message));
                     });
    QObject::connect(&queue, &JobQueue::jobFinished, &app, [&](qint64) {
        ++done;
        finished();
    });
    QObject::connect(&queue, &JobQueue::jobCancelled, &app, [&](qint64) {
        ++cancelled;
        finished();
    });
    QObject::connect(&queue, &JobQueue::jobFailed, &app, [&](qint64 id, const QString& message) {
        ++failed;
        std::fprintf(stderr, "job %d failed: %s\n", indexOf.value(id), qPrintable(message));
        finished();
    });

    for (int i = 1; i <= count; ++i) {
        params.seed = quint64(1000 + i);
        const qint64 id = queue.enqueue(params);
        indexOf.insert(id, i);
        if (cancelEvery > 0 && i % cancelEvery == 0) toCancel.insert(id);
    }
    app.exec();

    const double endRss = residentMiB();
    const double seconds = timer.elapsed() / 1000.0;
    std::printf("koala-soak: %s, %d jobs in %.1f s (%.2f s/job): %d done, %d cancelled, %d failed, %d images stored\n",
                qPrintable(QDateTime::currentDateTimeUtc().toString(Qt::ISODate)), count, seconds, seconds / count,
                done, cancelled, failed, images);
    std::printf(
        "koala-soak: VmRSS start %.1f MiB, after %d jobs (warm) %.1f MiB, end %.1f MiB, peak %.1f MiB; "
        "growth after warm-up %.1f MiB\n",
        startRss, warmup, warmRss, endRss, peakRss, endRss - warmRss);
    const double endHeap = heapInUseMiB();
    std::printf(
        "koala-soak: heap in use start %.1f MiB, warm %.1f MiB, end %.1f MiB; growth after warm-up %.1f MiB "
        "(%.1f KiB per job)\n",
        startHeap, warmHeap, endHeap, endHeap - warmHeap,
        count > warmup ? (endHeap - warmHeap) * 1024.0 / (count - warmup) : 0.0);
    bool ok = failed == 0 && done + cancelled == count && images == done;
    if (!ok) std::printf("koala-soak: FAILED: failed jobs or missing images\n");
    if (maxGrowth > 0 && endRss - warmRss > maxGrowth) {
        std::printf("koala-soak: FAILED: growth %.1f MiB after warm-up is above the bound %.1f MiB\n", endRss - warmRss,
                    maxGrowth);
        ok = false;
    }
    return ok ? 0 : 1;
}
