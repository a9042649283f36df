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
    QString modelPath;            // model folder (diffusers layout, HF cache repo or snapshot)
    QString modelPath2;           // second model for a compare; empty = none
    QString modelName;            // display name ("koala-700m-llava-cap"); informational, filled from A1111 "Model:"
    QString prompt;
    QString negativePrompt;
    bool hasNegative = false;     // false: no negative prompt (zero embeddings); true with "": encode ""
    qint64 seed = -1;             // -1 = a random seed per image
    int steps = 25;
    double guidance = 5.0;        // <= 1 turns classifier-free guidance off
    double guidanceRescale = 0.0;
    QString scheduler = QStringLiteral("default");  // "default", "euler", "euler_karras", "euler_a", "dpmpp_2m", ...
    QString spacing = QStringLiteral("default");    // "default", "leading", "trailing", "linspace"
    int width = 1024;
    int height = 1024;
    int count = 1;                // images per job: seeds seed, seed+1, ... (or a random seed each)

    // Defaults come from the engine's koala::defaultRequest(), the one place that defines them.
    static GenerationParams defaults();

    // The engine request for one image with a concrete seed (>= 0). Throws nothing; run koala::validate() or
    // validate() to check it.
    koala::GenerateRequest toRequest(qint64 resolvedSeed) const;

    // Empty string when the parameters can be run; otherwise one line naming the field.
    QString validate() const;

    // JSON with the same keys as the members. fromJson takes defaults() for missing keys and ignores unknown ones.
    QJsonObject toJson() const;
    static GenerationParams fromJson(const QJsonObject& json);

    // The engine's image metadata (the one schema of koala-cli's and the studio's PNGs); seed -1 = none.
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

    bool operator==(const GenerationParams& other) const;
    bool operator!=(const GenerationParams& other) const { return !(*this == other); }
};

Q_DECLARE_METATYPE(GenerationParams)
