#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

#include "PngMetadata.h"

// One metadata schema for koala-cli and the studio: each reads what the other writes (the engine owns the schema
// and the AUTOMATIC1111 text), an unknown or damaged "koala" chunk falls back to "parameters", ComfyUI is named.
class TestMetadataCrossRead : public QObject {
    Q_OBJECT

private slots:
    void koalaCliPngReadByStudio_data();
    void koalaCliPngReadByStudio();
    void studioPngReadByKoalaCliInfo();
    void unknownOrDamagedKoalaChunkFallsBack_data();
    void unknownOrDamagedKoalaChunkFallsBack();
    void comfyUiPngIsNamed();

private:
    static QString cli();
    static QString tinyModel() { return QStringLiteral(KOALA_TEST_DATA "/fixtures/tiny-koala-700m"); }
    static koala::Image image(int w, int h) {
        koala::Image im;
        im.width = w;
        im.height = h;
        im.rgb.assign(std::size_t(w) * h * 3, 128);
        return im;
    }
};

QString TestMetadataCrossRead::cli() { return QString::fromLocal8Bit(qgetenv("KOALA_CLI")); }

void TestMetadataCrossRead::koalaCliPngReadByStudio_data() {
    QTest::addColumn<QString>("seed");
    QTest::addColumn<QString>("scheduler");
    QTest::addColumn<bool>("negative");
    QTest::newRow("euler_a, negative") << QStringLiteral("42") << QStringLiteral("euler_a") << true;
    // Above 2^53: exact through the JSON chunk (a string there) and the A1111 text.
    QTest::newRow("large seed, dpmpp_2m_karras")
        << QStringLiteral("9007199254740993") << QStringLiteral("dpmpp_2m_karras") << false;
    // The largest seed: exact through both chunks into the studio's parameters (no qint64 on the way).
    QTest::newRow("2^64-1, euler") << QStringLiteral("18446744073709551615") << QStringLiteral("euler") << true;
}

void TestMetadataCrossRead::koalaCliPngReadByStudio() {
    QFETCH(QString, seed);
    QFETCH(QString, scheduler);
    QFETCH(bool, negative);
    if (cli().isEmpty()) QSKIP("KOALA_CLI is not set (run through ctest)");
    QTemporaryDir dir;
    const QString out = dir.filePath(QStringLiteral("cli.png"));
    QStringList args{QStringLiteral("--model"),     tinyModel(),
                     QStringLiteral("--prompt"),    QStringLiteral("a koala, \"quoted\": ünïcode"),
                     QStringLiteral("--seed"),      seed,
                     QStringLiteral("--steps"),     QStringLiteral("2"),
                     QStringLiteral("--guidance"),  QStringLiteral("6.5"),
                     QStringLiteral("--scheduler"), scheduler,
                     QStringLiteral("--width"),     QStringLiteral("64"),
                     QStringLiteral("--height"),    QStringLiteral("72"),
                     QStringLiteral("--device"),    QStringLiteral("cpu"),
                     QStringLiteral("--out"),       out,
                     QStringLiteral("--quiet")};
    if (negative) args << QStringLiteral("--negative") << QStringLiteral("blurry, low quality");
    QProcess p;
    p.start(cli(), args);
    QVERIFY(p.waitForFinished(120000));
    QVERIFY2(p.exitCode() == 0, p.readAllStandardError().constData());

    const PngMetadata::ReadResult r = PngMetadata::read(out);
    QVERIFY2(r.error.isEmpty(), qPrintable(r.error));
    QCOMPARE(r.source, PngMetadata::Source::Koala);
    QCOMPARE(r.item.params.prompt, QStringLiteral("a koala, \"quoted\": ünïcode"));
    QCOMPARE(r.item.params.hasNegative, negative);
    if (negative) QCOMPARE(r.item.params.negativePrompt, QStringLiteral("blurry, low quality"));
    QCOMPARE(QString::number(r.item.params.seed.value_or(0)), seed);
    QCOMPARE(r.item.params.steps, 2);
    QCOMPARE(r.item.params.guidance, 6.5);
    QCOMPARE(r.item.params.scheduler, scheduler);
    QCOMPARE(r.item.schedulerUsed, scheduler);
    QCOMPARE(r.item.params.width, 64);
    QCOMPARE(r.item.params.height, 72);
    QCOMPARE(r.item.width, 64);
    QCOMPARE(r.item.modelName, QStringLiteral("tiny-koala-700m"));
    QCOMPARE(r.item.computeDType, QStringLiteral("fp32"));

    // The same file without its koala chunk: the A1111 text alone gives the same parameters.
    std::vector<std::pair<std::string, std::string>> text;
    QVERIFY(koala::readPngText(out.toStdString(), text));
    std::vector<std::pair<std::string, std::string>> onlyA1111;
    for (const auto& kv : text)
        if (kv.first == "parameters") onlyA1111.push_back(kv);
    QCOMPARE(onlyA1111.size(), std::size_t(1));
    const QString a1111Path = dir.filePath(QStringLiteral("a1111.png"));
    koala::writePng(a1111Path.toStdString(), image(64, 72), onlyA1111);
    const PngMetadata::ReadResult a = PngMetadata::read(a1111Path);
    QCOMPARE(a.source, PngMetadata::Source::A1111);
    QCOMPARE(a.item.params.prompt, r.item.params.prompt);
    QCOMPARE(a.item.params.seed, r.item.params.seed);
    QCOMPARE(a.item.params.scheduler, scheduler);
    QCOMPARE(a.item.params.width, 64);
    QCOMPARE(a.item.modelName, QStringLiteral("tiny-koala-700m"));
}

void TestMetadataCrossRead::studioPngReadByKoalaCliInfo() {
    if (cli().isEmpty()) QSKIP("KOALA_CLI is not set (run through ctest)");
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("studio.png"));
    GalleryItem item;
    item.params = GenerationParams::defaults();
    item.params.prompt = QStringLiteral("a koala astronaut, highly detailed");
    item.params.hasNegative = true;
    item.params.negativePrompt = QStringLiteral("blurry");
    item.params.seed = 1234567890123ULL;
    item.params.steps = 30;
    item.params.guidance = 7.5;
    item.params.scheduler = QStringLiteral("default");
    item.params.width = 832;
    item.params.height = 1216;
    item.params.modelPath = tinyModel();
    item.schedulerUsed = QStringLiteral("euler_karras");
    item.spacingUsed = QStringLiteral("leading");
    item.modelName = QStringLiteral("tiny-koala-700m");
    QImage qimage(32, 48, QImage::Format_RGB888);
    qimage.fill(Qt::gray);
    QString error;
    QVERIFY2(PngMetadata::write(path, qimage, item, &error), qPrintable(error));

    QProcess p;
    p.start(cli(), {QStringLiteral("--info"), path, QStringLiteral("--json")});
    QVERIFY(p.waitForFinished(30000));
    QCOMPARE(p.exitCode(), 0);
    const QJsonObject j = QJsonDocument::fromJson(p.readAllStandardOutput()).object();
    QCOMPARE(j.value(QStringLiteral("source")).toString(), QStringLiteral("koala"));
    QCOMPARE(j.value(QStringLiteral("generator")).toString(), QStringLiteral("KOALA Studio"));
    const QJsonObject params = j.value(QStringLiteral("params")).toObject();
    QCOMPARE(params.value(QStringLiteral("prompt")).toString(), item.params.prompt);
    QCOMPARE(params.value(QStringLiteral("negative_prompt")).toString(), QStringLiteral("blurry"));
    QCOMPARE(quint64(params.value(QStringLiteral("seed")).toDouble()), item.params.seed.value());
    QCOMPARE(params.value(QStringLiteral("steps")).toInt(), 30);
    QCOMPARE(params.value(QStringLiteral("guidance")).toDouble(), 7.5);
    QCOMPARE(params.value(QStringLiteral("scheduler")).toString(), QStringLiteral("euler_karras"));  // as used
    QCOMPARE(params.value(QStringLiteral("width")).toInt(), 832);
    QCOMPARE(params.value(QStringLiteral("height")).toInt(), 1216);
    QCOMPARE(params.value(QStringLiteral("model_name")).toString(), QStringLiteral("tiny-koala-700m"));

    // The text form names the same values.
    QProcess t;
    t.start(cli(), {QStringLiteral("--info"), path});
    QVERIFY(t.waitForFinished(30000));
    QCOMPARE(t.exitCode(), 0);
    const QString text = QString::fromUtf8(t.readAllStandardOutput());
    QVERIFY2(text.contains(QStringLiteral("prompt: a koala astronaut, highly detailed\n")), qPrintable(text));
    QVERIFY(text.contains(QStringLiteral("seed: 1234567890123\n")));
    QVERIFY(text.contains(QStringLiteral("sampler: euler_karras (AUTOMATIC1111: Euler, Karras)\n")));
    QVERIFY(text.contains(QStringLiteral("size: 832x1216\n")));
    QVERIFY(text.contains(QStringLiteral("model: tiny-koala-700m\n")));

    // Not a PNG: one line on stderr, exit 1.
    QProcess bad;
    bad.start(cli(), {QStringLiteral("--info"), dir.filePath(QStringLiteral("missing.png"))});
    QVERIFY(bad.waitForFinished(30000));
    QCOMPARE(bad.exitCode(), 1);
}

void TestMetadataCrossRead::unknownOrDamagedKoalaChunkFallsBack_data() {
    QTest::addColumn<QString>("koalaChunk");
    QTest::addColumn<QString>("noteContains");
    QTest::newRow("future version") << QStringLiteral(R"({"version":2,"params":{"prompt":"other"}})")
                                    << QStringLiteral("version 2");
    QTest::newRow("no version (the old flat koala-cli chunk)")
        << QStringLiteral(R"({"prompt":"a koala","seed":7,"steps":3,"scheduler":"euler"})")
        << QStringLiteral("no version");
    QTest::newRow("damaged") << QStringLiteral(R"({"version":1,"params":{"prompt":)") << QStringLiteral("damaged");
    QTest::newRow("no params") << QStringLiteral(R"({"version":1})") << QStringLiteral("no usable params");
}

void TestMetadataCrossRead::unknownOrDamagedKoalaChunkFallsBack() {
    QFETCH(QString, koalaChunk);
    QFETCH(QString, noteContains);
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("mixed.png"));
    koala::writePng(path.toStdString(), image(16, 16),
                    {{"parameters",
                      "a koala in a tree\nNegative prompt: blurry\nSteps: 12, Sampler: DPM++ 2M Karras, "
                      "CFG scale: 4.5, Seed: 99, Size: 832x1216, Model: koala-1b-llava-cap"},
                     {"koala", koalaChunk.toStdString()}});
    const PngMetadata::ReadResult r = PngMetadata::read(path);
    QCOMPARE(r.source, PngMetadata::Source::A1111);
    QVERIFY2(r.note.contains(noteContains), qPrintable(r.note));
    QCOMPARE(r.item.params.prompt, QStringLiteral("a koala in a tree"));
    QCOMPARE(r.item.params.negativePrompt, QStringLiteral("blurry"));
    QCOMPARE(r.item.params.seed, std::optional<quint64>(99));
    QCOMPARE(r.item.params.steps, 12);
    QCOMPARE(r.item.params.scheduler, QStringLiteral("dpmpp_2m_karras"));
    QCOMPARE(r.item.params.width, 832);
    QCOMPARE(r.item.modelName, QStringLiteral("koala-1b-llava-cap"));
}

void TestMetadataCrossRead::comfyUiPngIsNamed() {
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("comfy.png"));
    koala::writePng(
        path.toStdString(), image(16, 16),
        {{"prompt",
          R"({"3":{"class_type":"KSampler","inputs":{"seed":5}},"4":{"class_type":"CheckpointLoaderSimple"}})"},
         {"workflow", R"({"nodes":[{"id":3},{"id":4}],"links":[]})"}});
    const PngMetadata::ReadResult r = PngMetadata::read(path);
    QCOMPARE(r.source, PngMetadata::Source::ComfyUI);
    QVERIFY2(r.note.contains(QStringLiteral("ComfyUI")), qPrintable(r.note));
    QVERIFY(!PngMetadata::readParams(path));
    const koala::MetadataReadResult e = koala::readImageMetadata(path.toStdString());
    QCOMPARE(e.source, koala::MetadataSource::ComfyUI);
}

QTEST_GUILESS_MAIN(TestMetadataCrossRead)
#include "tst_metadatacrossread.moc"
