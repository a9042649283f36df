#pragma once

#include <optional>

#include <QList>
#include <QMetaType>
#include <QString>
#include <QStringList>

// One usable model folder, described without loading weights (koala::inspectModel).
struct ModelEntry {
    QString displayName;  // "koala-700m-llava-cap"
    QString repoId;       // "etri-vilab/koala-700m-llava-cap" for HF cache entries, else empty
    QString path;         // the resolved diffusers folder (snapshot)
    qint64 unetParameters = 0;
    QString weightDType;  // "fp16", "fp32", "bf16"
    QString unetShape;    // "koala-700m", "koala-1b", "sdxl-base", "ssd-1b", "vega", "custom"
    QString defaultScheduler;
    bool fromHfCache = false;
    // ---- issue 11: Stable Diffusion 1.5 / 2.x beside the SDXL family
    QString pipeline;      // "sd" (StableDiffusionPipeline) or "sdxl"
    int defaultWidth = 0;  // the model's own size: unet sample_size x the VAE scale factor (SD 2/2.1: 768)
    int defaultHeight = 0;
    QString predictionType;  // the scheduler's: "epsilon" or "v_prediction"
    // What the model is, for people: "SD 2.1 (768, v)", "SD 1.5 (512)", "KOALA-700M (1024)", "SDXL (1024)";
    // familyLabel() computes it from the fields above and the repo/folder name.
    QString familyLabel;
};

// Finds models in the Hugging Face cache and in folders the user added. Broken folders do not stop the scan: their
// errors are collected, one line each.
class ModelDiscovery {
public:
    // How to get models, for an empty model list: one paragraph (no line breaks, so it wraps to any width), and
    // the download commands people copy, one per line.
    static const char* const helpText;
    static const char* const downloadCommands;

    struct Result {
        QList<ModelEntry> models;  // sorted by display name
        QStringList errors;
    };

    // HF_HUB_CACHE; else $HF_HOME/hub; else ~/.cache/huggingface/hub.
    static QString hfCacheDir();

    // Scans `hfCache` for models--*/snapshots/<rev>/ with model_index.json and unet/config.json (refs/main first,
    // else the newest snapshot) and each extra folder, which may be a model folder itself or a folder whose
    // sub-folders are model folders. Duplicates (same resolved path) are listed once.
    static Result scan(const QStringList& extraFolders = {}, const QString& hfCache = hfCacheDir());

    // Inspects one folder (model folder, HF repo folder or snapshot). std::nullopt with *error on failure.
    static std::optional<ModelEntry> inspect(const QString& path, QString* error = nullptr);

    // The family label of an inspected entry. Stable Diffusion: "SD 1.x" (CLIP-L text encoder, quick_gelu) or
    // "SD 2.x" (OpenCLIP-H, gelu), made exact by a repo or folder name (stable-diffusion-2-1 -> "SD 2.1",
    // stable-diffusion-2-base -> "SD 2.0 base", v1-5 -> "SD 1.5"); then the default size and ", v" for
    // v-prediction. SDXL family: the UNet shape's name ("KOALA-700M", "SDXL", "SSD-1B"...) and the size.
    static QString familyLabel(const ModelEntry& entry);
};

Q_DECLARE_METATYPE(ModelEntry)
