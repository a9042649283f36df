#pragma once

#include <memory>
#include <optional>

#include <QHash>
#include <QImage>
#include <QList>
#include <QMetaType>
#include <QObject>
#include <QString>

#include "EngineWorker.h"
#include "GalleryItem.h"
#include "GenerationParams.h"
#include "Job.h"

class GalleryStore;
class QThread;

// The generation queue. Lives on the GUI thread and owns the worker thread (destructor: cancel, quit, wait).
// Jobs wait here and go to the worker one at a time, so queued jobs can be removed without touching the worker.
// Every finished image is stored in the GalleryStore before any signal announces it, so a crash or a closed window
// never loses a finished image.
//
// With a persist path, the unfinished work (queued jobs and the rest of the running one) is written there, atomically,
// whenever it changes, so the next start can restore it (restoreJobs) after a close or a crash.
class JobQueue : public QObject {
    Q_OBJECT

public:
    // `gallery` must outlive the queue.
    explicit JobQueue(GalleryStore* gallery, QObject* parent = nullptr);
    ~JobQueue() override;

    // Where the unfinished work is kept (see above); empty = nowhere. Writes it at once.
    void setPersistPath(const QString& path);
    QString persistPath() const { return m_persistPath; }
    // Queues the jobs kept in `path` by an earlier run (new ids, same seeds); returns how many. A damaged file
    // yields 0 and *error.
    int restoreJobs(const QString& path, QString* error = nullptr);
    // The work not done yet, as jobs that would redo exactly it: queued jobs, and the remaining seeds of the running
    // (or, after stop(), the interrupted) job. A compare pair that was half done is redone whole.
    QList<Job> unfinishedJobs() const;
    // Stops the worker for good: cancels the running job (its remaining seeds stay unfinished work), waits for the
    // thread and stores the images it still delivered. Queued jobs stay queued and nothing else starts. Idempotent;
    // the destructor calls it.
    void stop();

    // Settings for the following jobs' model loads.
    void setLoadSettings(const EngineLoadSettings& settings);
    EngineLoadSettings loadSettings() const { return m_load; }

    // params.count images with seeds seed, seed+1, ... (or a random seed each when there is no seed), on
    // params.modelPath. Returns the job id.
    qint64 enqueue(const GenerationParams& params);
    // The same request on params.modelPath and params.modelPath2, each image with its own timings, stored as pairs
    // (same compareGroup).
    qint64 enqueueCompare(const GenerationParams& params);
    // A job as it is (kind, params, seeds), e.g. one of unfinishedJobs() restored. Returns the new id.
    qint64 enqueueJob(const Job& job);

    // Removes a queued (or finished) job; false for the running one (cancel it) or an unknown id.
    bool remove(qint64 id);
    void cancel(qint64 id);
    void cancelCurrent();
    // Cancels the running job and drops all queued ones.
    void cancelAll();
    // Forgets Done/Failed/Cancelled jobs.
    void clearFinished();
    // Moves a queued job to position `index` of jobs() (clamped), so it runs in that order; false for an unknown id,
    // a job that is not queued, or no change. Saved at once (the persisted queue keeps the order).
    bool move(qint64 id, int index);
    // One place towards the front / the back.
    bool moveUp(qint64 id);
    bool moveDown(qint64 id);

    // ---- time left, from measured step times: seconds per step, per model, the latest a run reported (model
    // loading is not counted). The whole queue: the rest of the running image, the running job's other images and
    // every queued job's steps. A model not measured yet borrows the mean of the measured ones; -1 when nothing has
    // been measured (or nothing is left: 0).
    double secondsLeft() const;
    double secondsPerStep(const QString& modelPath) const;  // -1 when not measured
    void recordSecondsPerStep(const QString& modelPath, double seconds);
    // Drops the worker's cached models (applies after the running job).
    void releaseModels();

    QList<Job> jobs() const;
    std::optional<Job> job(qint64 id) const;
    qint64 currentJobId() const { return m_running; }
    bool isBusy() const { return m_running != 0; }
    int pendingCount() const;

signals:
    void jobAdded(qint64 id);
    void jobRemoved(qint64 id);
    // A queued job moved to position `index` of jobs().
    void jobMoved(qint64 id, int index);
    void jobStateChanged(qint64 id, Job::State state);
    void jobProgress(qint64 id, int step, int total, double itPerSec, double secondsLeft);
    void jobPreview(qint64 id, int imageIndex, const QImage& image);
    void modelLoading(qint64 id, const QString& path);
    // sharesTextEncoders: the model took its text encoders and VAE from the other model of a compare.
    void modelLoaded(qint64 id, const QString& path, double seconds, bool sharesTextEncoders);
    // Emitted after the image is stored in the gallery. imageIndex: which image of the job (0 .. count - 1), as in
    // jobPreview; last so that slots taking (jobId, item) still connect.
    void imageReady(qint64 jobId, const GalleryItem& item, int imageIndex);
    // Both images of a compare pair are stored.
    void compareReady(const QString& groupId, const GalleryItem& itemA, const GalleryItem& itemB);
    // The image could not be stored (disk full, folder not writable): the UI should offer "Save as".
    void saveFailed(qint64 jobId, const QImage& image, const GalleryItem& item, const QString& message);
    void jobFinished(qint64 id);
    void jobFailed(qint64 id, const QString& message);
    void jobCancelled(qint64 id);
    // No job running and none queued.
    void idle();

private:
    qint64 add(Job job);
    void startNext();
    void finish(qint64 id, Job::State state, const QString& error = {});
    Job* find(qint64 id);
    void onImageReady(qint64 jobId, int imageIndex, const QImage& image, const GalleryItem& item);
    // Writes an image the gallery could not store into <AppData>/recovered (or the temp folder); returns its path.
    static QString saveToRecoveryFolder(const QImage& image, const GalleryItem& item);
    // Rewrites the persist file with unfinishedJobs() (QSaveFile: complete or not at all).
    void persist();

    GalleryStore* m_gallery;
    QThread* m_thread = nullptr;
    EngineWorker* m_worker = nullptr;  // lives on m_thread, deleted when it finishes
    EngineLoadSettings m_load;
    QList<Job> m_jobs;
    qint64 m_nextId = 1;
    qint64 m_running = 0;
    QHash<QString, GalleryItem> m_pendingPairs;  // compare group -> the first stored item
    QString m_persistPath;
    bool m_stopped = false;
    qint64 m_interrupted = 0;                 // the job stop() cancelled
    QHash<QString, double> m_secondsPerStep;  // model path -> measured seconds per step
    double m_runningImageSecondsLeft = -1;    // the worker's own estimate for the image in progress
};
