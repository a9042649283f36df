#include "GalleryItem.h"

ImageTimings ImageTimings::fromEngine(const koala::Timings& t) {
    ImageTimings r;
    r.totalSeconds = t.totalSeconds;
    r.stepSeconds = t.stepMedianSeconds;
    r.loadSeconds = t.loadSeconds;
    r.encodeSeconds = t.encodeSeconds;
    r.denoiseSeconds = t.denoiseSeconds;
    r.decodeSeconds = t.decodeSeconds;
    r.peakDeviceBytes = t.peakDeviceBytes;
    return r;
}

QJsonObject ImageTimings::toJson() const {
    QJsonObject o;
    o[QStringLiteral("total_s")] = totalSeconds;
    o[QStringLiteral("step_s")] = stepSeconds;
    o[QStringLiteral("load_s")] = loadSeconds;
    o[QStringLiteral("encode_s")] = encodeSeconds;
    o[QStringLiteral("denoise_s")] = denoiseSeconds;
    o[QStringLiteral("decode_s")] = decodeSeconds;
    o[QStringLiteral("peak_device_bytes")] = double(peakDeviceBytes);
    return o;
}

ImageTimings ImageTimings::fromJson(const QJsonObject& o) {
    ImageTimings r;
    r.totalSeconds = o.value(QStringLiteral("total_s")).toDouble();
    r.stepSeconds = o.value(QStringLiteral("step_s")).toDouble();
    r.loadSeconds = o.value(QStringLiteral("load_s")).toDouble();
    r.encodeSeconds = o.value(QStringLiteral("encode_s")).toDouble();
    r.denoiseSeconds = o.value(QStringLiteral("denoise_s")).toDouble();
    r.decodeSeconds = o.value(QStringLiteral("decode_s")).toDouble();
    r.peakDeviceBytes = qint64(o.value(QStringLiteral("peak_device_bytes")).toDouble());
    return r;
}

QJsonObject GalleryItem::toJson() const {
    QJsonObject o;
    o[QStringLiteral("version")] = koala::kMetadataVersion;  // the engine's schema (koala/engine.h)
    o[QStringLiteral("generator")] = QStringLiteral("KOALA Studio");
    o[QStringLiteral("params")] = params.toJson();
    o[QStringLiteral("created")] = createdAt.toUTC().toString(Qt::ISODateWithMs);
    o[QStringLiteral("model_name")] = modelName;
    o[QStringLiteral("unet_shape")] = unetShape;
    o[QStringLiteral("device")] = device;
    o[QStringLiteral("compute_dtype")] = computeDType;
    o[QStringLiteral("scheduler_used")] = schedulerUsed;
    o[QStringLiteral("spacing_used")] = spacingUsed;
    o[QStringLiteral("timings")] = timings.toJson();
    if (!compareGroup.isEmpty()) {
        o[QStringLiteral("compare_group")] = compareGroup;
        o[QStringLiteral("compare_slot")] = compareSlot;
    }
    if (!job.isEmpty()) {
        o[QStringLiteral("job")] = job;
        o[QStringLiteral("job_index")] = jobIndex;
    }
    o[QStringLiteral("width")] = width;
    o[QStringLiteral("height")] = height;
    return o;
}

GalleryItem GalleryItem::fromJson(const QJsonObject& o) {
    GalleryItem item;
    item.params = GenerationParams::fromJson(o.value(QStringLiteral("params")).toObject());
    item.createdAt = QDateTime::fromString(o.value(QStringLiteral("created")).toString(), Qt::ISODateWithMs);
    item.modelName = o.value(QStringLiteral("model_name")).toString();
    item.unetShape = o.value(QStringLiteral("unet_shape")).toString();
    item.device = o.value(QStringLiteral("device")).toString();
    item.computeDType = o.value(QStringLiteral("compute_dtype")).toString();
    item.schedulerUsed = o.value(QStringLiteral("scheduler_used")).toString();
    item.spacingUsed = o.value(QStringLiteral("spacing_used")).toString();
    item.timings = ImageTimings::fromJson(o.value(QStringLiteral("timings")).toObject());
    item.compareGroup = o.value(QStringLiteral("compare_group")).toString();
    item.compareSlot = o.value(QStringLiteral("compare_slot")).toInt(-1);
    item.job = o.value(QStringLiteral("job")).toString();
    item.jobIndex = o.value(QStringLiteral("job_index")).toInt(-1);
    item.width = o.value(QStringLiteral("width")).toInt();
    item.height = o.value(QStringLiteral("height")).toInt();
    return item;
}
