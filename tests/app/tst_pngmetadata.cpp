#include <QImageReader>
#include <QImageWriter>
#include <QtTest>

#include "PngMetadata.h"

class TestPngMetadata : public QObject {
    Q_OBJECT

private slots:
    void ourRoundTrip();
    void a1111Png();
    void a1111ChunkIsReadableByOtherTools();
    void pngWithoutMetadata();
    void notAPng();
    void damagedPngs();
    void writeIsAtomic();

private:
    static QImage testImage(int w, int h);
};

QImage TestPngMetadata::testImage(int w, int h) {
    QImage image(w, h, QImage::Format_RGB888);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) image.setPixelColor(x, y, QColor(x * 255 / w, y * 255 / h, (x ^ y) & 0xff));
    return image;
}

void TestPngMetadata::ourRoundTrip() {
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    GalleryItem item;
    item.params = GenerationParams::defaults();
    item.params.prompt = QStringLiteral("코알라 우주비행사, a koala astronaut 🐨");  // non-Latin-1 goes into iTXt
    item.params.seed = 42;
    item.params.hasNegative = true;
    item.params.negativePrompt = QString();
    item.params.scheduler = QStringLiteral("default");
    item.createdAt = QDateTime(QDate(2026, 11, 26), QTime(12, 34, 56, 789));
    item.modelName = QStringLiteral("koala-700m-llava-cap");
    item.unetShape = QStringLiteral("koala-700m");
    item.schedulerUsed = QStringLiteral("euler");
    item.spacingUsed = QStringLiteral("leading");
    item.timings.totalSeconds = 3.25;
    item.timings.stepSeconds = 0.11;
    item.timings.peakDeviceBytes = qint64(9876543210);
    item.compareGroup = QStringLiteral("g1-0");
    item.compareSlot = 1;

    const QString path = dir.filePath(QStringLiteral("a.png"));
    const QImage image = testImage(40, 24);
    QString error;
    QVERIFY2(PngMetadata::write(path, image, item, &error), qPrintable(error));

    const PngMetadata::ReadResult r = PngMetadata::read(path);
    QVERIFY(r.error.isEmpty());
    QCOMPARE(r.source, PngMetadata::Source::Koala);
    QVERIFY(r.item.params == item.params);
    QCOMPARE(r.item.createdAt, item.createdAt);
    QCOMPARE(r.item.modelName, item.modelName);
    QCOMPARE(r.item.unetShape, item.unetShape);
    QCOMPARE(r.item.schedulerUsed, item.schedulerUsed);
    QCOMPARE(r.item.timings.totalSeconds, 3.25);
    QCOMPARE(r.item.timings.stepSeconds, 0.11);
    QCOMPARE(r.item.timings.peakDeviceBytes, qint64(9876543210));
    QCOMPARE(r.item.compareGroup, item.compareGroup);
    QCOMPARE(r.item.compareSlot, 1);
    QCOMPARE(r.item.width, 40);
    QCOMPARE(r.item.height, 24);

    // Pixels are stored losslessly.
    QImage back(path);
    QCOMPARE(back.convertToFormat(QImage::Format_RGB888), image);

    // The A1111 chunk names the scheduler actually used, not "default".
    QImageReader reader(path);
    const QString a1111 = reader.text(QStringLiteral("parameters"));
    QVERIFY2(a1111.contains(QLatin1String("Sampler: Euler")), qPrintable(a1111));
    QVERIFY(a1111.contains(QLatin1String("Seed: 42")));
    QVERIFY(a1111.contains(QLatin1String("Model: koala-700m-llava-cap")));
}

void TestPngMetadata::a1111Png() {
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("from-a1111.png"));
    QImageWriter writer(path, "png");
    writer.setText(QStringLiteral("parameters"),
                   QStringLiteral("a cat in a hat\nNegative prompt: dog\nSteps: 30, Sampler: DPM++ 2M, Schedule type: "
                                  "Karras, CFG scale: 6.5, Seed: 123456, Size: 64x48, Model: sd_xl_base_1.0"));
    writer.setText(QStringLiteral("Software"), QStringLiteral("AUTOMATIC1111"));
    QVERIFY(writer.write(testImage(64, 48)));

    const PngMetadata::ReadResult r = PngMetadata::read(path);
    QCOMPARE(r.source, PngMetadata::Source::A1111);
    QCOMPARE(r.item.params.prompt, QStringLiteral("a cat in a hat"));
    QVERIFY(r.item.params.hasNegative);
    QCOMPARE(r.item.params.negativePrompt, QStringLiteral("dog"));
    QCOMPARE(r.item.params.steps, 30);
    QCOMPARE(r.item.params.scheduler, QStringLiteral("dpmpp_2m_karras"));
    QCOMPARE(r.item.params.guidance, 6.5);
    QCOMPARE(r.item.params.seed, std::optional<quint64>(123456));
    QCOMPARE(r.item.modelName, QStringLiteral("sd_xl_base_1.0"));
    QCOMPARE(r.item.width, 64);
    QCOMPARE(r.item.height, 48);

    const std::optional<GenerationParams> p = PngMetadata::readParams(path);
    QVERIFY(p);
    QCOMPARE(p->seed, std::optional<quint64>(123456));
}

void TestPngMetadata::a1111ChunkIsReadableByOtherTools() {
    // The engine's own PNG reader sees the chunk too (it is what koala-cli and other tools use).
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("b.png"));
    GalleryItem item;
    item.params = GenerationParams::defaults();
    item.params.prompt = QStringLiteral("plain ascii prompt");
    item.params.seed = 5;
    QVERIFY(PngMetadata::write(path, testImage(16, 16), item));
    std::vector<std::pair<std::string, std::string>> text;
    QVERIFY(koala::readPngText(path.toStdString(), text));
    bool found = false;
    for (const auto& [key, value] : text) {
        if (key == "parameters") {
            found = true;
            QVERIFY(QString::fromStdString(value).startsWith(QLatin1String("plain ascii prompt\nSteps: ")));
        }
    }
    QVERIFY(found);
}

void TestPngMetadata::pngWithoutMetadata() {
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("plain.png"));
    QVERIFY(testImage(8, 8).save(path));
    const PngMetadata::ReadResult r = PngMetadata::read(path);
    QVERIFY(r.error.isEmpty());
    QCOMPARE(r.source, PngMetadata::Source::None);
    QCOMPARE(r.item.width, 8);
    QVERIFY(!PngMetadata::readParams(path));
}

void TestPngMetadata::notAPng() {
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("fake.png"));
    QFile f(path);
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write("this is not an image");
    f.close();
    const PngMetadata::ReadResult r = PngMetadata::read(path);
    QCOMPARE(r.source, PngMetadata::Source::None);
    // ux-review 12: said "not a readable PNG: Unknown error".
    QVERIFY2(r.error.contains(QLatin1String("fake.png is not an image")), qPrintable(r.error));
    QVERIFY(!r.error.contains(QLatin1String("Unknown error")));
    QVERIFY(
        PngMetadata::read(dir.filePath(QStringLiteral("missing.png"))).error.contains(QLatin1String("does not exist")));

    // A JPEG (here even named .png) is named as one.
    const QString jpeg = dir.filePath(QStringLiteral("photo.png"));
    QVERIFY(testImage(16, 16).save(jpeg, "JPEG"));
    const QString error = PngMetadata::read(jpeg).error;
    QVERIFY2(error.contains(QLatin1String("photo.png is a JPEG image, not a PNG")), qPrintable(error));
}

// Damaged files from elsewhere: the metadata before the damage is still read, the size comes from IHDR, and nothing
// goes through Qt's libpng (which allocates whatever length a text chunk claims: 1.9 GB for this 257-byte file, found
// by fuzz_app_metadata).
void TestPngMetadata::damagedPngs() {
    const QString claim = QStringLiteral(KOALA_TEST_DATA "/../fuzz/regressions/app_metadata/text-chunk-claiming-1.9gb");
    const PngMetadata::ReadResult r = PngMetadata::read(claim);
    QVERIFY2(r.error.isEmpty(), qPrintable(r.error));
    QCOMPARE(r.source, PngMetadata::Source::ComfyUI);  // its first chunk, "prompt", is ComfyUI's
    QCOMPARE(r.item.width, 4);
    QCOMPARE(r.item.height, 4);

    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("no-header.png"));
    QFile f(path);
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write(QByteArray("\x89PNG\r\n\x1a\n\0\0\0\0IEND\xae\x42\x60\x82", 20));
    f.close();
    const QString error = PngMetadata::read(path).error;
    QVERIFY2(error.contains(QLatin1String("no-header.png is a damaged PNG")), qPrintable(error));
}

void TestPngMetadata::writeIsAtomic() {
    QTemporaryDir dir;
    GalleryItem item;
    item.params = GenerationParams::defaults();
    // Writing into a folder that does not exist fails cleanly and leaves nothing behind.
    QString error;
    QVERIFY(!PngMetadata::write(dir.filePath(QStringLiteral("no/such/dir/x.png")), testImage(8, 8), item, &error));
    QVERIFY(!error.isEmpty());
    // A successful write leaves exactly the target file (no temporary files).
    QVERIFY(PngMetadata::write(dir.filePath(QStringLiteral("x.png")), testImage(8, 8), item));
    QCOMPARE(QDir(dir.path()).entryList(QDir::Files), QStringList{QStringLiteral("x.png")});
    // An empty image is refused.
    QVERIFY(!PngMetadata::write(dir.filePath(QStringLiteral("y.png")), QImage(), item, &error));
    QVERIFY(!QFile::exists(dir.filePath(QStringLiteral("y.png"))));
}

QTEST_GUILESS_MAIN(TestPngMetadata)
#include "tst_pngmetadata.moc"
