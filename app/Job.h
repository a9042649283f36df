#pragma once

#include <optional>

#include <QJsonObject>
#include <QList>
#include <QMetaType>
#include <QString>
#include <QStringList>

#include "GenerationParams.h"

// Engine settings for loading a model; the same strings as AppSettings.
struct EngineLoadSettings {
    QString device = QStringLiteral("auto");         // auto, cpu, cuda
    QString precision = QStringLiteral("auto");      // auto, fp32, fp16, bf16
    QString memoryMode = QStringLiteral("default");  // default, low
    // Passed to koala::LoadOptions::variant: "auto" (the engine picks the fp16 files for a half-precision load when
    // the folder has them), "" (plain), "fp16".
    QString variant = QStringLiteral("auto");
};

// One job: what the queue lists and what the worker runs, one record. The models are params.modelPath (model A)
// and params.modelPath2 (model B of a compare); params.count is replaced by `seeds`, resolved at enqueue so the
// queue can show them before the run.
struct Job {
    enum class Kind { Single, Compare };
    enum class State { Queued, Running, Done, Failed, Cancelled };

    qint64 id = 0;
    Kind kind = Kind::Single;
    GenerationParams params;
    QList<quint64> seeds;  // one image (Single) or one pair (Compare) per seed
    // Unique across runs of the app, set when the job starts: the stored images' `job` key, and compare groups
    // "<runKey>-<seed index>". Empty = derived from the id.
    QString runKey;
    EngineLoadSettings load;  // filled by the queue when the job starts

    // Kept by the queue.
    State state = State::Queued;
    int step = 0;  // of the image in progress
    int totalSteps = 0;
    int imagesDone = 0;   // stored images
    int imagesTotal = 0;  // seeds.size() (Single) or 2 * seeds.size() (Compare)
    double progress = 0;  // 0..1 over the whole job
    QString error;        // Failed: the message
    QStringList itemIds;  // gallery ids of the stored images

    int slotCount() const { return kind == Kind::Compare ? 2 : 1; }
    static QString toString(State state);

    // What is needed to run the job again (kind, params, seeds), for the saved queue. fromJson
    // returns nothing for a record without seeds or with a seed that is not a whole number 0..2^64-1.
    QJsonObject toJson() const;
    static std::optional<Job> fromJson(const QJsonObject& json);
};

Q_DECLARE_METATYPE(Job)
Q_DECLARE_METATYPE(Job::State)
