// ModelManager against the local stand-in for the hub (tests/hub/fake_hub.py): a download with progress, pause and
// resume, the state a second manager reads back, removal that keeps a blob another snapshot uses, a partial repo.
#include <QCryptographicHash>
#include <QDir>
#include <QDirIterator>
#include <QElapsedTimer>
#include <QFile>
#include <QProcess>
#include <QSet>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>

#include "ModelManager.h"

class TestModelManager : public QObject {
    Q_OBJECT

private slots:
    void initTestCase();
    void cleanupTestCase();
    void downloadsWithProgress();
    void pauseThenResume();
    void stateSurvivesARestart();
    void removeKeepsASharedBlob();
    void halfDownloadedRepoIsPartial();
    void cancelDeletesThePartialFiles();
    void sizesFromTheHubOffTheCallersThread();
    void sizesApproximateWhenTheHubCannotBeAsked();

private:
    std::unique_ptr<ModelManager> manager(const QString& name, const QStringList& repos);
    // Waits until the model reaches one of the states (the download finishes on the worker thread).
    bool waitFor(ModelManager& m, const QString& repoId, ModelManager::State state, int ms = 60000);

    QProcess m_server;
    QString m_endpoint;
    QTemporaryDir m_dir;
};

void TestModelManager::initTestCase() {
    const QString script = QStringLiteral(KOALA_TEST_DATA "/../hub/fake_hub.py");
    const QString fixture = QStringLiteral(KOALA_TEST_DATA "/fixtures/tiny-koala-700m");
    m_server.setProgram(qEnvironmentVariable("KOALA_PYTHON", QStringLiteral("python3")));
    m_server.setArguments({script, QStringLiteral("--fixture"), fixture});
    m_server.start();
    if (!m_server.waitForStarted(10000)) QSKIP("python3 is missing: the fake hub cannot start");
    QByteArray line;
    QTRY_VERIFY_WITH_TIMEOUT((line += m_server.readAllStandardOutput()).contains('\n'), 20000);
    QVERIFY2(line.startsWith("PORT "), line.constData());
    m_endpoint = QStringLiteral("http://127.0.0.1:") + QString::fromLatin1(line.mid(5).trimmed());
}

void TestModelManager::cleanupTestCase() {
    m_server.kill();
    m_server.waitForFinished();
}

std::unique_ptr<ModelManager> TestModelManager::manager(const QString& name, const QStringList& repos) {
    auto m = std::make_unique<ModelManager>(m_dir.filePath(name + QStringLiteral("/hub")),
                                            m_dir.filePath(name + QStringLiteral("/downloads.json")));
    QList<ModelManager::CatalogEntry> catalog;
    for (const QString& repo : repos) catalog.append({repo, repo.section(QLatin1Char('/'), -1), 0.02});
    m->setCatalog(catalog);
    m->setEndpoint(m_endpoint);
    return m;
}

bool TestModelManager::waitFor(ModelManager& m, const QString& repoId, ModelManager::State state, int ms) {
    QElapsedTimer timer;
    timer.start();
    while (m.model(repoId).state != state && timer.elapsed() < ms) QTest::qWait(20);
    return m.model(repoId).state == state;
}

void TestModelManager::downloadsWithProgress() {
    const QString repo = QStringLiteral("koala/tiny");
    auto m = manager(QStringLiteral("full"), {repo});
    QCOMPARE(m->models().size(), 1);
    QCOMPARE(m->model(repo).state, ModelManager::State::NotInstalled);
    QSignalSpy changed(m.get(), &ModelManager::modelChanged);
    QSignalSpy installed(m.get(), &ModelManager::modelsChanged);
    QList<qint64> done;
    connect(m.get(), &ModelManager::modelChanged, this, [&](const QString&) {
        if (m->model(repo).state == ModelManager::State::Downloading && m->model(repo).bytesTotal > 0)
            done.append(m->model(repo).bytesDone);
    });
    QString error;
    QVERIFY2(m->download(repo, &error), qPrintable(error));
    QVERIFY(waitFor(*m, repo, ModelManager::State::Installed));
    QVERIFY(installed.count() >= 1);
    QVERIFY(!done.isEmpty());
    QVERIFY(std::is_sorted(done.cbegin(), done.cend()));
    const ModelManager::Model model = m->model(repo);
    QVERIFY(model.bytesTotal > 10'000'000);
    QCOMPARE(model.bytesDone, model.bytesTotal);
    QVERIFY(model.diskBytes >= model.bytesTotal);
    QVERIFY(QFile::exists(model.folder + QStringLiteral("/model_index.json")));
    QVERIFY(model.folder.contains(QStringLiteral("models--koala--tiny/snapshots/")));
    QVERIFY(!m->download(repo, &error));  // already there
}

void TestModelManager::pauseThenResume() {
    const QString repo = QStringLiteral("koala/slow-pause");
    auto m = manager(QStringLiteral("pause"), {repo});
    connect(m.get(), &ModelManager::modelChanged, this, [&](const QString&) {
        if (m->model(repo).state == ModelManager::State::Downloading && m->model(repo).bytesDone > 1'000'000)
            m->pause(repo);
    });
    int filesAtOnce = 0;
    connect(m.get(), &ModelManager::modelChanged, this,
            [&](const QString&) { filesAtOnce = std::max(filesAtOnce, m->model(repo).filesActive); });
    QVERIFY(m->download(repo));
    QVERIFY(waitFor(*m, repo, ModelManager::State::Paused));
    QVERIFY2(filesAtOnce >= 2, qPrintable(QString::number(filesAtOnce)));  // koala_hub's default: 4 at once
    const ModelManager::Model paused = m->model(repo);
    QVERIFY(paused.bytesDone > 1'000'000 && paused.bytesDone < paused.bytesTotal);
    QVERIFY(paused.error.isEmpty());
    QVERIFY(paused.diskBytes > 0);
    disconnect(m.get(), &ModelManager::modelChanged, this, nullptr);
    // The bar continues from where it stopped.
    qint64 lowest = -1;
    connect(m.get(), &ModelManager::modelChanged, this, [&](const QString&) {
        const auto model = m->model(repo);
        if (model.state == ModelManager::State::Downloading && model.bytesTotal > 0 && lowest < 0)
            lowest = model.bytesDone;
    });
    QVERIFY(m->resume(repo));
    QVERIFY(waitFor(*m, repo, ModelManager::State::Installed));
    QVERIFY2(lowest >= paused.bytesDone / 2, qPrintable(QStringLiteral("%1 < %2").arg(lowest).arg(paused.bytesDone)));
    QCOMPARE(m->model(repo).bytesDone, m->model(repo).bytesTotal);
}

void TestModelManager::stateSurvivesARestart() {
    const QString repo = QStringLiteral("koala/slow-restart");
    qint64 doneBefore = 0;
    {
        auto m = manager(QStringLiteral("restart"), {repo});
        QVERIFY(m->download(repo));
        QTRY_VERIFY_WITH_TIMEOUT(m->model(repo).bytesDone > 1'000'000, 30000);
        doneBefore = m->model(repo).bytesDone;
        // Closed mid-download (as the studio closing): the next start shows it paused.
    }
    QFile state(m_dir.filePath(QStringLiteral("restart/downloads.json")));
    QVERIFY(state.open(QIODevice::ReadOnly));
    QVERIFY(state.readAll().contains("koala/slow-restart"));
    auto second = manager(QStringLiteral("restart"), {repo});
    const ModelManager::Model model = second->model(repo);
    QCOMPARE(model.state, ModelManager::State::Paused);
    QVERIFY(model.bytesDone >= doneBefore && model.bytesTotal > model.bytesDone);
    QVERIFY(second->resume(repo));
    QVERIFY(waitFor(*second, repo, ModelManager::State::Installed));
    // Installed: nothing left in the state file.
    auto third = manager(QStringLiteral("restart"), {repo});
    QCOMPARE(third->model(repo).state, ModelManager::State::Installed);
}

void TestModelManager::removeKeepsASharedBlob() {
    const QString repo = QStringLiteral("koala/tiny");
    auto m = manager(QStringLiteral("remove"), {repo});
    QVERIFY(m->download(repo));
    QVERIFY(waitFor(*m, repo, ModelManager::State::Installed));
    const QString snapshot = m->model(repo).folder;
    // A second snapshot (an older revision) that shares every blob but the first text encoder's weights.
    const QString repoDir = QDir::cleanPath(snapshot + QStringLiteral("/../.."));
    const QString older = repoDir + QStringLiteral("/snapshots/") + QString(40, QLatin1Char('a'));
    const QString ownFile = QStringLiteral("text_encoder/model.fp16.safetensors");
    QStringList kept;
    QDirIterator it(snapshot, QDir::Files | QDir::System, QDirIterator::Subdirectories);
    while (it.hasNext()) {
        const QString path = QDir(snapshot).relativeFilePath(it.next());
        if (path == ownFile) continue;
        const QString blob = QFile::symLinkTarget(snapshot + QLatin1Char('/') + path);
        QVERIFY2(!blob.isEmpty(), qPrintable(path));
        kept << blob;
        const QString link = older + QLatin1Char('/') + path;
        QVERIFY(QDir().mkpath(QFileInfo(link).absolutePath()));
        QVERIFY(QFile::link(QFileInfo(link).absoluteDir().relativeFilePath(blob), link));
    }
    QVERIFY(kept.size() > 5);
    const QString textEncoderBlob =
        QFile::symLinkTarget(snapshot + QStringLiteral("/text_encoder/model.fp16.safetensors"));
    QVERIFY(QFile::exists(textEncoderBlob));
    m->refresh();
    QCOMPARE(m->model(repo).otherSnapshots, 1);
    QSignalSpy installed(m.get(), &ModelManager::modelsChanged);
    QString error;
    QVERIFY2(m->remove(repo, &error), qPrintable(error));
    QCOMPARE(installed.count(), 1);
    QVERIFY(!QFileInfo::exists(snapshot));
    for (const QString& blob : kept) QVERIFY2(QFile::exists(blob), qPrintable(blob));
    QVERIFY(!QFile::exists(textEncoderBlob));
    // The older snapshot is still there and complete: the model stays installed from it.
    QCOMPARE(m->model(repo).state, ModelManager::State::Installed);
    QCOMPARE(m->model(repo).folder, QDir::cleanPath(older));
    // The last snapshot takes the repo with it.
    QVERIFY2(m->remove(repo, &error), qPrintable(error));
    QCOMPARE(m->model(repo).state, ModelManager::State::NotInstalled);
    QVERIFY(!QFileInfo::exists(repoDir));
}

void TestModelManager::halfDownloadedRepoIsPartial() {
    const QString repo = QStringLiteral("koala/slow-partial");
    {
        auto m = manager(QStringLiteral("partial"), {repo});
        connect(m.get(), &ModelManager::modelChanged, this, [&](const QString&) {
            if (m->model(repo).bytesDone > 1'000'000) m->pause(repo);
        });
        QVERIFY(m->download(repo));
        QVERIFY(waitFor(*m, repo, ModelManager::State::Paused));
    }
    // Without the state file (another tool's download, say), the cache alone tells it is partial.
    QVERIFY(QFile::remove(m_dir.filePath(QStringLiteral("partial/downloads.json"))));
    auto m = manager(QStringLiteral("partial"), {repo});
    const ModelManager::Model model = m->model(repo);
    QCOMPARE(model.state, ModelManager::State::Partial);
    QVERIFY(model.diskBytes > 1'000'000);
    QVERIFY(model.folder.endsWith(QStringLiteral("models--koala--slow-partial")));
    // A model of the cache that is not in the catalog is listed too.
    auto other = manager(QStringLiteral("partial"), {QStringLiteral("koala/tiny")});
    QCOMPARE(other->models().size(), 2);
    QCOMPARE(other->model(repo).inCatalog, false);
    QCOMPARE(other->model(repo).state, ModelManager::State::Partial);
}

void TestModelManager::cancelDeletesThePartialFiles() {
    const QString repo = QStringLiteral("koala/slow-cancel");
    auto m = manager(QStringLiteral("cancel"), {repo});
    connect(m.get(), &ModelManager::modelChanged, this, [&](const QString&) {
        if (m->model(repo).state == ModelManager::State::Downloading && m->model(repo).bytesDone > 1'000'000)
            m->cancel(repo);
    });
    QVERIFY(m->download(repo));
    QTRY_VERIFY_WITH_TIMEOUT(m->model(repo).state == ModelManager::State::NotInstalled, 30000);
    QVERIFY(m->model(repo).error.isEmpty());
    QCOMPARE(m->model(repo).diskBytes, qint64(0));
}

namespace {

// The fixture pipeline's bytes as a download fetches them: every file once per distinct content (the two tokenizers
// share their vocab and merges), the fake hub's fp16 files being the same bytes as the fixture's plain ones.
qint64 fixtureDownloadBytes() {
    QSet<QByteArray> seen;
    qint64 bytes = 0;
    QDirIterator it(QStringLiteral(KOALA_TEST_DATA "/fixtures/tiny-koala-700m"), QDir::Files,
                    QDirIterator::Subdirectories);
    while (it.hasNext()) {
        const QString path = it.next();
        if (QFileInfo(path).fileName().startsWith(QStringLiteral("reference."))) continue;
        QFile f(path);
        if (!f.open(QIODevice::ReadOnly)) return -1;
        const QByteArray data = f.readAll();
        if (!seen.contains(QCryptographicHash::hash(data, QCryptographicHash::Sha256))) bytes += data.size();
        seen.insert(QCryptographicHash::hash(data, QCryptographicHash::Sha256));
    }
    return bytes;
}

}  // namespace

void TestModelManager::sizesFromTheHubOffTheCallersThread() {
    const QString repo = QStringLiteral("koala/tiny");
    auto m = manager(QStringLiteral("sizes"), {repo});
    QCOMPARE(m->model(repo).sizeState, ModelManager::Model::SizeState::Unknown);
    m->fetchSizes();
    // The call returned before the hub answered: the answer comes through the event loop.
    QCOMPARE(m->model(repo).sizeState, ModelManager::Model::SizeState::Fetching);
    QCOMPARE(m->model(repo).downloadBytes, qint64(-1));
    QTRY_COMPARE_WITH_TIMEOUT(m->model(repo).sizeState, ModelManager::Model::SizeState::Exact, 30000);
    const qint64 expected = fixtureDownloadBytes();
    QVERIFY(expected > 10'000'000);
    QCOMPARE(m->model(repo).downloadBytes, expected);
    QCOMPARE(m->model(repo).bytesLeft, expected);
    // Nothing was written to the cache by asking.
    QVERIFY(!QFileInfo::exists(m->cacheDir() + QStringLiteral("/models--koala--tiny")));

    // A partial file of the VAE weights (as a download cut off leaves it): that much less is left.
    QFile vae(QStringLiteral(KOALA_TEST_DATA "/fixtures/tiny-koala-700m/vae/diffusion_pytorch_model.safetensors"));
    QVERIFY(vae.open(QIODevice::ReadOnly));
    const QByteArray weights = vae.readAll();
    const QString blobs = m->cacheDir() + QStringLiteral("/models--koala--tiny/blobs/");
    QVERIFY(QDir().mkpath(blobs));
    QFile partial(blobs + QString::fromLatin1(QCryptographicHash::hash(weights, QCryptographicHash::Sha256).toHex()) +
                  QStringLiteral(".incomplete"));
    QVERIFY(partial.open(QIODevice::WriteOnly));
    QCOMPARE(partial.write(weights.left(100000)), qint64(100000));
    partial.close();
    m->refresh();
    QCOMPARE(m->model(repo).state, ModelManager::State::Partial);
    m->fetchSizes();  // known already: not asked again
    QCOMPARE(m->model(repo).sizeState, ModelManager::Model::SizeState::Exact);
    m->fetchSizes(true);
    QTRY_COMPARE_WITH_TIMEOUT(m->model(repo).sizeState, ModelManager::Model::SizeState::Exact, 30000);
    QCOMPARE(m->model(repo).downloadBytes, expected);
    QCOMPARE(m->model(repo).bytesLeft, expected - 100000);

    // A finished download needs no size; a removal asks again (the manager keeps sizes current once asked).
    QVERIFY(m->download(repo));
    QVERIFY(waitFor(*m, repo, ModelManager::State::Installed));
    QCOMPARE(m->model(repo).bytesTotal, m->model(repo).bytesDone);
    QVERIFY(m->remove(repo));
    QCOMPARE(m->model(repo).sizeState, ModelManager::Model::SizeState::Fetching);
    QTRY_COMPARE_WITH_TIMEOUT(m->model(repo).sizeState, ModelManager::Model::SizeState::Exact, 30000);
    QCOMPARE(m->model(repo).bytesLeft, expected);
}

void TestModelManager::sizesApproximateWhenTheHubCannotBeAsked() {
    const QString repo = QStringLiteral("koala/tiny");
    auto m = manager(QStringLiteral("sizes-off"), {repo});
    m->setEndpoint(QStringLiteral("http://127.0.0.1:9"));  // nothing listens there
    m->fetchSizes();
    QTRY_COMPARE_WITH_TIMEOUT(m->model(repo).sizeState, ModelManager::Model::SizeState::Approximate, 30000);
    QCOMPARE(m->model(repo).approxGb, 0.02);
    QCOMPARE(m->model(repo).downloadBytes, qint64(-1));
    QVERIFY2(m->model(repo).sizeError.contains(QStringLiteral("cannot reach")), qPrintable(m->model(repo).sizeError));
    // HF_HUB_OFFLINE: the hub is not asked at all.
    m->setEndpoint(m_endpoint);
    qputenv("HF_HUB_OFFLINE", "1");
    m->fetchSizes();
    QTRY_COMPARE_WITH_TIMEOUT(m->model(repo).sizeState, ModelManager::Model::SizeState::Approximate, 30000);
    qunsetenv("HF_HUB_OFFLINE");
    QVERIFY2(m->model(repo).sizeError.contains(QStringLiteral("HF_HUB_OFFLINE")), qPrintable(m->model(repo).sizeError));
    // Online again: the exact figure replaces the estimate.
    m->fetchSizes();
    QTRY_COMPARE_WITH_TIMEOUT(m->model(repo).sizeState, ModelManager::Model::SizeState::Exact, 30000);
    QVERIFY(m->model(repo).sizeError.isEmpty());
}

QTEST_GUILESS_MAIN(TestModelManager)
#include "tst_modelmanager.moc"
