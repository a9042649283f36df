// ModelManager against the local stand-in for the hub (tests/hub/fake_hub.py): a download with progress, pause and
// resume, the state a second manager reads back, removal that keeps a blob another snapshot uses, a partial repo.
#include <QDir>
#include <QDirIterator>
#include <QElapsedTimer>
#include <QFile>
#include <QProcess>
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
    QVERIFY(m->download(repo));
    QVERIFY(waitFor(*m, repo, ModelManager::State::Paused));
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

QTEST_GUILESS_MAIN(TestModelManager)
#include "tst_modelmanager.moc"
