#include "mainwindow.h"

#include <algorithm>

#include <QAction>
#include <QApplication>
#include <QClipboard>
#include <QCloseEvent>
#include <QDesktopServices>
#include <QDialog>
#include <QDir>
#include <QFile>
#include <QFileDialog>
#include <QFileInfo>
#include <QKeySequence>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QMimeData>
#include <QProgressBar>
#include <QPushButton>
#include <QScrollArea>
#include <QShortcut>
#include <QSplitter>
#include <QStackedWidget>
#include <QStandardPaths>
#include <QStatusBar>
#include <QTabWidget>
#include <QUrl>
#include <QVBoxLayout>

#include "AppSettings.h"
#include "ComputeSummary.h"
#include "GalleryStore.h"
#include "ModelManager.h"
#include "PngMetadata.h"
#include "PresetStore.h"
#include "TokenCounter.h"
#include "compareview.h"
#include "gallerymodel.h"
#include "gallerywidget.h"
#include "icons.h"
#include "imageviewer.h"
#include "initimagepanel.h"
#include "lorapanel.h"  // issue 10
#include "messagebar.h"
#include "modelmanagerpage.h"
#include "nomodelpanel.h"
#include "presetspanel.h"
#include "promptpanel.h"
#include "queueview.h"
#include "settingsdialog.h"
#include "tokenestimate.h"

namespace {
enum ContentPage { NoModelPage, TabsPage };

enum ContentTab { GalleryTab, ImageTab, CompareTab };

EngineLoadSettings loadSettingsFrom(const AppSettings& settings) {
    EngineLoadSettings load;
    load.device = settings.device();
    load.precision = settings.precision();
    load.memoryMode = settings.memoryMode();
    return load;
}

QString formatBytes(const qint64 bytes) {
    return (bytes > 0) ? MainWindow::tr("%1 MiB").arg(double(bytes) / (1024.0 * 1024.0), 0, 'f', 0)
                       : MainWindow::tr("n/a (CPU)");
}

QString describeItem(const GalleryItem& item) {
    // The sampler and spacing actually used, as the PNG's A1111 text names them (ux-review 15: "model default"
    // left the sampler out here while the PNG said "Euler").
    GenerationParams used = item.params;
    if (!item.schedulerUsed.isEmpty()) used.scheduler = item.schedulerUsed;
    if (!item.spacingUsed.isEmpty()) used.spacing = item.spacingUsed;
    if (used.modelName.isEmpty()) used.modelName = item.modelName;
    QStringList lines;
    lines << used.toA1111();
    lines << MainWindow::tr("Model: %1 (%2, %3 %4) · scheduler %5")
                 .arg(item.modelName, item.unetShape, item.device, item.computeDType, item.schedulerUsed);
    lines << MainWindow::tr("Total %1 s · %2 s/step · peak GPU memory %3")
                 .arg(item.timings.totalSeconds, 0, 'f', 2)
                 .arg(item.timings.stepSeconds, 0, 'f', 3)
                 .arg(formatBytes(item.timings.peakDeviceBytes));
    for (const QString& lora : item.params.loraReportLines()) lines << MainWindow::tr("LoRA %1").arg(lora);  // issue 10
    lines << item.path;
    return lines.join(QLatin1Char('\n'));
}

// ---- prompt syntax and LoRA (issue 10) ----
LoraPanel* loraPanelOf(const QWidget* window) { return window->findChild<LoraPanel*>(QStringLiteral("loraPanel")); }

// The prompt editors count and mark under the syntax of the parameters the prompt panel holds.
void syncPromptSyntax(MainWindow* window) {
    const QString syntax = window->promptPanel()->params().promptSyntax;
    window->promptPanel()->promptEditor()->setSyntax(syntax);
    window->promptPanel()->negativeEditor()->setSyntax(syntax);
}

CompareSide sideFor(const GalleryItem& item) {
    CompareSide side;
    side.modelName = item.modelName.isEmpty() ? QFileInfo(item.params.modelPath).fileName() : item.modelName;
    side.image = QImage(item.path);
    side.totalSeconds = item.timings.totalSeconds;
    side.secondsPerStep = item.timings.stepSeconds;
    side.peakDeviceBytes = item.timings.peakDeviceBytes;
    return side;
}

// The init image panel sits under the prompt panel; it owns the img2img / inpainting fields of the parameters.
InitImagePanel* initPanelOf(const QWidget* window) {
    return window->findChild<InitImagePanel*>(QStringLiteral("initImagePanel"));
}

// Gives the init image fields of `params` to the init image panel and the rest back for the prompt panel; a note
// names a file that is gone or has changed.
GenerationParams restoreInitImage(const QWidget* window, GenerationParams params, QString* note = nullptr) {
    const QString problem = initPanelOf(window)->restore(params);
    if (note) *note = problem;
    params.clearInitImage();
    return params;
}

QString modelNameOf(const QList<ModelEntry>& models, const QString& path) {
    for (const ModelEntry& entry : models) {
        if (entry.path == path) return entry.displayName;
    }
    return QFileInfo(path).fileName();
}
}  // namespace

MainWindow::MainWindow(const Options& options, QWidget* parent)
    : QMainWindow(parent),
      m_options(options),
      m_settings(options.settingsFile.isEmpty() ? std::make_unique<AppSettings>()
                                                : std::make_unique<AppSettings>(options.settingsFile)) {
    setWindowTitle(tr("KOALA Studio"));
    if (Icons::svgSupported()) setWindowIcon(Icons::get(QStringLiteral("koala-studio"), QStyle::SP_DesktopIcon));
    setAcceptDrops(true);

    const QString outputFolder = options.outputFolder.isEmpty() ? m_settings->outputFolder() : options.outputFolder;
    m_gallery = std::make_unique<GalleryStore>(outputFolder);
    m_presets = std::make_unique<PresetStore>(options.userPresetsDir);
    m_queue = std::make_unique<JobQueue>(m_gallery.get());
    m_queue->setLoadSettings(loadSettingsFrom(*m_settings));

    setCentralWidget(createCentralWidget());
    createStatusBar();
    buildActions();
    connectPromptPanel();
    connectGallery();
    connectQueue();
    connectPresets();
    restoreSession();
}

QWidget* MainWindow::createPromptArea() {
    m_promptPanel = new PromptPanel(this);
    m_tokenCounter = std::make_shared<TokenCounter>();
    bindTokenCounter({});
    connect(m_promptPanel, &PromptPanel::modelChanged, this, &MainWindow::bindTokenCounter);
    auto* promptColumn = new QWidget(this);
    auto* promptColumnLayout = new QVBoxLayout(promptColumn);
    promptColumnLayout->setContentsMargins(0, 0, 0, 0);
    promptColumnLayout->addWidget(m_promptPanel, 1);
    auto* initPanel = new InitImagePanel(promptColumn);
    // Painted masks are kept beside the settings (the app data folder), where the images' metadata names them.
    initPanel->setMaskFolder((m_options.settingsFile.isEmpty()
                                  ? QStandardPaths::writableLocation(QStandardPaths::AppDataLocation)
                                  : QFileInfo(m_options.settingsFile).absolutePath()) +
                             QStringLiteral("/masks"));
    connect(initPanel, &InitImagePanel::errorOccurred, this, &MainWindow::showError);
    promptColumnLayout->addWidget(initPanel);
    auto* promptScroll = new QScrollArea(this);
    promptScroll->setWidget(promptColumn);
    promptScroll->setWidgetResizable(true);
    promptScroll->setFrameShape(QFrame::NoFrame);
    promptScroll->setMinimumWidth(360);
    return promptScroll;
}

QWidget* MainWindow::createContent() {
    m_galleryModel = new GalleryModel(this);
    m_galleryWidget = new GalleryWidget(m_galleryModel, this);
    m_sideViewer = new ImageViewer(this);
    m_sideViewer->setObjectName(QStringLiteral("sideViewer"));
    m_sideViewer->setPlaceholderText(tr("Select an image"));
    m_sideInfo = new QLabel(this);
    m_sideInfo->setObjectName(QStringLiteral("sideInfo"));
    m_sideInfo->setWordWrap(true);
    m_sideInfo->setTextInteractionFlags(Qt::TextSelectableByMouse);
    auto* side = new QWidget(this);
    auto* sideLayout = new QVBoxLayout(side);
    sideLayout->setContentsMargins(0, 0, 0, 0);
    sideLayout->addWidget(m_sideViewer, 1);
    sideLayout->addWidget(m_sideInfo);
    auto* gallerySplit = new QSplitter(Qt::Horizontal, this);
    gallerySplit->addWidget(m_galleryWidget);
    gallerySplit->addWidget(side);
    gallerySplit->setStretchFactor(0, 3);
    gallerySplit->setStretchFactor(1, 2);
    // 3:2 from the start, not from the size hints: the side viewer would take most of a 1000 px window (ux-review 3).
    gallerySplit->setSizes({3000, 2000});

    m_largeViewer = new ImageViewer(this);
    m_largeViewer->setPlaceholderText(tr("Double-click an image in the gallery"));
    m_largeInfo = new QLabel(this);
    m_largeInfo->setWordWrap(true);
    m_largeInfo->setTextInteractionFlags(Qt::TextSelectableByMouse);
    auto* large = new QWidget(this);
    auto* largeLayout = new QVBoxLayout(large);
    largeLayout->addWidget(m_largeViewer, 1);
    largeLayout->addWidget(m_largeInfo);

    m_compareView = new CompareView(this);
    m_contentTabs = new QTabWidget(this);
    m_contentTabs->addTab(gallerySplit, tr("Gallery"));
    m_contentTabs->addTab(large, tr("Image"));
    m_contentTabs->addTab(m_compareView, tr("Compare"));

    // The model manager keeps its downloads' state beside the settings, as the queue does (issue 12).
    m_modelManager =
        new ModelManager(m_options.hfCache.isEmpty() ? ModelDiscovery::hfCacheDir() : m_options.hfCache,
                         QFileInfo(queueFilePath()).absolutePath() + QStringLiteral("/downloads.json"), this);
    connect(m_modelManager, &ModelManager::modelsChanged, this, &MainWindow::scanModels);
    m_noModelPanel = new NoModelPanel(m_modelManager, this);
    connect(m_noModelPanel->modelManagerPage(), &ModelManagerPage::errorOccurred, this, &MainWindow::showError);
    m_contentStack = new QStackedWidget(this);
    // In a scroll area: the manager's rows must not set the window's minimum width (ux-review 3, 1000×700).
    auto* noModelScroll = new QScrollArea(this);
    noModelScroll->setWidget(m_noModelPanel);
    noModelScroll->setWidgetResizable(true);
    noModelScroll->setFrameShape(QFrame::NoFrame);
    m_contentStack->insertWidget(NoModelPage, noModelScroll);
    m_contentStack->insertWidget(TabsPage, m_contentTabs);
    return m_contentStack;
}

QWidget* MainWindow::createSidePanels() {
    m_queueView = new QueueView(m_queue.get(), this);
    m_presetsPanel = new PresetsPanel(
        m_presets.get(), [this]() { return m_promptPanel->params(); },
        [this]() { return modelNameOf(m_promptPanel->models(), m_promptPanel->currentModelPath()); }, this);
    auto* rightTabs = new QTabWidget(this);
    rightTabs->addTab(m_queueView, tr("Queue"));
    rightTabs->addTab(m_presetsPanel, tr("Presets"));
    // ---- LoRA (issue 10): tags go into the prompt
    auto* loraPanel = new LoraPanel(this);
    loraPanel->setObjectName(QStringLiteral("loraPanel"));
    loraPanel->setFolders(m_settings->loraFolders());
    loraPanel->setPromptEditor(m_promptPanel->promptEditor());
    rightTabs->addTab(loraPanel, tr("LoRA"));
    rightTabs->setMinimumWidth(280);
    return rightTabs;
}

QWidget* MainWindow::createCentralWidget() {
    m_messageBar = new MessageBar(this);
    QWidget* promptArea = createPromptArea();
    QWidget* content = createContent();
    QWidget* rightTabs = createSidePanels();
    auto* mainSplit = new QSplitter(Qt::Horizontal, this);
    mainSplit->addWidget(promptArea);
    mainSplit->addWidget(content);
    mainSplit->addWidget(rightTabs);
    mainSplit->setStretchFactor(0, 0);
    mainSplit->setStretchFactor(1, 1);
    mainSplit->setStretchFactor(2, 0);
    // The side columns at their usual widths and the rest to the gallery (by size hints the side columns took most of
    // a 1000 px window, ux-review 3).
    mainSplit->setSizes({360, 820, 280});

    auto* central = new QWidget(this);
    auto* centralLayout = new QVBoxLayout(central);
    centralLayout->setContentsMargins(2, 2, 2, 2);
    centralLayout->addWidget(m_messageBar);
    centralLayout->addWidget(mainSplit, 1);
    return central;
}

void MainWindow::createStatusBar() {
    m_statusLabel = new QLabel(tr("Ready"), this);
    m_statusLabel->setObjectName(QStringLiteral("statusLabel"));
    m_statusProgress = new QProgressBar(this);
    m_statusProgress->setMaximumWidth(220);
    m_statusProgress->setRange(0, 100);
    m_statusProgress->setVisible(false);
    statusBar()->addWidget(m_statusLabel, 1);
    statusBar()->addPermanentWidget(m_statusProgress);
    m_computeLabel = new QLabel(this);
    m_computeLabel->setObjectName(QStringLiteral("computeLabel"));
    m_computeLabel->setText(ComputeSummary::statusLine(m_settings->loadOptions()));
    m_computeLabel->setToolTip(QString::fromStdString(koala::describeBuild()));
    statusBar()->addPermanentWidget(m_computeLabel);
}

void MainWindow::connectPromptPanel() {
    connect(m_promptPanel, &PromptPanel::generateRequested, this, &MainWindow::generate);
    connect(m_promptPanel, &PromptPanel::compareRequested, this, &MainWindow::compare);
    connect(m_promptPanel, &PromptPanel::cancelRequested, this, &MainWindow::cancel);
    connect(m_promptPanel, &PromptPanel::addModelFolderRequested, this, &MainWindow::addModelFolder);
    connect(m_noModelPanel, &NoModelPanel::addModelFolderRequested, this, &MainWindow::addModelFolder);
    connect(m_noModelPanel, &NoModelPanel::rescanRequested, this, &MainWindow::scanModels);
}

void MainWindow::connectGallery() {
    connect(m_galleryWidget, &GalleryWidget::currentItemChanged, this, &MainWindow::showItem);
    connect(m_galleryWidget, &GalleryWidget::openRequested, this, &MainWindow::openItem);
    connect(m_galleryWidget, &GalleryWidget::reuseParametersRequested, this, [this](const GalleryItem& item) {
        QString note;
        GenerationParams params = restoreInitImage(this, item.params, &note);
        params.count = m_promptPanel->params().count;
        m_promptPanel->setParams(params);
        showInfo(tr("Parameters of %1 loaded").arg(QFileInfo(item.path).fileName()));
        syncPromptSyntax(this);  // issue 10
        if (!note.isEmpty()) showError(note);
    });
    connect(m_galleryWidget, &GalleryWidget::reuseSeedRequested, this,
            [this](const GalleryItem& item) { m_promptPanel->setSeed(item.params.seed.value_or(0)); });
    connect(m_galleryWidget, &GalleryWidget::copySeedRequested, this, [this](const GalleryItem& item) {
        const QString seed = QString::number(item.params.seed.value_or(0));
        QGuiApplication::clipboard()->setText(seed);
        showInfo(tr("Seed %1 copied").arg(seed));
    });
    connect(m_galleryWidget, &GalleryWidget::openFolderRequested, this, [this](const GalleryItem& item) {
        if (!QDesktopServices::openUrl(QUrl::fromLocalFile(QFileInfo(item.path).absolutePath())))
            showError(tr("Could not open the folder %1").arg(QFileInfo(item.path).absolutePath()));
    });
    connect(m_galleryWidget, &GalleryWidget::deleteRequested, this, &MainWindow::deleteItem);
    connect(m_largeViewer, &ImageViewer::doubleClicked, this, [this]() { m_contentTabs->setCurrentIndex(GalleryTab); });

    connect(m_gallery.get(), &GalleryStore::itemRemoved, m_galleryModel, &GalleryModel::removeItem);
    connect(m_gallery.get(), &GalleryStore::itemRemoved, this, &MainWindow::onItemRemoved);
    connect(m_gallery.get(), &GalleryStore::reloaded, this, [this]() {
        m_galleryModel->setItems(m_gallery->items());
        for (const QString& error : m_gallery->loadErrors())
            m_messageBar->showMessage(error, MessageBar::Level::Warning);
    });
}

void MainWindow::connectQueue() {
    connect(m_queue.get(), &JobQueue::jobAdded, this, &MainWindow::onJobAdded);
    connect(m_queue.get(), &JobQueue::jobProgress, this, &MainWindow::onJobProgress);
    connect(m_queue.get(), &JobQueue::jobPreview, this, &MainWindow::onJobPreview);
    connect(m_queue.get(), &JobQueue::jobStateChanged, this, &MainWindow::updateBusy);
    connect(m_queue.get(), &JobQueue::modelLoading, this, [this](qint64, const QString& path) {
        m_statusLabel->setText(tr("Loading model %1…").arg(modelNameOf(m_promptPanel->models(), path)));
    });
    connect(m_queue.get(), &JobQueue::imageReady, this, [this](const qint64 jobId, const GalleryItem& item) {
        m_galleryModel->finishTile(jobId, item);
        // Nothing selected yet: show the newest image in the side view, which is what people look at next.
        if (!m_galleryWidget->currentIndex().isValid())
            m_galleryWidget->setCurrentIndex(m_galleryModel->index(m_galleryModel->rowOfItem(item.id)));
        if (item.compareSlot >= 0) {
            m_compareGroupShown = item.compareGroup;
            m_compareView->setSide(item.compareSlot, sideFor(item));
        }
    });
    connect(m_queue.get(), &JobQueue::compareReady, this,
            [this](const QString&, const GalleryItem& a, const GalleryItem& b) { showCompare(a, b); });
    connect(m_queue.get(), &JobQueue::saveFailed, this,
            [this](qint64, const QImage&, const GalleryItem&, const QString& message) {
                showError(tr("The image could not be saved: %1").arg(message));
            });
    connect(m_queue.get(), &JobQueue::jobFailed, this, [this](const qint64 id, const QString& message) {
        showError(message);
        onJobEnded(id);
    });
    connect(m_queue.get(), &JobQueue::jobCancelled, this, [this](const qint64 id) {
        showInfo(tr("Job %1 cancelled").arg(id));
        onJobEnded(id);
    });
    connect(m_queue.get(), &JobQueue::jobFinished, this, &MainWindow::onJobEnded);
    connect(m_queue.get(), &JobQueue::jobRemoved, this, &MainWindow::onJobEnded);
    connect(m_queue.get(), &JobQueue::idle, this, [this]() {
        m_statusProgress->setVisible(false);
        m_statusLabel->setText(tr("Ready"));
        updateBusy();
        if (m_closeWhenIdle)
            QMetaObject::invokeMethod(
                this, [this]() { close(); }, Qt::QueuedConnection);
    });
}

void MainWindow::connectPresets() {
    connect(m_presetsPanel, &PresetsPanel::presetApplied, this, &MainWindow::applyPreset);
    connect(m_presetsPanel, &PresetsPanel::errorOccurred, this, &MainWindow::showError);
    connect(m_presetsPanel, &PresetsPanel::infoMessage, this, &MainWindow::showInfo);
    m_presetsPanel->reportStoreErrors();
}

void MainWindow::restoreSession() {
    m_gallery->load();
    m_galleryModel->setItems(m_gallery->items());
    for (const QString& error : m_gallery->loadErrors()) m_messageBar->showMessage(error, MessageBar::Level::Warning);
    for (const QString& folder : m_options.modelFolders) {
        QString error;
        if (const auto entry = ModelDiscovery::inspect(folder, &error))
            m_sessionModels.append(*entry);
        else
            showError(tr("--model %1: %2").arg(folder, error));
    }
    scanModels();
    QString queueError;
    const int restored = m_queue->restoreJobs(queueFilePath(), &queueError);
    if (!queueError.isEmpty()) showError(queueError);
    if (restored > 0)
        m_messageBar->showMessage(restored == 1
                                      ? tr("1 job from the last session is back in the queue.")
                                      : tr("%1 jobs from the last session are back in the queue.").arg(restored),
                                  MessageBar::Level::Info);
    m_queue->setPersistPath(queueFilePath());
    m_promptPanel->setParams(restoreInitImage(this, m_settings->lastParams()));
    syncPromptSyntax(this);  // issue 10
    // An explicit --model wins over the model remembered from the last session.
    if (!m_sessionModels.isEmpty()) m_promptPanel->selectModel(m_sessionModels.first().path);
    if (m_sessionModels.size() > 1) m_promptPanel->selectModel(m_sessionModels[1].path, true);
    for (const QString& png : m_options.pngFiles) loadParametersFromPng(png);

    if (!restoreGeometry(m_settings->windowGeometry())) resize(1480, 900);
    restoreState(m_settings->windowState());
}

MainWindow::~MainWindow() {
    // Join the worker before the widgets its queued signals would reach are gone. What is left stays in the queue
    // file (closeWith decided whether there is anything).
    if (m_queue) m_queue->stop();
    m_queue.reset();
}

QString MainWindow::queueFilePath() const {
    const QString dir = m_options.settingsFile.isEmpty()
                            ? QStandardPaths::writableLocation(QStandardPaths::AppDataLocation)
                            : QFileInfo(m_options.settingsFile).absolutePath();
    return dir + QStringLiteral("/queue.json");
}

PromptPanel* MainWindow::promptPanel() const { return m_promptPanel; }
GalleryWidget* MainWindow::galleryWidget() const { return m_galleryWidget; }
GalleryModel* MainWindow::galleryModel() const { return m_galleryModel; }
CompareView* MainWindow::compareView() const { return m_compareView; }
QueueView* MainWindow::queueView() const { return m_queueView; }
PresetsPanel* MainWindow::presetsPanel() const { return m_presetsPanel; }
MessageBar* MainWindow::messageBar() const { return m_messageBar; }
JobQueue* MainWindow::jobQueue() const { return m_queue.get(); }
GalleryStore* MainWindow::galleryStore() const { return m_gallery.get(); }

QString MainWindow::statusText() const { return m_statusLabel->text(); }

void MainWindow::buildActions() {
    auto* fileMenu = menuBar()->addMenu(tr("&File"));
    fileMenu->addAction(Icons::get(QStringLiteral("folder-add"), QStyle::SP_DirOpenIcon), tr("Add &model folder…"),
                        this, &MainWindow::addModelFolder);
    fileMenu->addAction(tr("&Load parameters from PNG…"), this, [this]() {
        const QString path =
            QFileDialog::getOpenFileName(this, tr("Load parameters"), m_gallery->folder(), tr("PNG images (*.png)"));
        if (!path.isEmpty()) loadParametersFromPng(path);
    });
    fileMenu->addAction(Icons::get(QStringLiteral("settings"), QStyle::SP_FileDialogInfoView), tr("&Settings…"), this,
                        &MainWindow::showSettings);
    fileMenu->addSeparator();
    fileMenu->addAction(tr("&Quit"), QKeySequence::Quit, this, &QWidget::close);

    auto* runMenu = menuBar()->addMenu(tr("&Generate"));
    auto* generateAction = runMenu->addAction(Icons::get(QStringLiteral("generate"), QStyle::SP_MediaPlay),
                                              tr("&Generate"), this, &MainWindow::generate);
    // Ctrl+Return and Ctrl+Enter (keypad) both: people type the prompt and hit whichever is under their hand.
    generateAction->setShortcuts({QKeySequence(Qt::CTRL | Qt::Key_Return), QKeySequence(Qt::CTRL | Qt::Key_Enter)});
    generateAction->setShortcutContext(Qt::WindowShortcut);
    runMenu->addAction(Icons::get(QStringLiteral("compare"), QStyle::SP_FileDialogDetailedView), tr("&Compare models"),
                       this, &MainWindow::compare);
    auto* cancelAction = runMenu->addAction(Icons::get(QStringLiteral("cancel"), QStyle::SP_BrowserStop), tr("&Cancel"),
                                            this, &MainWindow::cancel);
    cancelAction->setShortcut(QKeySequence(Qt::Key_Escape));
    cancelAction->setShortcutContext(Qt::WindowShortcut);

    // img2img / inpainting on the image selected in the gallery (or any file, from the panel).
    InitImagePanel* initPanel = initPanelOf(this);
    const auto useAsInitImage = [this, initPanel](bool inpaint) {
        const std::optional<GalleryItem> item = m_galleryWidget->currentItem();
        if (!item) {
            showError(tr("Select an image in the gallery first"));
            return;
        }
        QString error;
        if (!initPanel->setInitImage(item->path, &error)) {
            showError(error);
            return;
        }
        // Inpainting makes width x height: the image's own size (multiples of 8) unless the user changes it.
        GenerationParams params = m_promptPanel->params();
        const int w = initPanel->initImage().width() / 8 * 8, h = initPanel->initImage().height() / 8 * 8;
        if (GenerationParams::sizeProblem(w, h).isEmpty() && (w != params.width || h != params.height)) {
            params.width = w;
            params.height = h;
            m_promptPanel->setParams(params);
        }
        if (inpaint) initPanel->editMask();
    };
    auto* imageMenu = menuBar()->addMenu(tr("&Image"));
    imageMenu->addAction(tr("Use as &init image"), this, [useAsInitImage]() { useAsInitImage(false); });
    imageMenu->addAction(tr("&Inpaint…"), this, [useAsInitImage]() { useAsInitImage(true); });
    imageMenu->addAction(tr("&Open init image…"), initPanel, &InitImagePanel::chooseFile);
    imageMenu->addAction(tr("&Clear init image"), initPanel, &InitImagePanel::clear);

    auto* modelsMenu = menuBar()->addMenu(tr("&Models"));  // issue 12
    modelsMenu->addAction(tr("Model &manager…"), this, &MainWindow::showModelManager);

    auto* helpMenu = menuBar()->addMenu(tr("&Help"));
    helpMenu->addAction(tr("&About KOALA Studio"), this, [this]() {
        QMessageBox::about(
            this, tr("About KOALA Studio"),
            tr("<b>KOALA Studio %1</b><p>Text-to-image with ETRI's KOALA models (SDXL with a distilled UNet), "
               "running locally on LibTorch.</p>")
                    .arg(QCoreApplication::applicationVersion()) +
                ComputeSummary::aboutHtml(m_settings->loadOptions()));
    });
}

void MainWindow::scanModels() {
    const ModelDiscovery::Result result =
        m_options.hfCache.isEmpty() ? ModelDiscovery::scan(m_settings->extraModelFolders())
                                    : ModelDiscovery::scan(m_settings->extraModelFolders(), m_options.hfCache);
    QList<ModelEntry> models = m_sessionModels;
    for (const ModelEntry& entry : result.models) {
        const bool known =
            std::any_of(models.cbegin(), models.cend(), [&entry](const ModelEntry& m) { return m.path == entry.path; });
        if (!known) models.append(entry);
    }
    m_tokenCounter->clear();  // tokenizer files may have changed on disk since the last scan
    m_promptPanel->setModels(models);
    m_noModelPanel->setScanErrors(result.errors);
    m_contentStack->setCurrentIndex(models.isEmpty() ? NoModelPage : TabsPage);
    for (const QString& error : result.errors) m_messageBar->showMessage(error, MessageBar::Level::Warning);
}

void MainWindow::bindTokenCounter(const QString& modelPath) {
    // Loading a tokenizer takes tens of milliseconds (no weights) and happens once per model.
    if (!modelPath.isEmpty() && m_tokenCounter->isAvailable(modelPath)) {
        // ---- prompt syntax (issue 10): chunks under a1111, the cut under plain
        std::shared_ptr<TokenCounter> counter = m_tokenCounter;
        const auto layout = [counter, modelPath](const QString& text, const QString& syntax) {
            const TokenCounter::Layout l = counter->layout(modelPath, text, syntax);
            PromptEditor::TokenLayout out;
            out.tokens = (l.tokens >= 0) ? l.tokens : TokenEstimate::count(text);
            out.chunks = l.chunks;
            out.chunkStarts = l.chunkStarts;
            out.cut = l.cut;
            return out;
        };
        m_promptPanel->promptEditor()->setLayoutCounter(layout);
        m_promptPanel->negativeEditor()->setLayoutCounter(layout);
        return;
    }
    m_promptPanel->setTokenCounter(&TokenEstimate::count, false);
}

void MainWindow::showModelManager() {
    // With no model the page is already in the window; otherwise one dialog, kept while the window lives.
    if (m_contentStack->currentIndex() == NoModelPage) return;
    auto* dialog = findChild<QDialog*>(QStringLiteral("modelManagerDialog"));
    if (!dialog) {
        dialog = new QDialog(this);
        dialog->setObjectName(QStringLiteral("modelManagerDialog"));
        dialog->setWindowTitle(tr("Model manager"));
        auto* page = new ModelManagerPage(m_modelManager, dialog);
        connect(page, &ModelManagerPage::errorOccurred, this, &MainWindow::showError);
        auto* layout = new QVBoxLayout(dialog);
        layout->addWidget(page);
        dialog->resize(900, 520);
    }
    m_modelManager->refresh();
    dialog->show();
    dialog->raise();
    dialog->activateWindow();
}

void MainWindow::addModelFolder() {
    const QString folder = QFileDialog::getExistingDirectory(this, tr("Add model folder"), QDir::homePath());
    if (folder.isEmpty()) return;
    QString error;
    const auto entry = ModelDiscovery::inspect(folder, &error);
    const ModelDiscovery::Result nested = entry ? ModelDiscovery::Result{} : ModelDiscovery::scan({folder}, QString());
    if (!entry && nested.models.isEmpty()) {
        showError(tr("No model in %1: %2").arg(folder, error));
        return;
    }
    QStringList folders = m_settings->extraModelFolders();
    if (!folders.contains(folder)) folders << folder;
    m_settings->setExtraModelFolders(folders);
    scanModels();
    if (entry)
        m_promptPanel->selectModel(entry->path);
    else
        m_promptPanel->selectModel(nested.models.first().path);
}

void MainWindow::showSettings() {
    const EngineLoadSettings before = loadSettingsFrom(*m_settings);
    const QString folderBefore = m_settings->outputFolder();
    SettingsDialog dialog(m_settings.get(), this);
    if (dialog.exec() != QDialog::Accepted) return;
    const EngineLoadSettings after = loadSettingsFrom(*m_settings);
    m_queue->setLoadSettings(after);
    m_computeLabel->setText(ComputeSummary::statusLine(m_settings->loadOptions()));
    if ((before.device != after.device) || (before.precision != after.precision) ||
        (before.memoryMode != after.memoryMode))
        m_queue->releaseModels();  // cached models were loaded with the old device/dtype
    if (m_settings->outputFolder() != folderBefore) m_gallery->setFolder(m_settings->outputFolder());
    // ---- prompt syntax and LoRA (issue 10)
    if (LoraPanel* lora = loraPanelOf(this); lora && lora->folders() != m_settings->loraFolders())
        lora->setFolders(m_settings->loraFolders());
    if (m_promptPanel->params().promptSyntax != m_settings->promptSyntax()) {
        GenerationParams params = m_promptPanel->params();
        params.promptSyntax = m_settings->promptSyntax();
        m_promptPanel->setParams(params);
        syncPromptSyntax(this);
    }
}

void MainWindow::applyPreset(const Preset& preset) {
    m_promptPanel->setParams(preset.applyTo(m_promptPanel->params()));
    syncPromptSyntax(this);  // issue 10: a preset may set prompt_syntax
    if (!preset.modelHint.isEmpty() && !m_promptPanel->selectModelByHint(preset.modelHint))
        showInfo(tr("Preset \"%1\" suggests the model %2, which is not installed").arg(preset.name, preset.modelHint));
}

void MainWindow::showItem(const GalleryItem& item) {
    m_sideItemId = item.id;
    m_sideViewer->setImage(QImage(item.path));
    m_sideInfo->setText(describeItem(item));
    if (LoraPanel* lora = loraPanelOf(this)) lora->setReport(item.params.loraReportLines());  // issue 10
}

void MainWindow::openItem(const GalleryItem& item) {
    if (!item.compareGroup.isEmpty()) {
        const QList<GalleryItem> pair = m_gallery->compareGroup(item.compareGroup);
        if (pair.size() == 2) {
            showCompare(pair[0], pair[1]);
            return;
        }
    }
    m_largeItemId = item.id;
    m_largeViewer->setImage(QImage(item.path));
    m_largeInfo->setText(describeItem(item));
    m_contentTabs->setCurrentIndex(ImageTab);
}

void MainWindow::showCompare(const GalleryItem& a, const GalleryItem& b) {
    m_compareGroupShown = a.compareGroup;
    m_compareView->setSides(sideFor(a), sideFor(b));
    m_contentTabs->setCurrentIndex(CompareTab);
}

void MainWindow::deleteItem(const GalleryItem& item) {
    if (QMessageBox::question(this, tr("Delete image"),
                              tr("Move %1 to the trash?\n(Where there is no trash, it is deleted for good.)")
                                  .arg(QDir::toNativeSeparators(item.path))) != QMessageBox::Yes)
        return;
    deleteImage(item.id);
}

bool MainWindow::deleteImage(const QString& itemId) {
    QString error;
    if (m_gallery->remove(itemId, &error)) return true;
    showError(error.isEmpty() ? tr("Could not delete %1").arg(itemId) : error);
    return false;
}

// Whatever showed the removed image shows nothing now (not a picture whose file is gone, nor its path).
void MainWindow::onItemRemoved(const QString& id) {
    if (id == m_sideItemId) {
        m_sideItemId.clear();
        m_sideViewer->setImage({});
        m_sideInfo->clear();
    }
    if (id == m_largeItemId) {
        m_largeItemId.clear();
        m_largeViewer->setImage({});
        m_largeInfo->clear();
    }
}

void MainWindow::showError(const QString& message) {
    // The banner only: the status bar is for progress, and an old error there outlived its cause.
    m_messageBar->showMessage(message, MessageBar::Level::Error);
}

void MainWindow::showInfo(const QString& message) { statusBar()->showMessage(message, 5000); }

// Shows why the controls cannot run, or remembers their parameters as the last used ones.
bool MainWindow::acceptParams(const GenerationParams& params) {
    const QString error = m_promptPanel->inputProblem();
    if (!error.isEmpty()) {
        showError(error);
        return false;
    }
    m_settings->setLastParams(params);
    return true;
}

qint64 MainWindow::generate() {
    GenerationParams params = m_promptPanel->params();
    initPanelOf(this)->applyTo(params);
    if (const QString problem = params.validate(); params.hasInitImage() && !problem.isEmpty()) {
        showError(problem);
        return 0;
    }
    if (params.modelPath.isEmpty()) {
        showError(tr("No model selected: add a model folder first"));
        return 0;
    }
    if (!acceptParams(params)) return 0;
    const qint64 id = m_queue->enqueue(params);
    m_contentTabs->setCurrentIndex(GalleryTab);
    return id;
}

qint64 MainWindow::compare() {
    GenerationParams params = m_promptPanel->params();
    initPanelOf(this)->applyTo(params);
    if (params.modelPath.isEmpty() || params.modelPath2.isEmpty() || (params.modelPath == params.modelPath2)) {
        showError(tr("Compare needs two different models: choose the second one in \"Compare with\""));
        return 0;
    }
    if (!acceptParams(params)) return 0;
    const qint64 id = m_queue->enqueueCompare(params);
    CompareSide a;
    a.modelName = modelNameOf(m_promptPanel->models(), params.modelPath);
    CompareSide b;
    b.modelName = modelNameOf(m_promptPanel->models(), params.modelPath2);
    m_compareView->setSides(a, b);
    m_contentTabs->setCurrentIndex(CompareTab);
    return id;
}

void MainWindow::cancel() {
    if (m_queue->isBusy()) {
        m_queue->cancelCurrent();
        m_statusLabel->setText(tr("Cancelling…"));
    }
}

bool MainWindow::loadParametersFromPng(const QString& path) {
    const PngMetadata::ReadResult result = PngMetadata::read(path);
    if (!result.error.isEmpty()) {
        showError(result.error);
        return false;
    }
    if (result.source == PngMetadata::Source::ComfyUI) {
        showError(tr("%1 is %2").arg(QFileInfo(path).fileName(), result.note));
        return false;
    }
    if (result.source == PngMetadata::Source::None) {
        showError(tr("%1 has no generation parameters%2")
                      .arg(QFileInfo(path).fileName(),
                           result.note.isEmpty() ? QString() : QStringLiteral(" (") + result.note + QLatin1Char(')')));
        return false;
    }
    QString note;
    GenerationParams params = restoreInitImage(this, result.item.params, &note);
    if (params.modelName.isEmpty()) params.modelName = result.item.modelName;
    m_promptPanel->setParams(params);
    if (!note.isEmpty()) showError(note);
    syncPromptSyntax(this);  // issue 10
    showInfo(tr("Parameters loaded from %1 (%2)")
                 .arg(QFileInfo(path).fileName(),
                      result.source == PngMetadata::Source::Koala ? tr("KOALA Studio") : tr("AUTOMATIC1111 format")));
    return true;
}

void MainWindow::saveSession() {
    m_settings->setWindowGeometry(saveGeometry());
    m_settings->setWindowState(saveState());
    m_settings->setLastParams(m_promptPanel->params());
    m_settings->sync();
}

MainWindow::CloseChoice MainWindow::askCloseChoice() {
    QMessageBox box(QMessageBox::Question, tr("Images are still being made"),
                    tr("Jobs not finished: %1.").arg(m_queue->unfinishedJobs().size()), QMessageBox::NoButton, this);
    box.setInformativeText(tr("Kept jobs start again, with the same seeds, when KOALA Studio next starts."));
    QPushButton* finish = box.addButton(tr("&Finish first, then close"), QMessageBox::AcceptRole);
    QPushButton* keep = box.addButton(tr("&Keep for next time"), QMessageBox::AcceptRole);
    QPushButton* discard = box.addButton(tr("&Discard"), QMessageBox::DestructiveRole);
    box.addButton(QMessageBox::Cancel);
    box.setDefaultButton(keep);
    box.exec();
    if (box.clickedButton() == finish) return CloseChoice::FinishFirst;
    if (box.clickedButton() == keep) return CloseChoice::KeepForNextTime;
    if (box.clickedButton() == discard) return CloseChoice::Discard;
    return CloseChoice::StayOpen;
}

bool MainWindow::closeWith(const CloseChoice choice) {
    switch (choice) {
    case CloseChoice::StayOpen: return false;
    case CloseChoice::FinishFirst:
        m_closeWhenIdle = true;
        m_statusLabel->setText(tr("KOALA Studio closes when the queue is done…"));
        return false;
    case CloseChoice::KeepForNextTime:
        // Stops the worker at the next step; the persist file then holds exactly the work not done.
        m_queue->stop();
        return true;
    case CloseChoice::Discard:
        m_queue->setPersistPath({});
        m_queue->cancelAll();
        m_queue->stop();
        QFile::remove(queueFilePath());
        return true;
    }
    return false;
}

void MainWindow::closeEvent(QCloseEvent* event) {
    saveSession();
    const bool unfinished = !m_queue->unfinishedJobs().isEmpty();
    if (unfinished && !m_closeWhenIdle && !closeWith(askCloseChoice())) {
        event->ignore();
        return;
    }
    if (unfinished && m_closeWhenIdle) {
        event->ignore();  // a second close while waiting: keep waiting (the queue view shows what is left)
        return;
    }
    event->accept();
}

void MainWindow::dragEnterEvent(QDragEnterEvent* event) {
    const QMimeData* mime = event->mimeData();
    if (mime->hasUrls()) {
        for (const QUrl& url : mime->urls()) {
            if (url.isLocalFile() && url.toLocalFile().endsWith(QStringLiteral(".png"), Qt::CaseInsensitive)) {
                event->acceptProposedAction();
                return;
            }
        }
    }
}

void MainWindow::dropEvent(QDropEvent* event) {
    for (const QUrl& url : event->mimeData()->urls()) {
        if (url.isLocalFile() && url.toLocalFile().endsWith(QStringLiteral(".png"), Qt::CaseInsensitive)) {
            loadParametersFromPng(url.toLocalFile());
            event->acceptProposedAction();
            return;
        }
    }
}

void MainWindow::onJobAdded(const qint64 id) {
    const auto job = m_queue->job(id);
    if (job) m_galleryModel->addPendingTiles(id, job->seeds, job->kind == Job::Kind::Compare);
    updateBusy();
}

void MainWindow::onJobProgress(const qint64 id, const int step, const int total, const double itPerSec,
                               const double secondsLeft) {
    const auto job = m_queue->job(id);
    QString text = tr("Step %1/%2").arg(step).arg(total);
    if (job && (job->imagesTotal > 1))
        text = tr("Image %1/%2 · ").arg(job->imagesDone + 1).arg(job->imagesTotal) + text;
    text += tr(" · %1 it/s · %2 s left").arg(itPerSec, 0, 'f', 2).arg(secondsLeft, 0, 'f', 0);
    m_statusLabel->setText(text);
    m_statusProgress->setVisible(true);
    m_statusProgress->setValue(job ? int(job->progress * 100.0 + 0.5) : ((total > 0) ? (100 * step / total) : 0));
}

void MainWindow::onJobPreview(const qint64 id, const int imageIndex, const QImage& image) {
    m_galleryModel->setPreview(id, imageIndex, image);
    const auto job = m_queue->job(id);
    if (job && (job->kind == Job::Kind::Compare)) m_compareView->setPreview(imageIndex % 2, image);
}

void MainWindow::onJobEnded(const qint64 id) {
    m_galleryModel->dropPendingTiles(id);
    updateBusy();
}

void MainWindow::updateBusy() { m_promptPanel->setBusy(m_queue->isBusy()); }
