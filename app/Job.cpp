#include "Job.h"

#include <QJsonArray>

QString Job::toString(State state) {
    switch (state) {
    case State::Queued: return QStringLiteral("queued");
    case State::Running: return QStringLiteral("running");
    case State::Done: return QStringLiteral("done");
    case State::Failed: return QStringLiteral("failed");
    case State::Cancelled: return QStringLiteral("cancelled");
    }
    return {};
}

QJsonObject Job::toJson() const {
    QJsonObject o;
    o[QStringLiteral("kind")] = kind == Kind::Compare ? QStringLiteral("compare") : QStringLiteral("single");
    o[QStringLiteral("params")] = params.toJson();
    QJsonArray seedArray;
    for (quint64 seed : seeds) seedArray << GenerationParams::seedToJson(seed);
    o[QStringLiteral("seeds")] = seedArray;
    return o;
}

std::optional<Job> Job::fromJson(const QJsonObject& o) {
    Job job;
    job.kind = o.value(QStringLiteral("kind")).toString() == QLatin1String("compare") ? Kind::Compare : Kind::Single;
    job.params = GenerationParams::fromJson(o.value(QStringLiteral("params")).toObject());
    for (const QJsonValue& v : o.value(QStringLiteral("seeds")).toArray()) {
        const std::optional<quint64> seed = GenerationParams::seedFromJson(v);
        if (!seed) return std::nullopt;
        job.seeds << *seed;
    }
    if (job.seeds.isEmpty()) return std::nullopt;
    job.params.count = int(job.seeds.size());
    return job;
}
