#include "mainwindow.h"

#include <algorithm>

#include <QAction>
#include <QApplication>
#include <QClipboard>
#include <QCloseEvent>
#include <QComboBox>
#include <QDesktopServices>
#include <QDialog>
#include <QDir>
#include <QFile>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QImageReader>
#include <QKeySequence>
#include <QLabel>
#include <QLineEdit>
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
#include <QToolButton>
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
    // Only what the image records: a PNG from another tool (or an older one) lacks the UNet shape or the device.
    QStringList details;
    if (!item.unetShape.isEmpty()) details << item.unetShape;
    const QString where = QStringList{item.device, item.computeDType}.join(QLatin1Char(' ')).trimmed();
    if (!where.isEmpty()) details << where;
    QString model =
        MainWindow::tr("Model: %1").arg(item.modelName.isEmpty() ? MainWindow::tr("unknown") : item.modelName);
    if (!details.isEmpty()) model += QStringLiteral(" (%1)").arg(details.join(QStringLiteral(", ")));
    if (!item.schedulerUsed.isEmpty())
        model += MainWindow::tr(" · scheduler %1").arg(GenerationParams::schedulerDisplayName(item.schedulerUsed));
    lines << model;
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
    side.scheduler = item.schedulerUsed;  // issue 11: a KOALA / SD 2 pair runs each model's own scheduler
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
    m_trashModel = new GalleryModel(this);
    m_trashWidget = new GalleryWidget(m_trashModel, this, GalleryWidget::Mode::Trash);
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
    // The trash: its grid, a line saying what it is, and "Empty trash".
    auto* trashPage = new QWidget(this);
    auto* trashLayout = new QVBoxLayout(trashPage);
    trashLayout->setContentsMargins(0, 0, 0, 0);
    auto* trashHint =
        new QLabel(tr("Deleted images stay here until the trash is emptied. Right-click to restore."), trashPage);
    trashHint->setWordWrap(true);
    auto* emptyTrash = new QPushButton(tr("&Empty trash…"), trashPage);
    emptyTrash->setObjectName(QStringLiteral("emptyTrashButton"));
    connect(emptyTrash, &QPushButton::clicked, this, [this]() {
        if (m_gallery->trashItems().isEmpty()) return;
        if (QMessageBox::question(this, tr("Empty trash"),
                                  tr("Delete the %n image(s) in the trash for good?", nullptr,
                                     int(m_gallery->trashItems().size()))) != QMessageBox::Yes)
            return;
        QString error;
        if (!m_gallery->emptyTrash(&error)) showError(error);
    });
    trashLayout->addWidget(trashHint);
    trashLayout->addWidget(m_trashWidget, 1);
    trashLayout->addWidget(emptyTrash, 0, Qt::AlignRight);
    m_galleryStack = new QStackedWidget(this);
    m_galleryStack->addWidget(m_galleryWidget);
    m_galleryStack->addWidget(trashPage);

    auto* gallerySplit = new QSplitter(Qt::Horizontal, this);
    gallerySplit->addWidget(m_galleryStack);
    gallerySplit->addWidget(side);
    gallerySplit->setStretchFactor(0, 3);
    gallerySplit->setStretchFactor(1, 2);
    // 3:2 from the start, not from the size hints: the side viewer would take most of a 1000 px window (ux-review 3).
    gallerySplit->setSizes({3000, 2000});

    // Search, sort, favourites and the trash, above the grid and the side viewer; narrow enough for 1000 px.
    m_searchEdit = new QLineEdit(this);
    m_searchEdit->setObjectName(QStringLiteral("gallerySearch"));
    m_searchEdit->setPlaceholderText(tr("Search prompts"));
    m_searchEdit->setClearButtonEnabled(true);
    m_searchEdit->setMinimumWidth(48);
    m_sortCombo = new QComboBox(this);
    m_sortCombo->setObjectName(QStringLiteral("gallerySort"));
    m_sortCombo->addItem(tr("Newest first"), int(GalleryWidget::Sort::Newest));
    m_sortCombo->addItem(tr("Oldest first"), int(GalleryWidget::Sort::Oldest));
    m_sortCombo->addItem(tr("Prompt A–Z"), int(GalleryWidget::Sort::Prompt));
    m_sortCombo->addItem(tr("Model"), int(GalleryWidget::Sort::Model));
    m_sortCombo->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
    m_sortCombo->setMinimumContentsLength(5);
    m_sortCombo->setToolTip(tr("Order of the gallery"));
    m_favouritesOnlyButton = new QToolButton(this);
    m_favouritesOnlyButton->setObjectName(QStringLiteral("favouritesOnlyButton"));
    m_favouritesOnlyButton->setText(tr("\u2605 only"));
    m_favouritesOnlyButton->setCheckable(true);
    m_favouritesOnlyButton->setToolTip(tr("Show favourites only"));
    m_favouriteButton = new QToolButton(this);
    m_favouriteButton->setObjectName(QStringLiteral("favouriteButton"));
    m_favouriteButton->setText(QStringLiteral("\u2606"));
    m_favouriteButton->setCheckable(true);
    m_favouriteButton->setEnabled(false);
    m_favouriteButton->setToolTip(tr("Favourite: star the selected image (S in the gallery)"));
    auto* starKey = new QShortcut(QKeySequence(Qt::Key_S), m_galleryWidget);
    starKey->setContext(Qt::WidgetShortcut);
    connect(starKey, &QShortcut::activated, this, [this]() {
        if (const auto item = m_galleryWidget->currentItem()) toggleFavourite(item->id);
    });
    m_trashButton = new QToolButton(this);
    m_trashButton->setObjectName(QStringLiteral("trashButton"));
    m_trashButton->setText(tr("Trash"));
    m_trashButton->setCheckable(true);
    m_trashButton->setToolTip(tr("Show the deleted images, to restore them or empty the trash"));
    auto* galleryTools = new QHBoxLayout;
    galleryTools->setContentsMargins(0, 0, 0, 0);
    galleryTools->addWidget(m_searchEdit, 1);
    galleryTools->addWidget(m_sortCombo);
    galleryTools->addWidget(m_favouritesOnlyButton);
    galleryTools->addWidget(m_favouriteButton);
    galleryTools->addWidget(m_trashButton);
    auto* galleryPage = new QWidget(this);
    auto* galleryPageLayout = new QVBoxLayout(galleryPage);
    galleryPageLayout->setContentsMargins(0, 0, 0, 0);
    galleryPageLayout->addLayout(galleryTools);
    galleryPageLayout->addWidget(gallerySplit, 1);

    m_largeViewer = new ImageViewer(this);
    m_largeViewer->setObjectName(QStringLiteral("largeViewer"));
    m_largeViewer->setPlaceholderText(tr("Select an image in the gallery; the image being made shows here"));
    m_largeViewer->setToolTip(tr("Wheel: zoom · drag: pan · F: fit · 1: 100 % · +/-: zoom · double-click: gallery"));
    m_sideViewer->setToolTip(m_largeViewer->toolTip());
    m_largeInfo = new QLabel(this);
    m_largeInfo->setWordWrap(true);
    m_largeInfo->setTextInteractionFlags(Qt::TextSelectableByMouse);
    auto* large = new QWidget(this);
    auto* largeLayout = new QVBoxLayout(large);
    largeLayout->addWidget(m_largeViewer, 1);
    largeLayout->addWidget(m_largeInfo);

    m_compareView = new CompareView(this);
    m_contentTabs = new QTabWidget(this);
    m_contentTabs->addTab(galleryPage, tr("Gallery"));
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
    connect(m_galleryWidget, &GalleryWidget::currentItemChanged, this, &MainWindow::updateFavouriteButton);
    connect(m_galleryWidget, &GalleryWidget::itemChosen, this, &MainWindow::onItemChosen);
    connect(m_trashWidget, &GalleryWidget::currentItemChanged, this, &MainWindow::showItem);
    // Looking at a deleted image during a run is looking elsewhere on purpose too.
    connect(m_trashWidget, &GalleryWidget::itemChosen, this, [this]() { m_followNewest = false; });
    connect(m_galleryWidget, &GalleryWidget::favouriteToggleRequested, this,
            [this](const GalleryItem& item) { toggleFavourite(item.id); });
    connect(m_galleryWidget, &GalleryWidget::useAsInitImageRequested, this,
            [this](const GalleryItem& item) { useAsInitImage(item, false); });
    connect(m_galleryWidget, &GalleryWidget::inpaintRequested, this,
            [this](const GalleryItem& item) { useAsInitImage(item, true); });
    connect(m_trashWidget, &GalleryWidget::restoreRequested, this,
            [this](const GalleryItem& item) { restoreFromTrash(item.id); });
    connect(m_trashWidget, &GalleryWidget::openRequested, this,
            [this](const GalleryItem& item) { restoreFromTrash(item.id); });
    connect(m_trashWidget, &GalleryWidget::deleteForGoodRequested, this, [this](const GalleryItem& item) {
        if (QMessageBox::question(
                this, tr("Delete for good"),
                tr("Delete %1 for good? It cannot be restored.").arg(QDir::toNativeSeparators(item.path))) !=
            QMessageBox::Yes)
            return;
        QString error;
        if (!m_gallery->deleteForGood(item.id, &error)) showError(error);
    });
    connect(m_searchEdit, &QLineEdit::textChanged, m_galleryWidget, &GalleryWidget::setSearchText);
    connect(m_sortCombo, &QComboBox::currentIndexChanged, this,
            [this]() { m_galleryWidget->setSort(GalleryWidget::Sort(m_sortCombo->currentData().toInt())); });
    connect(m_favouritesOnlyButton, &QToolButton::toggled, m_galleryWidget, &GalleryWidget::setFavouritesOnly);
    connect(m_favouriteButton, &QToolButton::clicked, this, [this]() {
        if (const auto item = m_galleryWidget->currentItem()) toggleFavourite(item->id);
        updateFavouriteButton();
    });
    connect(m_trashButton, &QToolButton::toggled, this, &MainWindow::showTrash);
    connect(m_sideViewer, &ImageViewer::badgeClicked, this, &MainWindow::showNewest);
    connect(m_largeViewer, &ImageViewer::badgeClicked, this, &MainWindow::showNewest);
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
    connect(m_gallery.get(), &GalleryStore::itemRestored, m_galleryModel, &GalleryModel::insertItem);
    connect(m_gallery.get(), &GalleryStore::favouriteChanged, m_galleryModel, &GalleryModel::setFavourite);
    connect(m_gallery.get(), &GalleryStore::favouriteChanged, this, &MainWindow::updateFavouriteButton);
    connect(m_gallery.get(), &GalleryStore::trashChanged, this, &MainWindow::refreshTrash);
    connect(m_gallery.get(), &GalleryStore::reloaded, this, [this]() {
        m_galleryModel->setItems(m_gallery->items());
        m_galleryModel->setFavourites(m_gallery->favourites());
        refreshTrash();
        for (const QString& error : m_gallery->loadErrors())
            m_messageBar->showMessage(error, MessageBar::Level::Warning);
    });
    // Issue 14 item 3: a damaged gallery index was recovered; say how.
    connect(m_gallery.get(), &GalleryStore::indexRecovered, this,
            [this](const QString& message) { m_messageBar->showMessage(message, MessageBar::Level::Warning); });
}

void MainWindow::connectQueue() {
    connect(m_queue.get(), &JobQueue::jobAdded, this, &MainWindow::onJobAdded);
    connect(m_queue.get(), &JobQueue::jobProgress, this, &MainWindow::onJobProgress);
    connect(m_queue.get(), &JobQueue::jobPreview, this, &MainWindow::onJobPreview);
    connect(m_queue.get(), &JobQueue::jobStateChanged, this, &MainWindow::updateBusy);
    connect(m_queue.get(), &JobQueue::modelLoading, this, [this](qint64, const QString& path) {
        m_statusLabel->setText(tr("Loading model %1…").arg(modelNameOf(m_promptPanel->models(), path)));
    });
    connect(m_queue.get(), &JobQueue::imageReady, this, &MainWindow::onImageReady);
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
    m_gallery->load();  // the gallery, its favourites and trash, through the reloaded signal
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
    // Issue 14 item 3: a damaged settings file was set aside and a backup (or the defaults) restored; say which.
    if (!m_settings->recoveryMessage().isEmpty())
        m_messageBar->showMessage(m_settings->recoveryMessage(), MessageBar::Level::Warning);
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
    const auto useSelected = [this](bool inpaint) {
        const std::optional<GalleryItem> item = m_galleryWidget->currentItem();
        if (!item) {
            showError(tr("Select an image in the gallery first"));
            return;
        }
        useAsInitImage(*item, inpaint);
    };
    auto* imageMenu = menuBar()->addMenu(tr("&Image"));
    imageMenu->addAction(tr("Use as &init image"), this, [useSelected]() { useSelected(false); });
    imageMenu->addAction(tr("&Inpaint…"), this, [useSelected]() { useSelected(true); });
    imageMenu->addAction(tr("&Open init image…"), initPanel, &InitImagePanel::chooseFile);
    imageMenu->addAction(tr("&Clear init image"), initPanel, &InitImagePanel::clear);
    imageMenu->addSeparator();
    // The viewer in front (the Image tab's, else the side one).
    const auto viewer = [this]() { return m_contentTabs->currentIndex() == ImageTab ? m_largeViewer : m_sideViewer; };
    auto* fitAction = imageMenu->addAction(tr("Zoom to &fit"), this, [viewer]() { viewer()->fitToWindow(); });
    fitAction->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_0));
    auto* actualAction = imageMenu->addAction(tr("&Actual size (100 %)"), this, [viewer]() { viewer()->actualSize(); });
    actualAction->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_1));
    auto* zoomInAction = imageMenu->addAction(tr("Zoom &in"), this, [viewer]() { viewer()->zoomIn(); });
    zoomInAction->setShortcut(QKeySequence::ZoomIn);
    auto* zoomOutAction = imageMenu->addAction(tr("Zoom &out"), this, [viewer]() { viewer()->zoomOut(); });
    zoomOutAction->setShortcut(QKeySequence::ZoomOut);
    imageMenu->addSeparator();
    auto* newestAction = imageMenu->addAction(tr("Show the &newest image"), this, &MainWindow::showNewest);
    newestAction->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_End));

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

// The selection drives the side viewer and the Image tab alike.
void MainWindow::showItem(const GalleryItem& item) {
    const QImage image(item.path);
    const QString info = describeItem(item);
    m_sideItemId = item.id;
    m_sideViewer->setImage(image);
    m_sideInfo->setText(info);
    m_largeItemId = item.id;
    m_largeViewer->setImage(image);
    m_largeInfo->setText(info);
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
    if (item.id != m_largeItemId) showItem(item);
    m_contentTabs->setCurrentIndex(ImageTab);
}

void MainWindow::showCompare(const GalleryItem& a, const GalleryItem& b) {
    m_compareGroupShown = a.compareGroup;
    m_compareView->setSides(sideFor(a), sideFor(b));
    m_contentTabs->setCurrentIndex(CompareTab);
}

void MainWindow::deleteItem(const GalleryItem& item) {
    if (QMessageBox::question(this, tr("Delete image"),
                              tr("Move %1 to the trash?\n(It can be restored from the gallery's trash until the "
                                 "trash is emptied.)")
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
    if (id == m_newestItemId) m_newestItemId.clear();
}

void MainWindow::clearViewers() {
    onItemRemoved(m_sideItemId);
    onItemRemoved(m_largeItemId);
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
    if (m_trashButton->isChecked()) m_trashButton->setChecked(false);
    // A new run: what it makes comes into view (issue 13 item 2).
    m_followNewest = true;
    setBadges({});
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
    m_followNewest = true;
    setBadges({});
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

namespace {
bool isImageFile(const QString& path) {
    static const QStringList suffixes{QStringLiteral("png"), QStringLiteral("jpg"), QStringLiteral("jpeg"),
                                      QStringLiteral("webp"), QStringLiteral("bmp")};
    return suffixes.contains(QFileInfo(path).suffix().toLower());
}
}  // namespace

void MainWindow::dragEnterEvent(QDragEnterEvent* event) {
    const QMimeData* mime = event->mimeData();
    if (mime->hasUrls()) {
        for (const QUrl& url : mime->urls()) {
            if (url.isLocalFile() && isImageFile(url.toLocalFile())) {
                event->acceptProposedAction();
                return;
            }
        }
    }
}

// A PNG with generation parameters loads them (as before); any other image, or any image dropped with Shift held,
// becomes the init image.
void MainWindow::dropEvent(QDropEvent* event) {
    for (const QUrl& url : event->mimeData()->urls()) {
        if (url.isLocalFile() && isImageFile(url.toLocalFile())) {
            openDroppedFile(url.toLocalFile(), event->modifiers() & Qt::ShiftModifier);
            event->acceptProposedAction();
            return;
        }
    }
}

bool MainWindow::openDroppedFile(const QString& path, const bool asInitImage) {
    if (!asInitImage && path.endsWith(QStringLiteral(".png"), Qt::CaseInsensitive)) {
        const PngMetadata::ReadResult read = PngMetadata::read(path);
        if (read.error.isEmpty() &&
            ((read.source == PngMetadata::Source::Koala) || (read.source == PngMetadata::Source::A1111)))
            return loadParametersFromPng(path);
    }
    QString error;
    if (!initPanelOf(this)->setInitImage(path, &error)) {
        showError(error.isEmpty() ? tr("%1 is not an image that can be read").arg(QFileInfo(path).fileName()) : error);
        return false;
    }
    showInfo(tr("%1 is the init image").arg(QFileInfo(path).fileName()));
    return true;
}

bool MainWindow::useAsInitImage(const GalleryItem& item, const bool inpaint) {
    InitImagePanel* initPanel = initPanelOf(this);
    QString error;
    if (!initPanel->setInitImage(item.path, &error)) {
        showError(error);
        return false;
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
    return true;
}

bool MainWindow::toggleFavourite(const QString& itemId) {
    QString error;
    if (!m_gallery->setFavourite(itemId, !m_gallery->isFavourite(itemId), &error)) {
        showError(error);
        return false;
    }
    return true;
}

bool MainWindow::restoreFromTrash(const QString& trashId) {
    QString error;
    const std::optional<GalleryItem> item = m_gallery->restore(trashId, &error);
    if (!item) {
        showError(error);
        return false;
    }
    // The viewers showed the trashed copy: they show the image in its place now.
    if ((m_sideItemId == trashId) || (m_largeItemId == trashId)) showItem(*item);
    showInfo(tr("%1 is back in the gallery").arg(item->id));
    return true;
}

void MainWindow::showTrash(const bool show) {
    if (m_trashButton->isChecked() != show) m_trashButton->setChecked(show);  // comes back here once
    m_galleryStack->setCurrentIndex(show ? 1 : 0);
    m_searchEdit->setEnabled(!show);
    m_sortCombo->setEnabled(!show);
    m_favouritesOnlyButton->setEnabled(!show);
    if (show) {
        m_favouriteButton->setEnabled(false);
    } else if (const auto item = m_galleryWidget->currentItem()) {
        showItem(*item);
        updateFavouriteButton();
    } else {
        clearViewers();
        updateFavouriteButton();
    }
}

void MainWindow::refreshTrash() {
    QList<GalleryItem> items = m_gallery->trashItems();
    std::reverse(items.begin(), items.end());  // setItems takes oldest first and shows newest first
    m_trashModel->setItems(items);
    m_trashButton->setText(items.isEmpty() ? tr("Trash") : tr("Trash (%1)").arg(items.size()));
    // A viewer still showing a trashed image that was restored or deleted for good shows nothing now.
    for (const QString& id : {m_sideItemId, m_largeItemId}) {
        if (!id.isEmpty() && !m_gallery->item(id) && (m_trashModel->rowOfItem(id) < 0)) onItemRemoved(id);
    }
}

void MainWindow::updateFavouriteButton() {
    const auto item = m_galleryWidget->currentItem();
    const bool favourite = item && m_gallery->isFavourite(item->id);
    m_favouriteButton->setEnabled(item.has_value() && !m_trashButton->isChecked());
    m_favouriteButton->setChecked(favourite);
    m_favouriteButton->setText(favourite ? QStringLiteral("\u2605") : QStringLiteral("\u2606"));
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

// Each step's preview goes to the gallery tile and, unless the user is looking at another image on purpose, to the
// viewers, where the picture forms at full size (issue 13 item 2).
void MainWindow::onJobPreview(const qint64 id, const int imageIndex, const QImage& image) {
    m_galleryModel->setPreview(id, imageIndex, image);
    const auto job = m_queue->job(id);
    if (job && (job->kind == Job::Kind::Compare)) m_compareView->setPreview(imageIndex % 2, image);
    const bool newTile = (id != m_previewJob) || (imageIndex != m_previewIndex);
    m_previewJob = id;
    m_previewIndex = imageIndex;
    m_lastPreview = image;
    if (!m_followNewest) {
        setBadges(tr("\u25cf New image in progress \u2014 show"));
        return;
    }
    if (newTile && !m_trashButton->isChecked()) m_galleryWidget->selectTile(id, imageIndex);
    // The preview comes at latent resolution; the viewer scales it to the image's size on screen.
    QImage shown = image;
    if (job && (job->params.width > 0) && (job->params.height > 0))
        shown = image.scaled(job->params.width, job->params.height, Qt::IgnoreAspectRatio, Qt::SmoothTransformation);
    const QString info = tr("Generating image %1…").arg(imageIndex + 1);
    m_sideItemId.clear();
    m_largeItemId.clear();
    m_sideViewer->setImage(shown);
    m_largeViewer->setImage(shown);
    m_sideInfo->setText(info);
    m_largeInfo->setText(info);
}

void MainWindow::onImageReady(const qint64 jobId, const GalleryItem& item, const int imageIndex) {
    m_galleryModel->finishTile(jobId, item);
    if ((jobId == m_previewJob) && (imageIndex == m_previewIndex)) {
        m_previewJob = 0;
        m_previewIndex = -1;
        m_lastPreview = {};
    }
    m_newestItemId = item.id;
    if (item.compareSlot >= 0) {
        m_compareGroupShown = item.compareGroup;
        m_compareView->setSide(item.compareSlot, sideFor(item));
    }
    if (!m_followNewest) {
        setBadges(tr("\u25cf New image \u2014 show"));
        return;
    }
    // The gallery scrolls to it and the viewers show it (also when a search hides its tile).
    if (!m_trashButton->isChecked()) m_galleryWidget->selectItem(item.id);
    if ((m_sideItemId != item.id) || (m_largeItemId != item.id)) showItem(item);  // once: the PNG is read again
    updateFavouriteButton();
}

// The user picked an image while images are being made: they are looking at it on purpose, so new ones raise the
// badge instead of taking the view. Picking the newest image itself follows again.
void MainWindow::onItemChosen(const GalleryItem& item) {
    const bool newest = (item.id == m_newestItemId) && (m_previewJob == 0);
    m_followNewest = newest;
    if (newest) setBadges({});
}

void MainWindow::showNewest() {
    m_followNewest = true;
    setBadges({});
    if (m_trashButton->isChecked()) m_trashButton->setChecked(false);
    if ((m_previewJob != 0) && !m_lastPreview.isNull()) {
        const qint64 job = m_previewJob;
        m_previewJob = 0;  // shown as a new tile: selected and scrolled to
        onJobPreview(job, m_previewIndex, m_lastPreview);
        return;
    }
    QString id = m_newestItemId;
    if (id.isEmpty() || !m_gallery->item(id)) {
        // Nothing made in this session: the newest stored image.
        const QList<GalleryItem> items = m_gallery->items();
        id = items.isEmpty() ? QString() : items.last().id;
    }
    if (const auto item = m_gallery->item(id)) {
        m_galleryWidget->selectItem(item->id);
        showItem(*item);
        updateFavouriteButton();
    }
}

void MainWindow::setBadges(const QString& text) {
    m_sideViewer->setBadgeText(text);
    m_largeViewer->setBadgeText(text);
}

void MainWindow::onJobEnded(const qint64 id) {
    m_galleryModel->dropPendingTiles(id);
    if (id == m_previewJob) {
        // Cancelled or failed mid-image: its preview is no picture to come back to.
        m_previewJob = 0;
        m_previewIndex = -1;
        m_lastPreview = {};
    }
    updateBusy();
}

void MainWindow::updateBusy() { m_promptPanel->setBusy(m_queue->isBusy()); }
