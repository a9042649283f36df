#include "AppSettings.h"

#include <QJsonDocument>
#include <QStandardPaths>

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
    : m_settings(std::make_unique<QSettings>(QStringLiteral("KOALA"), QStringLiteral("KOALA Studio"))) {}

AppSettings::AppSettings(const QString& iniFile)
    : m_settings(std::make_unique<QSettings>(iniFile, QSettings::IniFormat)) {}

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

void AppSettings::sync() { m_settings->sync(); }

QString AppSettings::fileName() const { return m_settings->fileName(); }
