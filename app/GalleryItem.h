#pragma once

#include <QDateTime>
#include <QJsonObject>
#include <QMetaType>
#include <QString>

#include "GenerationParams.h"

// The per-image timings worth keeping with an image (a subset of koala::Timings plus the model load time).
struct ImageTimings {
    double totalSeconds = 0;  // whole generate() call
    double stepSeconds = 0;   // median denoising step
    double loadSeconds = 0;   // model load, when this image triggered it (0 when the model was cached)
    double encodeSeconds = 0;
    double denoiseSeconds = 0;
    double decodeSeconds = 0;
    qint64 peakDeviceBytes = 0;  // 0 on CPU

    static ImageTimings fromEngine(const koala::Timings& t);
    QJsonObject toJson() const;
    static ImageTimings fromJson(const QJsonObject& json);
};

// One finished image, as the worker reports it and the gallery stores it.
struct GalleryItem {
    QString id;               // unique in the gallery (the PNG file name); empty until stored
    QString path;             // absolute PNG path; empty until stored
    GenerationParams params;  // params.seed = the seed used, params.count = 1
    QDateTime createdAt;
    QString modelName;      // koala::ModelInfo::name ("koala-700m-llava-cap")
    QString unetShape;      // "koala-700m", "koala-1b", ...
    QString device;         // "cpu", "cuda"
    QString computeDType;   // "fp32", "fp16", "bf16"
    QString schedulerUsed;  // resolved scheduler ("euler" when params.scheduler was "default")
    QString spacingUsed;
    ImageTimings timings;
    QString compareGroup;  // non-empty: two items with the same group form a compare pair
    int compareSlot = -1;  // 0 = model A, 1 = model B, -1 = not part of a compare
    QString job;           // the job that made it (Job::runKey); empty in older files
    int jobIndex = -1;     // its place in that job (the order the job's images are shown in)
    int width = 0;
    int height = 0;

    // The "koala" PNG chunk / gallery JSON. fromJson tolerates missing keys.
    QJsonObject toJson() const;
    static GalleryItem fromJson(const QJsonObject& json);
};

Q_DECLARE_METATYPE(ImageTimings)
Q_DECLARE_METATYPE(GalleryItem)
