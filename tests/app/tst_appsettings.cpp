#include <QtTest>

#include "AppSettings.h"

class TestAppSettings : public QObject {
    Q_OBJECT

private slots:
    void defaults();
    void persistence();
    void loadOptions();
};

void TestAppSettings::defaults() {
    QTemporaryDir dir;
    AppSettings s(dir.filePath(QStringLiteral("settings.ini")));
    QCOMPARE(s.device(), QStringLiteral("auto"));
    QCOMPARE(s.precision(), QStringLiteral("auto"));
    QCOMPARE(s.memoryMode(), QStringLiteral("default"));
    QVERIFY(s.outputFolder().endsWith(QLatin1String("/KOALA Studio")));
    QCOMPARE(s.outputFolder(), AppSettings::defaultOutputFolder());
    QVERIFY(s.extraModelFolders().isEmpty());
    QVERIFY(s.lastParams() == GenerationParams::defaults());
    QVERIFY(s.windowGeometry().isEmpty());
}

void TestAppSettings::persistence() {
    QTemporaryDir dir;
    const QString file = dir.filePath(QStringLiteral("settings.ini"));
    GenerationParams params = GenerationParams::defaults();
    params.prompt = QStringLiteral("a koala, \"quoted\", ünïcode");
    params.seed = 77;
    params.hasNegative = true;
    params.negativePrompt = QString();
    params.width = 640;
    params.height = 1536;
    params.scheduler = QStringLiteral("euler_a");
    const QByteArray geometry("\x01\x02\x00\xff geometry", 14);
    {
        AppSettings s(file);
        s.setDevice(QStringLiteral("cuda"));
        s.setPrecision(QStringLiteral("bf16"));
        s.setMemoryMode(QStringLiteral("low"));
        s.setOutputFolder(dir.filePath(QStringLiteral("out")));
        s.setExtraModelFolders({QStringLiteral("/models/a"), QStringLiteral("/models/b c")});
        s.setLastParams(params);
        s.setWindowGeometry(geometry);
        s.setWindowState(QByteArray("state"));
        s.sync();
        QCOMPARE(s.fileName(), file);
    }
    QVERIFY(QFile::exists(file));
    AppSettings s(file);
    QCOMPARE(s.device(), QStringLiteral("cuda"));
    QCOMPARE(s.precision(), QStringLiteral("bf16"));
    QCOMPARE(s.memoryMode(), QStringLiteral("low"));
    QCOMPARE(s.outputFolder(), dir.filePath(QStringLiteral("out")));
    QCOMPARE(s.extraModelFolders(), (QStringList{QStringLiteral("/models/a"), QStringLiteral("/models/b c")}));
    QVERIFY(s.lastParams() == params);
    QCOMPARE(s.windowGeometry(), geometry);
    QCOMPARE(s.windowState(), QByteArray("state"));
}

void TestAppSettings::loadOptions() {
    QTemporaryDir dir;
    AppSettings s(dir.filePath(QStringLiteral("settings.ini")));
    s.setDevice(QStringLiteral("cpu"));
    s.setPrecision(QStringLiteral("fp16"));
    s.setMemoryMode(QStringLiteral("low"));
    koala::LoadOptions o = s.loadOptions();
    QCOMPARE(o.device, koala::Device::Cpu);
    QCOMPARE(o.dtype, koala::DType::F16);
    QCOMPARE(o.memory, koala::MemoryMode::Low);
    s.setDevice(QStringLiteral("quantum"));  // unknown values fall back to the engine default
    QCOMPARE(s.loadOptions().device, koala::defaultLoadOptions().device);
}

QTEST_GUILESS_MAIN(TestAppSettings)
#include "tst_appsettings.moc"
