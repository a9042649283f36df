#include "EngineWorker.h"

#include <algorithm>

#include <QElapsedTimer>
#include <QFileInfo>

namespace {

QString oneLine(QString s) {
    s.replace(QLatin1Char('\n'), QLatin1Char(' '));
    return s.simplified();
}

koala::LoadOptions toLoadOptions(const EngineLoadSettings& s) {
    koala::LoadOptions o = koala::defaultLoadOptions();
    koala::Device d;
    if (koala::fromString(s.device.toStdString(), d)) o.device = d;
    koala::DType t;
    if (koala::fromString(s.precision.toStdString(), t)) o.dtype = t;
    koala::MemoryMode m;
    if (koala::fromString(s.memoryMode.toStdString(), m)) o.memory = m;
    o.variant = s.variant.toStdString();  // "auto" is resolved by the engine, per component folder
    return o;
}

}  // namespace

EngineWorker::EngineWorker(QObject* parent) : QObject(parent) {
    qRegisterMetaType<Job>();
    qRegisterMetaType<GalleryItem>();
}

EngineWorker::~EngineWorker() = default;

void EngineWorker::cancel(qint64 jobId) {
    std::lock_guard<std::mutex> lock(m_mutex);
    if (m_currentJob.load() == jobId)
        m_cancel.cancel();
    else if (std::find(m_recentJobs.begin(), m_recentJobs.end(), jobId) == m_recentJobs.end())
        m_cancelledJobs.insert(jobId);  // not begun yet
}

int EngineWorker::pendingCancels() const {
    std::lock_guard<std::mutex> lock(m_mutex);
    return int(m_cancelledJobs.size());
}

void EngineWorker::cancelCurrent() {
    std::lock_guard<std::mutex> lock(m_mutex);
    if (m_currentJob.load() != 0) m_cancel.cancel();
}

bool EngineWorker::takeCancelled(qint64 jobId) { return m_cancelledJobs.erase(jobId) > 0; }

QString EngineWorker::errorMessage(const koala::Error& error, const QString& context) {
    const QString what = oneLine(QString::fromStdString(error.what()));
    const QString prefix = context.isEmpty() ? QString() : context + QStringLiteral(": ");
    switch (error.kind()) {
    case koala::ErrorKind::OutOfMemory:
        return prefix + QStringLiteral(
                            "Out of memory (%1). Try a smaller image size, fewer images per job, fp16 precision "
                            "or memory mode \"low\", or close other programs using the GPU.")
                            .arg(what);
    case koala::ErrorKind::Cancelled: return prefix + QStringLiteral("Cancelled.");
    default: return prefix + what;
    }
}

QImage EngineWorker::toQImage(const koala::Image& image) {
    if (image.width <= 0 || image.height <= 0 || image.rgb.size() < size_t(image.width) * size_t(image.height) * 3)
        return {};
    return QImage(image.rgb.data(), image.width, image.height, image.width * 3, QImage::Format_RGB888).copy();
}

std::string EngineWorker::cacheKey(const QString& path, const EngineLoadSettings& load,
                                   const std::string& sharedWithKey) {
    const koala::LoadOptions options = toLoadOptions(load);
    std::string key = QFileInfo(path).absoluteFilePath().toStdString() + '|' + koala::toString(options.device) + '|' +
                      koala::toString(options.dtype) + '|' + load.variant.toStdString() + '|' +
                      koala::toString(options.memory);
    if (!sharedWithKey.empty()) key += "|shared:" + sharedWithKey;
    return key;
}

std::shared_ptr<koala::Model> EngineWorker::model(qint64 jobId, const std::string& key, const QString& path,
                                                  const EngineLoadSettings& load,
                                                  const std::shared_ptr<koala::Model>& shareWith, double* loadSeconds) {
    const koala::LoadOptions options = toLoadOptions(load);
    *loadSeconds = 0;
    if (auto it = m_models.find(key); it != m_models.end()) return it->second;

    emit modelLoading(jobId, path);
    QElapsedTimer timer;
    timer.start();
    std::shared_ptr<koala::Model> model = koala::Model::load(path.toStdString(), options, shareWith);
    *loadSeconds = timer.nsecsElapsed() / 1e9;
    m_models[key] = model;
    emit modelLoaded(jobId, path, *loadSeconds, model->info().sharesTextEncoders);
    return model;
}

void EngineWorker::releaseModels() { m_models.clear(); }

bool EngineWorker::beginJob(qint64 jobId) {
    bool cancelled = false;
    {
        std::lock_guard<std::mutex> lock(m_mutex);
        m_cancel.reset();
        m_currentJob.store(jobId);
        m_recentJobs.push_back(jobId);
        if (m_recentJobs.size() > 256) m_recentJobs.pop_front();
        cancelled = takeCancelled(jobId);
        if (cancelled) m_currentJob.store(0);
    }
    // Signals outside the lock: a directly connected slot may call cancel().
    if (cancelled) {
        emit jobCancelled(jobId);
        return false;
    }
    emit jobStarted(jobId);
    return true;
}

void EngineWorker::checkJob(const Job& job) {
    const QString invalid = job.params.validate();
    if (!invalid.isEmpty()) throw koala::Error(koala::ErrorKind::InvalidArgument, invalid.toStdString());
    if (job.params.modelPath.isEmpty()) throw koala::Error(koala::ErrorKind::InvalidArgument, "no model selected");
    if (job.kind == Job::Kind::Compare && job.params.modelPath2.isEmpty())
        throw koala::Error(koala::ErrorKind::InvalidArgument, "a comparison needs a second model");
    if (job.seeds.isEmpty()) throw koala::Error(koala::ErrorKind::InvalidArgument, "the job has no seeds");
}

EngineWorker::LoadedModels EngineWorker::loadModels(const Job& job, QString& stage) {
    const bool compare = job.kind == Job::Kind::Compare;
    const QString& pathA = job.params.modelPath;
    const QString& pathB = job.params.modelPath2;
    // Only the models this job uses stay cached: two SDXL-size UNets plus a third would not fit most GPUs.
    const std::string keyA = cacheKey(pathA, job.load, {});
    const std::string keyB = compare ? cacheKey(pathB, job.load, keyA) : std::string();
    for (auto it = m_models.begin(); it != m_models.end();) {
        if (it->first != keyA && it->first != keyB)
            it = m_models.erase(it);
        else
            ++it;
    }
    LoadedModels models;
    stage = QStringLiteral("Loading %1").arg(pathA);
    models.a = model(job.id, keyA, pathA, job.load, nullptr, &models.loadSecondsA);
    if (compare) {
        stage = QStringLiteral("Loading %1").arg(pathB);
        models.b = model(job.id, keyB, pathB, job.load, models.a, &models.loadSecondsB);
    }
    return models;
}

GalleryItem EngineWorker::describeImage(const Job& job, const koala::Model& model, const koala::GenerateResult& result,
                                        int seedIndex, int slot) {
    const koala::ModelInfo& info = model.info();
    GalleryItem item;
    item.params = job.params;
    item.params.seed = job.seeds.at(seedIndex);
    item.params.count = 1;
    item.params.modelPath = slot == 0 ? job.params.modelPath : job.params.modelPath2;
    item.params.modelPath2.clear();
    item.params.modelName = QString::fromStdString(info.name);
    item.createdAt = QDateTime::currentDateTime();
    item.modelName = QString::fromStdString(info.name);
    item.unetShape = QString::fromStdString(info.unetShape);
    item.device = QString::fromStdString(info.device);
    item.computeDType = QString::fromStdString(info.computeDType);
    item.schedulerUsed = QString::fromStdString(result.schedulerName);
    item.spacingUsed = QString::fromStdString(result.spacingName);
    item.timings = ImageTimings::fromEngine(result.timings);
    item.params.setAppliedLoras(result.loras);  // names, weights, short hashes and coverage reports for the PNG
    const QString base = job.runKey.isEmpty() ? QStringLiteral("job%1").arg(job.id) : job.runKey;
    item.job = base;
    item.jobIndex = seedIndex * job.slotCount() + slot;
    if (job.kind == Job::Kind::Compare) {
        item.compareGroup = QStringLiteral("%1-%2").arg(base).arg(seedIndex);
        item.compareSlot = slot;
    }
    return item;
}

void EngineWorker::generateImage(const Job& job, const LoadedModels& models, int seedIndex, int slot,
                                 double& lastStepSeconds) {
    koala::Model& model = slot == 0 ? *models.a : *models.b;
    const int imageIndex = seedIndex * job.slotCount() + slot;
    const int imagesAfter = int(job.seeds.size()) * job.slotCount() - imageIndex - 1;

    koala::Callbacks callbacks;
    callbacks.progress = [&, this](const koala::Progress& p) {
        const double perStep =
            p.itPerSecond > 0 ? 1.0 / p.itPerSecond : (p.step > 0 ? p.elapsedSeconds / p.step : lastStepSeconds);
        lastStepSeconds = perStep;
        const double left = perStep * ((p.total - p.step) + double(imagesAfter) * p.total);
        emit progress(job.id, p.step, p.total, p.itPerSecond, left);
    };
    callbacks.preview = [&, this](int, const std::vector<koala::Image>& images) {
        if (!images.empty()) emit preview(job.id, imageIndex, toQImage(images.front()));
    };

    koala::GenerateRequest request = job.params.toRequest(job.seeds.at(seedIndex));
    // Issue 11: a compare of two families with different sizes (KOALA 1024², SD 2 768²) runs each side as its
    // model ships: its own size and default scheduler/spacing (the compare view says so).
    const bool ownSettings = job.kind == Job::Kind::Compare && models.b && !job.params.hasInitImage() &&
                             (models.a->info().defaultWidth != models.b->info().defaultWidth ||
                              models.a->info().defaultHeight != models.b->info().defaultHeight);
    if (ownSettings) {
        request.width = model.info().defaultWidth;
        request.height = model.info().defaultHeight;
        request.scheduler = koala::SchedulerKind::Default;
        request.spacing = koala::TimestepSpacing::Default;
    }
    const koala::GenerateResult result = model.generate(request, callbacks, &m_cancel);
    if (result.images.empty()) throw koala::Error(koala::ErrorKind::Internal, "the engine returned no image");

    GalleryItem item = describeImage(job, model, result, seedIndex, slot);
    if (ownSettings) {  // the stored parameters are the ones this side ran with
        item.params.width = request.width;
        item.params.height = request.height;
        item.params.scheduler = QString::fromLatin1(koala::toString(koala::SchedulerKind::Default));
        item.params.spacing = QString::fromLatin1(koala::toString(koala::TimestepSpacing::Default));
    }
    // The load is charged to the first image that needed it.
    if (seedIndex == 0) item.timings.loadSeconds = slot == 0 ? models.loadSecondsA : models.loadSecondsB;
    const QImage image = toQImage(result.images.front());
    item.width = image.width();
    item.height = image.height();
    // img2img takes the init image's size (rounded down to multiples of 8): the metadata's "Size" is the real one.
    if (item.params.hasInitImage()) {
        item.params.width = item.width;
        item.params.height = item.height;
    }
    emit imageReady(job.id, imageIndex, image, item);
}

void EngineWorker::runJob(const Job& job) {
    if (!beginJob(job.id)) return;
    QString stage = QStringLiteral("Loading %1").arg(job.params.modelPath);
    try {
        checkJob(job);
        const LoadedModels models = loadModels(job, stage);
        const int imagesTotal = int(job.seeds.size()) * job.slotCount();
        double lastStepSeconds = 0;
        for (int i = 0; i < job.seeds.size(); ++i) {
            for (int slot = 0; slot < job.slotCount(); ++slot) {
                stage =
                    QStringLiteral("Generating image %1 of %2").arg(i * job.slotCount() + slot + 1).arg(imagesTotal);
                generateImage(job, models, i, slot, lastStepSeconds);
            }
        }
        m_currentJob.store(0);
        emit jobFinished(job.id);
    } catch (const koala::Error& e) {
        m_currentJob.store(0);
        if (e.kind() == koala::ErrorKind::Cancelled)
            emit jobCancelled(job.id);
        else
            emit jobFailed(job.id, errorMessage(e, stage));
    } catch (const std::bad_alloc&) {
        m_currentJob.store(0);
        m_models.clear();
        emit jobFailed(job.id,
                       stage + QStringLiteral(": Out of memory. Try a smaller image size, fewer images per job, fp16 "
                                              "precision or memory mode \"low\"."));
    } catch (const std::exception& e) {
        m_currentJob.store(0);
        emit jobFailed(job.id, stage + QStringLiteral(": ") + oneLine(QString::fromLocal8Bit(e.what())));
    }
}
