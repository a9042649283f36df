#include "GenerationParams.h"

#include <QFile>
#include <QFileInfo>
#include <QHash>
#include <QJsonArray>
#include <QJsonDocument>
#include <QRegularExpression>

namespace {

QString engineName(koala::SchedulerKind kind) { return QString::fromLatin1(koala::toString(kind)); }

constexpr const koala::Limits& L = koala::kLimits;

// Why one side cannot be used, or "".
QString sideProblem(const char* side, int pixels) {
    if (koala::validSize(pixels)) return {};
    if (pixels < L.minSize || pixels > L.maxSize)
        return QStringLiteral("%1 %2 is outside %3–%4")
            .arg(QLatin1String(side))
            .arg(pixels)
            .arg(L.minSize)
            .arg(L.maxSize);
    return QStringLiteral("%1 %2 is not a multiple of %3").arg(QLatin1String(side)).arg(pixels).arg(L.sizeMultiple);
}

// JSON numbers are doubles: exact up to 2^53.
constexpr quint64 kExactJsonInteger = quint64(1) << 53;

std::string localPath(const QString& path) { return QFile::encodeName(path).toStdString(); }

}  // namespace

GenerationParams GenerationParams::defaults() {
    const koala::GenerateRequest r = koala::defaultRequest();
    GenerationParams p;
    p.prompt = QString::fromStdString(r.prompt);
    p.hasNegative = r.negative.has_value();
    if (r.negative) p.negativePrompt = QString::fromStdString(*r.negative);
    p.seed.reset();  // the engine's default seed is a fixed number; the app draws one per image instead
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

koala::GenerateRequest GenerationParams::toRequest(quint64 resolvedSeed) const {
    koala::GenerateRequest r = koala::defaultRequest();
    r.prompt = prompt.toStdString();
    if (hasNegative)
        r.negative = negativePrompt.toStdString();
    else
        r.negative.reset();
    r.seed = resolvedSeed;
    r.steps = steps;
    r.guidance = static_cast<float>(guidance);
    r.guidanceRescale = static_cast<float>(guidanceRescale);
    koala::SchedulerKind kind = koala::SchedulerKind::Default;
    if (koala::fromString(scheduler.toStdString(), kind)) r.scheduler = kind;
    koala::TimestepSpacing sp = koala::TimestepSpacing::Default;
    if (koala::fromString(spacing.toStdString(), sp)) r.spacing = sp;
    r.width = width;
    r.height = height;
    r.numImages = 1;  // the app generates images one by one, each with its own seed and timings
    if (hasInitImage()) {
        r.initImage = koala::readImage(localPath(initImagePath));
        if (isInpaint()) {
            r.mask = koala::readImage(localPath(maskPath));
            r.maskBlur = maskBlur;
        }
        r.strength = strength;
    }
    // ---- prompt syntax (issue 10): the prompt's <lora:> tags name the LoRAs
    koala::fromString(promptSyntax.toStdString(), r.promptSyntax);
    return r;
}

void GenerationParams::clearInitImage() {
    const GenerationParams d;
    initImagePath = d.initImagePath;
    initImageHash = d.initImageHash;
    maskPath = d.maskPath;
    maskHash = d.maskHash;
    strength = d.strength;
    maskBlur = d.maskBlur;
}

double GenerationParams::effectiveStrength() const {
    if (strength) return *strength;
    return isInpaint() ? L.defaultInpaintStrength : L.defaultImg2ImgStrength;
}

QString GenerationParams::shortFileHash(const QString& path) {
    try {
        return QString::fromStdString(koala::fileSha256(localPath(path)).substr(0, 10));
    } catch (const koala::Error&) {
        return {};
    }
}

QString GenerationParams::validate() const {
    if (const QString size = sizeProblem(width, height); !size.isEmpty()) return size;
    if (steps < L.minSteps || steps > L.maxSteps)
        return QStringLiteral("Steps %1 must be between %2 and %3.").arg(steps).arg(L.minSteps).arg(L.maxSteps);
    if (!(guidance >= L.minGuidance && guidance <= L.maxGuidance))
        return QStringLiteral("Guidance %1 must be between %2 and %3.")
            .arg(guidance)
            .arg(L.minGuidance)
            .arg(L.maxGuidance);
    if (!(guidanceRescale >= L.minGuidanceRescale && guidanceRescale <= L.maxGuidanceRescale))
        return QStringLiteral("Guidance rescale %1 must be between %2 and %3.")
            .arg(guidanceRescale)
            .arg(L.minGuidanceRescale)
            .arg(L.maxGuidanceRescale);
    if (count < L.minImages || count > kMaxCount)
        return QStringLiteral("Image count %1 must be between %2 and %3.").arg(count).arg(L.minImages).arg(kMaxCount);
    if (seed && !koala::seedRunFits(*seed, std::uint64_t(qMax(1, count))))
        return QStringLiteral(
                   "Seed %1 leaves no room for %2 images (seeds %1, %1+1, … must stay at most %3); "
                   "choose a smaller seed or fewer images.")
            .arg(*seed)
            .arg(count)
            .arg(L.maxSeed);
    koala::SchedulerKind kind;
    if (!koala::fromString(scheduler.toStdString(), kind))
        return QStringLiteral("Unknown scheduler \"%1\" (use one of: %2).").arg(scheduler, schedulerNames().join(", "));
    koala::TimestepSpacing sp;
    if (!koala::fromString(spacing.toStdString(), sp))
        return QStringLiteral("Unknown timestep spacing \"%1\" (use one of: %2).")
            .arg(spacing, spacingNames().join(", "));
    if (!hasInitImage() && !maskPath.isEmpty()) return QStringLiteral("A mask needs an init image.");
    if (hasInitImage()) {
        if (!QFileInfo(initImagePath).isFile())
            return QStringLiteral("The init image %1 does not exist.").arg(initImagePath);
        if (isInpaint() && !QFileInfo(maskPath).isFile())
            return QStringLiteral("The mask %1 does not exist.").arg(maskPath);
        const double s = effectiveStrength();
        if (!(s > 0.0 && s <= L.maxStrength))
            return QStringLiteral("Strength %1 must be above 0 and at most %2.").arg(s).arg(L.maxStrength);
        if (koala::img2imgSteps(steps, s) < 1)
            return QStringLiteral(
                       "Strength %1 with %2 steps leaves no denoising step: raise the strength or the steps.")
                .arg(s)
                .arg(steps);
        if (maskBlur < 0 || maskBlur > L.maxMaskBlur)
            return QStringLiteral("Mask blur %1 must be between 0 and %2.").arg(maskBlur).arg(L.maxMaskBlur);
    }
    // ---- prompt syntax (issue 10)
    if (koala::PromptSyntax syntax; !koala::fromString(promptSyntax.toStdString(), syntax))
        return QStringLiteral("Unknown prompt syntax \"%1\" (use a1111 or plain).").arg(promptSyntax);
    return {};
}

QString GenerationParams::sizeProblem(int width, int height) {
    QStringList problems;
    if (QString w = sideProblem("width", width); !w.isEmpty()) problems << w;
    if (QString h = sideProblem("height", height); !h.isEmpty()) problems << h;
    if (problems.isEmpty()) return {};
    QString first = problems.takeFirst();
    first[0] = first[0].toUpper();
    problems.prepend(first);
    return QStringLiteral("Size %1 × %2 cannot be used: %3 (sizes are multiples of %4 from %5 to %6).")
        .arg(width)
        .arg(height)
        .arg(problems.join(QStringLiteral(" and ")))
        .arg(L.sizeMultiple)
        .arg(L.minSize)
        .arg(L.maxSize);
}

QList<quint64> GenerationParams::jobSeeds() const {
    QList<quint64> seeds;
    const int n = qMax(1, count);
    for (int i = 0; i < n; ++i) {
        if (!seed) {
            seeds << koala::randomSeed();
        } else {
            // The engine's rule: never wrap past kLimits.maxSeed (validate() refuses such a run).
            const std::optional<std::uint64_t> next = koala::seedInRun(*seed, std::uint64_t(i));
            if (!next) break;
            seeds << quint64(*next);
        }
    }
    return seeds;
}

QJsonObject GenerationParams::toJson() const {
    QJsonObject o;
    o[QStringLiteral("model")] = modelPath;
    if (!modelPath2.isEmpty()) o[QStringLiteral("model2")] = modelPath2;
    if (!modelName.isEmpty()) o[QStringLiteral("model_name")] = modelName;
    o[QStringLiteral("prompt")] = prompt;
    if (hasNegative)
        o[QStringLiteral("negative_prompt")] = negativePrompt;
    else
        o[QStringLiteral("negative_prompt")] = QJsonValue::Null;
    o[QStringLiteral("seed")] = seedToJson(seed);
    o[QStringLiteral("steps")] = steps;
    o[QStringLiteral("guidance")] = guidance;
    o[QStringLiteral("guidance_rescale")] = guidanceRescale;
    o[QStringLiteral("scheduler")] = scheduler;
    o[QStringLiteral("spacing")] = spacing;
    o[QStringLiteral("width")] = width;
    o[QStringLiteral("height")] = height;
    o[QStringLiteral("count")] = count;
    if (hasInitImage()) {
        o[QStringLiteral("strength")] = effectiveStrength();
        o[QStringLiteral("init_image")] = QFileInfo(initImagePath).fileName();
        o[QStringLiteral("init_image_path")] = initImagePath;
        o[QStringLiteral("init_image_sha256")] = initImageHash;
        if (isInpaint()) {
            o[QStringLiteral("mask_image")] = QFileInfo(maskPath).fileName();
            o[QStringLiteral("mask_image_path")] = maskPath;
            o[QStringLiteral("mask_image_sha256")] = maskHash;
            o[QStringLiteral("mask_blur")] = maskBlur;
        }
    }
    // ---- prompt syntax and LoRA (issue 10)
    o[QStringLiteral("prompt_syntax")] = promptSyntax;
    if (!loras.isEmpty()) {
        QJsonArray list;
        for (const LoraUse& l : loras)
            list.append(QJsonObject{{QStringLiteral("name"), l.name},
                                    {QStringLiteral("weight"), l.weight},
                                    {QStringLiteral("hash"), l.hash},
                                    {QStringLiteral("from_prompt"), l.fromPrompt},
                                    {QStringLiteral("report"), l.report}});
        o[QStringLiteral("loras")] = list;
    }
    return o;
}

GenerationParams GenerationParams::fromJson(const QJsonObject& o) {
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
    p.seed = seedFromJson(o.value(QStringLiteral("seed")));
    p.steps = o.value(QStringLiteral("steps")).toInt(p.steps);
    p.guidance = o.value(QStringLiteral("guidance")).toDouble(p.guidance);
    p.guidanceRescale = o.value(QStringLiteral("guidance_rescale")).toDouble(p.guidanceRescale);
    p.scheduler = o.value(QStringLiteral("scheduler")).toString(p.scheduler);
    p.spacing = o.value(QStringLiteral("spacing")).toString(p.spacing);
    p.width = o.value(QStringLiteral("width")).toInt(p.width);
    p.height = o.value(QStringLiteral("height")).toInt(p.height);
    p.count = o.value(QStringLiteral("count")).toInt(p.count);
    // A chunk written elsewhere names the files only: the name is all there is to restore then.
    p.initImagePath =
        o.value(QStringLiteral("init_image_path")).toString(o.value(QStringLiteral("init_image")).toString());
    p.initImageHash = o.value(QStringLiteral("init_image_sha256")).toString();
    p.maskPath = o.value(QStringLiteral("mask_image_path")).toString(o.value(QStringLiteral("mask_image")).toString());
    p.maskHash = o.value(QStringLiteral("mask_image_sha256")).toString();
    if (const QJsonValue st = o.value(QStringLiteral("strength")); st.isDouble()) p.strength = st.toDouble();
    p.maskBlur = o.value(QStringLiteral("mask_blur")).toInt(p.maskBlur);
    // ---- prompt syntax and LoRA (issue 10)
    p.promptSyntax = o.value(QStringLiteral("prompt_syntax")).toString(p.promptSyntax);
    for (const QJsonValue& v : o.value(QStringLiteral("loras")).toArray()) {
        const QJsonObject l = v.toObject();
        p.loras.append({l.value(QStringLiteral("name")).toString(), l.value(QStringLiteral("weight")).toDouble(1.0),
                        l.value(QStringLiteral("hash")).toString(), l.value(QStringLiteral("from_prompt")).toBool(true),
                        l.value(QStringLiteral("report")).toString()});
    }
    return p;
}

QJsonValue GenerationParams::seedToJson(std::optional<quint64> seed) {
    if (!seed) return QJsonValue::Null;
    if (*seed > kExactJsonInteger) return QString::number(*seed);
    return double(*seed);
}

std::optional<quint64> GenerationParams::seedFromJson(const QJsonValue& value) {
    if (value.isString()) return koala::parseSeed(value.toString().toStdString());
    if (value.isDouble()) {
        const double d = value.toDouble();
        // -1 (random in older files), fractions and numbers past exact doubles are not seeds.
        if (d >= 0 && d <= double(kExactJsonInteger) && d == double(quint64(d))) return quint64(d);
    }
    return std::nullopt;
}

koala::ImageMetadata GenerationParams::toMetadata() const {
    koala::ImageMetadata m;
    m.prompt = prompt.toStdString();
    if (hasNegative) m.negative = negativePrompt.toStdString();
    if (seed) m.seed = *seed;
    m.steps = steps;
    m.guidance = guidance;
    m.guidanceRescale = guidanceRescale;
    m.scheduler = scheduler.toStdString();
    m.spacing = spacing.toStdString();
    m.width = width;
    m.height = height;
    m.count = count;
    m.modelPath = modelPath.toStdString();
    m.modelName = modelName.toStdString();
    if (hasInitImage()) {
        m.strength = effectiveStrength();
        m.initImage = QFileInfo(initImagePath).fileName().toStdString();
        m.initImageHash = initImageHash.toStdString();
        if (isInpaint()) {
            m.maskImage = QFileInfo(maskPath).fileName().toStdString();
            m.maskImageHash = maskHash.toStdString();
            m.maskBlur = maskBlur;
        }
    }
    // ---- prompt syntax and LoRA (issue 10)
    m.promptSyntax = promptSyntax.toStdString();
    for (const LoraUse& l : loras)
        m.loras.push_back({l.name.toStdString(), l.weight, l.hash.toStdString(), l.fromPrompt});
    return m;
}

GenerationParams GenerationParams::fromMetadata(const koala::ImageMetadata& m) {
    GenerationParams p = defaults();
    p.prompt = QString::fromStdString(m.prompt);
    p.hasNegative = m.negative.has_value();
    p.negativePrompt = m.negative ? QString::fromStdString(*m.negative) : QString();
    p.seed = m.seed;
    p.steps = m.steps;
    p.guidance = m.guidance;
    p.guidanceRescale = m.guidanceRescale;
    p.scheduler = QString::fromStdString(m.scheduler);
    p.spacing = QString::fromStdString(m.spacing);
    p.width = m.width;
    p.height = m.height;
    p.count = m.count;
    p.modelPath = QString::fromStdString(m.modelPath);
    p.modelName = QString::fromStdString(m.modelName);
    // The metadata names files without their folder; A1111 text has the strength and mask blur only.
    p.initImagePath = QString::fromStdString(m.initImage);
    p.initImageHash = QString::fromStdString(m.initImageHash);
    p.maskPath = QString::fromStdString(m.maskImage);
    p.maskHash = QString::fromStdString(m.maskImageHash);
    p.strength = m.strength;
    p.maskBlur = m.maskBlur;
    // ---- prompt syntax and LoRA (issue 10): a tag's LoRA is back in the prompt already (the engine's readers)
    p.promptSyntax = QString::fromStdString(m.promptSyntax);
    for (const koala::ImageMetadata::Lora& l : m.loras)
        p.loras.append({QString::fromStdString(l.name), l.weight, QString::fromStdString(l.hash), l.fromPrompt, {}});
    return p;
}

QString GenerationParams::toA1111() const { return QString::fromStdString(koala::toA1111Parameters(toMetadata())); }

std::optional<GenerationParams> GenerationParams::fromA1111(const QString& text) {
    const std::optional<koala::ImageMetadata> m = koala::parseA1111Parameters(text.toStdString());
    if (!m) return std::nullopt;
    return fromMetadata(*m);
}

QPair<QString, QString> GenerationParams::toA1111Sampler(const QString& scheduler) {
    const auto s = koala::a1111SamplerOf(scheduler.toStdString());
    return {QString::fromStdString(s.first), QString::fromStdString(s.second)};
}

QString GenerationParams::fromA1111Sampler(const QString& sampler, const QString& scheduleType) {
    return QString::fromStdString(koala::schedulerFromA1111(sampler.toStdString(), scheduleType.toStdString()));
}

QStringList GenerationParams::schedulerNames() {
    QStringList names{engineName(koala::SchedulerKind::Default)};
    for (koala::SchedulerKind k : koala::allSchedulers()) names << engineName(k);
    return names;
}

QStringList GenerationParams::spacingNames() {
    return {QString::fromLatin1(koala::toString(koala::TimestepSpacing::Default)),
            QString::fromLatin1(koala::toString(koala::TimestepSpacing::Leading)),
            QString::fromLatin1(koala::toString(koala::TimestepSpacing::Trailing)),
            QString::fromLatin1(koala::toString(koala::TimestepSpacing::Linspace))};
}

const QList<QSize>& GenerationParams::aspectBuckets() {
    static const QList<QSize> buckets{{1024, 1024}, {1152, 896}, {896, 1152}, {1216, 832}, {832, 1216},
                                      {1344, 768},  {768, 1344}, {1536, 640}, {640, 1536}};
    return buckets;
}

const QList<QSize>& GenerationParams::sdBuckets() {
    static const QList<QSize> buckets{{512, 512}, {768, 768}, {512, 768}, {768, 512},
                                      {640, 512}, {512, 640}, {768, 576}, {576, 768}};
    return buckets;
}

QString GenerationParams::schedulerDisplayName(const QString& scheduler) {
    static const QHash<QString, QString> names{
        {QStringLiteral("default"), QStringLiteral("model default")},
        {QStringLiteral("euler"), QStringLiteral("Euler")},
        {QStringLiteral("euler_karras"), QStringLiteral("Euler Karras")},
        {QStringLiteral("euler_a"), QStringLiteral("Euler a")},
        {QStringLiteral("dpmpp_2m"), QStringLiteral("DPM++ 2M")},
        {QStringLiteral("dpmpp_2m_karras"), QStringLiteral("DPM++ 2M Karras")},
        {QStringLiteral("ddim"), QStringLiteral("DDIM")},
        {QStringLiteral("pndm"), QStringLiteral("PNDM")},
    };
    return names.value(scheduler, scheduler);
}

bool GenerationParams::operator==(const GenerationParams& o) const {
    return modelPath == o.modelPath && modelPath2 == o.modelPath2 && modelName == o.modelName && prompt == o.prompt &&
           negativePrompt == o.negativePrompt && hasNegative == o.hasNegative && seed == o.seed && steps == o.steps &&
           qFuzzyCompare(1.0 + guidance, 1.0 + o.guidance) &&
           qFuzzyCompare(1.0 + guidanceRescale, 1.0 + o.guidanceRescale) && scheduler == o.scheduler &&
           spacing == o.spacing && width == o.width && height == o.height && count == o.count &&
           initImagePath == o.initImagePath && initImageHash == o.initImageHash && maskPath == o.maskPath &&
           maskHash == o.maskHash && strength.has_value() == o.strength.has_value() &&
           (!strength || qFuzzyCompare(*strength, *o.strength)) && maskBlur == o.maskBlur &&
           promptSyntax == o.promptSyntax && loras == o.loras;  // issue 10
}

// ---- prompt syntax and LoRA (issue 10) ----
bool GenerationParams::LoraUse::operator==(const LoraUse& o) const {
    return name == o.name && qFuzzyCompare(1.0 + weight, 1.0 + o.weight) && hash == o.hash &&
           fromPrompt == o.fromPrompt && report == o.report;
}

void GenerationParams::setAppliedLoras(const std::vector<koala::GenerateResult::AppliedLora>& applied) {
    loras.clear();
    for (const auto& a : applied)
        loras.append({QString::fromStdString(a.name), a.weight, QString::fromStdString(a.shortHash), a.fromPrompt,
                      QString::fromStdString(a.report)});
}

QStringList GenerationParams::loraReportLines() const {
    QStringList lines;
    for (const LoraUse& l : loras)
        if (!l.report.isEmpty())
            lines << QStringLiteral("%1 %2: %3").arg(l.name, QString::number(l.weight, 'g', 6), l.report);
    return lines;
}
