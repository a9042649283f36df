#include <QtTest>

#include "GenerationParams.h"

class TestGenerationParams : public QObject {
    Q_OBJECT

private slots:
    void defaultsComeFromEngine();
    void jsonRoundTrip_data();
    void jsonRoundTrip();
    void jsonMissingKeysTakeDefaults();
    void a1111RoundTrip_data();
    void a1111RoundTrip();
    void a1111ParsesReferenceText();
    void a1111LegacySamplerAndQuotedModel();
    void a1111RejectsPlainText();
    void samplerMapBothWays();
    void validateRejectsBadValues();
    void toRequestMapsFields();
    void aspectBuckets();
    void sdBucketsAndSchedulerNames();
    void seedsRoundTripFullRange_data();
    void seedsRoundTripFullRange();
    void seedJsonRefusesOtherNumbers();
    void jobSeedsNeverWrap();
    void rangesComeFromEngineLimits();
    void sizeProblemNamesBothSides();

private:
    static GenerationParams sample();
};

GenerationParams TestGenerationParams::sample() {
    GenerationParams p = GenerationParams::defaults();
    p.modelPath = QStringLiteral("/models/koala-700m-llava-cap");
    p.modelName = QStringLiteral("koala-700m-llava-cap");
    p.prompt = QStringLiteral("a koala astronaut, (detailed:1.2), 4k\nsecond line: with colon");
    p.negativePrompt = QStringLiteral("blurry, low quality");
    p.hasNegative = true;
    p.seed = 1234567890123;
    p.steps = 37;
    p.guidance = 3.5;
    p.guidanceRescale = 0.7;
    p.scheduler = QStringLiteral("dpmpp_2m_karras");
    p.spacing = QStringLiteral("trailing");
    p.width = 832;
    p.height = 1216;
    p.count = 3;
    return p;
}

void TestGenerationParams::defaultsComeFromEngine() {
    const koala::GenerateRequest r = koala::defaultRequest();
    const GenerationParams p = GenerationParams::defaults();
    QCOMPARE(p.steps, r.steps);
    QCOMPARE(p.guidance, double(r.guidance));
    QCOMPARE(p.width, r.width);
    QCOMPARE(p.height, r.height);
    QCOMPARE(p.scheduler, QString::fromLatin1(koala::toString(r.scheduler)));
    QCOMPARE(p.hasNegative, r.negative.has_value());
    QVERIFY(!p.seed.has_value());
    QVERIFY2(p.validate().isEmpty(), qPrintable(p.validate()));
}

void TestGenerationParams::jsonRoundTrip_data() {
    QTest::addColumn<GenerationParams>("params");
    QTest::newRow("full") << sample();
    GenerationParams noNeg = sample();
    noNeg.hasNegative = false;
    noNeg.negativePrompt.clear();
    QTest::newRow("no negative") << noNeg;
    GenerationParams emptyNeg = sample();
    emptyNeg.negativePrompt.clear();
    QTest::newRow("empty negative") << emptyNeg;
    GenerationParams compare = sample();
    compare.modelPath2 = QStringLiteral("/models/koala-1b");
    compare.seed.reset();
    QTest::newRow("compare, random seed") << compare;
}

void TestGenerationParams::jsonRoundTrip() {
    QFETCH(GenerationParams, params);
    const QJsonObject json = params.toJson();
    // Through text too, as the gallery and settings store it.
    const QJsonObject reparsed = QJsonDocument::fromJson(QJsonDocument(json).toJson()).object();
    const GenerationParams back = GenerationParams::fromJson(reparsed);
    QCOMPARE(back.hasNegative, params.hasNegative);
    QCOMPARE(back.negativePrompt, params.negativePrompt);
    QCOMPARE(back.seed, params.seed);
    QVERIFY(back == params);
}

void TestGenerationParams::jsonMissingKeysTakeDefaults() {
    QJsonObject o;
    o[QStringLiteral("prompt")] = QStringLiteral("only a prompt");
    o[QStringLiteral("unknown_future_key")] = 5;
    const GenerationParams p = GenerationParams::fromJson(o);
    GenerationParams expected = GenerationParams::defaults();
    expected.prompt = QStringLiteral("only a prompt");
    QVERIFY(p == expected);
}

void TestGenerationParams::a1111RoundTrip_data() {
    QTest::addColumn<GenerationParams>("params");
    GenerationParams p = sample();
    p.modelPath.clear();
    p.count = 1;
    QTest::newRow("full") << p;
    for (const QString& s : GenerationParams::schedulerNames()) {
        if (s == QLatin1String("default")) continue;
        GenerationParams q = p;
        q.scheduler = s;
        q.hasNegative = false;
        q.negativePrompt.clear();
        q.guidanceRescale = 0;
        q.spacing = QStringLiteral("default");
        QTest::newRow(qPrintable(s)) << q;
    }
    GenerationParams emptyNeg = p;
    emptyNeg.negativePrompt.clear();
    QTest::newRow("empty negative") << emptyNeg;
}

void TestGenerationParams::a1111RoundTrip() {
    QFETCH(GenerationParams, params);
    const QString text = params.toA1111();
    const std::optional<GenerationParams> back = GenerationParams::fromA1111(text);
    QVERIFY2(back.has_value(), qPrintable(text));
    QCOMPARE(back->prompt, params.prompt);
    QCOMPARE(back->hasNegative, params.hasNegative);
    QCOMPARE(back->negativePrompt, params.negativePrompt);
    QCOMPARE(back->scheduler, params.scheduler);
    QCOMPARE(back->spacing, params.spacing);
    QCOMPARE(back->modelName, params.modelName);
    QVERIFY2(*back == params, qPrintable(text));
}

void TestGenerationParams::a1111ParsesReferenceText() {
    const QString text = QStringLiteral(
        "a photo of a koala\nNegative prompt: ugly, blurry\n"
        "Steps: 25, Sampler: Euler, Schedule type: Karras, CFG scale: 5, Seed: 42, Size: 1024x1024, Model: koala-700m");
    const std::optional<GenerationParams> p = GenerationParams::fromA1111(text);
    QVERIFY(p);
    QCOMPARE(p->prompt, QStringLiteral("a photo of a koala"));
    QVERIFY(p->hasNegative);
    QCOMPARE(p->negativePrompt, QStringLiteral("ugly, blurry"));
    QCOMPARE(p->steps, 25);
    QCOMPARE(p->scheduler, QStringLiteral("euler_karras"));
    QCOMPARE(p->guidance, 5.0);
    QCOMPARE(p->seed, std::optional<quint64>(42));
    QCOMPARE(p->width, 1024);
    QCOMPARE(p->height, 1024);
    QCOMPARE(p->modelName, QStringLiteral("koala-700m"));

    GenerationParams expected = *p;
    expected.modelPath.clear();
    QCOMPARE(expected.toA1111(), text);
}

void TestGenerationParams::a1111LegacySamplerAndQuotedModel() {
    const QString text = QStringLiteral(
        "castle on a hill\nSteps: 30, Sampler: DPM++ 2M Karras, CFG scale: 7.5, Seed: 7, Size: 832x1216, "
        "Model hash: abc123, Model: \"my, model\", Version: v1.6.0");
    const std::optional<GenerationParams> p = GenerationParams::fromA1111(text);
    QVERIFY(p);
    QVERIFY(!p->hasNegative);
    QCOMPARE(p->scheduler, QStringLiteral("dpmpp_2m_karras"));
    QCOMPARE(p->guidance, 7.5);
    QCOMPARE(p->width, 832);
    QCOMPARE(p->height, 1216);
    QCOMPARE(p->modelName, QStringLiteral("my, model"));

    // An unknown sampler keeps our default instead of failing.
    const std::optional<GenerationParams> q = GenerationParams::fromA1111(
        QStringLiteral("x\nSteps: 20, Sampler: UniPC, CFG scale: 4, Seed: 1, Size: 512x512"));
    QVERIFY(q);
    QCOMPARE(q->scheduler, GenerationParams::defaults().scheduler);
}

void TestGenerationParams::a1111RejectsPlainText() {
    QVERIFY(!GenerationParams::fromA1111(QString()));
    QVERIFY(!GenerationParams::fromA1111(QStringLiteral("just a description of a picture")));
    QVERIFY(!GenerationParams::fromA1111(QStringLiteral("Software: GIMP 2.10")));
}

void TestGenerationParams::samplerMapBothWays() {
    int mapped = 0;
    for (koala::SchedulerKind k : koala::allSchedulers()) {
        const QString ours = QString::fromLatin1(koala::toString(k));
        const QPair<QString, QString> a = GenerationParams::toA1111Sampler(ours);
        QVERIFY2(!a.first.isEmpty(), qPrintable(ours));
        QCOMPARE(GenerationParams::fromA1111Sampler(a.first, a.second), ours);
        ++mapped;
    }
    QVERIFY(mapped >= 6);
    QCOMPARE(GenerationParams::toA1111Sampler(QStringLiteral("euler_a")).first, QStringLiteral("Euler a"));
    QCOMPARE(GenerationParams::toA1111Sampler(QStringLiteral("dpmpp_2m_karras")),
             qMakePair(QStringLiteral("DPM++ 2M"), QStringLiteral("Karras")));
    QCOMPARE(GenerationParams::fromA1111Sampler(QStringLiteral("Euler a")), QStringLiteral("euler_a"));
    QCOMPARE(GenerationParams::fromA1111Sampler(QStringLiteral("DDIM")), QStringLiteral("ddim"));
    QVERIFY(GenerationParams::toA1111Sampler(QStringLiteral("default")).first.isEmpty());
    QVERIFY(GenerationParams::fromA1111Sampler(QStringLiteral("LMS")).isEmpty());
}

void TestGenerationParams::validateRejectsBadValues() {
    QVERIFY(sample().validate().isEmpty());
    auto bad = [](auto change) {
        GenerationParams p = sample();
        change(p);
        return p.validate();
    };
    QVERIFY(bad([](GenerationParams& p) { p.width = 1001; }).contains(QLatin1String("Width")));
    QVERIFY(bad([](GenerationParams& p) { p.height = 8; }).contains(QLatin1String("Height")));
    QVERIFY(bad([](GenerationParams& p) { p.width = 8192; }).contains(QLatin1String("Width")));
    QVERIFY(bad([](GenerationParams& p) { p.steps = 0; }).contains(QLatin1String("Steps")));
    QVERIFY(bad([](GenerationParams& p) { p.steps = koala::kLimits.maxSteps + 1; }).contains(QLatin1String("Steps")));
    QVERIFY(bad([](GenerationParams& p) { p.scheduler = QStringLiteral("lms"); }).contains(QLatin1String("scheduler")));
    QVERIFY(bad([](GenerationParams& p) { p.spacing = QStringLiteral("odd"); }).contains(QLatin1String("spacing")));
    QVERIFY(bad([](GenerationParams& p) { p.count = 0; }).contains(QLatin1String("count")));
    QVERIFY(bad([](GenerationParams& p) {
                p.guidance = koala::kLimits.maxGuidance + 1;
            }).contains(QLatin1String("Guidance")));
    QVERIFY(bad([](GenerationParams& p) { p.guidanceRescale = 1.5; }).contains(QLatin1String("rescale")));
}

void TestGenerationParams::toRequestMapsFields() {
    const GenerationParams p = sample();
    const koala::GenerateRequest r = p.toRequest(99);
    QCOMPARE(r.seed, std::uint64_t(99));
    QCOMPARE(QString::fromStdString(r.prompt), p.prompt);
    QVERIFY(r.negative.has_value());
    QCOMPARE(QString::fromStdString(*r.negative), p.negativePrompt);
    QCOMPARE(r.steps, 37);
    QCOMPARE(r.guidance, 3.5f);
    QCOMPARE(r.guidanceRescale, 0.7f);
    QCOMPARE(r.scheduler, koala::SchedulerKind::DpmPP2MKarras);
    QCOMPARE(r.spacing, koala::TimestepSpacing::Trailing);
    QCOMPARE(r.width, 832);
    QCOMPARE(r.height, 1216);
    QCOMPARE(r.numImages, 1);
    koala::validate(r);  // throws if the engine disagrees

    GenerationParams noNeg = p;
    noNeg.hasNegative = false;
    QVERIFY(!noNeg.toRequest(1).negative.has_value());
    GenerationParams emptyNeg = p;
    emptyNeg.negativePrompt.clear();
    QVERIFY(emptyNeg.toRequest(1).negative.has_value());
    QVERIFY(emptyNeg.toRequest(1).negative->empty());
}

// issue 13 item 4: the SD family's sizes next to the SDXL buckets; schedulers by the names people read.
void TestGenerationParams::sdBucketsAndSchedulerNames() {
    const QList<QSize>& sd = GenerationParams::sdBuckets();
    QVERIFY(sd.contains(QSize(512, 512)));
    QVERIFY(sd.contains(QSize(768, 768)));
    for (const QSize& s : sd) {
        QVERIFY(GenerationParams::sizeProblem(s.width(), s.height()).isEmpty());
        QVERIFY(!GenerationParams::aspectBuckets().contains(s));
    }
    QCOMPARE(GenerationParams::schedulerDisplayName(QStringLiteral("dpmpp_2m_karras")),
             QStringLiteral("DPM++ 2M Karras"));
    QCOMPARE(GenerationParams::schedulerDisplayName(QStringLiteral("euler_a")), QStringLiteral("Euler a"));
    QCOMPARE(GenerationParams::schedulerDisplayName(QStringLiteral("pndm")), QStringLiteral("PNDM"));
    QCOMPARE(GenerationParams::schedulerDisplayName(QStringLiteral("nonsense")), QStringLiteral("nonsense"));
    // Every engine scheduler has a readable name of its own (none falls back to the raw id).
    QStringList seen;
    for (const QString& id : GenerationParams::schedulerNames()) {
        const QString name = GenerationParams::schedulerDisplayName(id);
        QVERIFY2(name != id, qPrintable(id));
        QVERIFY(!seen.contains(name));
        seen << name;
    }
}

void TestGenerationParams::aspectBuckets() {
    const QList<QSize>& b = GenerationParams::aspectBuckets();
    QCOMPARE(b.size(), 9);
    QCOMPARE(b.first(), QSize(1024, 1024));
    QVERIFY(b.contains(QSize(832, 1216)));
    QVERIFY(b.contains(QSize(640, 1536)));
    for (const QSize& s : b) {
        QCOMPARE(s.width() % 64, 0);
        QCOMPARE(s.height() % 64, 0);
    }
}

void TestGenerationParams::seedsRoundTripFullRange_data() {
    QTest::addColumn<quint64>("seed");
    QTest::newRow("0") << quint64(0);
    QTest::newRow("2^53") << (quint64(1) << 53);
    QTest::newRow("2^53+1") << (quint64(1) << 53) + 1;
    QTest::newRow("2^63") << (quint64(1) << 63);
    QTest::newRow("9999999999999999999") << quint64(9999999999999999999ULL);
    QTest::newRow("2^64-1") << quint64(18446744073709551615ULL);
}

// A seed is any uint64, exact through JSON (settings, gallery, saved queue), A1111 text and the engine's metadata.
void TestGenerationParams::seedsRoundTripFullRange() {
    QFETCH(quint64, seed);
    GenerationParams p = sample();
    p.seed = seed;
    const QByteArray json = QJsonDocument(p.toJson()).toJson();
    QCOMPARE(GenerationParams::fromJson(QJsonDocument::fromJson(json).object()).seed, std::optional<quint64>(seed));
    const std::optional<GenerationParams> a1111 = GenerationParams::fromA1111(p.toA1111());
    QVERIFY(a1111);
    QCOMPARE(a1111->seed, std::optional<quint64>(seed));
    QVERIFY(p.toA1111().contains(QStringLiteral("Seed: %1,").arg(seed)));
    const std::optional<koala::ImageMetadata> m = koala::parseKoalaMetadata(koala::toKoalaMetadata(p.toMetadata()));
    QVERIFY(m);
    QCOMPARE(GenerationParams::fromMetadata(*m).seed, std::optional<quint64>(seed));
    QCOMPARE(p.toRequest(seed).seed, std::uint64_t(seed));
}

void TestGenerationParams::seedJsonRefusesOtherNumbers() {
    // Older files wrote -1 for random; junk and out-of-range values read as random, never as another number.
    QVERIFY(!GenerationParams::seedFromJson(QJsonValue(-1)).has_value());
    QVERIFY(!GenerationParams::seedFromJson(QJsonValue::Null).has_value());
    QVERIFY(!GenerationParams::seedFromJson(QStringLiteral("18446744073709551616")).has_value());
    QVERIFY(!GenerationParams::seedFromJson(QStringLiteral("-3")).has_value());
    QVERIFY(!GenerationParams::seedFromJson(QStringLiteral("12abc")).has_value());
    QVERIFY(!GenerationParams::seedFromJson(QJsonValue(1.5)).has_value());
    QCOMPARE(GenerationParams::seedFromJson(QJsonValue(42)), std::optional<quint64>(42));
    QVERIFY(GenerationParams::seedToJson(std::nullopt).isNull());
}

void TestGenerationParams::jobSeedsNeverWrap() {
    GenerationParams p = sample();
    p.seed = 7;
    p.count = 3;
    QCOMPARE(p.jobSeeds(), (QList<quint64>{7, 8, 9}));

    p.seed = koala::kLimits.maxSeed - 1;
    p.count = 2;
    QVERIFY2(p.validate().isEmpty(), qPrintable(p.validate()));
    QCOMPARE(p.jobSeeds(), (QList<quint64>{koala::kLimits.maxSeed - 1, koala::kLimits.maxSeed}));
    p.count = 3;  // would need 2^64
    QVERIFY(p.validate().contains(QLatin1String("18446744073709551615")));
    QCOMPARE(p.jobSeeds().size(), 2);  // cut short, never wrapped to 0

    p.seed.reset();
    p.count = 4;
    const QList<quint64> random = p.jobSeeds();
    QCOMPARE(random.size(), 4);
    QVERIFY(random.at(0) != random.at(1) || random.at(1) != random.at(2));
}

void TestGenerationParams::rangesComeFromEngineLimits() {
    const koala::Limits& L = koala::kLimits;
    GenerationParams p = sample();
    p.steps = L.maxSteps;
    p.guidance = L.maxGuidance;
    p.guidanceRescale = L.maxGuidanceRescale;
    p.width = L.maxSize;
    p.height = L.minSize;
    p.count = GenerationParams::kMaxCount;
    QVERIFY2(p.validate().isEmpty(), qPrintable(p.validate()));
    QVERIFY(!GenerationParams::defaults().seed.has_value());
    QCOMPARE(GenerationParams::defaults().count, L.defaultImages);
    QCOMPARE(GenerationParams::defaults().guidanceRescale, L.defaultGuidanceRescale);
    p.count = GenerationParams::kMaxCount + 1;
    QVERIFY(p.validate().contains(QLatin1String("count")));
}

// ux-review 14: the message names both sides when both are wrong.
void TestGenerationParams::sizeProblemNamesBothSides() {
    GenerationParams p = sample();
    p.width = 100;
    p.height = 77;
    const QString error = p.validate();
    QVERIFY2(error.contains(QLatin1String("Width 100")) && error.contains(QLatin1String("height 77")),
             qPrintable(error));
    QVERIFY(GenerationParams::sizeProblem(99999, 1024).contains(QLatin1String("99999")));
    QVERIFY(GenerationParams::sizeProblem(1024, 1024).isEmpty());
    QVERIFY(GenerationParams::sizeProblem(1024, 8).contains(QLatin1String("Height 8")));
}

QTEST_APPLESS_MAIN(TestGenerationParams)
#include "tst_generationparams.moc"
