#include "PresetStore.h"
#include "AtomicFile.h"

#include <algorithm>

#include <QCoreApplication>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QRegularExpression>
#include <QStandardPaths>

#include <yaml-cpp/yaml.h>

namespace {

// "file:line: message" with yaml-cpp's 0-based line made 1-based. A mark of -1 (no position) drops the line.
QString markError(const QString& fileName, const YAML::Mark& mark, const QString& message) {
    if (mark.line < 0) return QStringLiteral("%1: %2").arg(fileName, message);
    return QStringLiteral("%1:%2: %3").arg(fileName).arg(mark.line + 1).arg(message);
}

struct PresetParseError {
    YAML::Mark mark;
    QString message;
};

template <typename T>
T scalar(const YAML::Node& node, const char* key) {
    if (!node.IsScalar())
        throw PresetParseError{node.Mark(), QStringLiteral("'%1' must be a single value").arg(QLatin1String(key))};
    try {
        return node.as<T>();
    } catch (const YAML::Exception&) {
        throw PresetParseError{node.Mark(), QStringLiteral("'%1' has an invalid value '%2'")
                                                .arg(QLatin1String(key), QString::fromStdString(node.Scalar()))};
    }
}

void checkRange(const YAML::Node& node, const char* key, double v, double lo, double hi) {
    if (v < lo || v > hi)
        throw PresetParseError{
            node.Mark(), QStringLiteral("'%1' must be between %2 and %3").arg(QLatin1String(key)).arg(lo).arg(hi)};
}

constexpr const koala::Limits& L = koala::kLimits;

// "random" or -1 (older files): a random seed; otherwise koala::parseSeed's rule, never another number.
std::optional<quint64> parseSeedValue(const YAML::Node& node) {
    const std::string text = scalar<std::string>(node, "seed");
    if (text == "random" || text == "-1") return std::nullopt;
    if (const std::optional<std::uint64_t> seed = koala::parseSeed(text)) return *seed;
    throw PresetParseError{node.Mark(),
                           QStringLiteral("'seed' must be random or a whole number from %1 to %2, not '%3'")
                               .arg(L.minSeed)
                               .arg(L.maxSeed)
                               .arg(QString::fromStdString(text))};
}

QString slug(const QString& name) {
    QString s = name.toLower();
    s.replace(QRegularExpression(QStringLiteral("[^a-z0-9]+")), QStringLiteral("-"));
    while (s.startsWith(QLatin1Char('-'))) s.remove(0, 1);
    while (s.endsWith(QLatin1Char('-'))) s.chop(1);
    return s.isEmpty() ? QStringLiteral("preset") : s.left(80);
}

bool sameName(const QString& a, const QString& b) { return a.trimmed().compare(b.trimmed(), Qt::CaseInsensitive) == 0; }

PresetStore::Status failWith(PresetStore::Status status, QString* error, const QString& message) {
    if (error) *error = message;
    return status;
}

bool writeAtomically(const QString& path, const QByteArray& data, QString* error) {
    return writeFileAtomically(path, data, error);
}

}  // namespace

GenerationParams Preset::applyTo(GenerationParams base) const {
    if (scheduler) base.scheduler = *scheduler;
    if (spacing) base.spacing = *spacing;
    if (steps) base.steps = *steps;
    if (guidance) base.guidance = *guidance;
    if (guidanceRescale) base.guidanceRescale = *guidanceRescale;
    if (width) base.width = *width;
    if (height) base.height = *height;
    if (count) base.count = *count;
    if (seed) base.seed = *seed;
    if (negativePrompt) {
        base.hasNegative = true;
        base.negativePrompt = *negativePrompt;
    }
    if (promptSyntax) base.promptSyntax = *promptSyntax;  // issue 10
    return base;
}

Preset Preset::fromParams(const QString& name, const QString& description, const GenerationParams& params,
                          const QString& modelHint) {
    Preset p;
    p.name = name;
    p.description = description;
    p.modelHint = modelHint;
    p.scheduler = params.scheduler;
    p.spacing = params.spacing;
    p.steps = params.steps;
    p.guidance = params.guidance;
    p.guidanceRescale = params.guidanceRescale;
    p.width = params.width;
    p.height = params.height;
    p.count = params.count;
    if (params.hasNegative) p.negativePrompt = params.negativePrompt;
    // issue 10: only a syntax other than the default is worth saying in a preset
    if (params.promptSyntax != GenerationParams().promptSyntax) p.promptSyntax = params.promptSyntax;
    return p;
}

QString Preset::toYaml() const {
    YAML::Emitter out;
    out << YAML::BeginMap;
    out << YAML::Key << "name" << YAML::Value << name.toStdString();
    if (!description.isEmpty()) out << YAML::Key << "description" << YAML::Value << description.toStdString();
    if (!modelHint.isEmpty()) out << YAML::Key << "model" << YAML::Value << modelHint.toStdString();
    if (scheduler) out << YAML::Key << "scheduler" << YAML::Value << scheduler->toStdString();
    if (spacing) out << YAML::Key << "spacing" << YAML::Value << spacing->toStdString();
    if (steps) out << YAML::Key << "steps" << YAML::Value << *steps;
    if (guidance) out << YAML::Key << "guidance" << YAML::Value << *guidance;
    if (guidanceRescale) out << YAML::Key << "guidance_rescale" << YAML::Value << *guidanceRescale;
    if (width) out << YAML::Key << "width" << YAML::Value << *width;
    if (height) out << YAML::Key << "height" << YAML::Value << *height;
    if (count) out << YAML::Key << "count" << YAML::Value << *count;
    if (seed) {
        out << YAML::Key << "seed" << YAML::Value;
        if (*seed)
            out << static_cast<unsigned long long>(**seed);
        else
            out << "random";
    }
    if (negativePrompt)
        out << YAML::Key << "negative_prompt" << YAML::Value << YAML::DoubleQuoted << negativePrompt->toStdString();
    if (promptSyntax) out << YAML::Key << "prompt_syntax" << YAML::Value << promptSyntax->toStdString();  // issue 10
    out << YAML::EndMap;
    return QString::fromUtf8(out.c_str()) + QLatin1Char('\n');
}

std::optional<Preset> Preset::fromYaml(const QString& yaml, const QString& fileName, QString* error) {
    try {
        const YAML::Node root = YAML::Load(yaml.toStdString());
        if (!root.IsMap())
            throw PresetParseError{root.Mark(), QStringLiteral("a preset must be a mapping of keys to values")};
        Preset p;
        for (const auto& kv : root) {
            const std::string key = kv.first.as<std::string>();
            const YAML::Node& v = kv.second;
            if (key == "name") {
                p.name = QString::fromStdString(scalar<std::string>(v, "name")).trimmed();
            } else if (key == "description") {
                p.description = QString::fromStdString(scalar<std::string>(v, "description"));
            } else if (key == "model") {
                p.modelHint = QString::fromStdString(scalar<std::string>(v, "model"));
            } else if (key == "scheduler") {
                const std::string s = scalar<std::string>(v, "scheduler");
                koala::SchedulerKind kind;
                if (!koala::fromString(s, kind))
                    throw PresetParseError{
                        v.Mark(), QStringLiteral("unknown scheduler '%1' (use one of: %2)")
                                      .arg(QString::fromStdString(s), GenerationParams::schedulerNames().join(", "))};
                p.scheduler = QString::fromLatin1(koala::toString(kind));
            } else if (key == "spacing") {
                const std::string s = scalar<std::string>(v, "spacing");
                koala::TimestepSpacing sp;
                if (!koala::fromString(s, sp))
                    throw PresetParseError{
                        v.Mark(), QStringLiteral("unknown spacing '%1' (use one of: %2)")
                                      .arg(QString::fromStdString(s), GenerationParams::spacingNames().join(", "))};
                p.spacing = QString::fromLatin1(koala::toString(sp));
            } else if (key == "steps") {
                p.steps = scalar<int>(v, "steps");
                checkRange(v, "steps", *p.steps, L.minSteps, L.maxSteps);
            } else if (key == "guidance") {
                p.guidance = scalar<double>(v, "guidance");
                checkRange(v, "guidance", *p.guidance, L.minGuidance, L.maxGuidance);
            } else if (key == "guidance_rescale") {
                p.guidanceRescale = scalar<double>(v, "guidance_rescale");
                checkRange(v, "guidance_rescale", *p.guidanceRescale, L.minGuidanceRescale, L.maxGuidanceRescale);
            } else if (key == "width" || key == "height") {
                const int size = scalar<int>(v, key.c_str());
                checkRange(v, key.c_str(), size, L.minSize, L.maxSize);
                if (!koala::validSize(size))
                    throw PresetParseError{v.Mark(), QStringLiteral("'%1' must be a multiple of %2")
                                                         .arg(QString::fromStdString(key))
                                                         .arg(L.sizeMultiple)};
                (key == "width" ? p.width : p.height) = size;
            } else if (key == "count") {
                p.count = scalar<int>(v, "count");
                checkRange(v, "count", *p.count, L.minImages, GenerationParams::kMaxCount);
            } else if (key == "seed") {
                p.seed = parseSeedValue(v);
            } else if (key == "negative_prompt") {
                p.negativePrompt = QString::fromStdString(scalar<std::string>(v, "negative_prompt"));
            } else if (key == "prompt_syntax") {  // issue 10
                const std::string s = scalar<std::string>(v, "prompt_syntax");
                koala::PromptSyntax syntax;
                if (!koala::fromString(s, syntax))
                    throw PresetParseError{v.Mark(), QStringLiteral("unknown prompt_syntax '%1' (use a1111 or plain)")
                                                         .arg(QString::fromStdString(s))};
                p.promptSyntax = QString::fromLatin1(koala::toString(syntax));
            } else {
                // Strict on purpose: a typo ("stpes") would otherwise be silently ignored.
                throw PresetParseError{kv.first.Mark(),
                                       QStringLiteral("unknown key '%1'").arg(QString::fromStdString(key))};
            }
        }
        if (p.name.isEmpty()) p.name = QFileInfo(fileName).completeBaseName();
        return p;
    } catch (const PresetParseError& e) {
        if (error) *error = markError(fileName, e.mark, e.message);
    } catch (const YAML::Exception& e) {
        if (error) *error = markError(fileName, e.mark, QString::fromStdString(e.msg));
    }
    return std::nullopt;
}

std::optional<Preset> Preset::fromFile(const QString& path, QString* error) {
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly)) {
        if (error) *error = QStringLiteral("%1: %2").arg(path, file.errorString());
        return std::nullopt;
    }
    std::optional<Preset> p = fromYaml(QString::fromUtf8(file.readAll()), path, error);
    if (p) p->filePath = QFileInfo(path).absoluteFilePath();
    return p;
}

PresetStore::PresetStore(const QString& userDir, const QString& shippedDir, QObject* parent)
    : QObject(parent),
      m_userDir(userDir.isEmpty() ? defaultUserDir() : userDir),
      m_shippedDir(shippedDir.isEmpty() ? shippedPresetsDir() : shippedDir) {
    reload();
}

QString PresetStore::defaultUserDir() {
    return QStandardPaths::writableLocation(QStandardPaths::AppConfigLocation) + QStringLiteral("/presets");
}

QString PresetStore::shippedPresetsDir() {
    QStringList candidates;
    const QString env = qEnvironmentVariable("KOALA_PRESETS_DIR");
    if (!env.isEmpty()) candidates << env;
    if (QCoreApplication::instance()) {
        const QString exeDir = QCoreApplication::applicationDirPath();
        candidates << exeDir + QStringLiteral("/presets") << exeDir + QStringLiteral("/../share/koala-studio/presets");
    }
    for (const QString& dir : QStandardPaths::standardLocations(QStandardPaths::GenericDataLocation))
        candidates << dir + QStringLiteral("/koala-studio/presets");
#ifdef KOALA_SOURCE_PRESETS_DIR
    candidates << QStringLiteral(KOALA_SOURCE_PRESETS_DIR);
#endif
    for (const QString& dir : std::as_const(candidates)) {
        const QDir d(dir);
        if (d.exists() && !d.entryList({QStringLiteral("*.yaml"), QStringLiteral("*.yml")}, QDir::Files).isEmpty())
            return d.canonicalPath();
    }
    return {};
}

void PresetStore::reload() {
    m_presets.clear();
    m_errors.clear();
    auto loadDir = [this](const QString& dirPath, bool readOnly) {
        if (dirPath.isEmpty()) return;
        QList<Preset> found;
        const QDir dir(dirPath);
        const QStringList files =
            dir.entryList({QStringLiteral("*.yaml"), QStringLiteral("*.yml")}, QDir::Files, QDir::Name);
        for (const QString& f : files) {
            QString error;
            std::optional<Preset> p = Preset::fromFile(dir.filePath(f), &error);
            if (!p) {
                m_errors << error;
                continue;
            }
            p->readOnly = readOnly;
            const bool clash =
                std::any_of(m_presets.cbegin(), m_presets.cend(),
                            [&](const Preset& o) { return sameName(o.name, p->name); }) ||
                std::any_of(found.cbegin(), found.cend(), [&](const Preset& o) { return sameName(o.name, p->name); });
            if (clash) {
                m_errors << QStringLiteral("%1: a preset named '%2' already exists; this file is ignored")
                                .arg(p->filePath, p->name);
                continue;
            }
            found << *p;
        }
        std::sort(found.begin(), found.end(),
                  [](const Preset& a, const Preset& b) { return QString::localeAwareCompare(a.name, b.name) < 0; });
        m_presets << found;
    };
    loadDir(m_shippedDir, true);
    // The user dir may be the same as the shipped one in a portable setup; list it once.
    if (QFileInfo(m_userDir).canonicalFilePath() != QFileInfo(m_shippedDir).canonicalFilePath() ||
        m_shippedDir.isEmpty())
        loadDir(m_userDir, false);
    emit presetsChanged();
}

std::optional<Preset> PresetStore::find(const QString& name) const {
    for (const Preset& p : m_presets) {
        if (sameName(p.name, name)) return p;
    }
    return std::nullopt;
}

QString PresetStore::userFilePath(const QString& name) const {
    // Keep the file of an existing preset of that name; otherwise a new, unused slug.
    if (std::optional<Preset> existing = find(name); existing && !existing->readOnly) return existing->filePath;
    const QDir dir(m_userDir);
    const QString base = slug(name);
    QString path = dir.filePath(base + QStringLiteral(".yaml"));
    for (int i = 2; QFileInfo::exists(path); ++i) path = dir.filePath(QStringLiteral("%1-%2.yaml").arg(base).arg(i));
    return path;
}

PresetStore::Status PresetStore::writePreset(const Preset& preset, const QString& path, QString* error) const {
    if (!QDir().mkpath(QFileInfo(path).absolutePath()))
        return failWith(Status::IoError, error,
                        QStringLiteral("Cannot create folder %1").arg(QFileInfo(path).absolutePath()));
    if (!writeAtomically(path, preset.toYaml().toUtf8(), error)) return Status::IoError;
    return Status::Ok;
}

PresetStore::Status PresetStore::save(const Preset& preset, bool overwrite, QString* error) {
    if (preset.name.trimmed().isEmpty())
        return failWith(Status::Invalid, error, QStringLiteral("A preset needs a name."));
    Preset p = preset;
    p.name = p.name.trimmed();
    // Validate through the parser so a saved preset always loads back.
    QString parseError;
    if (!Preset::fromYaml(p.toYaml(), p.name, &parseError)) return failWith(Status::Invalid, error, parseError);
    if (std::optional<Preset> existing = find(p.name)) {
        if (existing->readOnly)
            return failWith(
                Status::ReadOnly, error,
                QStringLiteral("'%1' is a shipped preset and cannot be replaced; choose another name.").arg(p.name));
        if (!overwrite)
            return failWith(Status::NameClash, error,
                            QStringLiteral("A preset named '%1' already exists.").arg(p.name));
    }
    const Status s = writePreset(p, userFilePath(p.name), error);
    if (s == Status::Ok) reload();
    return s;
}

PresetStore::Status PresetStore::rename(const QString& oldName, const QString& newName, bool overwrite,
                                        QString* error) {
    std::optional<Preset> p = find(oldName);
    if (!p) return failWith(Status::NotFound, error, QStringLiteral("No preset named '%1'.").arg(oldName));
    if (p->readOnly)
        return failWith(Status::ReadOnly, error,
                        QStringLiteral("'%1' is a shipped preset and cannot be renamed.").arg(oldName));
    if (newName.trimmed().isEmpty()) return failWith(Status::Invalid, error, QStringLiteral("A preset needs a name."));
    if (sameName(oldName, newName) && oldName.trimmed() == newName.trimmed()) return Status::Ok;
    std::optional<Preset> target = find(newName);
    if (target && !sameName(target->name, oldName)) {
        if (target->readOnly)
            return failWith(Status::ReadOnly, error,
                            QStringLiteral("'%1' is a shipped preset; choose another name.").arg(newName));
        if (!overwrite)
            return failWith(Status::NameClash, error,
                            QStringLiteral("A preset named '%1' already exists.").arg(newName));
    }
    const QString oldPath = p->filePath;
    p->name = newName.trimmed();
    QString newPath;
    if (target && !sameName(target->name, oldName)) {
        newPath = target->filePath;
    } else {
        // Choose a file name for the new name; the old file may be reused when the slug is unchanged.
        const QDir dir(m_userDir);
        const QString base = slug(p->name);
        newPath = dir.filePath(base + QStringLiteral(".yaml"));
        for (int i = 2; QFileInfo::exists(newPath) && QFileInfo(newPath) != QFileInfo(oldPath); ++i)
            newPath = dir.filePath(QStringLiteral("%1-%2.yaml").arg(base).arg(i));
    }
    const Status s = writePreset(*p, newPath, error);
    if (s != Status::Ok) return s;
    if (QFileInfo(newPath) != QFileInfo(oldPath)) QFile::remove(oldPath);
    reload();
    return Status::Ok;
}

PresetStore::Status PresetStore::remove(const QString& name, QString* error) {
    std::optional<Preset> p = find(name);
    if (!p) return failWith(Status::NotFound, error, QStringLiteral("No preset named '%1'.").arg(name));
    if (p->readOnly)
        return failWith(Status::ReadOnly, error,
                        QStringLiteral("'%1' is a shipped preset and cannot be deleted.").arg(name));
    QFile file(p->filePath);
    if (!file.remove())
        return failWith(Status::IoError, error,
                        QStringLiteral("Cannot delete %1: %2").arg(p->filePath, file.errorString()));
    reload();
    return Status::Ok;
}

PresetStore::Status PresetStore::importFile(const QString& path, bool overwrite, QString* error) {
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly))
        return failWith(Status::IoError, error, QStringLiteral("%1: %2").arg(path, file.errorString()));
    const QByteArray data = file.readAll();
    QString parseError;
    std::optional<Preset> p = Preset::fromYaml(QString::fromUtf8(data), path, &parseError);
    if (!p) return failWith(Status::Invalid, error, parseError);
    if (std::optional<Preset> existing = find(p->name)) {
        if (existing->readOnly)
            return failWith(Status::ReadOnly, error,
                            QStringLiteral("'%1' is a shipped preset and cannot be replaced.").arg(p->name));
        if (!overwrite)
            return failWith(Status::NameClash, error,
                            QStringLiteral("A preset named '%1' already exists.").arg(p->name));
    }
    const QString target = userFilePath(p->name);
    if (!QDir().mkpath(m_userDir))
        return failWith(Status::IoError, error, QStringLiteral("Cannot create folder %1").arg(m_userDir));
    // The file is copied as is, so the user's comments survive.
    if (!writeAtomically(target, data, error)) return Status::IoError;
    reload();
    return Status::Ok;
}

PresetStore::Status PresetStore::exportPreset(const QString& name, const QString& path, QString* error) const {
    std::optional<Preset> p = find(name);
    if (!p) return failWith(Status::NotFound, error, QStringLiteral("No preset named '%1'.").arg(name));
    return writePreset(*p, path, error);
}
