#include "ModelDiscovery.h"

#include <algorithm>

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QJsonDocument>
#include <QJsonObject>
#include <QSet>

#include <koala/engine.h>

const char* const ModelDiscovery::helpText =
    "KOALA Studio makes images with text-to-image models in the Hugging Face diffusers layout. Download a KOALA "
    "model with the Hugging Face command line tool (pip install -U \"huggingface_hub[cli]\"): it lands in the "
    "Hugging Face cache, which is searched at every start. A model folder elsewhere (one that holds "
    "model_index.json) can be added with \"Add model folder…\".";

const char* const ModelDiscovery::downloadCommands =
    "huggingface-cli download etri-vilab/koala-700m-llava-cap\n"
    "huggingface-cli download etri-vilab/koala-1b-llava-cap";

namespace {

bool isModelFolder(const QDir& dir) {
    return dir.exists(QStringLiteral("model_index.json")) && dir.exists(QStringLiteral("unet/config.json"));
}

// Whether any snapshot of an HF cache repo is a diffusers pipeline with a UNet; other repos (LLMs, tokenizers,
// LoRAs) are skipped without an error.
bool repoHasDiffusersSnapshot(const QDir& repo) {
    const QDir snapshots(repo.filePath(QStringLiteral("snapshots")));
    for (const QString& rev : snapshots.entryList(QDir::Dirs | QDir::NoDotAndDotDot)) {
        if (isModelFolder(QDir(snapshots.filePath(rev)))) return true;
    }
    return false;
}

// "models--etri-vilab--koala-700m-llava-cap" -> "etri-vilab/koala-700m-llava-cap".
QString repoIdFromFolder(const QString& folderName) {
    QString id = folderName.mid(int(qstrlen("models--")));
    const int sep = id.indexOf(QStringLiteral("--"));
    if (sep > 0) id.replace(sep, 2, QLatin1Char('/'));
    return id;
}

// One key of a small JSON file of the model folder; empty when the file or key is missing.
QString jsonString(const QString& file, const char* key) {
    QFile f(file);
    if (!f.open(QIODevice::ReadOnly)) return {};
    const QJsonDocument doc = QJsonDocument::fromJson(f.read(1 << 20));
    return doc.isObject() ? doc.object().value(QLatin1String(key)).toString() : QString();
}

}  // namespace

QString ModelDiscovery::familyLabel(const ModelEntry& e) {
    const QString size = e.defaultWidth == e.defaultHeight
                             ? QString::number(e.defaultWidth)
                             : QStringLiteral("%1x%2").arg(e.defaultWidth).arg(e.defaultHeight);
    if (e.pipeline == QLatin1String("sd")) {
        // The text encoder tells the generation apart (SD 1.x: CLIP ViT-L, quick_gelu; SD 2.x: OpenCLIP, gelu);
        // the repo or folder name, when it is a Stable Diffusion one, gives the release.
        const bool v2 = jsonString(e.path + QStringLiteral("/text_encoder/config.json"), "hidden_act") !=
                        QLatin1String("quick_gelu");
        const QString name = (e.repoId.isEmpty() ? e.displayName : e.repoId).toLower();
        QString family = v2 ? QStringLiteral("SD 2.x") : QStringLiteral("SD 1.x");
        if (v2 && name.contains(QLatin1String("stable-diffusion-2-1")))
            family = QStringLiteral("SD 2.1");
        else if (v2 && name.contains(QLatin1String("stable-diffusion-2")))
            family = QStringLiteral("SD 2.0");
        else if (!v2 && (name.contains(QLatin1String("v1-5")) || name.contains(QLatin1String("1.5")) ||
                         name.contains(QLatin1String("1-5"))))
            family = QStringLiteral("SD 1.5");
        if (name.contains(QLatin1String("-base")) && family.startsWith(QLatin1String("SD 2.")))
            family += QStringLiteral(" base");
        const bool v = e.predictionType == QLatin1String("v_prediction");
        return QStringLiteral("%1 (%2%3)").arg(family, size, v ? QStringLiteral(", v") : QString());
    }
    static const QList<QPair<QString, QString>> shapes{{QStringLiteral("koala-700m"), QStringLiteral("KOALA-700M")},
                                                       {QStringLiteral("koala-1b"), QStringLiteral("KOALA-1B")},
                                                       {QStringLiteral("sdxl-base"), QStringLiteral("SDXL")},
                                                       {QStringLiteral("ssd-1b"), QStringLiteral("SSD-1B")},
                                                       {QStringLiteral("vega"), QStringLiteral("Vega")}};
    QString family = QStringLiteral("SDXL family");
    for (const auto& [shape, label] : shapes)
        if (e.unetShape == shape) family = label;
    return QStringLiteral("%1 (%2)").arg(family, size);
}

QString ModelDiscovery::hfCacheDir() {
    const QString hubCache = qEnvironmentVariable("HF_HUB_CACHE");
    if (!hubCache.isEmpty()) return hubCache;
    const QString hfHome = qEnvironmentVariable("HF_HOME");
    if (!hfHome.isEmpty()) return hfHome + QStringLiteral("/hub");
    const QString xdgCache = qEnvironmentVariable("XDG_CACHE_HOME");
    if (!xdgCache.isEmpty()) return xdgCache + QStringLiteral("/huggingface/hub");
    return QDir::homePath() + QStringLiteral("/.cache/huggingface/hub");
}

std::optional<ModelEntry> ModelDiscovery::inspect(const QString& path, QString* error) {
    koala::ModelInfo info;
    try {
        try {
            info = koala::inspectModel(path.toStdString());
        } catch (const koala::Error& plain) {
            // Repos that ship only *.fp16.safetensors are still usable.
            if (plain.kind() != koala::ErrorKind::ModelFormat) throw;
            try {
                info = koala::inspectModel(path.toStdString(), "fp16");
            } catch (const koala::Error&) {
                throw plain;  // the plain-weights message is the one that makes sense to the user
            }
        }
    } catch (const koala::Error& e) {
        if (error) *error = QString::fromStdString(e.what());
        return std::nullopt;
    }
    ModelEntry entry;
    entry.path = QString::fromStdString(info.path);
    entry.displayName = QString::fromStdString(info.name);
    if (entry.displayName.isEmpty()) entry.displayName = QFileInfo(entry.path).fileName();
    entry.unetParameters = info.unetParameters;
    entry.weightDType = QString::fromStdString(info.weightDType);
    entry.unetShape = QString::fromStdString(info.unetShape);
    entry.defaultScheduler = QString::fromStdString(info.defaultScheduler);
    entry.pipeline = QString::fromStdString(info.pipeline);
    entry.defaultWidth = info.defaultWidth;
    entry.defaultHeight = info.defaultHeight;
    entry.predictionType =
        jsonString(entry.path + QStringLiteral("/scheduler/scheduler_config.json"), "prediction_type");
    if (entry.predictionType.isEmpty()) entry.predictionType = QStringLiteral("epsilon");  // diffusers' default
    entry.familyLabel = familyLabel(entry);
    return entry;
}

ModelDiscovery::Result ModelDiscovery::scan(const QStringList& extraFolders, const QString& hfCache) {
    Result result;
    QSet<QString> seen;
    auto addEntry = [&](ModelEntry entry) {
        const QString key = QFileInfo(entry.path).canonicalFilePath();
        if (seen.contains(key)) return;
        seen.insert(key);
        result.models << entry;
    };

    if (!hfCache.isEmpty()) {
        const QDir cache(hfCache);
        for (const QString& name : cache.entryList({QStringLiteral("models--*")}, QDir::Dirs | QDir::NoDotAndDotDot)) {
            const QDir repo(cache.filePath(name));
            if (!repoHasDiffusersSnapshot(repo)) continue;
            QString error;
            std::optional<ModelEntry> entry = inspect(repo.absolutePath(), &error);
            if (!entry) {
                result.errors << QStringLiteral("%1: %2").arg(repoIdFromFolder(name), error);
                continue;
            }
            entry->repoId = repoIdFromFolder(name);
            entry->displayName = entry->repoId.section(QLatin1Char('/'), -1);
            entry->fromHfCache = true;
            entry->familyLabel = familyLabel(*entry);  // the repo id may name the release
            addEntry(*entry);
        }
    }

    for (const QString& folder : extraFolders) {
        const QDir dir(folder);
        if (!dir.exists()) {
            result.errors << QStringLiteral("%1: folder does not exist").arg(folder);
            continue;
        }
        QStringList candidates;
        if (dir.exists(QStringLiteral("model_index.json")) || dir.exists(QStringLiteral("snapshots"))) {
            candidates << dir.absolutePath();
        } else {
            // A folder of models: each sub-folder that looks like one.
            for (const QString& sub : dir.entryList(QDir::Dirs | QDir::NoDotAndDotDot)) {
                const QDir subDir(dir.filePath(sub));
                if (subDir.exists(QStringLiteral("model_index.json")) || subDir.exists(QStringLiteral("snapshots")))
                    candidates << subDir.absolutePath();
            }
            if (candidates.isEmpty())
                result.errors
                    << QStringLiteral("%1: no model found (expected a folder with model_index.json)").arg(folder);
        }
        for (const QString& c : std::as_const(candidates)) {
            QString error;
            std::optional<ModelEntry> entry = inspect(c, &error);
            if (!entry) {
                result.errors << error;
                continue;
            }
            addEntry(*entry);
        }
    }

    std::sort(result.models.begin(), result.models.end(), [](const ModelEntry& a, const ModelEntry& b) {
        return QString::compare(a.displayName, b.displayName, Qt::CaseInsensitive) < 0;
    });
    return result;
}
