#include <QApplication>
#include <QCommandLineParser>
#include <QDir>
#include <QFileInfo>
#include <QTimer>

#include "AppSettings.h"
#include "JobQueue.h"
#include "desktopintegration.h"
#include "mainwindow.h"
#include "promptpanel.h"

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
    parser.addOptions({modelOption, outputOption, settingsOption, presetsOption, promptOption, stepsOption, sizeOption,
                       generateOption, screenshotOption});
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
    if (parser.isSet(generateOption)) {
        scheduleGenerateThenQuit(&window, screenshot);
    } else if (!screenshot.isEmpty()) {
        QTimer::singleShot(1000, &window,
                           [&window, screenshot]() { QCoreApplication::exit(window.grab().save(screenshot) ? 0 : 2); });
    }
    return QApplication::exec();
}
