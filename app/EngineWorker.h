#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <set>

#include <QImage>
#include <QList>
#include <QMetaType>
#include <QObject>
#include <QString>

#include <koala/engine.h>

#include "GalleryItem.h"
#include "GenerationParams.h"

// Engine settings for loading a model; the same strings as AppSettings.
struct EngineLoadSettings {
    QString device = QStringLiteral("auto");       // auto, cpu, cuda
    QString precision = QStringLiteral("auto");    // auto, fp32, fp16, bf16
    QString memoryMode = QStringLiteral("default");// default, low
    QString variant = QStringLiteral("auto");      // auto (fp16 files when only those exist), "" (plain), "fp16"
};

// One unit of work for the worker. Seeds are resolved by the caller so the queue can show them before the run.
struct EngineJob {
    enum class Kind { Single, Compare };
    qint64 id = 0;
    Kind kind = Kind::Single;
    GenerationParams params;   // params.modelPath is model A; params.count is ignored in favour of seeds
    QString modelA;            // empty = params.modelPath
    QString modelB;            // Compare only; empty = params.modelPath2
    QList<qint64> seeds;       // one image (Single) or one pair (Compare) per seed
    QString compareGroupBase;  // Compare: groups are "<base>-<seed index>"; empty = derived from the job id
    EngineLoadSettings load;
};

// Runs engine jobs on its own thread (JobQueue moves it onto an owned QThread).
//
// Threading: runJob() is a slot invoked through a queued connection; it runs the whole job and so blocks this
// object's event loop until it returns. That is why cancel() is a plain thread-safe method (an atomic
// koala::CancelToken plus a mutex-guarded set of job ids), not a slot: a queued cancel would arrive after the job.
// Signals are emitted on the worker thread; connect them normally and Qt queues them to the receiver's thread.
//
// Models are cached by path + device + dtype + variant + memory mode. A job keeps only the models it needs loaded
// (SDXL-size UNets do not fit twice in most GPUs); a compare loads model B with shareWith = model A so the text
// encoders and VAE are held once.
class EngineWorker : public QObject {
    Q_OBJECT

public:
    explicit EngineWorker(QObject* parent = nullptr);
    ~EngineWorker() override;

    // Thread-safe. Cancels job `jobId` whether it is running or not yet started on this worker.
    void cancel(qint64 jobId);
    // Thread-safe. Cancels whatever job is running now.
    void cancelCurrent();
    // The job currently running, 0 when idle. Thread-safe.
    qint64 currentJob() const { return m_currentJob.load(); }

    // Maps an engine error to one line for the user (out of memory gets advice).
    static QString errorMessage(const koala::Error& error, const QString& context = {});
    // RGB8 engine image to QImage (deep copy).
    static QImage toQImage(const koala::Image& image);

public slots:
    void runJob(const EngineJob& job);
    // Drops all cached models (e.g. after the device setting changed). Call it queued, between jobs.
    void releaseModels();

signals:
    void jobStarted(qint64 jobId);
    // A model is being loaded (it can take a while); `path` is the folder.
    void modelLoading(qint64 jobId, const QString& path);
    void modelLoaded(qint64 jobId, const QString& path, double seconds, bool sharesTextEncoders);
    // Denoising progress of the current image. secondsLeft covers the remaining images of the job as well.
    void progress(qint64 jobId, int step, int total, double itPerSec, double secondsLeft);
    // imageIndex: Single: 0..n-1; Compare: 2*seedIndex + slot (slot 0 = model A, 1 = model B).
    void preview(qint64 jobId, int imageIndex, const QImage& image);
    // A finished image with its metadata (id and path empty: the receiver stores it).
    void imageReady(qint64 jobId, int imageIndex, const QImage& image, const GalleryItem& item);
    void jobFinished(qint64 jobId);
    void jobFailed(qint64 jobId, const QString& message);
    void jobCancelled(qint64 jobId);

private:
    static std::string cacheKey(const QString& path, const EngineLoadSettings& load, const std::string& sharedWithKey);
    std::shared_ptr<koala::Model> model(qint64 jobId, const std::string& key, const QString& path,
                                        const EngineLoadSettings& load, const std::shared_ptr<koala::Model>& shareWith,
                                        double* loadSeconds);
    bool takeCancelled(qint64 jobId);

    koala::CancelToken m_cancel;
    std::atomic<qint64> m_currentJob{0};
    mutable std::mutex m_mutex;
    std::set<qint64> m_cancelledJobs;  // cancelled before they started
    std::map<std::string, std::shared_ptr<koala::Model>> m_models;
};

Q_DECLARE_METATYPE(EngineJob)
