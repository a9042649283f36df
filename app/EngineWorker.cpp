#include "EngineWorker.h"

#include <QDir>
#include <QElapsedTimer>
#include <QFileInfo>

namespace {

QString oneLine(QString s)
{
    s.replace(QLatin1Char('\n'), QLatin1Char(' '));
    return s.simplified();
}

koala::LoadOptions toLoadOptions(const EngineLoadSettings& s)
{
    koala::LoadOptions o = koala::defaultLoadOptions();
    koala::Device d;
    if (koala::fromString(s.device.toStdString(), d))
        o.device = d;
    koala::DType t;
    if (koala::fromString(s.precision.toStdString(), t))
        o.dtype = t;
    koala::MemoryMode m;
    if (koala::fromString(s.memoryMode.toStdString(), m))
        o.memory = m;
    return o;
}

// "auto": the fp16 files when the repo has only those, or when the run is fp16 anyway (half the bytes to read).
std::string resolveVariant(const QString& modelPath, const EngineLoadSettings& s, const koala::LoadOptions& o)
{
    if (s.variant != QLatin1String("auto"))
        return s.variant.toStdString();
    QString folder;
    try {
        folder = QString::fromStdString(koala::resolveModelFolder(modelPath.toStdString()));
    } catch (const koala::Error&) {
        return {};  // the load reports the problem with the proper message
    }
    const QDir unet(folder + QStringLiteral("/unet"));
    const bool hasPlain = unet.exists(QStringLiteral("diffusion_pytorch_model.safetensors"));
    const bool hasFp16 = unet.exists(QStringLiteral("diffusion_pytorch_model.fp16.safetensors"));
    if (!hasFp16)
        return {};
    if (!hasPlain)
        return "fp16";
    const bool cuda = o.device == koala::Device::Cuda || (o.device == koala::Device::Auto && koala::cudaAvailable());
    const bool fp16 = o.dtype == koala::DType::F16 || (o.dtype == koala::DType::Auto && cuda);
    return fp16 ? "fp16" : std::string();
}

}  // namespace

EngineWorker::EngineWorker(QObject* parent)
    : QObject(parent)
{
    qRegisterMetaType<EngineJob>();
    qRegisterMetaType<GalleryItem>();
}

EngineWorker::~EngineWorker() = default;

void EngineWorker::cancel(qint64 jobId)
{
    std::lock_guard<std::mutex> lock(m_mutex);
    if (m_currentJob.load() == jobId)
        m_cancel.cancel();
    else
        m_cancelledJobs.insert(jobId);
}

void EngineWorker::cancelCurrent()
{
    std::lock_guard<std::mutex> lock(m_mutex);
    if (m_currentJob.load() != 0)
        m_cancel.cancel();
}

bool EngineWorker::takeCancelled(qint64 jobId)
{
    return m_cancelledJobs.erase(jobId) > 0;
}

QString EngineWorker::errorMessage(const koala::Error& error, const QString& context)
{
    const QString what = oneLine(QString::fromStdString(error.what()));
    const QString prefix = context.isEmpty() ? QString() : context + QStringLiteral(": ");
    switch (error.kind()) {
    case koala::ErrorKind::OutOfMemory:
        return prefix + QStringLiteral("Out of memory (%1). Try memory mode \"low\", a smaller image size, fp16 "
                                       "precision, or close other programs using the GPU.").arg(what);
    case koala::ErrorKind::Cancelled:
        return prefix + QStringLiteral("Cancelled.");
    default:
        return prefix + what;
    }
}

QImage EngineWorker::toQImage(const koala::Image& image)
{
    if (image.width <= 0 || image.height <= 0
        || image.rgb.size() < size_t(image.width) * size_t(image.height) * 3)
        return {};
    return QImage(image.rgb.data(), image.width, image.height, image.width * 3, QImage::Format_RGB888).copy();
}

std::string EngineWorker::cacheKey(const QString& path, const EngineLoadSettings& load, const std::string& sharedWithKey)
{
    const koala::LoadOptions options = toLoadOptions(load);
    std::string key = QFileInfo(path).absoluteFilePath().toStdString() + '|' + koala::toString(options.device) + '|'
        + koala::toString(options.dtype) + '|' + load.variant.toStdString() + '|' + koala::toString(options.memory);
    if (!sharedWithKey.empty())
        key += "|shared:" + sharedWithKey;
    return key;
}

std::shared_ptr<koala::Model> EngineWorker::model(qint64 jobId, const std::string& key, const QString& path,
                                                  const EngineLoadSettings& load,
                                                  const std::shared_ptr<koala::Model>& shareWith, double* loadSeconds)
{
    koala::LoadOptions options = toLoadOptions(load);
    options.variant = resolveVariant(path, load, options);
    *loadSeconds = 0;
    if (auto it = m_models.find(key); it != m_models.end())
        return it->second;

    emit modelLoading(jobId, path);
    QElapsedTimer timer;
    timer.start();
    std::shared_ptr<koala::Model> model = koala::Model::load(path.toStdString(), options, shareWith);
    *loadSeconds = timer.nsecsElapsed() / 1e9;
    m_models[key] = model;
    emit modelLoaded(jobId, path, *loadSeconds, model->info().sharesTextEncoders);
    return model;
}

void EngineWorker::releaseModels()
{
    m_models.clear();
}

void EngineWorker::runJob(const EngineJob& job)
{
    {
        std::lock_guard<std::mutex> lock(m_mutex);
        m_cancel.reset();
        m_currentJob.store(job.id);
        if (takeCancelled(job.id)) {
            m_currentJob.store(0);
            emit jobCancelled(job.id);
            return;
        }
    }
    emit jobStarted(job.id);

    const bool compare = job.kind == EngineJob::Kind::Compare;
    const QString pathA = job.modelA.isEmpty() ? job.params.modelPath : job.modelA;
    const QString pathB = job.modelB.isEmpty() ? job.params.modelPath2 : job.modelB;
    const QString groupBase =
        job.compareGroupBase.isEmpty() ? QStringLiteral("cmp%1").arg(job.id) : job.compareGroupBase;
    QString stage = QStringLiteral("Loading %1").arg(pathA);

    try {
        const QString invalid = job.params.validate();
        if (invalid.isEmpty() == false)
            throw koala::Error(koala::ErrorKind::InvalidArgument, invalid.toStdString());
        if (pathA.isEmpty())
            throw koala::Error(koala::ErrorKind::InvalidArgument, "no model selected");
        if (compare && pathB.isEmpty())
            throw koala::Error(koala::ErrorKind::InvalidArgument, "a comparison needs a second model");
        if (job.seeds.isEmpty())
            throw koala::Error(koala::ErrorKind::InvalidArgument, "the job has no seeds");

        // Only the models this job uses stay cached: two SDXL-size UNets plus a third would not fit most GPUs.
        const std::string keyA = cacheKey(pathA, job.load, {});
        const std::string keyB = compare ? cacheKey(pathB, job.load, keyA) : std::string();
        for (auto it = m_models.begin(); it != m_models.end();) {
            if (it->first != keyA && it->first != keyB)
                it = m_models.erase(it);
            else
                ++it;
        }
        double loadA = 0;
        double loadB = 0;
        std::shared_ptr<koala::Model> modelA = model(job.id, keyA, pathA, job.load, nullptr, &loadA);
        std::shared_ptr<koala::Model> modelB;
        if (compare) {
            stage = QStringLiteral("Loading %1").arg(pathB);
            modelB = model(job.id, keyB, pathB, job.load, modelA, &loadB);
        }

        const int slotCount = compare ? 2 : 1;
        const int imagesTotal = int(job.seeds.size()) * slotCount;
        double lastStepSeconds = 0;  // seconds per step of the previous image, for the time-left estimate
        for (int i = 0; i < job.seeds.size(); ++i) {
            for (int slot = 0; slot < slotCount; ++slot) {
                const std::shared_ptr<koala::Model>& m = slot == 0 ? modelA : modelB;
                const int imageIndex = i * slotCount + slot;
                const int imagesAfter = imagesTotal - imageIndex - 1;
                const qint64 seed = job.seeds.at(i);
                stage = QStringLiteral("Generating image %1 of %2").arg(imageIndex + 1).arg(imagesTotal);

                koala::Callbacks callbacks;
                callbacks.progress = [&, this](const koala::Progress& p) {
                    const double perStep = p.itPerSecond > 0 ? 1.0 / p.itPerSecond
                                                             : (p.step > 0 ? p.elapsedSeconds / p.step : lastStepSeconds);
                    lastStepSeconds = perStep;
                    const double left = perStep * ((p.total - p.step) + double(imagesAfter) * p.total);
                    emit progress(job.id, p.step, p.total, p.itPerSecond, left);
                };
                callbacks.preview = [&, this](int, const std::vector<koala::Image>& images) {
                    if (!images.empty())
                        emit preview(job.id, imageIndex, toQImage(images.front()));
                };

                koala::GenerateRequest request = job.params.toRequest(seed);
                koala::GenerateResult result = m->generate(request, callbacks, &m_cancel);
                if (result.images.empty())
                    throw koala::Error(koala::ErrorKind::Internal, "the engine returned no image");

                const koala::ModelInfo& info = m->info();
                GalleryItem item;
                item.params = job.params;
                item.params.seed = seed;
                item.params.count = 1;
                item.params.modelPath = slot == 0 ? pathA : pathB;
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
                // The load is charged to the first image that needed it.
                if (i == 0)
                    item.timings.loadSeconds = slot == 0 ? loadA : loadB;
                if (compare) {
                    item.compareGroup = QStringLiteral("%1-%2").arg(groupBase).arg(i);
                    item.compareSlot = slot;
                }
                const QImage image = toQImage(result.images.front());
                item.width = image.width();
                item.height = image.height();
                emit imageReady(job.id, imageIndex, image, item);
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
        emit jobFailed(job.id, stage + QStringLiteral(": out of memory. Try memory mode \"low\" or a smaller image size."));
    } catch (const std::exception& e) {
        m_currentJob.store(0);
        emit jobFailed(job.id, stage + QStringLiteral(": ") + oneLine(QString::fromLocal8Bit(e.what())));
    }
}
