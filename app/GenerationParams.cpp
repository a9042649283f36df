#include "GenerationParams.h"

#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QRegularExpression>

namespace {

QString engineName(koala::SchedulerKind kind)
{
    return QString::fromLatin1(koala::toString(kind));
}

// Our scheduler names and their A1111 equivalents (sampler, schedule type). The old combined names
// ("DPM++ 2M Karras") are accepted on input only.
struct SamplerName {
    const char* ours;
    const char* sampler;
    const char* schedule;
};
const SamplerName samplerNames[] = {
    {"euler", "Euler", ""},
    {"euler_karras", "Euler", "Karras"},
    {"euler_a", "Euler a", ""},
    {"dpmpp_2m", "DPM++ 2M", ""},
    {"dpmpp_2m_karras", "DPM++ 2M", "Karras"},
    {"ddim", "DDIM", ""},
};

QString formatNumber(double v)
{
    return QString::number(v, 'g', 10);
}

// A1111 quotes values that contain commas or colons as JSON strings.
QString quoteIfNeeded(const QString& v)
{
    if (!v.contains(QLatin1Char(',')) && !v.contains(QLatin1Char(':')) && !v.contains(QLatin1Char('"')))
        return v;
    QJsonArray arr{v};
    const QByteArray json = QJsonDocument(arr).toJson(QJsonDocument::Compact);
    return QString::fromUtf8(json.mid(1, json.size() - 2));
}

QString unquote(QString v)
{
    v = v.trimmed();
    if (v.size() >= 2 && v.startsWith(QLatin1Char('"')) && v.endsWith(QLatin1Char('"'))) {
        const QJsonDocument doc = QJsonDocument::fromJson("[" + v.toUtf8() + "]");
        if (doc.isArray() && !doc.array().isEmpty())
            return doc.array().at(0).toString();
    }
    return v;
}

const QRegularExpression& paramPattern()
{
    // The pattern A1111 itself uses (modules/infotext_utils.py): key: value pairs, values optionally JSON-quoted.
    static const QRegularExpression re(QStringLiteral(R"re(\s*([\w][\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$))re"));
    return re;
}

}  // namespace

GenerationParams GenerationParams::defaults()
{
    const koala::GenerateRequest r = koala::defaultRequest();
    GenerationParams p;
    p.prompt = QString::fromStdString(r.prompt);
    p.hasNegative = r.negative.has_value();
    if (r.negative)
        p.negativePrompt = QString::fromStdString(*r.negative);
    p.seed = -1;  // the engine's default seed is a fixed number; the app draws one per image instead
    p.steps = r.steps;
    p.guidance = r.guidance;
    p.guidanceRescale = r.guidanceRescale;
    p.scheduler = QString::fromLatin1(koala::toString(r.scheduler));
    p.spacing = QString::fromLatin1(koala::toString(r.spacing));
    p.width = r.width;
    p.height = r.height;
    p.count = 1;
    return p;
}

koala::GenerateRequest GenerationParams::toRequest(qint64 resolvedSeed) const
{
    koala::GenerateRequest r = koala::defaultRequest();
    r.prompt = prompt.toStdString();
    if (hasNegative)
        r.negative = negativePrompt.toStdString();
    else
        r.negative.reset();
    r.seed = static_cast<std::uint64_t>(resolvedSeed < 0 ? 0 : resolvedSeed);
    r.steps = steps;
    r.guidance = static_cast<float>(guidance);
    r.guidanceRescale = static_cast<float>(guidanceRescale);
    koala::SchedulerKind kind = koala::SchedulerKind::Default;
    if (koala::fromString(scheduler.toStdString(), kind))
        r.scheduler = kind;
    koala::TimestepSpacing sp = koala::TimestepSpacing::Default;
    if (koala::fromString(spacing.toStdString(), sp))
        r.spacing = sp;
    r.width = width;
    r.height = height;
    r.numImages = 1;  // the app generates images one by one, each with its own seed and timings
    return r;
}

QString GenerationParams::validate() const
{
    if (width < 64 || width > 4096 || width % 8 != 0)
        return QStringLiteral("Width %1 must be a multiple of 8 between 64 and 4096.").arg(width);
    if (height < 64 || height > 4096 || height % 8 != 0)
        return QStringLiteral("Height %1 must be a multiple of 8 between 64 and 4096.").arg(height);
    if (steps < 1 || steps > 200)
        return QStringLiteral("Steps %1 must be between 1 and 200.").arg(steps);
    if (!(guidance >= 0.0 && guidance <= 50.0))
        return QStringLiteral("Guidance %1 must be between 0 and 50.").arg(guidance);
    if (!(guidanceRescale >= 0.0 && guidanceRescale <= 1.0))
        return QStringLiteral("Guidance rescale %1 must be between 0 and 1.").arg(guidanceRescale);
    if (count < 1 || count > 1000)
        return QStringLiteral("Image count %1 must be between 1 and 1000.").arg(count);
    if (seed < -1)
        return QStringLiteral("Seed %1 must be -1 (random) or a non-negative number.").arg(seed);
    koala::SchedulerKind kind;
    if (!koala::fromString(scheduler.toStdString(), kind))
        return QStringLiteral("Unknown scheduler \"%1\" (use one of: %2).").arg(scheduler, schedulerNames().join(", "));
    koala::TimestepSpacing sp;
    if (!koala::fromString(spacing.toStdString(), sp))
        return QStringLiteral("Unknown timestep spacing \"%1\" (use one of: %2).").arg(spacing, spacingNames().join(", "));
    return {};
}

QJsonObject GenerationParams::toJson() const
{
    QJsonObject o;
    o[QStringLiteral("model")] = modelPath;
    if (!modelPath2.isEmpty())
        o[QStringLiteral("model2")] = modelPath2;
    if (!modelName.isEmpty())
        o[QStringLiteral("model_name")] = modelName;
    o[QStringLiteral("prompt")] = prompt;
    if (hasNegative)
        o[QStringLiteral("negative_prompt")] = negativePrompt;
    else
        o[QStringLiteral("negative_prompt")] = QJsonValue::Null;
    // Seeds go up to 2^64 in the engine; JSON doubles lose precision above 2^53, so store as a string when large.
    if (seed > (qint64(1) << 53))
        o[QStringLiteral("seed")] = QString::number(seed);
    else
        o[QStringLiteral("seed")] = double(seed);
    o[QStringLiteral("steps")] = steps;
    o[QStringLiteral("guidance")] = guidance;
    o[QStringLiteral("guidance_rescale")] = guidanceRescale;
    o[QStringLiteral("scheduler")] = scheduler;
    o[QStringLiteral("spacing")] = spacing;
    o[QStringLiteral("width")] = width;
    o[QStringLiteral("height")] = height;
    o[QStringLiteral("count")] = count;
    return o;
}

GenerationParams GenerationParams::fromJson(const QJsonObject& o)
{
    GenerationParams p = defaults();
    p.modelPath = o.value(QStringLiteral("model")).toString(p.modelPath);
    p.modelPath2 = o.value(QStringLiteral("model2")).toString(p.modelPath2);
    p.modelName = o.value(QStringLiteral("model_name")).toString(p.modelName);
    p.prompt = o.value(QStringLiteral("prompt")).toString(p.prompt);
    const QJsonValue neg = o.value(QStringLiteral("negative_prompt"));
    if (neg.isString()) {
        p.hasNegative = true;
        p.negativePrompt = neg.toString();
    } else if (neg.isNull()) {
        p.hasNegative = false;
        p.negativePrompt.clear();
    }
    const QJsonValue seed = o.value(QStringLiteral("seed"));
    if (seed.isString())
        p.seed = seed.toString().toLongLong();
    else if (seed.isDouble())
        p.seed = qint64(seed.toDouble());
    p.steps = o.value(QStringLiteral("steps")).toInt(p.steps);
    p.guidance = o.value(QStringLiteral("guidance")).toDouble(p.guidance);
    p.guidanceRescale = o.value(QStringLiteral("guidance_rescale")).toDouble(p.guidanceRescale);
    p.scheduler = o.value(QStringLiteral("scheduler")).toString(p.scheduler);
    p.spacing = o.value(QStringLiteral("spacing")).toString(p.spacing);
    p.width = o.value(QStringLiteral("width")).toInt(p.width);
    p.height = o.value(QStringLiteral("height")).toInt(p.height);
    p.count = o.value(QStringLiteral("count")).toInt(p.count);
    return p;
}

QString GenerationParams::toA1111() const
{
    QStringList lines;
    lines << prompt;
    if (hasNegative)
        lines << QStringLiteral("Negative prompt: ") + negativePrompt;

    QStringList fields;
    fields << QStringLiteral("Steps: %1").arg(steps);
    const QPair<QString, QString> sampler = toA1111Sampler(scheduler);
    if (!sampler.first.isEmpty()) {
        fields << QStringLiteral("Sampler: ") + sampler.first;
        if (!sampler.second.isEmpty())
            fields << QStringLiteral("Schedule type: ") + sampler.second;
    }
    fields << QStringLiteral("CFG scale: ") + formatNumber(guidance);
    fields << QStringLiteral("Seed: %1").arg(seed);
    fields << QStringLiteral("Size: %1x%2").arg(width).arg(height);
    QString model = modelName;
    if (model.isEmpty() && !modelPath.isEmpty())
        model = QFileInfo(modelPath).fileName();
    if (!model.isEmpty())
        fields << QStringLiteral("Model: ") + quoteIfNeeded(model);
    if (guidanceRescale != 0.0)
        fields << QStringLiteral("Guidance rescale: ") + formatNumber(guidanceRescale);
    if (spacing != QLatin1String("default") && !spacing.isEmpty())
        fields << QStringLiteral("Timestep spacing: ") + spacing;
    if (count > 1)
        fields << QStringLiteral("Batch size: %1").arg(count);
    lines << fields.join(QStringLiteral(", "));
    return lines.join(QLatin1Char('\n'));
}

std::optional<GenerationParams> GenerationParams::fromA1111(const QString& text)
{
    const QString all = text.trimmed();
    auto parseLine = [](const QString& line) {
        QHash<QString, QString> values;
        auto it = paramPattern().globalMatch(line.trimmed());
        while (it.hasNext()) {
            const QRegularExpressionMatch m = it.next();
            values.insert(m.captured(1).trimmed(), unquote(m.captured(2)));
        }
        return values;
    };
    // The last line holds the key: value pairs; A1111 requires at least three of them.
    const qsizetype lastBreak = all.lastIndexOf(QLatin1Char('\n'));
    QString head = lastBreak < 0 ? QString() : all.left(lastBreak);
    QHash<QString, QString> values = parseLine(all.mid(lastBreak + 1));
    if (values.size() < 3 || !values.contains(QStringLiteral("Steps"))) {
        // Some writers (Qt's QImageWriter among them) flatten newlines into spaces: find the parameter part by its
        // first key instead.
        const qsizetype steps = all.lastIndexOf(QLatin1String("Steps: "));
        if (steps < 0)
            return std::nullopt;
        values = parseLine(all.mid(steps));
        if (values.size() < 3 || !values.contains(QStringLiteral("Steps")))
            return std::nullopt;
        head = all.left(steps);
    }

    GenerationParams p = defaults();
    static const QLatin1String negativeTag("Negative prompt:");
    // At a line start normally, anywhere in a flattened text.
    qsizetype neg = head.startsWith(negativeTag) ? 0 : head.indexOf(QLatin1Char('\n') + negativeTag);
    qsizetype tagStart = neg < 0 ? -1 : (neg == 0 && head.startsWith(negativeTag) ? 0 : neg + 1);
    if (tagStart < 0)
        tagStart = head.indexOf(QLatin1Char(' ') + negativeTag) >= 0 ? head.indexOf(QLatin1Char(' ') + negativeTag) + 1 : -1;
    if (tagStart >= 0) {
        p.prompt = head.left(tagStart).trimmed();
        p.hasNegative = true;
        p.negativePrompt = head.mid(tagStart + negativeTag.size()).trimmed();
    } else {
        p.prompt = head.trimmed();
        p.hasNegative = false;
        p.negativePrompt.clear();
    }

    bool ok = false;
    const int steps = values.value(QStringLiteral("Steps")).toInt(&ok);
    if (ok)
        p.steps = steps;
    const double cfg = values.value(QStringLiteral("CFG scale")).toDouble(&ok);
    if (ok)
        p.guidance = cfg;
    const qint64 seed = values.value(QStringLiteral("Seed")).toLongLong(&ok);
    if (ok)
        p.seed = seed;
    const QString size = values.value(QStringLiteral("Size"));
    const int x = size.indexOf(QLatin1Char('x'));
    if (x > 0) {
        bool okW = false, okH = false;
        const int w = size.left(x).toInt(&okW);
        const int h = size.mid(x + 1).toInt(&okH);
        if (okW && okH) {
            p.width = w;
            p.height = h;
        }
    }
    if (values.contains(QStringLiteral("Sampler"))) {
        const QString ours = fromA1111Sampler(values.value(QStringLiteral("Sampler")),
                                              values.value(QStringLiteral("Schedule type")));
        if (!ours.isEmpty())
            p.scheduler = ours;
    }
    p.modelName = values.value(QStringLiteral("Model"));
    const double rescale = values.value(QStringLiteral("Guidance rescale")).toDouble(&ok);
    if (ok)
        p.guidanceRescale = rescale;
    const QString spacing = values.value(QStringLiteral("Timestep spacing"));
    koala::TimestepSpacing sp;
    if (!spacing.isEmpty() && koala::fromString(spacing.toStdString(), sp))
        p.spacing = QString::fromLatin1(koala::toString(sp));
    const int batch = values.value(QStringLiteral("Batch size")).toInt(&ok);
    if (ok && batch > 0)
        p.count = batch;
    return p;
}

QPair<QString, QString> GenerationParams::toA1111Sampler(const QString& scheduler)
{
    for (const SamplerName& s : samplerNames) {
        if (scheduler == QLatin1String(s.ours))
            return {QString::fromLatin1(s.sampler), QString::fromLatin1(s.schedule)};
    }
    return {};
}

QString GenerationParams::fromA1111Sampler(const QString& sampler, const QString& scheduleType)
{
    QString name = sampler.trimmed();
    bool karras = scheduleType.trimmed().compare(QLatin1String("Karras"), Qt::CaseInsensitive) == 0;
    // Old infotexts put the schedule into the sampler name.
    if (name.endsWith(QLatin1String(" Karras"), Qt::CaseInsensitive)) {
        name.chop(7);
        karras = true;
    }
    for (const SamplerName& s : samplerNames) {
        if (name.compare(QLatin1String(s.sampler), Qt::CaseInsensitive) == 0
            && karras == (qstrlen(s.schedule) > 0))
            return QString::fromLatin1(s.ours);
    }
    // A Karras schedule on a sampler we only have without it: keep the sampler.
    for (const SamplerName& s : samplerNames) {
        if (name.compare(QLatin1String(s.sampler), Qt::CaseInsensitive) == 0)
            return QString::fromLatin1(s.ours);
    }
    return {};
}

QStringList GenerationParams::schedulerNames()
{
    QStringList names{engineName(koala::SchedulerKind::Default)};
    for (koala::SchedulerKind k : koala::allSchedulers())
        names << engineName(k);
    return names;
}

QStringList GenerationParams::spacingNames()
{
    return {QString::fromLatin1(koala::toString(koala::TimestepSpacing::Default)),
            QString::fromLatin1(koala::toString(koala::TimestepSpacing::Leading)),
            QString::fromLatin1(koala::toString(koala::TimestepSpacing::Trailing)),
            QString::fromLatin1(koala::toString(koala::TimestepSpacing::Linspace))};
}

const QList<QSize>& GenerationParams::aspectBuckets()
{
    static const QList<QSize> buckets{{1024, 1024}, {1152, 896}, {896, 1152}, {1216, 832}, {832, 1216},
                                      {1344, 768},  {768, 1344}, {1536, 640}, {640, 1536}};
    return buckets;
}

bool GenerationParams::operator==(const GenerationParams& o) const
{
    return modelPath == o.modelPath && modelPath2 == o.modelPath2 && modelName == o.modelName && prompt == o.prompt
        && negativePrompt == o.negativePrompt && hasNegative == o.hasNegative && seed == o.seed && steps == o.steps
        && qFuzzyCompare(1.0 + guidance, 1.0 + o.guidance) && qFuzzyCompare(1.0 + guidanceRescale, 1.0 + o.guidanceRescale)
        && scheduler == o.scheduler && spacing == o.spacing && width == o.width && height == o.height
        && count == o.count;
}
