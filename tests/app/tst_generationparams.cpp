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

private:
    static GenerationParams sample();
};

GenerationParams TestGenerationParams::sample()
{
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

void TestGenerationParams::defaultsComeFromEngine()
{
    const koala::GenerateRequest r = koala::defaultRequest();
    const GenerationParams p = GenerationParams::defaults();
    QCOMPARE(p.steps, r.steps);
    QCOMPARE(p.guidance, double(r.guidance));
    QCOMPARE(p.width, r.width);
    QCOMPARE(p.height, r.height);
    QCOMPARE(p.scheduler, QString::fromLatin1(koala::toString(r.scheduler)));
    QCOMPARE(p.hasNegative, r.negative.has_value());
    QCOMPARE(p.seed, qint64(-1));
    QVERIFY2(p.validate().isEmpty(), qPrintable(p.validate()));
}

void TestGenerationParams::jsonRoundTrip_data()
{
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
    compare.seed = -1;
    QTest::newRow("compare, random seed") << compare;
}

void TestGenerationParams::jsonRoundTrip()
{
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

void TestGenerationParams::jsonMissingKeysTakeDefaults()
{
    QJsonObject o;
    o[QStringLiteral("prompt")] = QStringLiteral("only a prompt");
    o[QStringLiteral("unknown_future_key")] = 5;
    const GenerationParams p = GenerationParams::fromJson(o);
    GenerationParams expected = GenerationParams::defaults();
    expected.prompt = QStringLiteral("only a prompt");
    QVERIFY(p == expected);
}

void TestGenerationParams::a1111RoundTrip_data()
{
    QTest::addColumn<GenerationParams>("params");
    GenerationParams p = sample();
    p.modelPath.clear();
    p.count = 1;
    QTest::newRow("full") << p;
    for (const QString& s : GenerationParams::schedulerNames()) {
        if (s == QLatin1String("default"))
            continue;
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

void TestGenerationParams::a1111RoundTrip()
{
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

void TestGenerationParams::a1111ParsesReferenceText()
{
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
    QCOMPARE(p->seed, qint64(42));
    QCOMPARE(p->width, 1024);
    QCOMPARE(p->height, 1024);
    QCOMPARE(p->modelName, QStringLiteral("koala-700m"));

    GenerationParams expected = *p;
    expected.modelPath.clear();
    QCOMPARE(expected.toA1111(), text);
}

void TestGenerationParams::a1111LegacySamplerAndQuotedModel()
{
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

void TestGenerationParams::a1111RejectsPlainText()
{
    QVERIFY(!GenerationParams::fromA1111(QString()));
    QVERIFY(!GenerationParams::fromA1111(QStringLiteral("just a description of a picture")));
    QVERIFY(!GenerationParams::fromA1111(QStringLiteral("Software: GIMP 2.10")));
}

void TestGenerationParams::samplerMapBothWays()
{
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

void TestGenerationParams::validateRejectsBadValues()
{
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
    QVERIFY(bad([](GenerationParams& p) { p.steps = 201; }).contains(QLatin1String("Steps")));
    QVERIFY(bad([](GenerationParams& p) { p.scheduler = QStringLiteral("lms"); }).contains(QLatin1String("scheduler")));
    QVERIFY(bad([](GenerationParams& p) { p.spacing = QStringLiteral("odd"); }).contains(QLatin1String("spacing")));
    QVERIFY(bad([](GenerationParams& p) { p.count = 0; }).contains(QLatin1String("count")));
    QVERIFY(bad([](GenerationParams& p) { p.seed = -5; }).contains(QLatin1String("Seed")));
    QVERIFY(bad([](GenerationParams& p) { p.guidanceRescale = 1.5; }).contains(QLatin1String("rescale")));
}

void TestGenerationParams::toRequestMapsFields()
{
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

void TestGenerationParams::aspectBuckets()
{
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

QTEST_APPLESS_MAIN(TestGenerationParams)
#include "tst_generationparams.moc"
