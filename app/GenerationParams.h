#pragma once

#include <optional>

#include <QJsonObject>
#include <QList>
#include <QMetaType>
#include <QPair>
#include <QSize>
#include <QString>
#include <QStringList>

#include <koala/engine.h>

// Everything a user chooses for one generation, in Qt types. The UI edits it, presets patch it, the gallery stores
// it (in a stored item, `seed` is the seed actually used and `count` is 1), PNG metadata and A1111 text round-trip it.
// Scheduler and spacing are the engine's names (koala::toString), so presets, metadata and combo boxes agree.
struct GenerationParams {
    QString modelPath;   // model folder (diffusers layout, HF cache repo or snapshot)
    QString modelPath2;  // second model for a compare; empty = none
    QString modelName;   // display name ("koala-700m-llava-cap"); informational, filled from A1111 "Model:"
    QString prompt;
    QString negativePrompt;
    bool hasNegative = false;     // false: no negative prompt (zero embeddings); true with "": encode ""
    std::optional<quint64> seed;  // empty = a new random seed per image (koala::randomSeed()); any uint64 otherwise
    int steps = koala::kLimits.defaultSteps;
    double guidance = koala::kLimits.defaultGuidance;  // <= 1 turns classifier-free guidance off
    double guidanceRescale = koala::kLimits.defaultGuidanceRescale;
    QString scheduler = QStringLiteral("default");  // "default", "euler", "euler_karras", "euler_a", "dpmpp_2m", ...
    QString spacing = QStringLiteral("default");    // "default", "leading", "trailing", "linspace"
    int width = koala::kLimits.defaultSize;
    int height = koala::kLimits.defaultSize;
    int count = koala::kLimits.defaultImages;  // images per job: seeds seed, seed+1, ... (or a random seed each)

    // ---- img2img / inpainting (issue 9): no init image = text-to-image. With one: img2img (the output takes the
    // image's size, rounded down to multiples of 8); with a mask as well: inpainting at width x height. The files
    // are read when the request is made; the metadata records their file names and short hashes.
    QString initImagePath;           // PNG or JPEG, absolute
    QString initImageHash;           // first 10 hex digits of its sha256 (shortFileHash), as recorded
    QString maskPath;                // grey PNG, white = repaint; empty = img2img
    QString maskHash;                // as initImageHash
    std::optional<double> strength;  // (0, 1]; empty = the engine's default for the mode (defaultStrength)
    int maskBlur = 0;                // Gaussian blur radius applied to the mask first (A1111 "Mask blur")

    // ---- prompt syntax and LoRA (issue 10) ----
    QString promptSyntax = QStringLiteral("a1111");  // "a1111" or "plain" (koala::PromptSyntax names)
    // The LoRAs an image used, as the engine reported them (koala::GenerateResult::loras): filled in a stored item,
    // empty in a request (the prompt's <lora:NAME:W> tags say what a job uses). The PNG metadata records them (A1111
    // "Lora hashes"); reading such a PNG restores the tags through the prompt.
    struct LoraUse {
        QString name;
        double weight = 1.0;
        QString hash;  // A1111 short hash; "" when unknown
        bool fromPrompt = true;
        QString report;  // "applied N of M keys (K without a target)"; "" when not known (read from a PNG)
        bool operator==(const LoraUse& o) const;
    };
    QList<LoraUse> loras;
    void setAppliedLoras(const std::vector<koala::GenerateResult::AppliedLora>& applied);
    // One line per LoRA with a report: "name 0.8: applied 96 of 96 keys (0 without a target)".
    QStringList loraReportLines() const;

    // The most images one job queues. The app runs a job's images one by one (each its own request, seed and
    // timings), so this is a queue length, not the engine's batch limit (koala::kLimits.maxImages).
    static constexpr int kMaxCount = 1000;

    // Defaults come from the engine's koala::defaultRequest(), the one place that defines them.
    static GenerationParams defaults();

    // The engine request for one image with a concrete seed; run koala::validate() or validate() to check it.
    // Reads the init image and mask files (koala::readImage); throws koala::Error(Io) naming one that cannot be read,
    // and nothing otherwise.
    koala::GenerateRequest toRequest(quint64 resolvedSeed) const;

    // img2img / inpainting helpers. hasInitImage: an init image is set; isInpaint: a mask as well.
    bool hasInitImage() const { return !initImagePath.isEmpty(); }
    bool isInpaint() const { return hasInitImage() && !maskPath.isEmpty(); }
    // Back to text-to-image: the init image, mask, strength and mask blur fields at their defaults.
    void clearInitImage();
    // The strength the engine will use: `strength`, else koala::kLimits' default for the mode.
    double effectiveStrength() const;
    // The short hash the metadata records for a file (first 10 hex digits of its sha256); "" when it cannot be read.
    static QString shortFileHash(const QString& path);

    // Empty string when the parameters can be run; otherwise one line naming the field (both, for the size).
    // The ranges are the engine's (koala::kLimits). A fixed seed must leave room for count images: the seeds are
    // seed, seed+1, ..., seed+count-1 and never wrap past 2^64-1.
    QString validate() const;
    // Why a width/height pair cannot be used ("" when it can), naming each side that is wrong.
    static QString sizeProblem(int width, int height);

    // The seeds of a job: seed, seed+1, ... (count of them), or a new koala::randomSeed() each when seed is empty.
    // Call validate() first; a seed range that would pass 2^64-1 is cut short there.
    QList<quint64> jobSeeds() const;

    // JSON with the same keys as the members. fromJson takes defaults() for missing keys and ignores unknown ones.
    // "seed": null = random; a number, or a decimal string above 2^53 (JSON readers keep doubles), as in the
    // engine's metadata schema; the -1 of older files reads as random. img2img keys, only with an init image, are
    // the engine's ("strength", "init_image" (file name), "init_image_sha256", "mask_image", "mask_image_sha256",
    // "mask_blur") plus "init_image_path" / "mask_image_path": the full paths, which "reuse parameters" restores.
    QJsonObject toJson() const;
    static GenerationParams fromJson(const QJsonObject& json);
    // One seed in that form, and back (empty for null, -1, a negative or too large number, or junk).
    static QJsonValue seedToJson(std::optional<quint64> seed);
    static std::optional<quint64> seedFromJson(const QJsonValue& value);

    // The engine's image metadata (the one schema of koala-cli's and the studio's PNGs); no seed = random.
    koala::ImageMetadata toMetadata() const;
    static GenerationParams fromMetadata(const koala::ImageMetadata& m);

    // AUTOMATIC1111 "parameters" text, written and parsed by the engine (koala::toA1111Parameters):
    //   prompt
    //   Negative prompt: ...                       (only when hasNegative)
    //   Steps: 25, Sampler: Euler, Schedule type: Karras, CFG scale: 5, Seed: 42, Size: 1024x1024, Model: koala-700m
    // Our extras (ignored by A1111): "Timestep spacing", "Guidance rescale". `modelName` (or the folder name of
    // modelPath) is written as "Model".
    QString toA1111() const;
    // Parses A1111 text (also the older "Sampler: DPM++ 2M Karras" form). Unknown samplers keep "default".
    // std::nullopt when the text has no recognisable parameter line.
    static std::optional<GenerationParams> fromA1111(const QString& text);

    // Scheduler name mapping. toA1111Sampler("euler_karras") = {"Euler", "Karras"}; {"", ""} for "default" or an
    // unknown name. fromA1111Sampler("DPM++ 2M", "Karras") = "dpmpp_2m_karras"; "" when unknown.
    static QPair<QString, QString> toA1111Sampler(const QString& scheduler);
    static QString fromA1111Sampler(const QString& sampler, const QString& scheduleType = {});

    // "default" followed by koala::allSchedulers() names; "default" + leading/trailing/linspace.
    static QStringList schedulerNames();
    static QStringList spacingNames();

    // SDXL training buckets: 1024x1024, 1152x896, 896x1152, 1216x832, 832x1216, 1344x768, 768x1344, 1536x640,
    // 640x1536.
    static const QList<QSize>& aspectBuckets();
    // Stable Diffusion 1.5 / 2.x sizes (the 512 and 768 families): 512x512, 768x768, 512x768, 768x512, 640x512,
    // 512x640, 768x576, 576x768.
    static const QList<QSize>& sdBuckets();
    // The range the size boxes step through (multiples of kSizeStep from kMinPickedSize to kMaxPickedSize); any
    // size the engine runs (koala::validSize) can still be typed.
    static constexpr int kMinPickedSize = 512, kMaxPickedSize = 1536, kSizeStep = 64;

    // The name people read for an engine scheduler id: "euler_a" -> "Euler a", "dpmpp_2m_karras" -> "DPM++ 2M
    // Karras", "pndm" -> "PNDM"; "default" -> "model default"; an unknown id is returned as it is. The id stays what
    // presets and metadata store.
    static QString schedulerDisplayName(const QString& scheduler);

    bool operator==(const GenerationParams& other) const;
    bool operator!=(const GenerationParams& other) const { return !(*this == other); }
};

Q_DECLARE_METATYPE(GenerationParams)
