#pragma once

#include <functional>
#include <optional>

#include <QWidget>

#include "PresetStore.h"

class QLabel;
class QListWidget;
class QPushButton;

// Shipped and user presets: apply, save the current settings, rename, delete, import, export. Malformed preset
// files do not block anything: each error ("file:line: message") goes out through errorOccurred.
class PresetsPanel final : public QWidget {
    Q_OBJECT

public:
    // `currentParams` gives the settings "Save current…" stores; `currentModelHint` the model name to note with it.
    PresetsPanel(PresetStore* store, std::function<GenerationParams()> currentParams,
                 std::function<QString()> currentModelHint = {}, QWidget* parent = nullptr);

    QStringList presetNames() const;
    QString selectedName() const;
    void selectPreset(const QString& name);

    // Programmatic versions of the buttons (no dialog: the caller has the answers).
    bool applyPreset(const QString& name);
    PresetStore::Status saveCurrentAs(const QString& name, bool overwrite);

    // How "Save current…" asks for a name: `message` says why it asks again (empty the first time), `suggested` is
    // prefilled. Returns nothing when the person cancels. The default is a QInputDialog; tests replace it.
    using NamePrompt = std::function<std::optional<QString>(const QString& message, const QString& suggested)>;
    void setNamePrompt(NamePrompt prompt);
    // The "Save current…" button: asks for a name until one can be saved (a refused name is kept in the field and
    // the reason shown there, once) or the person cancels.
    void saveCurrentAsking();

    // Emits errorOccurred once for each malformed preset file not reported yet. Call it after connecting.
    void reportStoreErrors();

signals:
    void presetApplied(const Preset& preset);
    void errorOccurred(const QString& message);
    void infoMessage(const QString& message);

private:
    void reloadList();
    void onApply();
    void onSave();
    void onRename();
    void onDelete();
    void onImport();
    void onExport();
    void updateButtons();
    bool confirmOverwrite(const QString& name);
    PresetStore::Status saveSilently(const QString& name, bool overwrite, QString* error);

    PresetStore* m_store = nullptr;
    std::function<GenerationParams()> m_currentParams;
    std::function<QString()> m_currentModelHint;
    QListWidget* m_list = nullptr;
    QLabel* m_description = nullptr;
    QPushButton* m_apply = nullptr;
    QPushButton* m_save = nullptr;
    QPushButton* m_rename = nullptr;
    QPushButton* m_delete = nullptr;
    QPushButton* m_import = nullptr;
    QPushButton* m_export = nullptr;
    QStringList m_reportedErrors;
    NamePrompt m_namePrompt;
};
