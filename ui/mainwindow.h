#pragma once

#include <memory>

#include <QMainWindow>
#include <QStringList>

#include "GalleryItem.h"
#include "JobQueue.h"
#include "ModelDiscovery.h"

class AppSettings;
class TokenCounter;
class CompareView;
class GalleryModel;
class GalleryStore;
class GalleryWidget;
class ImageViewer;
class MessageBar;
class ModelManager;
class NoModelPanel;
class PresetStore;
class PresetsPanel;
class PromptPanel;
class QComboBox;
class QLabel;
class QLineEdit;
class QProgressBar;
class QToolButton;
class QStackedWidget;
class QTabWidget;
class QueueView;
struct Preset;

class MainWindow final : public QMainWindow {
    Q_OBJECT

public:
    struct Options {
        QString settingsFile;      // empty: the user's settings; else an INI file (tests, portable use)
        QStringList modelFolders;  // --model: added for this session, the first one selected
        QString outputFolder;      // --output: overrides the setting for this session
        QString userPresetsDir;    // empty: PresetStore::defaultUserDir()
        QString hfCache;           // empty: ModelDiscovery::hfCacheDir()
        QStringList pngFiles;      // PNGs whose parameters to load at start
    };

    explicit MainWindow(const Options& options = {}, QWidget* parent = nullptr);
    ~MainWindow() override;

    PromptPanel* promptPanel() const;
    GalleryWidget* galleryWidget() const;
    GalleryModel* galleryModel() const;
    CompareView* compareView() const;
    QueueView* queueView() const;
    PresetsPanel* presetsPanel() const;
    MessageBar* messageBar() const;
    JobQueue* jobQueue() const;
    GalleryStore* galleryStore() const;
    QString statusText() const;
    ModelManager* modelManager() const { return m_modelManager; }

    // The actions behind the buttons and shortcuts; return the job id, 0 when nothing was queued.
    qint64 generate();
    qint64 compare();
    void cancel();
    // Removes an image from the gallery (to the trash where there is one) and from every view showing it; the
    // "Delete" menu entry asks first, then calls this. False, with a message, when it could not be removed.
    bool deleteImage(const QString& itemId);
    // The gallery id of the image in the side viewer and in the Image tab; empty when none.
    QString sideItemId() const { return m_sideItemId; }
    QString largeItemId() const { return m_largeItemId; }

    // ---- the image being made in view (issue 13 item 2)
    ImageViewer* sideViewer() const { return m_sideViewer; }
    ImageViewer* largeViewer() const { return m_largeViewer; }
    // True while the viewers follow the newest preview and image; false once the user chose an image during a run
    // (new images then raise the viewers' "new image" badge instead). Generate and the badge follow again.
    bool isFollowingNewest() const { return m_followNewest; }
    // What the badge does: follow again and show the image being made, or the newest image.
    void showNewest();

    // ---- the gallery (issue 13 item 3)
    GalleryWidget* trashWidget() const { return m_trashWidget; }
    GalleryModel* trashModel() const { return m_trashModel; }
    void showTrash(bool show);  // the trash in place of the gallery grid
    bool toggleFavourite(const QString& itemId);
    bool restoreFromTrash(const QString& trashId);
    // Uses a gallery image as the init image (img2img), and opens the inpainting canvas when `inpaint`.
    bool useAsInitImage(const GalleryItem& item, bool inpaint);
    // A dropped image file: a PNG with generation parameters loads them (unless `asInitImage`), any other image
    // becomes the init image. False, with a message, when it is neither.
    bool openDroppedFile(const QString& path, bool asInitImage);

    // Loads the parameters of a PNG (ours or A1111) into the controls; false when it has none.
    bool loadParametersFromPng(const QString& path);

    // What closing does to unfinished work (asked in closeEvent when there is some).
    enum class CloseChoice {
        FinishFirst,      // close by itself once the queue is empty
        KeepForNextTime,  // stop now; the rest of the running job and the queued jobs return at the next start
        Discard,          // cancel everything and forget it
        StayOpen
    };
    // Applies a choice; true when the window may close now. closeEvent asks, then calls this.
    bool closeWith(CloseChoice choice);
    // Where the unfinished work is kept between runs: next to the settings file, or in the app data folder.
    QString queueFilePath() const;

protected:
    void closeEvent(QCloseEvent* event) override;
    void dragEnterEvent(QDragEnterEvent* event) override;
    void dropEvent(QDropEvent* event) override;

private:
    // Construction, in order.
    QWidget* createCentralWidget();
    QWidget* createPromptArea();
    QWidget* createContent();     // gallery, image and compare tabs, or the no-model page
    QWidget* createSidePanels();  // queue and presets
    void createStatusBar();
    void buildActions();
    void connectPromptPanel();
    void connectGallery();
    void connectQueue();
    void connectPresets();
    // Gallery, models, the last parameters, --model and PNG options, window geometry.
    void restoreSession();

    void scanModels();
    void addModelFolder();
    void showModelManager();  // Models → Model manager… (issue 12)
    void showSettings();
    void applyPreset(const Preset& preset);
    void showItem(const GalleryItem& item);
    void openItem(const GalleryItem& item);
    void showCompare(const GalleryItem& a, const GalleryItem& b);
    void deleteItem(const GalleryItem& item);
    void onItemRemoved(const QString& id);
    void showError(const QString& message);
    bool acceptParams(const GenerationParams& params);
    void showInfo(const QString& message);
    CloseChoice askCloseChoice();
    void saveSession();
    void onJobAdded(qint64 id);
    void onJobProgress(qint64 id, int step, int total, double itPerSec, double secondsLeft);
    void onJobPreview(qint64 id, int imageIndex, const QImage& image);
    void onJobEnded(qint64 id);
    void onImageReady(qint64 jobId, const GalleryItem& item, int imageIndex);
    void onItemChosen(const GalleryItem& item);
    void setBadges(const QString& text);
    void refreshTrash();
    void updateFavouriteButton();
    void clearViewers();
    void updateBusy();
    // Binds the prompt editors' counters to the tokenizer of `modelPath`; the estimate when it cannot be loaded.
    void bindTokenCounter(const QString& modelPath);

    Options m_options;
    std::unique_ptr<AppSettings> m_settings;
    std::unique_ptr<GalleryStore> m_gallery;
    std::unique_ptr<PresetStore> m_presets;
    // Declared after the stores it uses, so it is destroyed first: its destructor cancels and joins the worker.
    std::unique_ptr<JobQueue> m_queue;
    // Shared with the prompt editors' counter functions, which may outlive the window's members by a moment.
    std::shared_ptr<TokenCounter> m_tokenCounter;
    QList<ModelEntry> m_sessionModels;  // from --model, not written to the settings

    MessageBar* m_messageBar = nullptr;
    PromptPanel* m_promptPanel = nullptr;
    QStackedWidget* m_contentStack = nullptr;
    NoModelPanel* m_noModelPanel = nullptr;
    ModelManager* m_modelManager = nullptr;  // downloads and removes models (issue 12)
    QTabWidget* m_contentTabs = nullptr;
    GalleryModel* m_galleryModel = nullptr;
    GalleryWidget* m_galleryWidget = nullptr;
    ImageViewer* m_sideViewer = nullptr;
    QLabel* m_sideInfo = nullptr;
    ImageViewer* m_largeViewer = nullptr;
    QLabel* m_largeInfo = nullptr;
    CompareView* m_compareView = nullptr;
    QueueView* m_queueView = nullptr;
    PresetsPanel* m_presetsPanel = nullptr;
    QLabel* m_statusLabel = nullptr;
    QProgressBar* m_statusProgress = nullptr;
    QLabel* m_computeLabel = nullptr;  // "CUDA · NVIDIA H200 · fp16" / "CPU · LibTorch 1.13 · fp32"
    QString m_compareGroupShown;
    bool m_closeWhenIdle = false;
    QString m_sideItemId;
    QString m_largeItemId;
    // The image being made in view (issue 13 item 2).
    bool m_followNewest = true;
    QString m_newestItemId;
    qint64 m_previewJob = 0;  // the tile whose preview is the newest picture; 0 when none is being made
    int m_previewIndex = -1;
    QImage m_lastPreview;
    // The gallery's tools and the trash (issue 13 item 3).
    QStackedWidget* m_galleryStack = nullptr;
    GalleryModel* m_trashModel = nullptr;
    GalleryWidget* m_trashWidget = nullptr;
    QLineEdit* m_searchEdit = nullptr;
    QComboBox* m_sortCombo = nullptr;
    QToolButton* m_favouritesOnlyButton = nullptr;
    QToolButton* m_favouriteButton = nullptr;
    QToolButton* m_trashButton = nullptr;
};
