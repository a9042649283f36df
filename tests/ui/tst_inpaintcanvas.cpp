// The inpainting canvas (brush, eraser, hardness, undo/redo, clear, invert, mask export) and the init image panel
// (strength defaults, mask files, the parameters it writes and restores), offscreen.
#include <QAction>
#include <QDialogButtonBox>
#include <QDoubleSpinBox>
#include <QFileInfo>
#include <QJsonObject>
#include <QPushButton>
#include <QSignalSpy>
#include <QSlider>
#include <QTemporaryDir>
#include <QUndoStack>
#include <QtTest>

#include <koala/engine.h>

#include "GalleryStore.h"
#include "GenerationParams.h"
#include "JobQueue.h"
#include "PngMetadata.h"
#include "gallerywidget.h"
#include "initimagepanel.h"
#include "inpaintcanvas.h"
#include "promptpanel.h"
#include "uitestutil.h"

namespace {

QImage testImage(int w = 100, int h = 80) {
    QImage image(w, h, QImage::Format_RGB32);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) image.setPixel(x, y, qRgb(x * 255 / w, y * 255 / h, 128));
    return image;
}

int maskAt(const InpaintCanvas& c, int x, int y) { return qGray(c.mask().pixel(x, y)); }

int countNonZero(const QImage& mask) {
    int n = 0;
    for (int y = 0; y < mask.height(); ++y) {
        const uchar* row = mask.constScanLine(y);
        for (int x = 0; x < mask.width(); ++x) n += row[x] != 0;
    }
    return n;
}

void stroke(InpaintCanvas& c, QPointF from, QPointF to, InpaintCanvas::Tool tool = InpaintCanvas::Tool::Brush) {
    c.beginStroke(from, tool);
    c.strokeTo(to);
    c.endStroke();
}

}  // namespace

class TestInpaintCanvas : public QObject {
    Q_OBJECT

private slots:
    void newImageStartsEmptyMaskOfItsSize();
    void brushStrokePaintsAlongTheLine();
    void eraserClears();
    void hardnessGivesIntermediateValues();
    void undoRedoEachStroke();
    void undoIsBounded();
    void clearAndInvertAreUndoable();
    void mousePaintsOnTheShownImage();
    void exportedMaskIsEngineGrey();
    void dialogControlsDriveTheCanvas();
    void panelStrengthDefaultsFollowTheMode();
    void panelParamsRoundTrip();
    void paramsValidateImageRequests();
    void inpaintingEndToEndAndReuse();
};

void TestInpaintCanvas::newImageStartsEmptyMaskOfItsSize() {
    InpaintCanvas c;
    c.setImage(testImage(100, 80));
    QCOMPARE(c.mask().size(), QSize(100, 80));
    QCOMPARE(c.mask().format(), QImage::Format_Grayscale8);
    QVERIFY(c.isMaskEmpty());
    QCOMPARE(c.undoStack()->count(), 0);
}

void TestInpaintCanvas::brushStrokePaintsAlongTheLine() {
    InpaintCanvas c;
    c.setImage(testImage());
    c.setHardness(1.0);
    c.setBrushSize(10);
    QSignalSpy changed(&c, &InpaintCanvas::maskChanged);
    stroke(c, {20, 20}, {60, 20});
    QVERIFY(!changed.isEmpty());
    QCOMPARE(maskAt(c, 20, 20), 255);
    QCOMPARE(maskAt(c, 40, 20), 255);  // between the ends: the stroke is continuous
    QCOMPARE(maskAt(c, 59, 22), 255);
    QCOMPARE(maskAt(c, 40, 40), 0);  // away from it
    QCOMPARE(maskAt(c, 90, 20), 0);
    // A hard 10-pixel brush covers a band about 10 pixels high.
    int column = 0;
    for (int y = 0; y < 80; ++y) column += maskAt(c, 40, y) == 255;
    QVERIFY2(column >= 9 && column <= 11, qPrintable(QString::number(column)));
}

void TestInpaintCanvas::eraserClears() {
    InpaintCanvas c;
    c.setImage(testImage());
    c.setHardness(1.0);
    c.setBrushSize(20);
    stroke(c, {10, 40}, {90, 40});
    QCOMPARE(maskAt(c, 50, 40), 255);
    c.setBrushSize(10);
    stroke(c, {50, 10}, {50, 70}, InpaintCanvas::Tool::Eraser);
    QCOMPARE(maskAt(c, 50, 40), 0);
    QCOMPARE(maskAt(c, 20, 40), 255);  // outside the eraser's path
    // The tool setting drives the mouse; beginStroke takes the tool of the stroke.
    c.setTool(InpaintCanvas::Tool::Eraser);
    QCOMPARE(c.tool(), InpaintCanvas::Tool::Eraser);
}

void TestInpaintCanvas::hardnessGivesIntermediateValues() {
    InpaintCanvas soft;
    soft.setImage(testImage());
    soft.setBrushSize(40);
    soft.setHardness(0.0);
    stroke(soft, {50, 40}, {50, 40});
    QCOMPARE(maskAt(soft, 50, 40), 255);    // the centre
    const int half = maskAt(soft, 60, 40);  // half the radius out: about half
    QVERIFY2(half > 80 && half < 175, qPrintable(QString::number(half)));
    QVERIFY(maskAt(soft, 55, 40) > half);  // falls off with the distance
    QCOMPARE(maskAt(soft, 75, 40), 0);     // beyond the radius

    InpaintCanvas hard;
    hard.setImage(testImage());
    hard.setBrushSize(40);
    hard.setHardness(1.0);
    stroke(hard, {50, 40}, {50, 40});
    const QImage m = hard.mask();
    for (int y = 0; y < m.height(); ++y)
        for (int x = 0; x < m.width(); ++x) QVERIFY(m.constScanLine(y)[x] == 0 || m.constScanLine(y)[x] == 255);
    QCOMPARE(maskAt(hard, 60, 40), 255);

    // Overlapping soft dabs in one stroke do not build up beyond the brush's own profile.
    InpaintCanvas again;
    again.setImage(testImage());
    again.setBrushSize(40);
    again.setHardness(0.0);
    again.beginStroke({50, 40}, InpaintCanvas::Tool::Brush);
    for (int i = 0; i < 5; ++i) again.strokeTo({50, 40});
    again.endStroke();
    QCOMPARE(maskAt(again, 60, 40), half);
}

void TestInpaintCanvas::undoRedoEachStroke() {
    InpaintCanvas c;
    c.setImage(testImage());
    c.setHardness(1.0);
    c.setBrushSize(8);
    stroke(c, {10, 10}, {30, 10});
    const QImage first = c.mask();
    stroke(c, {10, 50}, {30, 50});
    const QImage second = c.mask();
    QCOMPARE(c.undoStack()->count(), 2);
    c.undoStack()->undo();
    QCOMPARE(c.mask(), first);
    c.undoStack()->undo();
    QVERIFY(c.isMaskEmpty());
    c.undoStack()->redo();
    QCOMPARE(c.mask(), first);
    c.undoStack()->redo();
    QCOMPARE(c.mask(), second);
    // A stroke outside the image changes nothing and adds no step.
    stroke(c, {-50, -50}, {-40, -50});
    QCOMPARE(c.undoStack()->count(), 2);
}

void TestInpaintCanvas::undoIsBounded() {
    InpaintCanvas c;
    c.setImage(testImage());
    c.setBrushSize(2);
    for (int i = 0; i < InpaintCanvas::kUndoLimit + 10; ++i) stroke(c, {double(i % 100), 5}, {double(i % 100), 6});
    QCOMPARE(c.undoStack()->count(), InpaintCanvas::kUndoLimit);
}

void TestInpaintCanvas::clearAndInvertAreUndoable() {
    InpaintCanvas c;
    c.setImage(testImage());
    c.setHardness(1.0);
    c.setBrushSize(10);
    stroke(c, {20, 20}, {40, 20});
    const QImage painted = c.mask();
    const int paintedCount = countNonZero(painted);

    c.invertMask();
    QCOMPARE(maskAt(c, 30, 20), 0);
    QCOMPARE(maskAt(c, 80, 70), 255);
    QCOMPARE(countNonZero(c.mask()), 100 * 80 - paintedCount);
    c.invertMask();
    QCOMPARE(c.mask(), painted);

    c.clearMask();
    QVERIFY(c.isMaskEmpty());
    c.undoStack()->undo();
    QCOMPARE(c.mask(), painted);
    c.undoStack()->undo();  // the second invert
    c.undoStack()->undo();  // the first
    QCOMPARE(c.mask(), painted);
    c.undoStack()->redo();
    QCOMPARE(maskAt(c, 80, 70), 255);
    // Clearing an empty mask is no step.
    InpaintCanvas empty;
    empty.setImage(testImage());
    empty.clearMask();
    QCOMPARE(empty.undoStack()->count(), 0);
}

void TestInpaintCanvas::mousePaintsOnTheShownImage() {
    InpaintCanvas c;
    c.setImage(testImage(100, 100));
    c.resize(200, 200);  // shown at twice the size
    c.setHardness(1.0);
    c.setBrushSize(6);
    c.show();
    QVERIFY(QTest::qWaitForWindowExposed(&c));
    QCOMPARE(c.viewScale(), 2.0);
    QCOMPARE(c.toImage({100, 100}), QPointF(50, 50));
    QTest::mousePress(&c, Qt::LeftButton, Qt::NoModifier, QPoint(40, 100));
    QTest::mouseMove(&c, QPoint(160, 100));
    QTest::mouseRelease(&c, Qt::LeftButton, Qt::NoModifier, QPoint(160, 100));
    QCOMPARE(maskAt(c, 20, 50), 255);
    QCOMPARE(maskAt(c, 50, 50), 255);
    QCOMPARE(maskAt(c, 50, 20), 0);
    QCOMPARE(c.undoStack()->count(), 1);
    // The right button erases.
    QTest::mousePress(&c, Qt::RightButton, Qt::NoModifier, QPoint(100, 100));
    QTest::mouseRelease(&c, Qt::RightButton, Qt::NoModifier, QPoint(100, 100));
    QCOMPARE(maskAt(c, 50, 50), 0);
}

void TestInpaintCanvas::exportedMaskIsEngineGrey() {
    QTemporaryDir dir;
    InpaintCanvas c;
    c.setImage(testImage(64, 48));
    c.setHardness(0.5);
    c.setBrushSize(16);
    stroke(c, {10, 10}, {50, 30});
    const QString path = dir.filePath(QStringLiteral("mask.png"));
    QString error;
    QVERIFY2(c.saveMask(path, &error), qPrintable(error));
    // What the engine reads: RGB with R = G = B = the mask value, at the image's size.
    const koala::Image read = koala::readImage(QFile::encodeName(path).toStdString());
    QCOMPARE(read.width, 64);
    QCOMPARE(read.height, 48);
    const QImage m = c.mask();
    for (int y = 0; y < 48; ++y)
        for (int x = 0; x < 64; ++x) {
            const std::size_t i = (std::size_t(y) * 64 + x) * 3;
            QCOMPARE(int(read.rgb[i]), int(m.constScanLine(y)[x]));
            QCOMPARE(int(read.rgb[i + 1]), int(read.rgb[i]));
        }
    // A mask of another size is scaled to the image.
    QImage small(32, 24, QImage::Format_Grayscale8);
    small.fill(255);
    c.setMask(small);
    QCOMPARE(c.mask().size(), QSize(64, 48));
    QCOMPARE(maskAt(c, 63, 47), 255);
    QCOMPARE(c.undoStack()->count(), 0);
}

void TestInpaintCanvas::dialogControlsDriveTheCanvas() {
    QImage start(100, 80, QImage::Format_Grayscale8);
    start.fill(0);
    InpaintDialog dialog(testImage(), start);
    InpaintCanvas* c = dialog.canvas();
    QPushButton* ok = dialog.findChild<QDialogButtonBox*>()->button(QDialogButtonBox::Ok);
    QVERIFY(!ok->isEnabled());  // nothing to repaint yet
    dialog.findChild<QSlider*>(QStringLiteral("brushSizeSlider"))->setValue(20);
    QCOMPARE(c->brushSize(), 20);
    dialog.findChild<QSlider*>(QStringLiteral("hardnessSlider"))->setValue(25);
    QCOMPARE(c->hardness(), 0.25);
    dialog.findChild<QAction*>(QStringLiteral("eraserAction"))->trigger();
    QCOMPARE(c->tool(), InpaintCanvas::Tool::Eraser);
    dialog.findChild<QAction*>(QStringLiteral("brushAction"))->trigger();
    QCOMPARE(c->tool(), InpaintCanvas::Tool::Brush);
    stroke(*c, {50, 40}, {50, 40});
    QVERIFY(ok->isEnabled());
    QCOMPARE(dialog.mask(), c->mask());
    c->setBrushSize(33);  // the wheel and [ ] change the canvas; the slider follows
    QCOMPARE(dialog.findChild<QSlider*>(QStringLiteral("brushSizeSlider"))->value(), 33);
}

void TestInpaintCanvas::panelStrengthDefaultsFollowTheMode() {
    QTemporaryDir dir;
    const QString source = dir.filePath(QStringLiteral("source.png"));
    QVERIFY(testImage(96, 72).save(source));
    InitImagePanel panel;
    panel.setMaskFolder(dir.filePath(QStringLiteral("masks")));
    QVERIFY(!panel.hasInitImage());
    QString error;
    QVERIFY2(panel.setInitImage(source, &error), qPrintable(error));
    QCOMPARE(panel.strength(), koala::kLimits.defaultImg2ImgStrength);
    QImage mask(96, 72, QImage::Format_Grayscale8);
    mask.fill(0);
    QVERIFY(panel.setMask(mask));  // nothing painted: still img2img
    QVERIFY(panel.maskPath().isEmpty());
    mask.fill(255);
    QVERIFY2(panel.setMask(mask, &error), qPrintable(error));
    QCOMPARE(panel.strength(), koala::kLimits.defaultInpaintStrength);
    // Once chosen, the strength stays when the mode changes.
    panel.findChild<QDoubleSpinBox*>(QStringLiteral("strengthSpin"))->setValue(0.55);
    panel.clearMask();
    QCOMPARE(panel.strength(), 0.55);
    QVERIFY(!panel.setInitImage(dir.filePath(QStringLiteral("missing.png")), &error));
    QVERIFY(error.contains(QLatin1String("missing.png")));
    // The engine's decoder reads it, with its limits: a truncated JPEG is refused here, not at generation time.
    QVERIFY(!panel.setInitImage(
        QStringLiteral(KOALA_TEST_DATA "/../fuzz/regressions/image/truncated-progressive-jpeg-1544x47360"), &error));
    QVERIFY2(error.contains(QLatin1String("truncated")), qPrintable(error));
    panel.clear();
    GenerationParams p = GenerationParams::defaults();
    p.strength = 0.4;
    panel.applyTo(p);
    QVERIFY(!p.hasInitImage());
    QVERIFY(!p.strength);
}

void TestInpaintCanvas::panelParamsRoundTrip() {
    QTemporaryDir dir;
    const QString source = dir.filePath(QStringLiteral("source.png"));
    QVERIFY(testImage(96, 72).save(source));
    InitImagePanel panel;
    panel.setMaskFolder(dir.filePath(QStringLiteral("masks")));
    QVERIFY(panel.setInitImage(source));
    InpaintCanvas c;
    c.setImage(panel.initImage());
    c.setBrushSize(30);
    stroke(c, {20, 20}, {70, 50});
    QString error;
    QVERIFY2(panel.setMask(c.mask(), &error), qPrintable(error));
    QVERIFY(QFileInfo(panel.maskPath()).isFile());
    QVERIFY(panel.maskPath().startsWith(dir.filePath(QStringLiteral("masks"))));
    panel.setStrength(0.7);
    panel.setMaskBlur(4);

    GenerationParams p = GenerationParams::defaults();
    p.steps = 10;
    panel.applyTo(p);
    QVERIFY(p.isInpaint());
    QCOMPARE(p.initImagePath, QFileInfo(source).absoluteFilePath());
    QCOMPARE(p.initImageHash, GenerationParams::shortFileHash(source));
    QCOMPARE(p.initImageHash.size(), 10);
    QCOMPARE(p.maskHash, GenerationParams::shortFileHash(p.maskPath));
    QCOMPARE(QFileInfo(p.maskPath).fileName(), QStringLiteral("mask-%1.png").arg(p.maskHash));
    QCOMPARE(*p.strength, 0.7);
    QCOMPARE(p.maskBlur, 4);
    QVERIFY2(p.validate().isEmpty(), qPrintable(p.validate()));

    // The request reads both files at the image's size.
    const koala::GenerateRequest r = p.toRequest(7);
    QVERIFY(r.initImage && r.mask);
    QCOMPARE(r.initImage->width, 96);
    QCOMPARE(r.mask->height, 72);
    QCOMPARE(*r.strength, 0.7);
    QCOMPARE(r.maskBlur, 4);

    // The metadata names the files and their hashes; A1111 text has the strength and blur.
    const koala::ImageMetadata m = p.toMetadata();
    QCOMPARE(QString::fromStdString(m.initImage), QStringLiteral("source.png"));
    QCOMPARE(QString::fromStdString(m.maskImageHash), p.maskHash);
    QVERIFY(p.toA1111().contains(QLatin1String("Denoising strength: 0.7")));
    QVERIFY(p.toA1111().contains(QLatin1String("Mask blur: 4")));
    const std::optional<GenerationParams> a1111 = GenerationParams::fromA1111(p.toA1111());
    QVERIFY(a1111);
    QCOMPARE(*a1111->strength, 0.7);
    QCOMPARE(a1111->maskBlur, 4);

    // JSON (the koala chunk) keeps everything, so "reuse parameters" restores the panel.
    const QJsonObject json = p.toJson();
    QCOMPARE(json.value(QStringLiteral("init_image")).toString(), QStringLiteral("source.png"));
    QCOMPARE(json.value(QStringLiteral("mask_image_sha256")).toString(), p.maskHash);
    const GenerationParams back = GenerationParams::fromJson(json);
    QCOMPARE(back, p);
    InitImagePanel restored;
    QCOMPARE(restored.restore(back), QString());
    QCOMPARE(restored.initImagePath(), p.initImagePath);
    QCOMPARE(restored.maskPath(), p.maskPath);
    QCOMPARE(restored.strength(), 0.7);
    QCOMPARE(restored.maskBlur(), 4);
    QCOMPARE(restored.mask(), c.mask());
    GenerationParams again = GenerationParams::defaults();
    again.steps = 10;
    restored.applyTo(again);
    QCOMPARE(again, p);

    // A text-to-image request writes none of it.
    GenerationParams t2i = p;
    t2i.clearInitImage();
    QVERIFY(!t2i.toJson().contains(QStringLiteral("strength")));
    QVERIFY(!t2i.toA1111().contains(QLatin1String("Denoising")));
    QVERIFY(!t2i.toRequest(1).initImage);
    QCOMPARE(restored.restore(t2i), QString());
    QVERIFY(!restored.hasInitImage());

    // A mask that is gone: img2img, and the message names it.
    GenerationParams gone = p;
    gone.maskPath = dir.filePath(QStringLiteral("masks/none.png"));
    const QString note = restored.restore(gone);
    QVERIFY2(note.contains(QLatin1String("none.png")), qPrintable(note));
    QVERIFY(restored.hasInitImage());
    QVERIFY(restored.maskPath().isEmpty());
}

void TestInpaintCanvas::paramsValidateImageRequests() {
    QTemporaryDir dir;
    const QString source = dir.filePath(QStringLiteral("source.png"));
    QVERIFY(testImage(64, 64).save(source));
    GenerationParams p = GenerationParams::defaults();
    p.initImagePath = source;
    QVERIFY2(p.validate().isEmpty(), qPrintable(p.validate()));
    QCOMPARE(p.effectiveStrength(), koala::kLimits.defaultImg2ImgStrength);
    p.steps = 2;
    p.strength = 0.2;  // int(2 * 0.2) = 0 steps
    QVERIFY(p.validate().contains(QLatin1String("no denoising step")));
    p.steps = 25;
    p.strength = 1.5;
    QVERIFY(p.validate().contains(QLatin1String("Strength")));
    p.strength.reset();
    p.maskPath = dir.filePath(QStringLiteral("nomask.png"));
    QVERIFY(p.validate().contains(QLatin1String("nomask.png")));
    p.initImagePath = dir.filePath(QStringLiteral("nothere.png"));
    QVERIFY(p.validate().contains(QLatin1String("nothere.png")));
    p.initImagePath.clear();
    QVERIFY(p.validate().contains(QLatin1String("init image")));
}

// The real window with the tiny KOALA-700M fixture: an init image and a painted mask go through the queue and the
// engine; the PNG records the source and mask (names, hashes, strength, blur); "reuse parameters" restores them.
void TestInpaintCanvas::inpaintingEndToEndAndReuse() {
    IsolatedWindowFiles files;
    QVERIFY(files.dir.isValid());
    MainWindow window(files.options({fixtureModel("tiny-koala-700m")}));
    window.show();
    QVERIFY(QTest::qWaitForWindowExposed(&window));
    auto* initPanel = window.findChild<InitImagePanel*>(QStringLiteral("initImagePanel"));
    QVERIFY(initPanel);

    const QString source = files.dir.filePath(QStringLiteral("source.png"));
    QVERIFY(testImage(64, 64).save(source));
    QString error;
    QVERIFY2(initPanel->setInitImage(source, &error), qPrintable(error));
    InpaintCanvas canvas;
    canvas.setImage(initPanel->initImage());
    canvas.setBrushSize(24);
    stroke(canvas, {16, 32}, {48, 32});
    QVERIFY2(initPanel->setMask(canvas.mask(), &error), qPrintable(error));
    QVERIFY(initPanel->maskPath().startsWith(files.dir.path()));  // beside the settings, not the user's folders
    initPanel->setStrength(0.5);
    initPanel->setMaskBlur(2);

    PromptPanel* panel = window.promptPanel();
    GenerationParams params = panel->params();
    params.prompt = QStringLiteral("a koala astronaut");
    params.seed = 7;
    params.steps = 4;
    params.width = 64;
    params.height = 64;
    params.count = 1;
    panel->setParams(params);
    QSignalSpy images(window.jobQueue(), &JobQueue::imageReady);
    QSignalSpy failed(window.jobQueue(), &JobQueue::jobFailed);
    QVERIFY(window.generate() > 0);
    QVERIFY2(images.wait(60000) || !images.isEmpty(),
             failed.isEmpty() ? "no image" : qPrintable(failed.first().at(1).toString()));
    const GalleryItem item = images.first().at(1).value<GalleryItem>();
    QVERIFY(item.params.isInpaint());

    // Our chunk keeps the full paths; the engine's reader sees its own keys; the A1111 text has strength and blur.
    const PngMetadata::ReadResult read = PngMetadata::read(item.path);
    QCOMPARE(read.source, PngMetadata::Source::Koala);
    QCOMPARE(read.item.params.initImagePath, QFileInfo(source).absoluteFilePath());
    QCOMPARE(read.item.params.maskPath, initPanel->maskPath());
    const koala::MetadataReadResult engineRead = koala::readImageMetadata(QFile::encodeName(item.path).toStdString());
    QCOMPARE(QString::fromStdString(engineRead.metadata.initImage), QStringLiteral("source.png"));
    QCOMPARE(QString::fromStdString(engineRead.metadata.initImageHash), GenerationParams::shortFileHash(source));
    QCOMPARE(QString::fromStdString(engineRead.metadata.maskImage), QFileInfo(initPanel->maskPath()).fileName());
    QCOMPARE(QString::fromStdString(engineRead.metadata.maskImageHash),
             GenerationParams::shortFileHash(initPanel->maskPath()));
    QVERIFY(engineRead.metadata.strength);
    QCOMPARE(*engineRead.metadata.strength, 0.5);
    QCOMPARE(engineRead.metadata.maskBlur, 2);
    QVERIFY(QString::fromStdString(koala::toA1111Parameters(engineRead.metadata))
                .contains(QLatin1String("Denoising strength: 0.5")));

    // Back to text-to-image, then "reuse parameters" on the image brings the init image, mask and strength back.
    const QString maskPath = initPanel->maskPath();
    initPanel->clear();
    QVERIFY(!initPanel->hasInitImage());
    emit window.galleryWidget()->reuseParametersRequested(read.item);
    QVERIFY(initPanel->hasInitImage());
    QCOMPARE(initPanel->initImagePath(), QFileInfo(source).absoluteFilePath());
    QCOMPARE(initPanel->maskPath(), maskPath);
    QCOMPARE(initPanel->strength(), 0.5);
    QCOMPARE(initPanel->maskBlur(), 2);
    QVERIFY(!panel->params().hasInitImage());  // the prompt panel does not carry them

    // img2img (no mask) makes the init image's size, whatever the size controls say; the metadata says so too.
    const QString wide = files.dir.filePath(QStringLiteral("wide.png"));
    QVERIFY(testImage(100, 76).save(wide));
    QVERIFY(initPanel->setInitImage(wide, &error));
    QVERIFY(initPanel->maskPath().isEmpty());
    images.clear();
    QVERIFY(window.generate() > 0);
    QVERIFY2(images.wait(60000) || !images.isEmpty(),
             failed.isEmpty() ? "no image" : qPrintable(failed.last().at(1).toString()));
    const GalleryItem wideItem = images.first().at(1).value<GalleryItem>();
    QCOMPARE(QSize(wideItem.width, wideItem.height), QSize(96, 72));
    QCOMPARE(QSize(wideItem.params.width, wideItem.params.height), QSize(96, 72));
    QVERIFY(wideItem.params.toA1111().contains(QLatin1String("Size: 96x72")));
    QVERIFY(!wideItem.params.isInpaint());
    window.close();
}

QTEST_MAIN(TestInpaintCanvas)
#include "tst_inpaintcanvas.moc"
