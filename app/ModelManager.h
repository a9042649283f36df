#pragma once

#include <memory>

#include <QList>
#include <QObject>
#include <QString>
#include <QStringList>

class QThread;
namespace koala::hub {
class CancelToken;
}
class ModelDownloadWorker;

// Downloads, lists and removes the models of the Hugging Face cache the studio reads (ModelDiscovery::hfCacheDir),
// through koala_hub. Qt Core only.
//
// Threading: one worker QThread runs koala::hub::download, one repo at a time (others wait in a queue); its progress
// arrives on the manager's thread through queued signals. pause() and cancel() set the download's cancel token (an
// atomic), so they take effect within a fraction of a second. Every other call is for the manager's own thread.
//
// Sizes: fetchSizes() asks the hub (koala::hub::planDownload, on a second worker thread, so neither the caller nor a
// running download waits) for the exact size of what a download of each model would fetch and how much of it the cache
// already holds; until the answer comes a model's sizeState is Fetching, and when the hub cannot be asked (offline,
// unreachable) it is Approximate and the catalog's approxGb stands.
//
// Persistence: the downloads that were running, queued or paused are written (QSaveFile) to the state file on each
// change, so after a restart, or a crash, they show as Paused with the progress they had, and resume() picks up the
// partial files koala_hub kept.
class ModelManager final : public QObject {
    Q_OBJECT

public:
    // A model the manager offers to download.
    struct CatalogEntry {
        QString repoId;      // "etri-vilab/koala-700m-llava-cap"
        QString name;        // "KOALA-700M"
        double approxGb{0};  // approximate download size of the fp16 pipeline; 0 when not known
    };
    // KOALA-700M, KOALA-1B, KOALA-Lightning-700M and -1B, SDXL-base, SSD-1B, Vega, SD 2.1.
    static QList<CatalogEntry> defaultCatalog();

    enum class State {
        NotInstalled,
        Queued,       // waits for the download before it
        Downloading,  // running now
        Paused,       // stopped by pause(), by closing the studio or by an error; resume() continues
        Partial,      // the cache holds part of it (another tool's, or an older run's): resume() completes it
        Installed
    };
    static QString stateName(State state);  // "not installed", "queued", ...

    struct Model {
        QString repoId;
        QString name;
        double approxGb = 0;
        bool inCatalog = true;  // false: found in the cache only
        State state = State::NotInstalled;
        QString folder;             // the snapshot the loader takes (installed), else the repo folder; "" if none
        qint64 diskBytes = 0;       // on disk: complete blobs and partial files
        qint64 bytesDone = 0;       // this download (or the paused one): bytes on disk of the files it fetches
        qint64 bytesTotal = 0;      // their total size; 0 until the listing is known
        double bytesPerSecond = 0;  // while downloading
        double secondsLeft = -1;    // while downloading; -1 unknown
        QString file;               // the file being fetched (one of them: filesActive are fetched at once)
        int filesActive = 0;        // while downloading
        QString error;              // why the last download stopped, when it failed
        int otherSnapshots = 0;     // complete snapshots besides the one remove() takes
        // What a download fetches, from the hub (fetchSizes()); -1 while not known.
        enum class SizeState { Unknown, Fetching, Exact, Approximate };
        SizeState sizeState = SizeState::Unknown;
        qint64 downloadBytes = -1;  // the whole of it (the pipeline files of the chosen variant)
        qint64 bytesLeft = -1;      // of that, what is neither in the cache nor in its partial files
        QString sizeError;          // why the size is approximate
    };

    // cacheDir: the Hugging Face cache; stateFile: where the downloads' state is kept (a JSON file).
    ModelManager(const QString& cacheDir, const QString& stateFile, QObject* parent = nullptr);
    ~ModelManager() override;  // stops a running download (its partial files stay) and joins the worker

    // Tests: other models to offer, another hub (HF_ENDPOINT otherwise).
    void setCatalog(const QList<CatalogEntry>& catalog);
    void setEndpoint(const QString& endpoint);
    // Files fetched at once by a download (1..16; 0 = koala_hub's default, 4).
    void setParallelFiles(int files) { m_parallelFiles = files; }

    QString cacheDir() const { return m_cacheDir; }
    QString stateFile() const { return m_stateFile; }

    // The catalog, then the other model repos of the cache.
    QList<Model> models() const { return m_models; }
    Model model(const QString& repoId) const;

    // Reads the cache again (file system only, no network).
    void refresh();

    // Asks the hub for the download size of each model that is not installed (not again for one whose size is
    // known, unless `force`). Returns at once; modelChanged() follows for each answer. After this, a download that
    // stops and a removal ask again for that model.
    void fetchSizes(bool force = false);

    // Starts (or queues) a download; it also resumes a paused or partial one. False, with *error, when refused.
    bool download(const QString& repoId, QString* error = nullptr);
    bool resume(const QString& repoId, QString* error = nullptr) { return download(repoId, error); }
    // Stops a download and keeps what it fetched.
    void pause(const QString& repoId);
    // Stops a download (or forgets a paused one) and deletes its partial files.
    void cancel(const QString& repoId);
    // Removes the snapshot the loader takes, and the blobs no other snapshot of the repo links to; a repo with no
    // complete snapshot goes entirely. False, with *error, while it is downloading or when the files resist.
    bool remove(const QString& repoId, QString* error = nullptr);

    bool isBusy() const { return !m_running.isEmpty(); }

signals:
    void modelChanged(const QString& repoId);  // state, progress or size of one model
    void listChanged();                        // models were added to or dropped from the list
    void modelsChanged();                      // what is installed changed: model discovery should scan again
    void downloadFailed(const QString& repoId, const QString& message);

private:
    void onProgress(const QString& repoId, const QString& file, qint64 done, qint64 total, double rate,
                    double secondsLeft, int active);
    void onSized(const QString& repoId, bool ok, qint64 total, qint64 left, const QString& error);
    void fetchSize(Model& model);
    void onFinished(const QString& repoId, bool ok, bool cancelled, const QString& message);
    void startNext();
    void loadState();
    void saveState() const;
    int indexOf(const QString& repoId) const;
    void updateFromCache(Model& model) const;
    void discardPartial(Model& model);

    QString m_cacheDir;
    QString m_stateFile;
    QString m_endpoint;
    QList<CatalogEntry> m_catalog;
    QList<Model> m_models;
    QStringList m_queue;  // waiting, in order
    QString m_running;    // the repo downloading now
    bool m_discardRunning = false;
    qint64 m_totalBefore = 0;  // the running download's total when it started (a resume lists fewer files)
    qint64 m_offset = -1;      // bytes of files it no longer fetches; -1 until its first progress
    std::shared_ptr<koala::hub::CancelToken> m_cancel;
    QThread* m_thread = nullptr;
    ModelDownloadWorker* m_worker = nullptr;
    int m_parallelFiles = 0;
    bool m_sizesWanted = false;  // fetchSizes() was called: keep the sizes current
    std::shared_ptr<koala::hub::CancelToken> m_sizeCancel;
    QThread* m_sizeThread = nullptr;
    QObject* m_sizeWorker = nullptr;
};
