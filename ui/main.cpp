#include <QApplication>
#include <QCommandLineParser>
#include <QDir>
#include <QFileInfo>
#include <QTimer>

#include "AppSettings.h"
#include "JobQueue.h"
#include "compareview.h"
#include "desktopintegration.h"
#include "gallerywidget.h"
#include "inpaintcanvas.h"
#include "mainwindow.h"
#include "promptpanel.h"

#include <QTabWidget>

namespace {
// --generate-then-quit: queue one job with the current controls, wait until the queue is idle, optionally
// grab the window, and quit. Used for the README screenshot and as an end-to-end smoke test.
void scheduleGenerateThenQuit(MainWindow* window, const QString& screenshot) {
    auto* exitCode = new int(1);
    QObject::connect(window->jobQueue(), &JobQueue::jobFinished, window, [exitCode]() { *exitCode = 0; });
    QObject::connect(window->jobQueue(), &JobQueue::idle, window, [window, screenshot, exitCode]() {
        // Let the final image reach the tile and the side view before grabbing.
        QTimer::singleShot(500, window, [window, screenshot, exitCode]() {
            if (!screenshot.isEmpty() && !window->grab().save(screenshot)) {
                qWarning("Could not write %s", qPrintable(screenshot));
                *exitCode = 2;
            }
            const int code = *exitCode;
            delete exitCode;
            QCoreApplication::exit(code);
        });
    });
    QTimer::singleShot(300, window, [window]() {
        if (window->generate() == 0) {
            qWarning("Nothing was queued (no model, or invalid parameters)");
            QCoreApplication::exit(1);
        }
    });
}
// --screenshots DIR (hidden; scripts/screenshots.sh): a scripted tour of the real window at 1000×700 that saves
// QWidget::grab() PNGs. Without a model: the first start (first-start.png). With two --model folders: the live
// preview while generating (generating.png), the gallery after a few more images (gallery.png), a comparison of the
// two models (compare.png), the inpainting canvas on the last image (inpainting.png) and the gallery in the dark
// theme (dark-theme.png). Exit code 0 when all were written.
struct ScreenshotTour {
    MainWindow* window = nullptr;
    QString dir;
    int stage = 0;
    bool previewShot = false;
    bool failed = false;
    GalleryItem lastItem;

    bool save(const QString& name, QWidget* what = nullptr) {
        QImage image = (what ? what : window)->grab().toImage();
        if (image.width() > 1000 || image.height() > 700)
            image = image.scaled(QSize(1000, 700), Qt::KeepAspectRatio, Qt::SmoothTransformation);
        const QString path = QDir(dir).filePath(name);
        const bool ok = image.save(path, "PNG", 0);  // quality 0: the strongest PNG compression
        if (!ok) failed = true;
        qInfo("%s %s (%dx%d)", ok ? "wrote" : "could not write", qPrintable(path), image.width(), image.height());
        return ok;
    }
    void showTab(QWidget* target) {
        for (QTabWidget* tabs : window->findChildren<QTabWidget*>()) {
            for (int i = 0; i < tabs->count(); ++i) {
                if (tabs->widget(i) == target || tabs->widget(i)->isAncestorOf(target)) tabs->setCurrentIndex(i);
            }
        }
    }
    void finish() { QCoreApplication::exit(failed ? 2 : 0); }
    GenerationParams params(int steps, int size, int count) const {
        GenerationParams p = window->promptPanel()->params();
        p.prompt = QStringLiteral("a koala astronaut floating above the earth, digital art");
        p.seed = 42;
        p.steps = steps;
        p.width = size;
        p.height = size;
        p.count = count;
        return p;
    }
    void next() {
        ++stage;
        if (stage == 1) {  // one slow image: the live preview in the viewer
            window->promptPanel()->setParams(params(40, 256, 1));
            if (window->generate() == 0) failed = true;
        } else if (stage == 2) {  // a few more for the gallery
            window->promptPanel()->setParams(params(6, 256, 5));
            if (window->generate() == 0) failed = true;
        } else if (stage == 3) {
            showTab(window->galleryWidget());
            if (auto* view = window->galleryWidget(); view->model() && view->model()->rowCount() > 0)
                view->setCurrentIndex(view->model()->index(0, 0));
            QTimer::singleShot(800, window, [this]() {
                save(QStringLiteral("gallery.png"));
                GenerationParams p = params(8, 256, 1);
                window->promptPanel()->setParams(p);
                if (window->promptPanel()->models().size() < 2 || window->compare() == 0) {
                    qWarning("Compare needs two --model folders");
                    failed = true;
                    next();
                }
            });
        } else if (stage == 4) {
            showTab(window->compareView());
            QTimer::singleShot(800, window, [this]() {
                save(QStringLiteral("compare.png"));
                next();
            });
        } else if (stage == 5) {
            const QImage image(lastItem.path);
            auto* dialog =
                new InpaintDialog(image.isNull() ? QImage(512, 512, QImage::Format_RGB32) : image, {}, window);
            dialog->setAttribute(Qt::WA_DeleteOnClose);
            dialog->resize(900, 660);
            dialog->show();
            InpaintCanvas* canvas = dialog->canvas();
            const QSizeF s = canvas->image().size();
            canvas->beginStroke({s.width() * 0.30, s.height() * 0.35}, InpaintCanvas::Tool::Brush);
            for (int i = 1; i <= 20; ++i)
                canvas->strokeTo({s.width() * (0.30 + 0.02 * i), s.height() * (0.35 + 0.012 * i)});
            canvas->endStroke();
            QTimer::singleShot(800, window, [this, dialog]() {
                save(QStringLiteral("inpainting.png"), dialog);
                dialog->close();
                // The gallery once more, in the dark theme (Settings → Theme).
                DesktopIntegration::applyTheme(QStringLiteral("dark"));
                showTab(window->galleryWidget());
                QTimer::singleShot(800, window, [this]() {
                    save(QStringLiteral("dark-theme.png"));
                    finish();
                });
            });
        }
    }
};

void scheduleScreenshotTour(MainWindow* window, const QString& dir) {
    QDir().mkpath(dir);
    window->resize(1000, 700);
    auto* tour = new ScreenshotTour;
    tour->window = window;
    tour->dir = dir;
    QTimer::singleShot(240000, window, []() {
        qWarning("Screenshot tour timed out");
        QCoreApplication::exit(3);
    });
    if (window->promptPanel()->models().isEmpty()) {
        QTimer::singleShot(2000, window, [tour]() {
            tour->save(QStringLiteral("first-start.png"));
            tour->finish();
        });
        return;
    }
    JobQueue* queue = window->jobQueue();
    QObject::connect(queue, &JobQueue::jobProgress, window, [tour](qint64, int step, int total) {
        if (tour->stage != 1 || tour->previewShot || total <= 0 || step < total * 6 / 10) return;
        tour->previewShot = true;
        tour->save(QStringLiteral("generating.png"));
    });
    QObject::connect(queue, &JobQueue::imageReady, window,
                     [tour](qint64, const GalleryItem& item) { tour->lastItem = item; });
    QObject::connect(queue, &JobQueue::idle, window, [tour]() {
        // Let the last image reach the views first.
        QTimer::singleShot(500, tour->window, [tour]() {
            if (tour->stage <= 3) tour->next();
        });
    });
    QTimer::singleShot(1000, window, [tour]() { tour->next(); });
}
}  // namespace

int main(int argc, char* argv[]) {
    QApplication app(argc, argv);
    QApplication::setApplicationName(QStringLiteral("KOALA Studio"));
    QApplication::setOrganizationName(QStringLiteral("KOALA"));
    QApplication::setApplicationVersion(QStringLiteral(KOALA_STUDIO_VERSION));
    QApplication::setDesktopFileName(QStringLiteral("koala-studio"));

    QCommandLineParser parser;
    parser.setApplicationDescription(QStringLiteral("Text-to-image with ETRI's KOALA models"));
    parser.addHelpOption();
    parser.addVersionOption();
    const QCommandLineOption modelOption(
        QStringLiteral("model"), QStringLiteral("Model folder to add and select (repeat for the compare model)."),
        QStringLiteral("DIR"));
    const QCommandLineOption outputOption(QStringLiteral("output"),
                                          QStringLiteral("Output folder for this session (overrides the setting)."),
                                          QStringLiteral("DIR"));
    const QCommandLineOption settingsOption(QStringLiteral("settings"),
                                            QStringLiteral("Use this INI file for the settings instead of the user's."),
                                            QStringLiteral("FILE"));
    const QCommandLineOption presetsOption(QStringLiteral("presets-dir"),
                                           QStringLiteral("Folder of the user's presets."), QStringLiteral("DIR"));
    const QCommandLineOption promptOption(QStringLiteral("prompt"), QStringLiteral("Prompt to start with."),
                                          QStringLiteral("TEXT"));
    const QCommandLineOption stepsOption(QStringLiteral("steps"), QStringLiteral("Steps to start with."),
                                         QStringLiteral("N"));
    const QCommandLineOption sizeOption(QStringLiteral("size"), QStringLiteral("Image size to start with."),
                                        QStringLiteral("WxH"));
    const QCommandLineOption generateOption(
        QStringLiteral("generate-then-quit"),
        QStringLiteral("Generate once with the current controls, then quit (exit code 0 on success)."));
    const QCommandLineOption screenshotOption(QStringLiteral("screenshot"),
                                              QStringLiteral("Save a picture of the window to FILE before quitting."),
                                              QStringLiteral("FILE"));
    QCommandLineOption screenshotsOption(QStringLiteral("screenshots"),
                                         QStringLiteral("Take the documentation screenshots into DIR and quit."),
                                         QStringLiteral("DIR"));
    screenshotsOption.setFlags(QCommandLineOption::HiddenFromHelp);
    parser.addOptions({modelOption, outputOption, settingsOption, presetsOption, promptOption, stepsOption, sizeOption,
                       generateOption, screenshotOption, screenshotsOption});
    parser.addPositionalArgument(QStringLiteral("png"), QStringLiteral("PNG files whose parameters to load."),
                                 QStringLiteral("[png...]"));
    parser.process(app);

    MainWindow::Options options;
    for (const QString& model : parser.values(modelOption)) options.modelFolders << QFileInfo(model).absoluteFilePath();
    if (parser.isSet(outputOption)) options.outputFolder = QFileInfo(parser.value(outputOption)).absoluteFilePath();
    options.settingsFile = parser.value(settingsOption);
    options.userPresetsDir = parser.value(presetsOption);
    options.pngFiles = parser.positionalArguments();

    // The colour theme before any window exists (Settings → Theme; "system" follows the desktop).
    DesktopIntegration::applyTheme(DesktopIntegration::themeSetting(
        options.settingsFile.isEmpty() ? AppSettings().fileName() : options.settingsFile));

    MainWindow window(options);
    // Title/taskbar progress, the end-of-queue notification, Help → Keyboard shortcuts (issue 13 item 6).
    new DesktopIntegration(&window);
    GenerationParams params = window.promptPanel()->params();
    if (parser.isSet(promptOption)) params.prompt = parser.value(promptOption);
    if (parser.isSet(stepsOption)) params.steps = parser.value(stepsOption).toInt();
    if (parser.isSet(sizeOption)) {
        const QStringList wh = parser.value(sizeOption).split(QLatin1Char('x'));
        if (wh.size() == 2) {
            params.width = wh[0].toInt();
            params.height = wh[1].toInt();
        }
    }
    if (parser.isSet(promptOption) || parser.isSet(stepsOption) || parser.isSet(sizeOption)) {
        params.count = 1;
        window.promptPanel()->setParams(params);
    }
    window.show();

    const QString screenshot = parser.value(screenshotOption);
    if (parser.isSet(screenshotsOption)) {
        scheduleScreenshotTour(&window, parser.value(screenshotsOption));
    } else if (parser.isSet(generateOption)) {
        scheduleGenerateThenQuit(&window, screenshot);
    } else if (!screenshot.isEmpty()) {
        QTimer::singleShot(1000, &window,
                           [&window, screenshot]() { QCoreApplication::exit(window.grab().save(screenshot) ? 0 : 2); });
    }
    return QApplication::exec();
}
