#pragma once

#include <optional>

#include <QStringList>
#include <QWidget>

class PromptEditor;
class QDoubleSpinBox;
class QLabel;
class QListWidget;
class QPushButton;
class QSlider;

// LoRA files (issue 10): the *.safetensors found in the LoRA folders, with their format, size and trigger words
// (from the file's metadata when it has them). The weight slider inserts or edits the <lora:NAME:WEIGHT> tag in
// the prompt (AUTOMATIC1111's syntax, which the engine reads), so the prompt alone says which LoRAs a run uses.
// Also shows the coverage report of the image shown ("applied N of M keys (K without a target)").
class LoraPanel final : public QWidget {
    Q_OBJECT

public:
    explicit LoraPanel(QWidget* parent = nullptr);

    // Folders looked in, first wins for a name (koala::listLoraFiles); rescans.
    void setFolders(const QStringList& folders);
    QStringList folders() const;
    void rescan();
    int loraCount() const;
    QStringList loraNames() const;

    // The prompt the tags go into; nullptr = none (the controls are disabled).
    void setPromptEditor(PromptEditor* editor);

    QString currentName() const;
    bool selectLora(const QString& name);
    QStringList currentTriggerWords() const;
    double weight() const;
    // Sets the slider and spin box; edits the tag when the prompt has one for the current LoRA.
    void setWeight(double weight);
    // Adds the current LoRA's tag at weight() (or removes it when the prompt has it already).
    void toggleTag();
    // Appends the current LoRA's trigger words the prompt does not have yet.
    void insertTriggerWords();

    // The coverage report of the image shown: one line per LoRA ("name 0.8: applied 96 of 96 keys (0 without a
    // target)"); empty = none used.
    void setReport(const QStringList& lines);
    QString reportText() const;

    // ---- the <lora:NAME:WEIGHT> tag, as text ----
    static QString formatWeight(double weight);  // 1 -> "1", 0.8 -> "0.8", 0.75 -> "0.75"
    // The weight of NAME's first tag in the prompt (1 for a tag without one); nothing when the prompt has none.
    static std::optional<double> tagWeight(const QString& prompt, const QString& name);
    // The prompt with NAME's tag at `weight`: the first tag edited in place, else one appended (after a space).
    static QString withTag(const QString& prompt, const QString& name, double weight);
    // The prompt without NAME's tags (and the space before each).
    static QString withoutTag(const QString& prompt, const QString& name);

private:
    void onCurrentChanged();
    void onPromptChanged();
    void onWeightEdited(double weight);
    void updateControls();

    QStringList m_folders;
    PromptEditor* m_prompt = nullptr;
    QListWidget* m_list = nullptr;
    QLabel* m_folderLabel = nullptr;
    QLabel* m_details = nullptr;
    QLabel* m_triggers = nullptr;
    QPushButton* m_insertTriggers = nullptr;
    QSlider* m_slider = nullptr;
    QDoubleSpinBox* m_weight = nullptr;
    QPushButton* m_tagButton = nullptr;
    QLabel* m_report = nullptr;
    bool m_updating = false;
};
