#include <QtTest>

#include "ModelDiscovery.h"

class TestModelDiscovery : public QObject {
    Q_OBJECT

private slots:
    void hfCacheDirFromEnvironment();
    void scanFakeHfCache();
    void extraFolders();
    void helpTextNamesTheModels();
    void stableDiffusionFoldersAreListedAndNamed();

private:
    static QString fixture(const char* name);
    static void makeRepo(const QDir& cache, const QString& folder, const QString& snapshotTarget);
    static void writeFile(const QString& path, const QByteArray& data);
};

QString TestModelDiscovery::fixture(const char* name) {
    return QStringLiteral(KOALA_TEST_DATA "/fixtures/") + QLatin1String(name);
}

void TestModelDiscovery::writeFile(const QString& path, const QByteArray& data) {
    QVERIFY(QDir().mkpath(QFileInfo(path).absolutePath()));
    QFile f(path);
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write(data);
}

// The layout huggingface_hub creates: refs/main holds the revision, snapshots/<rev> the files (symlinks to blobs).
void TestModelDiscovery::makeRepo(const QDir& cache, const QString& folder, const QString& snapshotTarget) {
    const QString repo = cache.filePath(folder);
    QVERIFY(QDir().mkpath(repo + QStringLiteral("/snapshots")));
    writeFile(repo + QStringLiteral("/refs/main"), "abc123\n");
    QVERIFY(QFile::link(snapshotTarget, repo + QStringLiteral("/snapshots/abc123")));
}

void TestModelDiscovery::hfCacheDirFromEnvironment() {
    const QByteArray oldHub = qgetenv("HF_HUB_CACHE");
    const QByteArray oldHome = qgetenv("HF_HOME");
    qputenv("HF_HUB_CACHE", "/x/hub-cache");
    qputenv("HF_HOME", "/x/hf-home");
    QCOMPARE(ModelDiscovery::hfCacheDir(), QStringLiteral("/x/hub-cache"));
    qunsetenv("HF_HUB_CACHE");
    QCOMPARE(ModelDiscovery::hfCacheDir(), QStringLiteral("/x/hf-home/hub"));
    qunsetenv("HF_HOME");
    QVERIFY(ModelDiscovery::hfCacheDir().endsWith(QLatin1String("huggingface/hub")));
    if (!oldHub.isNull()) qputenv("HF_HUB_CACHE", oldHub);
    if (!oldHome.isNull()) qputenv("HF_HOME", oldHome);
}

void TestModelDiscovery::scanFakeHfCache() {
    QTemporaryDir tmp;
    const QDir cache(tmp.path());
    makeRepo(cache, QStringLiteral("models--etri-vilab--koala-700m-llava-cap"), fixture("tiny-koala-700m"));
    makeRepo(cache, QStringLiteral("models--etri-vilab--koala-1b-llava-cap"), fixture("tiny-koala-1b"));
    // A broken diffusers repo: its error is collected, the scan goes on.
    writeFile(cache.filePath(QStringLiteral("models--someone--broken/snapshots/r1/model_index.json")), "{}");
    writeFile(cache.filePath(QStringLiteral("models--someone--broken/snapshots/r1/unet/config.json")), "{ not json");
    // Not a diffusion model (an LLM): skipped without an error.
    writeFile(cache.filePath(QStringLiteral("models--openai-community--gpt2/snapshots/r1/config.json")), "{}");
    // Not a repo folder at all.
    QVERIFY(cache.mkpath(QStringLiteral("datasets--x--y/snapshots")));

    const ModelDiscovery::Result r = ModelDiscovery::scan({}, tmp.path());
    QCOMPARE(r.models.size(), 2);
    QCOMPARE(r.errors.size(), 1);
    QVERIFY2(r.errors.first().startsWith(QLatin1String("someone/broken: ")), qPrintable(r.errors.first()));

    const ModelEntry& m1b = r.models.at(0);  // sorted by name
    const ModelEntry& m700 = r.models.at(1);
    QCOMPARE(m700.displayName, QStringLiteral("koala-700m-llava-cap"));
    QCOMPARE(m700.repoId, QStringLiteral("etri-vilab/koala-700m-llava-cap"));
    QVERIFY(m700.fromHfCache);
    QVERIFY(m700.path.endsWith(QLatin1String("snapshots/abc123")));
    QVERIFY(m700.unetParameters > 0);
    QCOMPARE(m700.weightDType, QStringLiteral("fp32"));
    QVERIFY(!m700.unetShape.isEmpty());
    QCOMPARE(m1b.displayName, QStringLiteral("koala-1b-llava-cap"));
    QVERIFY(m1b.unetParameters > 0);
    QVERIFY(m1b.unetParameters != m700.unetParameters);  // different UNet shapes

    // An empty or missing cache is not an error.
    QTemporaryDir empty;
    QVERIFY(ModelDiscovery::scan({}, empty.path()).models.isEmpty());
    const ModelDiscovery::Result none = ModelDiscovery::scan({}, empty.filePath(QStringLiteral("missing")));
    QVERIFY(none.models.isEmpty());
    QVERIFY(none.errors.isEmpty());
}

void TestModelDiscovery::extraFolders() {
    QTemporaryDir tmp;
    QTemporaryDir emptyCache;
    // A folder of models: one good (symlinked), one broken, plus a plain file.
    const QDir parent(tmp.path());
    QVERIFY(QFile::link(fixture("tiny-koala-1b"), parent.filePath(QStringLiteral("my-1b"))));
    writeFile(parent.filePath(QStringLiteral("half-downloaded/model_index.json")), "{}");
    writeFile(parent.filePath(QStringLiteral("readme.txt")), "hi");

    const ModelDiscovery::Result r = ModelDiscovery::scan(
        {tmp.path(), fixture("tiny-koala-700m"), fixture("tiny-koala-1b"), tmp.filePath(QStringLiteral("nope"))},
        emptyCache.path());
    // tiny-koala-1b is reachable twice (symlink and direct) and is listed once.
    QCOMPARE(r.models.size(), 2);
    QVERIFY(!r.models.at(0).fromHfCache);
    QCOMPARE(r.errors.size(), 2);  // half-downloaded, nope
    QVERIFY(r.errors.join('\n').contains(QLatin1String("nope")));

    QString error;
    QVERIFY(ModelDiscovery::inspect(fixture("tiny-koala-700m"), &error));
    QVERIFY(!ModelDiscovery::inspect(tmp.filePath(QStringLiteral("half-downloaded")), &error));
    QVERIFY(!error.isEmpty());
}

void TestModelDiscovery::helpTextNamesTheModels() {
    const QString commands = QString::fromUtf8(ModelDiscovery::downloadCommands);
    QVERIFY(commands.contains(QLatin1String("huggingface-cli download etri-vilab/koala-700m-llava-cap")));
    QVERIFY(commands.contains(QLatin1String("huggingface-cli download etri-vilab/koala-1b-llava-cap")));
    // ux-review 5: the help repeated the commands, broke lines by hand and sent people to Settings, which has no
    // such option.
    const QString help = QString::fromUtf8(ModelDiscovery::helpText);
    QVERIFY(!help.contains(QLatin1String("huggingface-cli download")));
    QVERIFY(!help.contains(QLatin1Char('\n')));
    QVERIFY(!help.contains(QLatin1String("Settings")));
    QVERIFY(help.contains(QLatin1String("Add model folder")));
}

// Issue 11: StableDiffusionPipeline folders (SD 1.5 and SD 2.x) are listed beside the SDXL family, with their own
// size, prediction type and a name that says what they are.
void TestModelDiscovery::stableDiffusionFoldersAreListedAndNamed() {
    QTemporaryDir tmp;
    const QDir cache(tmp.path());
    makeRepo(cache, QStringLiteral("models--stabilityai--stable-diffusion-2-1"), fixture("tiny-sd2"));
    makeRepo(cache, QStringLiteral("models--runwayml--stable-diffusion-v1-5"), fixture("tiny-sd15"));
    makeRepo(cache, QStringLiteral("models--etri-vilab--koala-700m"), fixture("tiny-koala-700m"));
    const ModelDiscovery::Result r = ModelDiscovery::scan({}, tmp.path());
    QVERIFY2(r.errors.isEmpty(), qPrintable(r.errors.join('\n')));
    QCOMPARE(r.models.size(), 3);
    QHash<QString, ModelEntry> byRepo;
    for (const ModelEntry& m : r.models) byRepo.insert(m.repoId, m);

    const ModelEntry sd2 = byRepo.value(QStringLiteral("stabilityai/stable-diffusion-2-1"));
    QCOMPARE(sd2.pipeline, QStringLiteral("sd"));
    // unet sample_size 12 x the VAE's 8: the tiny fixture's stand-in for SD 2.1's 96 x 8 = 768.
    QCOMPARE(sd2.defaultWidth, 96);
    QCOMPARE(sd2.defaultHeight, 96);
    QCOMPARE(sd2.predictionType, QStringLiteral("v_prediction"));
    QCOMPARE(sd2.defaultScheduler, QStringLiteral("ddim"));
    QCOMPARE(sd2.familyLabel, QStringLiteral("SD 2.1 (96, v)"));
    QVERIFY(sd2.unetParameters > 0);

    const ModelEntry sd15 = byRepo.value(QStringLiteral("runwayml/stable-diffusion-v1-5"));
    QCOMPARE(sd15.pipeline, QStringLiteral("sd"));
    QCOMPARE(sd15.defaultWidth, 64);
    QCOMPARE(sd15.predictionType, QStringLiteral("epsilon"));
    QCOMPARE(sd15.familyLabel, QStringLiteral("SD 1.5 (64)"));

    const ModelEntry koala = byRepo.value(QStringLiteral("etri-vilab/koala-700m"));
    QCOMPARE(koala.pipeline, QStringLiteral("sdxl"));
    QCOMPARE(koala.defaultWidth, 64);
    QCOMPARE(koala.familyLabel, QStringLiteral("SDXL family (64)"));  // the tiny UNet has no full-size shape

    // A plain folder: the generation from the text encoder, the release unknown; a base model by its name.
    std::optional<ModelEntry> plain = ModelDiscovery::inspect(fixture("tiny-sd2"));
    QVERIFY(plain);
    QCOMPARE(plain->familyLabel, QStringLiteral("SD 2.x (96, v)"));
    plain->displayName = QStringLiteral("stable-diffusion-2-base");
    QCOMPARE(ModelDiscovery::familyLabel(*plain), QStringLiteral("SD 2.0 base (96, v)"));
    std::optional<ModelEntry> plain15 = ModelDiscovery::inspect(fixture("tiny-sd15"));
    QVERIFY(plain15);
    QCOMPARE(plain15->familyLabel, QStringLiteral("SD 1.x (64)"));
    // Full-size SDXL-family shapes are named.
    ModelEntry named = koala;
    named.unetShape = QStringLiteral("koala-700m");
    named.defaultWidth = named.defaultHeight = 1024;
    QCOMPARE(ModelDiscovery::familyLabel(named), QStringLiteral("KOALA-700M (1024)"));
}

QTEST_GUILESS_MAIN(TestModelDiscovery)
#include "tst_modeldiscovery.moc"
