// The model manager page, offscreen, against the local stand-in for the hub (tests/hub/fake_hub.py).
#include <QAction>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QLabel>
#include <QLocale>
#include <QMenuBar>
#include <QProcess>
#include <QProgressBar>
#include <QPushButton>
#include <QTemporaryDir>
#include <QTest>

#include "ModelManager.h"
#include "modelmanagerpage.h"
#include "nomodelpanel.h"
#include "uitestutil.h"

class TestModelManagerPage : public QObject {
    Q_OBJECT

private slots:
    void initTestCase();
    void cleanupTestCase();
    void listsTheCatalog();
    void downloadShowsProgressThenInstalled();
    void sizesFromTheHub();
    void noModelPanelHoldsTheManager();
    void mainWindowHasTheManager();

private:
    QProcess m_server;
    QString m_endpoint;
    QTemporaryDir m_dir;
};

void TestModelManagerPage::initTestCase() {
    m_server.setProgram(qEnvironmentVariable("KOALA_PYTHON", QStringLiteral("python3")));
    m_server.setArguments({QStringLiteral(KOALA_TEST_DATA "/../hub/fake_hub.py"), QStringLiteral("--fixture"),
                           QStringLiteral(KOALA_TEST_DATA "/fixtures/tiny-koala-700m")});
    m_server.start();
    if (!m_server.waitForStarted(10000)) QSKIP("python3 is missing: the fake hub cannot start");
    QByteArray line;
    QTRY_VERIFY_WITH_TIMEOUT((line += m_server.readAllStandardOutput()).contains('\n'), 20000);
    QVERIFY2(line.startsWith("PORT "), line.constData());
    m_endpoint = QStringLiteral("http://127.0.0.1:") + QString::fromLatin1(line.mid(5).trimmed());
}

void TestModelManagerPage::cleanupTestCase() {
    m_server.kill();
    m_server.waitForFinished();
}

void TestModelManagerPage::listsTheCatalog() {
    ModelManager manager(m_dir.filePath(QStringLiteral("empty/hub")), m_dir.filePath(QStringLiteral("empty/d.json")));
    manager.setEndpoint(QStringLiteral("http://127.0.0.1:9"));  // no hub to ask: the catalog's estimates stand
    ModelManagerPage page(&manager);
    page.resize(1000, 600);
    page.show();
    QVERIFY(QTest::qWaitForWindowExposed(&page));
    const QList<ModelManager::CatalogEntry> catalog = ModelManager::defaultCatalog();
    QCOMPARE(catalog.size(), 8);
    for (const auto& entry : catalog) {
        auto* row = page.findChild<QWidget*>(QStringLiteral("modelRow:") + entry.repoId);
        QVERIFY2(row, qPrintable(entry.repoId));
        auto* size = row->findChild<QLabel*>(QStringLiteral("size"));
        QTRY_VERIFY2_WITH_TIMEOUT(size->text().startsWith(QStringLiteral("\u2248 ")), qPrintable(size->text()), 30000);
        QVERIFY2(size->toolTip().contains(QStringLiteral("could not be asked")), qPrintable(size->toolTip()));
        QVERIFY(row->findChild<QPushButton*>(QStringLiteral("download"))->isVisible());
        QVERIFY(!row->findChild<QPushButton*>(QStringLiteral("remove"))->isVisible());
        QVERIFY(!row->findChild<QProgressBar*>(QStringLiteral("progress"))->isVisible());
    }
    auto* koala = page.findChild<QWidget*>(QStringLiteral("modelRow:etri-vilab/koala-700m-llava-cap"));
    QVERIFY(koala->findChild<QLabel*>(QStringLiteral("name"))->text().contains(QStringLiteral("KOALA-700M")));
    QCOMPARE(koala->findChild<QLabel*>(QStringLiteral("size"))->text(), QStringLiteral("\u2248 3.2 GB"));
    // One help line, which names the cache folder.
    auto* help = page.findChild<QLabel*>(QStringLiteral("modelManagerHelp"));
    QVERIFY(help->text().contains(QStringLiteral("empty")));
}

void TestModelManagerPage::downloadShowsProgressThenInstalled() {
    const QString repo = QStringLiteral("koala/slow-page");
    ModelManager manager(m_dir.filePath(QStringLiteral("dl/hub")), m_dir.filePath(QStringLiteral("dl/d.json")));
    manager.setCatalog({{repo, QStringLiteral("Tiny"), 0.02}});
    manager.setEndpoint(m_endpoint);
    ModelManagerPage page(&manager);
    page.resize(1000, 400);
    page.show();
    QVERIFY(QTest::qWaitForWindowExposed(&page));
    auto* row = page.findChild<QWidget*>(QStringLiteral("modelRow:") + repo);
    QVERIFY(row);
    auto* bar = row->findChild<QProgressBar*>(QStringLiteral("progress"));
    auto* status = row->findChild<QLabel*>(QStringLiteral("status"));
    QTest::mouseClick(row->findChild<QPushButton*>(QStringLiteral("download")), Qt::LeftButton);
    QVERIFY(bar->isVisible());
    QVERIFY(row->findChild<QPushButton*>(QStringLiteral("pause"))->isVisible());
    QVERIFY(row->findChild<QPushButton*>(QStringLiteral("cancel"))->isVisible());
    QTRY_VERIFY_WITH_TIMEOUT(bar->value() > 0 && bar->value() < bar->maximum(), 30000);
    QVERIFY(status->text().startsWith(QStringLiteral("Downloading")));
    QTRY_COMPARE_WITH_TIMEOUT(status->text(), QStringLiteral("Installed"), 60000);
    QVERIFY(!bar->isVisible());
    QVERIFY(row->findChild<QPushButton*>(QStringLiteral("remove"))->isVisible());
    QVERIFY(row->findChild<QPushButton*>(QStringLiteral("openFolder"))->isVisible());
    QVERIFY(!row->findChild<QPushButton*>(QStringLiteral("download"))->isVisible());
    QVERIFY(row->findChild<QLabel*>(QStringLiteral("size"))->text().contains(QStringLiteral("on disk")));

    // Remove asks first; "no" keeps it, "yes" removes it.
    QString asked;
    bool answer = false;
    page.setConfirmRemoval([&](const QString& question) {
        asked = question;
        return answer;
    });
    QTest::mouseClick(row->findChild<QPushButton*>(QStringLiteral("remove")), Qt::LeftButton);
    QVERIFY(asked.contains(QStringLiteral("Tiny")));
    QCOMPARE(manager.model(repo).state, ModelManager::State::Installed);
    answer = true;
    QTest::mouseClick(row->findChild<QPushButton*>(QStringLiteral("remove")), Qt::LeftButton);
    QCOMPARE(manager.model(repo).state, ModelManager::State::NotInstalled);
    QVERIFY(row->findChild<QPushButton*>(QStringLiteral("download"))->isVisible());
}

void TestModelManagerPage::sizesFromTheHub() {
    const QString repo = QStringLiteral("koala/tiny");
    ModelManager manager(m_dir.filePath(QStringLiteral("sizes/hub")), m_dir.filePath(QStringLiteral("sizes/d.json")));
    manager.setCatalog({{repo, QStringLiteral("Tiny"), 0.02}});
    manager.setEndpoint(m_endpoint);
    ModelManagerPage page(&manager);
    page.resize(1000, 400);
    auto* row = page.findChild<QWidget*>(QStringLiteral("modelRow:") + repo);
    QVERIFY(row);
    auto* size = row->findChild<QLabel*>(QStringLiteral("size"));
    QCOMPARE(size->text(), QStringLiteral("\u2248 0.0 GB"));  // not shown yet: not asked yet
    page.show();
    // Showing the page asks the hub, off the GUI thread: "size…" until the answer comes.
    QCOMPARE(size->text(), QStringLiteral("size\u2026"));
    QVERIFY(QTest::qWaitForWindowExposed(&page));
    QTRY_VERIFY2_WITH_TIMEOUT(size->text().endsWith(QStringLiteral(" to download")), qPrintable(size->text()), 30000);
    const qint64 total = manager.model(repo).downloadBytes;
    QVERIFY(total > 10'000'000);
    QCOMPARE(size->text(),
             QLocale().formattedDataSize(total, 1, QLocale::DataSizeSIFormat) + QStringLiteral(" to download"));
    QVERIFY(size->toolTip().contains(QStringLiteral("hub")));

    // A partly downloaded model: what is left of it.
    QVERIFY(manager.download(repo));
    QTRY_VERIFY_WITH_TIMEOUT(manager.model(repo).state == ModelManager::State::Installed, 60000);
    const QString blobs = manager.cacheDir() + QStringLiteral("/models--koala--tiny/blobs/");
    const QString unet = QFile::symLinkTarget(manager.model(repo).folder +
                                              QStringLiteral("/unet/diffusion_pytorch_model.fp16.safetensors"));
    QVERIFY(!unet.isEmpty());
    QVERIFY(manager.remove(repo));  // removes the repo; then a partial UNet file as a cut download leaves it
    QVERIFY(QDir().mkpath(blobs));
    QFile partial(blobs + QFileInfo(unet).fileName() + QStringLiteral(".incomplete"));
    QVERIFY(partial.open(QIODevice::WriteOnly));
    QCOMPARE(partial.write(QByteArray(1'000'000, '\0')), qint64(1'000'000));
    partial.close();
    manager.refresh();
    manager.fetchSizes(true);
    QTRY_VERIFY2_WITH_TIMEOUT(size->text().contains(QStringLiteral(" left of ")), qPrintable(size->text()), 30000);
    QCOMPARE(size->text(), QLocale().formattedDataSize(total - 1'000'000, 1, QLocale::DataSizeSIFormat) +
                               QStringLiteral(" left of ") +
                               QLocale().formattedDataSize(total, 1, QLocale::DataSizeSIFormat));
    QVERIFY(row->findChild<QPushButton*>(QStringLiteral("resume"))->isVisible());
}

void TestModelManagerPage::noModelPanelHoldsTheManager() {
    ModelManager manager(m_dir.filePath(QStringLiteral("panel/hub")), m_dir.filePath(QStringLiteral("panel/d.json")));
    manager.setEndpoint(QStringLiteral("http://127.0.0.1:9"));
    NoModelPanel panel(&manager);
    panel.resize(1000, 700);
    panel.show();
    QVERIFY(QTest::qWaitForWindowExposed(&panel));
    QVERIFY(panel.findChild<ModelManagerPage*>());
    // ux-review 5: one help line, no download commands, no pointer to Settings.
    const QString help = panel.findChild<QLabel*>(QStringLiteral("noModelHelp"))->text();
    QVERIFY(!help.contains(QStringLiteral("huggingface-cli")));
    QVERIFY(!help.contains(QStringLiteral("Settings")));
    QVERIFY(panel.findChild<QPushButton*>(QStringLiteral("noModelAddButton")));
    const QSize minimum = panel.minimumSizeHint();
    QVERIFY2(minimum.width() <= 1000, qPrintable(QString::number(minimum.width())));
}

void TestModelManagerPage::mainWindowHasTheManager() {
    IsolatedWindowFiles files;
    MainWindow window(files.options({}));
    // No model: the manager is where the gallery would be, over the window's own (isolated) cache.
    auto* panel = window.findChild<NoModelPanel*>(QStringLiteral("noModelPanel"));
    QVERIFY(panel && panel->modelManagerPage());
    QVERIFY(window.modelManager());
    QCOMPARE(window.modelManager()->cacheDir(), files.dir.filePath(QStringLiteral("hf-cache")));
    QVERIFY(window.modelManager()->stateFile().startsWith(files.dir.path()));
    bool found = false;
    for (QAction* menu : window.menuBar()->actions())
        if (menu->menu() && menu->text() == QStringLiteral("&Models"))
            for (QAction* action : menu->menu()->actions())
                found |= action->text() == QStringLiteral("Model &manager…");
    QVERIFY(found);
}

QTEST_MAIN(TestModelManagerPage)
#include "tst_modelmanagerpage.moc"
