#pragma once

#include <QList>
#include <QWidget>

#include "GenerationParams.h"
#include "ModelDiscovery.h"
#include "prompteditor.h"

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QLineEdit;
class QPushButton;
class QSpinBox;
class QToolButton;

// Every control of one request: prompts, seed, steps, guidance, scheduler, size, count and the models. It only
// edits a GenerationParams; queuing is the main window's business (generateRequested / compareRequested).
class PromptPanel final : public QWidget {
    Q_OBJECT

public:
    explicit PromptPanel(QWidget* parent = nullptr);

    // The request the controls describe. Check inputProblem() first: a seed that cannot be parsed reads as random
    // here, and is refused there.
    GenerationParams params() const;
    // Why the controls cannot be queued as they are ("" when they can): a seed koala::parseSeed refuses, a size
    // the engine cannot run (both sides named), any other GenerationParams::validate() message. Shown under the
    // controls as it changes; Generate and Compare are disabled meanwhile.
    QString inputProblem() const;
    // Applies everything but the model folders unless they are in the model list (a dropped PNG from another
    // machine names a path that does not exist here; its model name is matched against the list instead).
    void setParams(const GenerationParams& params);

    void setModels(const QList<ModelEntry>& models);
    QList<ModelEntry> models() const;
    // Selects the model whose display name or UNet shape contains `hint` ("koala-1b"); false when none matches.
    bool selectModelByHint(const QString& hint, bool secondModel = false);
    void selectModel(const QString& path, bool secondModel = false);
    QString currentModelPath() const;
    QString compareModelPath() const;

    void setSeed(quint64 seed);  // fixed seed (turns "random" off)
    void setTokenCounter(const PromptEditor::TokenCounter& counter, bool exact = true);
    void setBusy(bool busy);  // a job is running: Cancel enabled
    // Swaps width and height (the size picker follows: 832 × 1216 becomes 1216 × 832).
    void swapSize();
    // With the lock on, changing one side changes the other to keep the ratio of when it was locked (multiples of
    // 8, the engine's size multiple).
    void setAspectLocked(bool locked);
    bool isAspectLocked() const;
    // Why Generate is disabled ("" when it is enabled): no model, or inputProblem(). Also its tooltip.
    QString generateBlockedReason() const;

    PromptEditor* promptEditor() const;
    PromptEditor* negativeEditor() const;

signals:
    void generateRequested();
    void compareRequested();
    void cancelRequested();
    void addModelFolderRequested();
    void modelChanged(const QString& path);

private:
    void buildLayout(QWidget* addModel);
    void onSizeChanged();
    // A width or height typed or stepped: the other side follows under the aspect lock, the picker shows the
    // matching bucket or "Custom…".
    void onSizeEdited(bool widthEdited);
    void syncSizePicker();
    // "model default (Euler)": the loaded model's own scheduler, by name.
    void updateDefaultSchedulerLabel();
    void updateSeedEnabled();
    // Re-checks the input: the problem label and the Generate/Compare buttons.
    void updateInputState();

    PromptEditor* m_prompt = nullptr;
    PromptEditor* m_negative = nullptr;
    QLineEdit* m_seed = nullptr;
    QCheckBox* m_randomSeed = nullptr;
    QToolButton* m_dice = nullptr;
    QSpinBox* m_steps = nullptr;
    QDoubleSpinBox* m_guidance = nullptr;
    QComboBox* m_scheduler = nullptr;
    QComboBox* m_spacing = nullptr;
    QComboBox* m_size = nullptr;
    QSpinBox* m_width = nullptr;
    QSpinBox* m_height = nullptr;
    QToolButton* m_swap = nullptr;
    QToolButton* m_aspectLock = nullptr;
    double m_lockedRatio = 1.0;       // width / height when the lock was turned on
    bool m_applyingSize = false;      // the panel itself is setting width/height (no lock, no picker feedback)
    QLabel* m_seedProblem = nullptr;  // beside the seed field
    QLabel* m_sizeProblem = nullptr;  // beside the size fields
    QSpinBox* m_count = nullptr;
    QComboBox* m_model = nullptr;
    QComboBox* m_compareModel = nullptr;
    QPushButton* m_generate = nullptr;
    QPushButton* m_compare = nullptr;
    QPushButton* m_cancel = nullptr;
    QLabel* m_problem = nullptr;
    QList<ModelEntry> m_models;
    // Fields a GenerationParams carries that have no control here; kept so setParams/params round-trips them.
    GenerationParams m_hidden;
};
