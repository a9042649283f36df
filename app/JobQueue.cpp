#include "JobQueue.h"
#include "AtomicFile.h"

#include <QThread>

#include <cmath>

#include "GalleryStore.h"
#include "PngMetadata.h"

#include <QCoreApplication>
#include <QDateTime>
#include <QDir>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QStandardPaths>

JobQueue::JobQueue(GalleryStore* gallery, QObject* parent)
    : QObject(parent), m_gallery(gallery), m_thread(new QThread(this)), m_worker(new EngineWorker) {
    qRegisterMetaType<Job::State>();
    m_thread->setObjectName(QStringLiteral("KOALA engine"));
    m_worker->moveToThread(m_thread);
    connect(m_thread, &QThread::finished, m_worker, &QObject::deleteLater);

    // Cross-thread connections: Qt queues these onto this (GUI) thread.
    connect(m_worker, &EngineWorker::modelLoading, this, &JobQueue::modelLoading);
    connect(m_worker, &EngineWorker::modelLoaded, this, &JobQueue::modelLoaded);
    connect(m_worker, &EngineWorker::progress, this,
            [this](qint64 id, int step, int total, double itPerSec, double secondsLeft) {
                if (Job* job = find(id)) {
                    if (itPerSec > 0) {
                        // Compare jobs alternate the models: the image in progress is model A for even images.
                        const bool modelB = job->kind == Job::Kind::Compare && (job->imagesDone % 2) == 1;
                        recordSecondsPerStep(modelB ? job->params.modelPath2 : job->params.modelPath, 1.0 / itPerSec);
                    }
                    m_runningImageSecondsLeft = secondsLeft;
                    job->step = step;
                    job->totalSteps = total;
                    const int received = job->imagesDone;
                    if (job->imagesTotal > 0 && total > 0)
                        job->progress = (received + double(step) / total) / job->imagesTotal;
                }
                emit jobProgress(id, step, total, itPerSec, secondsLeft);
            });
    connect(m_worker, &EngineWorker::preview, this, &JobQueue::jobPreview);
    connect(m_worker, &EngineWorker::imageReady, this, &JobQueue::onImageReady);
    connect(m_worker, &EngineWorker::jobFinished, this, [this](qint64 id) { finish(id, Job::State::Done); });
    connect(m_worker, &EngineWorker::jobFailed, this,
            [this](qint64 id, const QString& message) { finish(id, Job::State::Failed, message); });
    connect(m_worker, &EngineWorker::jobCancelled, this, [this](qint64 id) { finish(id, Job::State::Cancelled); });

    m_thread->start();
}

JobQueue::~JobQueue() { stop(); }

void JobQueue::stop() {
    if (m_stopped) return;
    m_stopped = true;
    m_interrupted = m_running;
    // The running job blocks the worker's event loop: cancel it so quit() takes effect at its next step.
    m_worker->cancelCurrent();
    m_thread->quit();
    m_thread->wait();
    // Images and state changes the worker sent before it stopped are still queued for this thread: store them now.
    QCoreApplication::sendPostedEvents(this, QEvent::MetaCall);
    persist();
}

void JobQueue::setPersistPath(const QString& path) {
    m_persistPath = path;
    persist();
}

QList<Job> JobQueue::unfinishedJobs() const {
    QList<Job> out;
    for (const Job& job : m_jobs) {
        const bool running =
            job.state == Job::State::Running || (job.id == m_interrupted && job.state == Job::State::Cancelled);
        if (job.state != Job::State::Queued && !running) continue;
        Job rest = job;
        // Whole images (Single) or whole pairs (Compare) done so far are not redone.
        const int doneSeeds = running ? job.imagesDone / job.slotCount() : 0;
        rest.seeds = job.seeds.mid(doneSeeds);
        if (rest.seeds.isEmpty()) continue;
        rest.params.count = int(rest.seeds.size());
        out << rest;
    }
    return out;
}

void JobQueue::persist() {
    if (m_persistPath.isEmpty()) return;
    QJsonArray jobs;
    for (const Job& job : unfinishedJobs()) jobs << job.toJson();
    QJsonObject root;
    root[QStringLiteral("version")] = 1;
    root[QStringLiteral("jobs")] = jobs;
    QDir().mkpath(QFileInfo(m_persistPath).absolutePath());
    QString error;
    if (!writeFileAtomically(m_persistPath, QJsonDocument(root).toJson(), &error)) qWarning("%s", qPrintable(error));
}

int JobQueue::restoreJobs(const QString& path, QString* error) {
    QFile file(path);
    if (!file.exists()) return 0;
    if (!file.open(QIODevice::ReadOnly)) {
        if (error) *error = tr("Cannot read the saved queue %1: %2").arg(path, file.errorString());
        return 0;
    }
    QJsonParseError parseError;
    const QJsonDocument doc = QJsonDocument::fromJson(file.readAll(), &parseError);
    if (!doc.isObject()) {
        if (error) *error = tr("The saved queue %1 is damaged: %2").arg(path, parseError.errorString());
        return 0;
    }
    int restored = 0;
    for (const QJsonValue& value : doc.object().value(QStringLiteral("jobs")).toArray()) {
        if (const std::optional<Job> job = Job::fromJson(value.toObject())) {
            enqueueJob(*job);
            ++restored;
        }
    }
    return restored;
}

void JobQueue::setLoadSettings(const EngineLoadSettings& settings) { m_load = settings; }

qint64 JobQueue::add(Job job) {
    job.id = m_nextId++;
    job.state = Job::State::Queued;
    job.imagesTotal = int(job.seeds.size()) * job.slotCount();
    m_jobs << job;
    emit jobAdded(job.id);
    emit jobStateChanged(job.id, Job::State::Queued);
    const qint64 id = job.id;
    startNext();
    persist();
    return id;
}

qint64 JobQueue::enqueue(const GenerationParams& params) {
    Job job;
    job.kind = Job::Kind::Single;
    job.params = params;
    job.seeds = params.jobSeeds();
    return add(job);
}

qint64 JobQueue::enqueueJob(const Job& job) {
    Job copy;
    copy.kind = job.kind;
    copy.params = job.params;
    copy.seeds = job.seeds;
    copy.params.count = int(job.seeds.size());
    return add(copy);
}

qint64 JobQueue::enqueueCompare(const GenerationParams& params) {
    Job job;
    job.kind = Job::Kind::Compare;
    job.params = params;
    job.seeds = params.jobSeeds();
    return add(job);
}

Job* JobQueue::find(qint64 id) {
    for (Job& job : m_jobs) {
        if (job.id == id) return &job;
    }
    return nullptr;
}

void JobQueue::startNext() {
    if (m_running != 0 || m_stopped) return;
    for (Job& job : m_jobs) {
        if (job.state != Job::State::Queued) continue;
        job.state = Job::State::Running;
        m_running = job.id;

        // Unique across runs of the app, so pairs from different sessions never merge in one folder.
        job.runKey = QStringLiteral("%1-%2")
                         .arg(QDateTime::currentDateTime().toString(QStringLiteral("yyyyMMddHHmmss")))
                         .arg(job.id);
        job.load = m_load;
        EngineWorker* worker = m_worker;
        QMetaObject::invokeMethod(
            worker, [worker, job] { worker->runJob(job); }, Qt::QueuedConnection);
        emit jobStateChanged(job.id, Job::State::Running);
        return;
    }
}

QString JobQueue::saveToRecoveryFolder(const QImage& image, const GalleryItem& item) {
    QStringList dirs;
    const QString appData = QStandardPaths::writableLocation(QStandardPaths::AppDataLocation);
    if (!appData.isEmpty()) dirs << appData + QStringLiteral("/recovered");
    dirs << QDir::tempPath() + QStringLiteral("/koala-studio-recovered");
    const QString name = QStringLiteral("%1_seed%2.png")
                             .arg(QDateTime::currentDateTime().toString(QStringLiteral("yyyy-MM-dd_HHmmsszzz")))
                             .arg(item.params.seed.value_or(0));
    for (const QString& dir : dirs) {
        if (QDir().mkpath(dir)) {
            const QString path = dir + QLatin1Char('/') + name;
            if (PngMetadata::write(path, image, item)) return path;
        }
    }
    return {};
}

void JobQueue::onImageReady(qint64 jobId, int imageIndex, const QImage& image, const GalleryItem& item) {
    Job* job = find(jobId);
    if (job) ++job->imagesDone;
    m_runningImageSecondsLeft = -1;  // the next image has not reported yet
    QString error;
    const std::optional<GalleryItem> stored = m_gallery->add(image, item, &error);
    if (!stored) {
        // Never lose a finished image: when the output folder cannot take it, keep it in a recovery folder.
        const QString recovered = saveToRecoveryFolder(image, item);
        if (!recovered.isEmpty()) error += tr(" — the image was kept in %1").arg(QDir::toNativeSeparators(recovered));
        emit saveFailed(jobId, image, item, error);
        return;
    }
    if (job = find(jobId); job) {
        job->itemIds << stored->id;
        if (job->imagesTotal > 0) job->progress = double(job->imagesDone) / job->imagesTotal;
    }
    persist();
    emit imageReady(jobId, *stored, imageIndex);

    if (!stored->compareGroup.isEmpty()) {
        const auto it = m_pendingPairs.find(stored->compareGroup);
        if (it == m_pendingPairs.end()) {
            m_pendingPairs.insert(stored->compareGroup, *stored);
        } else {
            const GalleryItem first = it.value();
            m_pendingPairs.erase(it);
            const bool firstIsA = first.compareSlot <= stored->compareSlot;
            emit compareReady(stored->compareGroup, firstIsA ? first : *stored, firstIsA ? *stored : first);
        }
    }
}

void JobQueue::finish(qint64 id, Job::State state, const QString& error) {
    if (m_running == id) m_running = 0;
    m_runningImageSecondsLeft = -1;
    if (Job* job = find(id)) {
        job->state = state;
        job->error = error;
        if (state == Job::State::Done) job->progress = 1.0;
    }
    emit jobStateChanged(id, state);
    switch (state) {
    case Job::State::Done: emit jobFinished(id); break;
    case Job::State::Failed: emit jobFailed(id, error); break;
    case Job::State::Cancelled: emit jobCancelled(id); break;
    default: break;
    }
    startNext();
    persist();
    if (m_running == 0) emit idle();
}

bool JobQueue::remove(qint64 id) {
    for (int i = 0; i < m_jobs.size(); ++i) {
        if (m_jobs.at(i).id != id) continue;
        if (m_jobs.at(i).state == Job::State::Running) return false;
        m_jobs.removeAt(i);
        emit jobRemoved(id);
        persist();
        return true;
    }
    return false;
}

void JobQueue::cancel(qint64 id) {
    Job* job = find(id);
    if (!job) return;
    if (job->state == Job::State::Running) {
        m_worker->cancel(id);  // thread-safe; jobCancelled arrives from the worker
    } else if (job->state == Job::State::Queued) {
        job->state = Job::State::Cancelled;
        emit jobStateChanged(id, Job::State::Cancelled);
        emit jobCancelled(id);
        persist();
    }
}

void JobQueue::cancelCurrent() {
    if (m_running != 0) m_worker->cancel(m_running);
}

void JobQueue::cancelAll() {
    QList<qint64> queued;
    for (const Job& job : std::as_const(m_jobs)) {
        if (job.state == Job::State::Queued) queued << job.id;
    }
    for (qint64 id : std::as_const(queued)) cancel(id);
    cancelCurrent();
}

void JobQueue::clearFinished() {
    for (int i = int(m_jobs.size()) - 1; i >= 0; --i) {
        const Job::State s = m_jobs.at(i).state;
        if (s == Job::State::Done || s == Job::State::Failed || s == Job::State::Cancelled) {
            const qint64 id = m_jobs.at(i).id;
            m_jobs.removeAt(i);
            emit jobRemoved(id);
        }
    }
}

bool JobQueue::move(qint64 id, int index) {
    int from = -1;
    for (int i = 0; i < m_jobs.size(); ++i) {
        if (m_jobs.at(i).id == id) from = i;
    }
    if (from < 0 || m_jobs.at(from).state != Job::State::Queued) return false;
    const int to = qBound(0, index, int(m_jobs.size()) - 1);
    if (to == from) return false;
    m_jobs.move(from, to);
    emit jobMoved(id, to);
    persist();
    return true;
}

bool JobQueue::moveUp(qint64 id) {
    for (int i = 0; i < m_jobs.size(); ++i) {
        if (m_jobs.at(i).id == id) return i > 0 && move(id, i - 1);
    }
    return false;
}

bool JobQueue::moveDown(qint64 id) {
    for (int i = 0; i < m_jobs.size(); ++i) {
        if (m_jobs.at(i).id == id) return move(id, i + 1);
    }
    return false;
}

double JobQueue::secondsPerStep(const QString& modelPath) const { return m_secondsPerStep.value(modelPath, -1.0); }

void JobQueue::recordSecondsPerStep(const QString& modelPath, double seconds) {
    if (seconds > 0 && std::isfinite(seconds)) m_secondsPerStep.insert(modelPath, seconds);
}

double JobQueue::secondsLeft() const {
    double mean = 0;
    for (const double s : m_secondsPerStep) mean += s;
    if (!m_secondsPerStep.isEmpty()) mean /= double(m_secondsPerStep.size());
    const auto rate = [this, mean](const QString& model) {
        const double s = m_secondsPerStep.value(model, -1.0);
        return (s > 0) ? s : mean;
    };
    double total = 0;
    bool anyLeft = false;
    for (const Job& job : m_jobs) {
        if (job.state != Job::State::Queued && job.state != Job::State::Running) continue;
        const int steps = job.params.steps;
        int imagesLeft = int(job.seeds.size()) * job.slotCount();
        if (job.state == Job::State::Running) {
            imagesLeft = job.imagesTotal - job.imagesDone;
            if (imagesLeft > 0 && job.totalSteps > 0) {
                // The image in progress: the worker's estimate, else its remaining steps.
                const bool modelB = job.kind == Job::Kind::Compare && (job.imagesDone % 2) == 1;
                total +=
                    (m_runningImageSecondsLeft >= 0)
                        ? m_runningImageSecondsLeft
                        : (job.totalSteps - job.step) * rate(modelB ? job.params.modelPath2 : job.params.modelPath);
                --imagesLeft;
                anyLeft = true;
            }
        }
        if (imagesLeft <= 0) continue;
        anyLeft = true;
        if (job.kind == Job::Kind::Compare) {
            const int b = imagesLeft / 2, a = imagesLeft - b;
            total += steps * (a * rate(job.params.modelPath) + b * rate(job.params.modelPath2));
        } else {
            total += steps * imagesLeft * rate(job.params.modelPath);
        }
    }
    if (!anyLeft) return 0;
    return (mean > 0) ? total : -1;
}

void JobQueue::releaseModels() {
    EngineWorker* worker = m_worker;
    QMetaObject::invokeMethod(
        worker, [worker] { worker->releaseModels(); }, Qt::QueuedConnection);
}

QList<Job> JobQueue::jobs() const { return m_jobs; }

std::optional<Job> JobQueue::job(qint64 id) const {
    for (const Job& j : m_jobs) {
        if (j.id == id) return j;
    }
    return std::nullopt;
}

int JobQueue::pendingCount() const {
    int n = 0;
    for (const Job& j : m_jobs) {
        if (j.state == Job::State::Queued) ++n;
    }
    return n;
}
