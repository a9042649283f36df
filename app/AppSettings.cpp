#include "AppSettings.h"
#include "AtomicFile.h"

#include <QDateTime>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QJsonDocument>
#include <QStandardPaths>
#include <QStringDecoder>

namespace {
const char* const kDevice = "engine/device";
const char* const kPrecision = "engine/precision";
const char* const kMemoryMode = "engine/memoryMode";
const char* const kOutputFolder = "gallery/outputFolder";
const char* const kModelFolders = "models/extraFolders";
const char* const kLastParams = "generation/lastParams";
const char* const kGeometry = "window/geometry";
const char* const kState = "window/state";
const char* const kLoraFolders = "lora/folders";    // issue 10
const char* const kPromptSyntax = "prompt/syntax";  // issue 10
}  // namespace

AppSettings::AppSettings()
    : m_settings(std::make_unique<QSettings>(QStringLiteral("KOALA"), QStringLiteral("KOALA Studio"))) {
    recoverIfDamaged();
}

AppSettings::AppSettings(const QString& iniFile)
    : m_settings(std::make_unique<QSettings>(iniFile, QSettings::IniFormat)) {
    recoverIfDamaged();
}

AppSettings::~AppSettings() {
    m_settings->sync();
    refreshBackup();
}

QString AppSettings::backupFileName() const { return m_settings->fileName() + QStringLiteral(".bak"); }

QString AppSettings::damage(const QString& file) {
    QFile f(file);
    if (!f.exists()) return {};
    if (!f.open(QIODevice::ReadOnly)) return QStringLiteral("cannot be read (%1)").arg(f.errorString());
    const QByteArray bytes = f.readAll();
    if (bytes.isEmpty()) return {};
    if (bytes.contains('\0')) return QStringLiteral("contains binary data");
    // QSettings ends every line it writes with a newline: without one the file was cut off while it was written.
    if (!bytes.endsWith('\n')) return QStringLiteral("is cut off (no end of line at its end)");
    QStringDecoder utf8(QStringDecoder::Utf8);
    (void)QString(utf8(bytes));
    if (utf8.hasError()) return QStringLiteral("is not UTF-8 text");
    QSettings probe(file, QSettings::IniFormat);
    (void)probe.allKeys();
    if (probe.status() != QSettings::NoError) return QStringLiteral("is not a valid settings file");
    return {};
}

void AppSettings::recoverIfDamaged() {
    const QString file = m_settings->fileName();
    QString why = damage(file);
    // An empty file next to a non-empty backup: the classic result of a crash during a non-atomic write.
    if (why.isEmpty() && QFileInfo(file).exists() && QFileInfo(file).size() == 0 &&
        QFileInfo(backupFileName()).size() > 0)
        why = QStringLiteral("is empty");
    if (why.isEmpty()) {
        refreshBackup();  // loaded fine: it is the new last good copy
        return;
    }
    const bool ini = m_settings->format() == QSettings::IniFormat;
    const QString org = m_settings->organizationName();
    const QString app = m_settings->applicationName();
    m_settings.reset();  // QSettings must not write the damaged contents back

    const QString kept =
        file + QStringLiteral(".damaged-") + QDateTime::currentDateTime().toString(QStringLiteral("yyyyMMdd-HHmmss"));
    QFile::remove(kept);
    QString keptNote;
    if (QFile::rename(file, kept))
        keptNote = QStringLiteral(" The damaged file was kept as %1.").arg(QDir::toNativeSeparators(kept));
    else
        QFile::remove(file);

    const QString backup = file + QStringLiteral(".bak");
    QString restored;
    if (QFileInfo::exists(backup) && damage(backup).isEmpty() && QFile::copy(backup, file)) {
        restored = QStringLiteral("the last good copy from %1 was restored")
                       .arg(QFileInfo(backup).lastModified().toString(QStringLiteral("yyyy-MM-dd HH:mm")));
    } else {
        restored = QStringLiteral("the default settings are used");
    }
    m_recoveryMessage =
        QStringLiteral("The settings file %1 %2; %3.%4").arg(QDir::toNativeSeparators(file), why, restored, keptNote);
    qWarning("%s", qPrintable(m_recoveryMessage));
    if (ini)
        m_settings = std::make_unique<QSettings>(file, QSettings::IniFormat);
    else
        m_settings = std::make_unique<QSettings>(org, app);
}

void AppSettings::refreshBackup() {
    const QString file = m_settings->fileName();
    if (m_settings->status() != QSettings::NoError || !QFileInfo(file).isFile() || QFileInfo(file).size() == 0 ||
        !damage(file).isEmpty())
        return;
    QFile in(file);
    if (!in.open(QIODevice::ReadOnly)) return;
    const QByteArray bytes = in.readAll();
    QString error;
    if (!writeFileAtomically(backupFileName(), bytes, &error)) qWarning("%s", qPrintable(error));
}

QString AppSettings::device() const { return m_settings->value(kDevice, QStringLiteral("auto")).toString(); }

void AppSettings::setDevice(const QString& device) { m_settings->setValue(kDevice, device); }

QString AppSettings::precision() const { return m_settings->value(kPrecision, QStringLiteral("auto")).toString(); }

void AppSettings::setPrecision(const QString& precision) { m_settings->setValue(kPrecision, precision); }

QString AppSettings::memoryMode() const { return m_settings->value(kMemoryMode, QStringLiteral("default")).toString(); }

void AppSettings::setMemoryMode(const QString& mode) { m_settings->setValue(kMemoryMode, mode); }

QString AppSettings::outputFolder() const {
    const QString folder = m_settings->value(kOutputFolder).toString();
    return folder.isEmpty() ? defaultOutputFolder() : folder;
}

void AppSettings::setOutputFolder(const QString& folder) { m_settings->setValue(kOutputFolder, folder); }

QString AppSettings::defaultOutputFolder() {
    QString pictures = QStandardPaths::writableLocation(QStandardPaths::PicturesLocation);
    if (pictures.isEmpty()) pictures = QStandardPaths::writableLocation(QStandardPaths::HomeLocation);
    return pictures + QStringLiteral("/KOALA Studio");
}

QStringList AppSettings::extraModelFolders() const { return m_settings->value(kModelFolders).toStringList(); }

void AppSettings::setExtraModelFolders(const QStringList& folders) { m_settings->setValue(kModelFolders, folders); }

// ---- prompt syntax and LoRA (issue 10) ----
QStringList AppSettings::loraFolders() const {
    const QStringList folders = m_settings->value(kLoraFolders).toStringList();
    return folders.isEmpty() ? defaultLoraFolders() : folders;
}

void AppSettings::setLoraFolders(const QStringList& folders) {
    if (folders.isEmpty() || folders == defaultLoraFolders())
        m_settings->remove(kLoraFolders);
    else
        m_settings->setValue(kLoraFolders, folders);
}

QStringList AppSettings::defaultLoraFolders() { return {QString::fromStdString(koala::defaultLoraFolder())}; }

QString AppSettings::promptSyntax() const {
    const QString s = m_settings->value(kPromptSyntax).toString();
    koala::PromptSyntax syntax;
    if (!koala::fromString(s.toStdString(), syntax)) syntax = koala::PromptSyntax::A1111;
    return QString::fromLatin1(koala::toString(syntax));
}

void AppSettings::setPromptSyntax(const QString& syntax) { m_settings->setValue(kPromptSyntax, syntax); }

GenerationParams AppSettings::lastParams() const {
    // Stored as JSON text: one readable value instead of a dozen keys, and the same format as the PNG metadata.
    const QByteArray json = m_settings->value(kLastParams).toByteArray();
    const QJsonDocument doc = QJsonDocument::fromJson(json);
    if (!doc.isObject()) return GenerationParams::defaults();
    return GenerationParams::fromJson(doc.object());
}

void AppSettings::setLastParams(const GenerationParams& params) {
    m_settings->setValue(kLastParams, QString::fromUtf8(QJsonDocument(params.toJson()).toJson(QJsonDocument::Compact)));
}

QByteArray AppSettings::windowGeometry() const { return m_settings->value(kGeometry).toByteArray(); }

void AppSettings::setWindowGeometry(const QByteArray& geometry) { m_settings->setValue(kGeometry, geometry); }

QByteArray AppSettings::windowState() const { return m_settings->value(kState).toByteArray(); }

void AppSettings::setWindowState(const QByteArray& state) { m_settings->setValue(kState, state); }

koala::LoadOptions AppSettings::loadOptions() const {
    koala::LoadOptions o = koala::defaultLoadOptions();
    koala::Device d;
    if (koala::fromString(device().toStdString(), d)) o.device = d;
    koala::DType t;
    if (koala::fromString(precision().toStdString(), t)) o.dtype = t;
    koala::MemoryMode m;
    if (koala::fromString(memoryMode().toStdString(), m)) o.memory = m;
    return o;
}

void AppSettings::sync() {
    m_settings->sync();
    refreshBackup();
}

QString AppSettings::fileName() const { return m_settings->fileName(); }
