#include <QtTest>

#include "AppSettings.h"

class TestAppSettings : public QObject {
    Q_OBJECT

private slots:
    void defaults();
    void persistence();
    void loadOptions();
    void goodSaveKeepsBackup();
    void damagedFileRestoredFromBackup_data();
    void damagedFileRestoredFromBackup();
    void damagedFileWithoutBackupGivesDefaults();
    void emptyFileWithBackupIsRestored();
};

namespace {
void writeBytes(const QString& path, const QByteArray& bytes) {
    QFile f(path);
    QVERIFY(f.open(QIODevice::WriteOnly | QIODevice::Truncate));
    QCOMPARE(f.write(bytes), bytes.size());
}
QStringList damagedCopies(const QString& dir) {
    return QDir(dir).entryList({QStringLiteral("settings.ini.damaged-*")}, QDir::Files);
}
}  // namespace

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

// issue 14.3: every good save leaves settings.ini.bak, the copy a damaged file is restored from.
void TestAppSettings::goodSaveKeepsBackup() {
    QTemporaryDir dir;
    const QString file = dir.filePath(QStringLiteral("settings.ini"));
    {
        AppSettings s(file);
        QVERIFY(s.recoveryMessage().isEmpty());
        s.setDevice(QStringLiteral("cpu"));
        s.sync();
        QCOMPARE(s.backupFileName(), file + QStringLiteral(".bak"));
        QVERIFY(QFile::exists(s.backupFileName()));
        QCOMPARE(AppSettings(s.backupFileName()).device(), QStringLiteral("cpu"));
        s.setDevice(QStringLiteral("cuda"));
    }  // the destructor saves, and refreshes the backup
    QCOMPARE(AppSettings(file + QStringLiteral(".bak")).device(), QStringLiteral("cuda"));
}

void TestAppSettings::damagedFileRestoredFromBackup_data() {
    QTest::addColumn<QByteArray>("damaged");
    QTest::addColumn<QString>("why");
    QTest::newRow("zeros") << QByteArray(512, '\0') << QStringLiteral("contains binary data");
    QByteArray garbage;
    for (int i = 0; i < 300; ++i) garbage.append(char((i * 73 + 11) % 256));
    QTest::newRow("garbage") << garbage << QStringLiteral("contains binary data");
    QTest::newRow("cut off") << QByteArray("[engine]\ndevice=cu") << QStringLiteral("is cut off");
    QTest::newRow("latin1") << QByteArray("[engine]\ndevice=caf\xe9\n") << QStringLiteral("is not UTF-8");
}

void TestAppSettings::damagedFileRestoredFromBackup() {
    QFETCH(QByteArray, damaged);
    QFETCH(QString, why);
    QTemporaryDir dir;
    const QString file = dir.filePath(QStringLiteral("settings.ini"));
    {
        AppSettings s(file);
        s.setDevice(QStringLiteral("cpu"));
        s.setMemoryMode(QStringLiteral("low"));
        s.sync();
    }
    writeBytes(file, damaged);
    QVERIFY(!AppSettings::damage(file).isEmpty());

    AppSettings s(file);
    QCOMPARE(s.device(), QStringLiteral("cpu"));  // from the backup
    QCOMPARE(s.memoryMode(), QStringLiteral("low"));
    const QString message = s.recoveryMessage();
    QVERIFY2(message.contains(QDir::toNativeSeparators(file)), qPrintable(message));
    QVERIFY2(message.contains(why), qPrintable(message));
    QVERIFY2(message.contains(QStringLiteral("last good copy")), qPrintable(message));
    // The damaged file is kept for the user, byte for byte, and named in the message.
    const QStringList kept = damagedCopies(dir.path());
    QCOMPARE(kept.size(), 1);
    QVERIFY2(message.contains(kept.first()), qPrintable(message));
    QFile keptFile(dir.filePath(kept.first()));
    QVERIFY(keptFile.open(QIODevice::ReadOnly));
    QCOMPARE(keptFile.readAll(), damaged);
    // The settings work again: values written now are saved and read back.
    s.setPrecision(QStringLiteral("fp16"));
    s.sync();
    QVERIFY(AppSettings::damage(file).isEmpty());
    AppSettings again(file);
    QVERIFY(again.recoveryMessage().isEmpty());
    QCOMPARE(again.precision(), QStringLiteral("fp16"));
    QCOMPARE(again.device(), QStringLiteral("cpu"));
}

void TestAppSettings::damagedFileWithoutBackupGivesDefaults() {
    QTemporaryDir dir;
    const QString file = dir.filePath(QStringLiteral("settings.ini"));
    writeBytes(file, QByteArray("\x89PNG\r\n\x1a\n\0\0\0\rIHDR"));
    AppSettings s(file);
    QCOMPARE(s.device(), QStringLiteral("auto"));
    QVERIFY(s.lastParams() == GenerationParams::defaults());
    QVERIFY2(s.recoveryMessage().contains(QStringLiteral("default settings are used")),
             qPrintable(s.recoveryMessage()));
    QCOMPARE(damagedCopies(dir.path()).size(), 1);
    s.setDevice(QStringLiteral("cpu"));
    s.sync();
    QCOMPARE(AppSettings(file).device(), QStringLiteral("cpu"));
}

// An empty file beside a good backup: what a crash during a non-atomic write leaves (e.g. an editor's save).
void TestAppSettings::emptyFileWithBackupIsRestored() {
    QTemporaryDir dir;
    const QString file = dir.filePath(QStringLiteral("settings.ini"));
    {
        AppSettings s(file);
        s.setOutputFolder(dir.filePath(QStringLiteral("pictures")));
        s.sync();
    }
    writeBytes(file, QByteArray());
    AppSettings s(file);
    QCOMPARE(s.outputFolder(), dir.filePath(QStringLiteral("pictures")));
    QVERIFY2(s.recoveryMessage().contains(QStringLiteral("is empty")), qPrintable(s.recoveryMessage()));
}

QTEST_GUILESS_MAIN(TestAppSettings)
#include "tst_appsettings.moc"
