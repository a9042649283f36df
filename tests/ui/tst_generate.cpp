#include <QComboBox>
#include <QDropEvent>
#include <QFile>
#include <QFileInfo>
#include <QLabel>
#include <QMimeData>
#include <QPushButton>
#include <QSignalSpy>
#include <QTest>

#include "GalleryStore.h"
#include "JobQueue.h"
#include "gallerymodel.h"
#include "imageviewer.h"
#include "mainwindow.h"
#include "messagebar.h"
#include "prompteditor.h"
#include "promptpanel.h"
#include "queueview.h"
#include "uitestutil.h"

// The whole loop through the real window: prompt, Generate button, worker thread with the tiny KOALA-700M fixture,
// per-step previews into the gallery tile, final image replacing it; then cancel, queue removal and PNG drop.
class TestGenerate : public QObject {
    Q_OBJECT

private slots:
    void init();
    void cleanup();
    void generateShowsPreviewsThenImage();
    void removeQueuedAndCancelRunning();
    void tokenCounterIsExactForTheSelectedModel();
    void tokenCounterFallsBackToTheEstimate();
    void sideViewerNamesSamplerAndClearsOnDelete();
    void nonPngAndComfyUiAreNamed();

private:
    std::unique_ptr<IsolatedWindowFiles> m_files;
    std::unique_ptr<MainWindow> m_window;
};

void TestGenerate::init() {
    m_files = std::make_unique<IsolatedWindowFiles>();
    QVERIFY(m_files->dir.isValid());
    m_window = std::make_unique<MainWindow>(m_files->options({fixtureModel("tiny-koala-700m")}));
    m_window->show();
    QVERIFY(QTest::qWaitForWindowExposed(m_window.get()));
    m_window->activateWindow();
    QVERIFY(QTest::qWaitForWindowActive(m_window.get()));
    QCOMPARE(m_window->promptPanel()->models().size(), 1);
}

void TestGenerate::cleanup() {
    m_window.reset();
    m_files.reset();
}

void TestGenerate::generateShowsPreviewsThenImage() {
    constexpr int Steps = 4;
    PromptPanel* panel = m_window->promptPanel();
    GenerationParams params = panel->params();
    params.prompt = QStringLiteral("a koala astronaut");
    params.seed = 42;
    params.steps = Steps;
    params.width = 64;
    params.height = 64;
    params.count = 1;
    params.scheduler = QStringLiteral("euler");
    panel->setParams(params);

    QSignalSpy previews(m_window->jobQueue(), &JobQueue::jobPreview);
    QSignalSpy images(m_window->jobQueue(), &JobQueue::imageReady);
    QSignalSpy failed(m_window->jobQueue(), &JobQueue::jobFailed);
    GalleryModel* model = m_window->galleryModel();
    QCOMPARE(model->rowCount(), 0);

    auto* generate = panel->findChild<QPushButton*>(QStringLiteral("generateButton"));
    QVERIFY(generate);
    QTest::mouseClick(generate, Qt::LeftButton);
    // The click returns at once (the worker runs on its own thread) and a placeholder tile is there.
    QCOMPARE(model->rowCount(), 1);
    QVERIFY(model->data(model->index(0), GalleryModel::PendingRole).toBool());
    QCOMPARE(m_window->queueView()->rowCount(), 1);

    QTRY_VERIFY_WITH_TIMEOUT(!images.isEmpty() || !failed.isEmpty(), 120000);
    QVERIFY2(failed.isEmpty(), failed.isEmpty() ? "" : qPrintable(failed.first().at(1).toString()));
    QCOMPARE(images.first().at(2).toInt(), 0);  // the image's index within its job

    // One preview per step reached the tile, which now holds the stored image.
    QCOMPARE(previews.count(), Steps);
    QCOMPARE(model->rowCount(), 1);
    QCOMPARE(model->previewCount(0), Steps);
    QVERIFY(!model->data(model->index(0), GalleryModel::PendingRole).toBool());
    const auto item = model->itemAt(0);
    QVERIFY(item.has_value());
    QCOMPARE(item->params.seed, std::optional<quint64>(42));
    QVERIFY(QFileInfo::exists(item->path));
    QCOMPARE(QImage(item->path).size(), QSize(64, 64));
    QVERIFY(!model->thumbnail(0).isNull());
    QTRY_COMPARE(m_window->queueView()->stateText(1), Job::toString(Job::State::Done));
    QTRY_COMPARE(m_window->queueView()->progressPercent(1), 100);

    // The gallery is rebuilt from the output folder at the next start.
    QCOMPARE(m_window->galleryStore()->items().size(), 1);

    // Dropping the PNG onto the window loads its parameters back into the controls.
    params.prompt = QStringLiteral("something else");
    params.seed = 7;
    params.steps = 30;
    panel->setParams(params);
    QMimeData mime;
    mime.setUrls({QUrl::fromLocalFile(item->path)});
    QDragEnterEvent enter(QPoint(10, 10), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
    QApplication::sendEvent(m_window.get(), &enter);
    QVERIFY(enter.isAccepted());
    QDropEvent drop(QPointF(10, 10), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
    QApplication::sendEvent(m_window.get(), &drop);
    QCOMPARE(panel->params().prompt, QStringLiteral("a koala astronaut"));
    QCOMPARE(panel->params().seed, std::optional<quint64>(42));
    QCOMPARE(panel->params().steps, Steps);
}

void TestGenerate::removeQueuedAndCancelRunning() {
    PromptPanel* panel = m_window->promptPanel();
    GenerationParams params = panel->params();
    params.prompt = QStringLiteral("a long job");
    params.seed = 1;
    params.steps = 200;  // long enough on the tiny model for the cancel to land mid-run
    params.width = 512;
    params.height = 512;
    params.count = 4;
    panel->setParams(params);

    QSignalSpy previews(m_window->jobQueue(), &JobQueue::jobPreview);
    QSignalSpy cancelled(m_window->jobQueue(), &JobQueue::jobCancelled);
    QSignalSpy removed(m_window->jobQueue(), &JobQueue::jobRemoved);
    const qint64 running = m_window->generate();
    const qint64 queued = m_window->generate();
    QVERIFY(running > 0);
    QVERIFY(queued > 0);
    QCOMPARE(m_window->queueView()->rowCount(), 2);
    QCOMPARE(m_window->galleryModel()->rowCount(), 8);

    QTRY_VERIFY_WITH_TIMEOUT(!previews.isEmpty(), 120000);
    QVERIFY(m_window->jobQueue()->remove(queued));
    QCOMPARE(removed.count(), 1);
    QCOMPARE(m_window->queueView()->rowCount(), 1);
    QCOMPARE(m_window->galleryModel()->rowCount(), 4);  // the removed job's placeholder tiles went with it

    // Esc cancels the running job.
    QTest::keyClick(m_window.get(), Qt::Key_Escape);
    QTRY_VERIFY_WITH_TIMEOUT(!cancelled.isEmpty(), 60000);
    QCOMPARE(cancelled.first().at(0).toLongLong(), running);
    QTRY_COMPARE(m_window->queueView()->stateText(running), Job::toString(Job::State::Cancelled));
    // ux-review 16: the bar kept a blue "88%" as if half successful.
    QVERIFY2(m_window->queueView()->progressText(running).startsWith(QLatin1String("cancelled")),
             qPrintable(m_window->queueView()->progressText(running)));
    QTRY_VERIFY(!m_window->jobQueue()->isBusy());
    // Placeholder tiles of unfinished images are gone; nothing half-done was stored.
    for (int row = 0; row < m_window->galleryModel()->rowCount(); ++row)
        QVERIFY(
            !m_window->galleryModel()->data(m_window->galleryModel()->index(row), GalleryModel::PendingRole).toBool());
}

// The tiny fixture carries the real CLIP vocabulary, so the counter is the exact CLIP count, without "≈".
void TestGenerate::tokenCounterIsExactForTheSelectedModel() {
    PromptEditor* prompt = m_window->promptPanel()->promptEditor();
    prompt->setText(QStringLiteral("a photo of a koala astronaut, highly detailed"));
    QVERIFY(prompt->isExact());
    QCOMPARE(prompt->tokenCount(), 9 + 2);
    QCOMPARE(prompt->counterText(), QStringLiteral("11 / 77 tokens"));
    // "koala," is two tokens and "35mm" three (digits split): the estimate would be off here.
    prompt->setText(QStringLiteral("a photo of a koala, 35mm, f/1.8, bokeh"));
    QCOMPARE(prompt->counterText(), QStringLiteral("20 / 77 tokens"));
    PromptEditor* negative = m_window->promptPanel()->negativeEditor();
    negative->setText(QStringLiteral("worst quality, low quality, illustration, low resolution"));
    QVERIFY(negative->isExact());
    QCOMPARE(negative->counterText(), QStringLiteral("12 / 77 tokens"));
}

// A model whose tokenizer cannot be loaded: the editors show the estimate, marked "≈"; back to exact with the tiny
// fixture selected again.
void TestGenerate::tokenCounterFallsBackToTheEstimate() {
    const QString fixture = fixtureModel("tiny-koala-700m");
    const QString broken = m_files->dir.filePath(QStringLiteral("broken-tokenizer-model"));
    QVERIFY(QDir().mkpath(broken + QStringLiteral("/tokenizer")));  // there, but empty
    for (const char* entry :
         {"model_index.json", "unet", "vae", "text_encoder", "text_encoder_2", "tokenizer_2", "scheduler"})
        QVERIFY(QFile::link(fixture + QLatin1Char('/') + QLatin1String(entry),
                            broken + QLatin1Char('/') + QLatin1String(entry)));
    m_window.reset();
    m_window = std::make_unique<MainWindow>(m_files->options({broken, fixture}));
    PromptPanel* panel = m_window->promptPanel();
    QCOMPARE(panel->models().size(), 2);
    QCOMPARE(QFileInfo(panel->currentModelPath()).fileName(), QStringLiteral("broken-tokenizer-model"));

    PromptEditor* prompt = panel->promptEditor();
    prompt->setText(QStringLiteral("a koala astronaut"));
    QVERIFY(!prompt->isExact());
    QCOMPARE(prompt->counterText(), QStringLiteral("\u22485 / 77 tokens"));

    auto* combo = panel->findChild<QComboBox*>(QStringLiteral("modelCombo"));
    QVERIFY(combo);
    combo->setCurrentIndex(combo->findData(panel->models().at(1).path));
    QVERIFY(prompt->isExact());
    QCOMPARE(prompt->counterText(), QStringLiteral("5 / 77 tokens"));
}

// ux-review 15 and 7: the info names the sampler the PNG names ("model default" left it out); deleting the image
// clears the side viewer and its path.
void TestGenerate::sideViewerNamesSamplerAndClearsOnDelete() {
    PromptPanel* panel = m_window->promptPanel();
    GenerationParams params = panel->params();
    params.prompt = QStringLiteral("a koala");
    params.scheduler = QStringLiteral("default");
    params.seed = 5;
    params.steps = 2;
    params.width = 64;
    params.height = 64;
    panel->setParams(params);
    QSignalSpy images(m_window->jobQueue(), &JobQueue::imageReady);
    QVERIFY(m_window->generate() > 0);
    QTRY_VERIFY_WITH_TIMEOUT(!images.isEmpty(), 120000);
    const GalleryItem item = images.first().at(1).value<GalleryItem>();
    QTRY_COMPARE(m_window->sideItemId(), item.id);
    auto* info = m_window->findChild<QLabel*>(QStringLiteral("sideInfo"));
    auto* viewer = m_window->findChild<ImageViewer*>(QStringLiteral("sideViewer"));
    QVERIFY(info && viewer);
    QVERIFY(!item.schedulerUsed.isEmpty());
    QVERIFY2(info->text().contains(QLatin1String("Sampler: ")), qPrintable(info->text()));
    QVERIFY(info->text().contains(item.path));
    QVERIFY(!viewer->image().isNull());

    QVERIFY(m_window->deleteImage(item.id));
    QVERIFY(!QFileInfo::exists(item.path));
    QVERIFY(m_window->sideItemId().isEmpty());
    QVERIFY(viewer->image().isNull());
    QVERIFY(info->text().isEmpty());
    QCOMPARE(m_window->galleryModel()->rowCount(), 0);
}

// ux-review 12: "not a readable PNG: Unknown error" for a JPEG; a ComfyUI PNG is named as one.
void TestGenerate::nonPngAndComfyUiAreNamed() {
    const QString jpeg = m_files->dir.filePath(QStringLiteral("photo.jpg"));
    QImage image(16, 16, QImage::Format_RGB888);
    image.fill(Qt::gray);
    QVERIFY(image.save(jpeg, "JPEG"));
    QVERIFY(!m_window->loadParametersFromPng(jpeg));
    QVERIFY2(m_window->messageBar()->currentText().contains(QLatin1String("JPEG image, not a PNG")),
             qPrintable(m_window->messageBar()->currentText()));

    const QString comfy = m_files->dir.filePath(QStringLiteral("comfy.png"));
    koala::Image rgb;
    rgb.width = 8;
    rgb.height = 8;
    rgb.rgb.assign(8 * 8 * 3, 128);
    koala::writePng(comfy.toStdString(), rgb,
                    {{"prompt", R"({"3":{"class_type":"KSampler","inputs":{"seed":5}}})"}, {"workflow", "{}"}});
    QVERIFY(!m_window->loadParametersFromPng(comfy));
    QVERIFY2(m_window->messageBar()->currentText().contains(QLatin1String("ComfyUI")),
             qPrintable(m_window->messageBar()->currentText()));
}

QTEST_MAIN(TestGenerate)
#include "tst_generate.moc"
