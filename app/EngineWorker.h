#pragma once

#include <deque>
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
#include "Job.h"

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
    // Cancels kept for jobs that have not started on this worker yet. Thread-safe. A cancel that arrives after its
    // job ended (the job finished while the request was on its way) is dropped, not kept forever.
    int pendingCancels() const;

    // Maps an engine error to one line for the user (out of memory gets advice).
    static QString errorMessage(const koala::Error& error, const QString& context = {});
    // RGB8 engine image to QImage (deep copy).
    static QImage toQImage(const koala::Image& image);

public slots:
    void runJob(const Job& job);
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
    struct LoadedModels {
        std::shared_ptr<koala::Model> a;
        std::shared_ptr<koala::Model> b;  // Compare only
        double loadSecondsA = 0;          // 0 when the model was cached
        double loadSecondsB = 0;
    };

    // Makes `jobId` the current job; false (and jobCancelled) when it was cancelled before it started.
    bool beginJob(qint64 jobId);
    // Throws koala::Error(InvalidArgument) when the job cannot be run.
    static void checkJob(const Job& job);
    // Loads (or takes from the cache) the job's models; drops every other cached model first.
    LoadedModels loadModels(const Job& job, QString& stage);
    // Generates image (seedIndex, slot) of the job and emits imageReady. `lastStepSeconds` carries the previous
    // image's seconds per step into the time-left estimate.
    void generateImage(const Job& job, const LoadedModels& models, int seedIndex, int slot, double& lastStepSeconds);
    // The gallery record of a finished image (id and path empty: the receiver stores it).
    static GalleryItem describeImage(const Job& job, const koala::Model& model, const koala::GenerateResult& result,
                                     int seedIndex, int slot);
    static std::string cacheKey(const QString& path, const EngineLoadSettings& load, const std::string& sharedWithKey);
    std::shared_ptr<koala::Model> model(qint64 jobId, const std::string& key, const QString& path,
                                        const EngineLoadSettings& load, const std::shared_ptr<koala::Model>& shareWith,
                                        double* loadSeconds);
    bool takeCancelled(qint64 jobId);

    koala::CancelToken m_cancel;
    std::atomic<qint64> m_currentJob{0};
    mutable std::mutex m_mutex;
    std::set<qint64> m_cancelledJobs;  // cancelled before they started
    std::deque<qint64> m_recentJobs;   // the last jobs begun here (bounded): a late cancel for one of them is dropped
    std::map<std::string, std::shared_ptr<koala::Model>> m_models;
};
