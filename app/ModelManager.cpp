#include "ModelManager.h"
#include "AtomicFile.h"

#include <algorithm>

#include <QDir>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QThread>

#include <koala/hub.h>

namespace hub = koala::hub;

// Runs koala::hub::download on the manager's worker thread and reports through queued signals.
class ModelDownloadWorker final : public QObject {
    Q_OBJECT

public:
    void run(const QString& repoId, const QString& cacheDir, const QString& endpoint, int parallelFiles,
             const std::shared_ptr<hub::CancelToken>& cancel) {
        hub::DownloadOptions options;
        options.env.cacheDir = cacheDir.toStdString();
        if (!endpoint.isEmpty()) options.env.endpoint = endpoint.toStdString();
        options.cancel = cancel.get();
        options.parallelFiles = parallelFiles;
        // Called on the download's own threads (one call at a time): the signal is queued to the manager.
        options.progress = [this, repoId](const hub::DownloadProgress& p) {
            emit progress(repoId, QString::fromStdString(p.file), qint64(p.bytesDone), qint64(p.bytesTotal),
                          p.bytesPerSecond, p.secondsLeft, p.filesActive);
        };
        try {
            hub::download(repoId.toStdString(), options);
            emit finished(repoId, true, false, {});
        } catch (const hub::Error& e) {
            emit finished(repoId, false, e.kind() == hub::ErrorKind::Cancelled, QString::fromStdString(e.what()));
        } catch (const std::exception& e) {
            emit finished(repoId, false, false, QString::fromStdString(e.what()));
        }
    }

signals:
    void progress(const QString& repoId, const QString& file, qint64 done, qint64 total, double rate,
                  double secondsLeft, int active);
    void finished(const QString& repoId, bool ok, bool cancelled, const QString& message);
};

// Asks the hub for download sizes (koala::hub::planDownload) on the manager's second worker thread.
class ModelSizeWorker final : public QObject {
    Q_OBJECT

public:
    void run(const QString& repoId, const QString& cacheDir, const QString& endpoint,
             const std::shared_ptr<hub::CancelToken>& cancel) {
        if (cancel->cancelled()) return;
        hub::DownloadOptions options;
        options.env.cacheDir = cacheDir.toStdString();
        if (!endpoint.isEmpty()) options.env.endpoint = endpoint.toStdString();
        options.cancel = cancel.get();
        options.stallSeconds = 15;
        try {
            const hub::DownloadPlan plan = hub::planDownload(repoId.toStdString(), options);
            emit sized(repoId, true, qint64(plan.bytesTotal), qint64(plan.bytesLeft()), {});
        } catch (const std::exception& e) {
            emit sized(repoId, false, -1, -1, QString::fromStdString(e.what()));
        }
    }

signals:
    void sized(const QString& repoId, bool ok, qint64 total, qint64 left, const QString& error);
};

QList<ModelManager::CatalogEntry> ModelManager::defaultCatalog() {
    // Approximate sizes of the fp16 pipelines (UNet, both text encoders, VAE, configs): what a download fetches.
    return {
        {QStringLiteral("etri-vilab/koala-700m-llava-cap"), QStringLiteral("KOALA-700M"), 3.2},
        {QStringLiteral("etri-vilab/koala-1b-llava-cap"), QStringLiteral("KOALA-1B"), 3.9},
        {QStringLiteral("etri-vilab/koala-lightning-700m"), QStringLiteral("KOALA-Lightning-700M"), 3.2},
        {QStringLiteral("etri-vilab/koala-lightning-1b"), QStringLiteral("KOALA-Lightning-1B"), 3.9},
        {QStringLiteral("stabilityai/stable-diffusion-xl-base-1.0"), QStringLiteral("SDXL-base 1.0"), 7.0},
        {QStringLiteral("segmind/SSD-1B"), QStringLiteral("SSD-1B"), 4.5},
        {QStringLiteral("segmind/Segmind-Vega"), QStringLiteral("Segmind Vega"), 3.3},
        {QStringLiteral("stabilityai/stable-diffusion-2-1"), QStringLiteral("Stable Diffusion 2.1"), 2.6},
    };
}

QString ModelManager::stateName(State state) {
    switch (state) {
    case State::NotInstalled: return tr("not installed");
    case State::Queued: return tr("queued");
    case State::Downloading: return tr("downloading");
    case State::Paused: return tr("paused");
    case State::Partial: return tr("partly downloaded");
    case State::Installed: return tr("installed");
    }
    return {};
}

ModelManager::ModelManager(const QString& cacheDir, const QString& stateFile, QObject* parent)
    : QObject(parent),
      m_cacheDir(cacheDir),
      m_stateFile(stateFile),
      m_catalog(defaultCatalog()),
      m_thread(new QThread(this)),
      m_worker(new ModelDownloadWorker) {
    m_thread->setObjectName(QStringLiteral("ModelDownload"));
    m_worker->moveToThread(m_thread);
    connect(m_thread, &QThread::finished, m_worker, &QObject::deleteLater);
    connect(m_worker, &ModelDownloadWorker::progress, this, &ModelManager::onProgress);
    connect(m_worker, &ModelDownloadWorker::finished, this, &ModelManager::onFinished);
    m_thread->start();
    auto* sizeWorker = new ModelSizeWorker;
    m_sizeWorker = sizeWorker;
    m_sizeCancel = std::make_shared<hub::CancelToken>();
    m_sizeThread = new QThread(this);
    m_sizeThread->setObjectName(QStringLiteral("ModelSizes"));
    sizeWorker->moveToThread(m_sizeThread);
    connect(m_sizeThread, &QThread::finished, sizeWorker, &QObject::deleteLater);
    connect(sizeWorker, &ModelSizeWorker::sized, this, &ModelManager::onSized);
    m_sizeThread->start();
    refresh();
    loadState();
}

ModelManager::~ModelManager() {
    if (m_cancel) m_cancel->cancel();  // the partial files stay; the state file says paused
    m_sizeCancel->cancel();            // a size request in flight stops; queued ones return at once
    saveState();
    m_thread->quit();
    m_sizeThread->quit();
    m_thread->wait();
    m_sizeThread->wait();
}

void ModelManager::setCatalog(const QList<CatalogEntry>& catalog) {
    m_catalog = catalog;
    refresh();
    loadState();
}

void ModelManager::setEndpoint(const QString& endpoint) {
    m_endpoint = endpoint;
    for (Model& m : m_models)  // sizes from another hub do not count
        if (m.sizeState != Model::SizeState::Fetching) {
            m.sizeState = Model::SizeState::Unknown;
            m.downloadBytes = m.bytesLeft = -1;
        }
}

void ModelManager::fetchSizes(bool force) {
    m_sizesWanted = true;
    for (Model& m : m_models) {
        if (m.state == State::Installed || m.sizeState == Model::SizeState::Fetching) continue;
        if (!force && m.sizeState == Model::SizeState::Exact) continue;
        fetchSize(m);
    }
}

void ModelManager::fetchSize(Model& model) {
    if (model.sizeState == Model::SizeState::Fetching) return;
    model.sizeState = Model::SizeState::Fetching;
    emit modelChanged(model.repoId);
    const QString repoId = model.repoId, cacheDir = m_cacheDir, endpoint = m_endpoint;
    const std::shared_ptr<hub::CancelToken> cancel = m_sizeCancel;
    auto* worker = static_cast<ModelSizeWorker*>(m_sizeWorker);
    QMetaObject::invokeMethod(
        worker, [worker, repoId, cacheDir, endpoint, cancel]() { worker->run(repoId, cacheDir, endpoint, cancel); },
        Qt::QueuedConnection);
}

void ModelManager::onSized(const QString& repoId, bool ok, qint64 total, qint64 left, const QString& error) {
    const int i = indexOf(repoId);
    if (i < 0) return;
    Model& m = m_models[i];
    if (ok) {
        m.sizeState = Model::SizeState::Exact;
        m.downloadBytes = total;
        m.bytesLeft = left;
        m.sizeError.clear();
    } else {
        // Offline, unreachable, or refused (a gated repo without a token): the catalog's estimate stands.
        m.sizeState = Model::SizeState::Approximate;
        m.downloadBytes = m.bytesLeft = -1;
        m.sizeError = error;
    }
    emit modelChanged(repoId);
}

int ModelManager::indexOf(const QString& repoId) const {
    for (int i = 0; i < m_models.size(); ++i)
        if (m_models[i].repoId == repoId) return i;
    return -1;
}

ModelManager::Model ModelManager::model(const QString& repoId) const {
    const int i = indexOf(repoId);
    return i >= 0 ? m_models[i] : Model{};
}

void ModelManager::updateFromCache(Model& model) const {
    const bool active = model.state == State::Downloading || model.state == State::Queued;
    const bool paused = model.state == State::Paused;
    std::optional<hub::RepoStatus> st;
    try {
        st = hub::repoStatus(m_cacheDir.toStdString(), model.repoId.toStdString());
    } catch (const std::exception&) {
        st.reset();
    }
    model.folder.clear();
    model.diskBytes = 0;
    model.otherSnapshots = 0;
    if (!st) {
        if (!active && !paused) model.state = State::NotInstalled;
        return;
    }
    model.diskBytes = qint64(st->blobBytes + st->incompleteBytes);
    const std::string loadable = st->loadablePath();
    model.folder = QString::fromStdString(loadable.empty() ? st->path : loadable);
    for (const auto& s : st->snapshots)
        if (s.complete && s.path != loadable) ++model.otherSnapshots;
    if (active || paused) return;
    if (st->installed())
        model.state = State::Installed;  // partial files of another revision do not matter here
    else if (st->incompleteFiles > 0 || !st->snapshots.empty())
        model.state = State::Partial;
    else
        model.state = State::NotInstalled;
}

void ModelManager::refresh() {
    QList<Model> models;
    for (const CatalogEntry& entry : m_catalog) {
        const int old = indexOf(entry.repoId);
        Model m = old >= 0 ? m_models[old] : Model{};
        m.repoId = entry.repoId;
        m.name = entry.name;
        m.approxGb = entry.approxGb;
        m.inCatalog = true;
        models.append(m);
    }
    // Other models in the cache (a diffusers pipeline someone fetched with huggingface-cli, say).
    try {
        for (const hub::RepoStatus& st : hub::scanCache(m_cacheDir.toStdString())) {
            const QString id = QString::fromStdString(st.repoId);
            if (std::any_of(models.cbegin(), models.cend(), [&id](const Model& m) { return m.repoId == id; })) continue;
            const int old = indexOf(id);
            Model m = old >= 0 ? m_models[old] : Model{};
            m.repoId = id;
            m.name = id.section(QLatin1Char('/'), -1);
            m.inCatalog = false;
            models.append(m);
        }
    } catch (const std::exception&) {
        // An unreadable cache folder lists the catalog only.
    }
    const bool listChanged = models.size() != m_models.size() ||
                             !std::equal(models.cbegin(), models.cend(), m_models.cbegin(),
                                         [](const Model& a, const Model& b) { return a.repoId == b.repoId; });
    for (Model& m : models) updateFromCache(m);
    m_models = models;
    if (listChanged) emit this->listChanged();
    for (const Model& m : m_models) emit modelChanged(m.repoId);
}

bool ModelManager::download(const QString& repoId, QString* error) {
    const int i = indexOf(repoId);
    const auto refuse = [error](const QString& message) {
        if (error) *error = message;
        return false;
    };
    if (i < 0) return refuse(tr("%1 is not in the model list").arg(repoId));
    if (!hub::downloadBuiltIn()) return refuse(tr("This build cannot download (it was built without libcurl)"));
    Model& m = m_models[i];
    if (m.state == State::Downloading || m.state == State::Queued) return true;
    if (m.state == State::Installed) return refuse(tr("%1 is already installed").arg(m.name));
    m.state = State::Queued;
    m.error.clear();
    m_queue.append(repoId);
    saveState();
    emit modelChanged(repoId);
    startNext();
    return true;
}

void ModelManager::startNext() {
    if (!m_running.isEmpty() || m_queue.isEmpty()) return;
    m_running = m_queue.takeFirst();
    m_discardRunning = false;
    m_cancel = std::make_shared<hub::CancelToken>();
    Model& m = m_models[indexOf(m_running)];
    m.state = State::Downloading;
    m_totalBefore = m.bytesTotal;
    m_offset = -1;
    saveState();
    emit modelChanged(m_running);
    const QString repoId = m_running, cacheDir = m_cacheDir, endpoint = m_endpoint;
    const std::shared_ptr<hub::CancelToken> cancel = m_cancel;
    ModelDownloadWorker* worker = m_worker;
    const int parallel = m_parallelFiles;
    QMetaObject::invokeMethod(
        m_worker,
        [worker, repoId, cacheDir, endpoint, parallel, cancel]() {
            worker->run(repoId, cacheDir, endpoint, parallel, cancel);
        },
        Qt::QueuedConnection);
}

void ModelManager::onProgress(const QString& repoId, const QString& file, qint64 done, qint64 total, double rate,
                              double secondsLeft, int active) {
    const int i = indexOf(repoId);
    if (i < 0 || repoId != m_running) return;
    Model& m = m_models[i];
    // A resume fetches only the files still missing: count the finished ones so the bar continues where it stopped.
    if (m_offset < 0 && total > 0) m_offset = std::max<qint64>(0, m_totalBefore - total);
    const qint64 offset = std::max<qint64>(0, m_offset);
    if (total > 0) {
        m.bytesTotal = total + offset;
        m.bytesDone = std::min(done + offset, m.bytesTotal);
    }
    m.file = file;
    m.filesActive = active;
    m.bytesPerSecond = rate;
    m.secondsLeft = secondsLeft;
    emit modelChanged(repoId);
}

void ModelManager::onFinished(const QString& repoId, bool ok, bool cancelled, const QString& message) {
    const int i = indexOf(repoId);
    const bool discard = m_discardRunning;
    m_running.clear();
    m_cancel.reset();
    m_discardRunning = false;
    if (i >= 0) {
        Model& m = m_models[i];
        m.bytesPerSecond = 0;
        m.secondsLeft = -1;
        m.file.clear();
        m.filesActive = 0;
        if (ok) {
            m.state = State::Installed;
            m.bytesDone = m.bytesTotal;
        } else if (cancelled && discard) {
            discardPartial(m);
            m.state = State::NotInstalled;
            m.bytesDone = m.bytesTotal = 0;
        } else {
            // Paused, or stopped by an error: what was fetched stays for a resume.
            m.state = State::Paused;
            if (!cancelled) m.error = message;
        }
        if (m.state != State::Paused) m.state = State::NotInstalled;  // updateFromCache decides
        updateFromCache(m);
        if (ok && m.state != State::Installed) m.error = tr("the download ended without a complete snapshot");
        saveState();
        emit modelChanged(repoId);
        if (m_sizesWanted && m.state != State::Installed) fetchSize(m);  // what is left now
        if (!ok && !cancelled) emit downloadFailed(repoId, message);
        if (ok) emit modelsChanged();
    }
    startNext();
}

void ModelManager::discardPartial(Model& model) {
    // The partial files; a repo with no complete snapshot goes entirely (nothing of it is usable).
    const std::string cache = m_cacheDir.toStdString(), repo = model.repoId.toStdString();
    try {
        const auto st = hub::repoStatus(cache, repo);
        if (st && st->installed())
            hub::removeIncomplete(cache, repo);
        else if (st)
            hub::removeRepo(cache, repo);
    } catch (const std::exception& e) {
        model.error = QString::fromStdString(e.what());
    }
}

void ModelManager::pause(const QString& repoId) {
    const int i = indexOf(repoId);
    if (i < 0) return;
    if (repoId == m_running) {
        m_discardRunning = false;
        if (m_cancel) m_cancel->cancel();  // onFinished marks it paused
        return;
    }
    if (m_queue.removeAll(repoId) > 0) {
        m_models[i].state = State::Paused;
        saveState();
        emit modelChanged(repoId);
    }
}

void ModelManager::cancel(const QString& repoId) {
    const int i = indexOf(repoId);
    if (i < 0) return;
    if (repoId == m_running) {
        m_discardRunning = true;
        if (m_cancel) m_cancel->cancel();  // onFinished deletes the partial files
        return;
    }
    m_queue.removeAll(repoId);
    Model& m = m_models[i];
    discardPartial(m);
    m.state = State::NotInstalled;
    m.bytesDone = m.bytesTotal = 0;
    updateFromCache(m);
    saveState();
    emit modelChanged(repoId);
    if (m_sizesWanted) fetchSize(m);
}

bool ModelManager::remove(const QString& repoId, QString* error) {
    const int i = indexOf(repoId);
    if (i < 0) return true;
    Model& m = m_models[i];
    if (m.state == State::Downloading || m.state == State::Queued) {
        if (error) *error = tr("%1 is downloading: pause or cancel it first").arg(m.name);
        return false;
    }
    const std::string cache = m_cacheDir.toStdString(), repo = repoId.toStdString();
    try {
        const auto st = hub::repoStatus(cache, repo);
        if (st && st->installed()) {
            // The snapshot the loader takes; blobs another snapshot links to stay (koala_hub keeps them).
            hub::removeRevision(cache, repo,
                                QFileInfo(QString::fromStdString(st->loadablePath())).fileName().toStdString());
            const auto after = hub::repoStatus(cache, repo);
            if (after && !after->installed()) hub::removeRepo(cache, repo);
        } else if (st) {
            hub::removeRepo(cache, repo);
        }
    } catch (const std::exception& e) {
        if (error) *error = tr("Could not remove %1: %2").arg(m.name, QString::fromStdString(e.what()));
        updateFromCache(m);
        emit modelChanged(repoId);
        return false;
    }
    m.state = State::NotInstalled;
    m.bytesDone = m.bytesTotal = 0;
    m.error.clear();
    updateFromCache(m);
    saveState();
    if (!m.inCatalog && m.folder.isEmpty()) {
        m_models.removeAt(i);
        emit listChanged();
    } else {
        emit modelChanged(repoId);
        if (m_sizesWanted) fetchSize(m);
    }
    emit modelsChanged();
    return true;
}

void ModelManager::loadState() {
    QFile file(m_stateFile);
    if (!file.open(QIODevice::ReadOnly)) return;
    const QJsonArray downloads =
        QJsonDocument::fromJson(file.readAll()).object().value(QStringLiteral("downloads")).toArray();
    for (const QJsonValue& value : downloads) {
        const QJsonObject o = value.toObject();
        const QString repoId = o.value(QStringLiteral("repo")).toString();
        int i = indexOf(repoId);
        if (i < 0 || repoId.isEmpty()) continue;
        Model& m = m_models[i];
        if (m.state == State::Installed || m.state == State::Downloading || m.state == State::Queued) continue;
        // Running, queued or paused when the studio stopped: paused now, resumed by the user.
        m.state = State::Paused;
        m.bytesDone = qint64(o.value(QStringLiteral("bytes_done")).toDouble());
        m.bytesTotal = qint64(o.value(QStringLiteral("bytes_total")).toDouble());
        m.error = o.value(QStringLiteral("error")).toString();
        updateFromCache(m);
        emit modelChanged(repoId);
    }
}

void ModelManager::saveState() const {
    if (m_stateFile.isEmpty()) return;
    QJsonArray downloads;
    for (const Model& m : m_models) {
        if (m.state != State::Downloading && m.state != State::Queued && m.state != State::Paused) continue;
        QJsonObject o;
        o.insert(QStringLiteral("repo"), m.repoId);
        o.insert(QStringLiteral("state"), m.state == State::Paused   ? QStringLiteral("paused")
                                          : m.state == State::Queued ? QStringLiteral("queued")
                                                                     : QStringLiteral("downloading"));
        o.insert(QStringLiteral("bytes_done"), double(m.bytesDone));
        o.insert(QStringLiteral("bytes_total"), double(m.bytesTotal));
        if (!m.error.isEmpty()) o.insert(QStringLiteral("error"), m.error);
        downloads.append(o);
    }
    QDir().mkpath(QFileInfo(m_stateFile).absolutePath());
    QString error;
    if (!writeFileAtomically(
            m_stateFile,
            QJsonDocument(QJsonObject{{QStringLiteral("version"), 1}, {QStringLiteral("downloads"), downloads}})
                .toJson(),
            &error))
        qWarning("%s", qPrintable(error));
}

#include "ModelManager.moc"
