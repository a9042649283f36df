#include "presetspanel.h"

#include <QFileDialog>
#include <QGridLayout>
#include <QInputDialog>
#include <QLabel>
#include <QListWidget>
#include <QMessageBox>
#include <QPushButton>
#include <QVBoxLayout>

namespace {
QString describe(const Preset& preset) {
    QStringList parts;
    if (preset.scheduler)
        parts << PresetsPanel::tr("scheduler %1").arg(GenerationParams::schedulerDisplayName(*preset.scheduler));
    if (preset.steps) parts << PresetsPanel::tr("%1 steps").arg(*preset.steps);
    if (preset.guidance) parts << PresetsPanel::tr("guidance %1").arg(*preset.guidance);
    if (preset.width && preset.height) parts << QStringLiteral("%1×%2").arg(*preset.width).arg(*preset.height);
    if (!preset.modelHint.isEmpty()) parts << PresetsPanel::tr("model %1").arg(preset.modelHint);
    QString text = preset.description;
    if (!parts.isEmpty())
        text += (text.isEmpty() ? QString() : QStringLiteral("\n")) + parts.join(QStringLiteral(", "));
    return text;
}
}  // namespace

PresetsPanel::PresetsPanel(PresetStore* store, std::function<GenerationParams()> currentParams,
                           std::function<QString()> currentModelHint, QWidget* parent)
    : QWidget(parent),
      m_store(store),
      m_currentParams(std::move(currentParams)),
      m_currentModelHint(std::move(currentModelHint)),
      m_list(new QListWidget(this)),
      m_description(new QLabel(this)),
      m_apply(new QPushButton(tr("&Apply"), this)),
      m_save(new QPushButton(tr("Save current…"), this)),
      m_rename(new QPushButton(tr("Rename…"), this)),
      m_delete(new QPushButton(tr("Delete"), this)),
      m_import(new QPushButton(tr("Import…"), this)),
      m_export(new QPushButton(tr("Export…"), this)) {
    m_list->setObjectName(QStringLiteral("presetList"));
    m_apply->setObjectName(QStringLiteral("presetApplyButton"));
    m_description->setWordWrap(true);
    m_description->setMinimumHeight(40);
    m_description->setAlignment(Qt::AlignTop | Qt::AlignLeft);

    auto* buttons = new QGridLayout;
    buttons->addWidget(m_apply, 0, 0);
    buttons->addWidget(m_save, 0, 1);
    buttons->addWidget(m_rename, 1, 0);
    buttons->addWidget(m_delete, 1, 1);
    buttons->addWidget(m_import, 2, 0);
    buttons->addWidget(m_export, 2, 1);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(m_list, 1);
    layout->addWidget(m_description);
    layout->addLayout(buttons);

    connect(m_apply, &QPushButton::clicked, this, &PresetsPanel::onApply);
    connect(m_list, &QListWidget::itemDoubleClicked, this, &PresetsPanel::onApply);
    connect(m_save, &QPushButton::clicked, this, &PresetsPanel::onSave);
    connect(m_rename, &QPushButton::clicked, this, &PresetsPanel::onRename);
    connect(m_delete, &QPushButton::clicked, this, &PresetsPanel::onDelete);
    connect(m_import, &QPushButton::clicked, this, &PresetsPanel::onImport);
    connect(m_export, &QPushButton::clicked, this, &PresetsPanel::onExport);
    connect(m_list, &QListWidget::currentRowChanged, this, &PresetsPanel::updateButtons);
    connect(m_store, &PresetStore::presetsChanged, this, [this]() {
        reloadList();
        reportStoreErrors();
    });

    reloadList();
}

QStringList PresetsPanel::presetNames() const {
    QStringList names;
    for (int i = 0; i < m_list->count(); ++i) names << m_list->item(i)->data(Qt::UserRole).toString();
    return names;
}

QString PresetsPanel::selectedName() const {
    const QListWidgetItem* item = m_list->currentItem();
    return item ? item->data(Qt::UserRole).toString() : QString();
}

void PresetsPanel::selectPreset(const QString& name) {
    for (int i = 0; i < m_list->count(); ++i) {
        if (m_list->item(i)->data(Qt::UserRole).toString() == name) {
            m_list->setCurrentRow(i);
            return;
        }
    }
}

bool PresetsPanel::applyPreset(const QString& name) {
    const auto preset = m_store->find(name);
    if (!preset) return false;
    emit presetApplied(*preset);
    emit infoMessage(tr("Preset \"%1\" applied").arg(name));
    return true;
}

PresetStore::Status PresetsPanel::saveSilently(const QString& name, const bool overwrite, QString* error) {
    const Preset preset =
        Preset::fromParams(name, {}, m_currentParams(), m_currentModelHint ? m_currentModelHint() : QString());
    return m_store->save(preset, overwrite, error);
}

PresetStore::Status PresetsPanel::saveCurrentAs(const QString& name, const bool overwrite) {
    QString error;
    const PresetStore::Status status = saveSilently(name, overwrite, &error);
    if ((status != PresetStore::Status::Ok) && (status != PresetStore::Status::NameClash))
        emit errorOccurred(error.isEmpty() ? tr("Could not save preset \"%1\"").arg(name) : error);
    return status;
}

void PresetsPanel::reloadList() {
    const QString selected = selectedName();
    m_list->clear();
    for (const Preset& preset : m_store->presets()) {
        auto* item = new QListWidgetItem(preset.readOnly ? tr("%1 (shipped)").arg(preset.name) : preset.name, m_list);
        item->setData(Qt::UserRole, preset.name);
        item->setToolTip(describe(preset) + QStringLiteral("\n") + preset.filePath);
    }
    selectPreset(selected);
    updateButtons();
}

void PresetsPanel::reportStoreErrors() {
    // presetsChanged fires after every save; report each broken file once, not after every change.
    for (const QString& error : m_store->errors()) {
        if (!m_reportedErrors.contains(error)) {
            m_reportedErrors << error;
            emit errorOccurred(tr("Preset not loaded: %1").arg(error));
        }
    }
}

void PresetsPanel::onApply() {
    const QString name = selectedName();
    if (!name.isEmpty()) applyPreset(name);
}

bool PresetsPanel::confirmOverwrite(const QString& name) {
    return QMessageBox::question(this, tr("Overwrite preset"),
                                 tr("A preset named \"%1\" already exists. Replace it?").arg(name)) == QMessageBox::Yes;
}

void PresetsPanel::setNamePrompt(NamePrompt prompt) { m_namePrompt = std::move(prompt); }

void PresetsPanel::onSave() { saveCurrentAsking(); }

void PresetsPanel::saveCurrentAsking() {
    NamePrompt ask = m_namePrompt;
    if (!ask) {
        ask = [this](const QString& message, const QString& suggested) -> std::optional<QString> {
            bool ok = false;
            const QString label =
                message.isEmpty() ? tr("Preset name:") : message + QStringLiteral("\n\n") + tr("Preset name:");
            const QString name =
                QInputDialog::getText(this, tr("Save preset"), label, QLineEdit::Normal, suggested, &ok);
            return ok ? std::optional<QString>(name) : std::nullopt;
        };
    }
    QString message;
    QString suggested = selectedName();
    for (;;) {
        const std::optional<QString> typed = ask(message, suggested);
        if (!typed) return;
        const QString name = typed->trimmed();
        suggested = *typed;  // a refused name stays in the field to be edited
        if (name.isEmpty()) {
            message = tr("A preset needs a name.");
            continue;
        }
        QString error;
        PresetStore::Status status = saveSilently(name, false, &error);
        if (status == PresetStore::Status::NameClash) {
            if (!confirmOverwrite(name)) {
                message = tr("\"%1\" is taken; choose another name.").arg(name);
                continue;
            }
            status = saveSilently(name, true, &error);
        }
        if (status == PresetStore::Status::Ok) {
            selectPreset(name);
            emit infoMessage(tr("Preset \"%1\" saved").arg(name));
            return;
        }
        if (status == PresetStore::Status::ReadOnly || status == PresetStore::Status::Invalid) {
            message = error;  // the dialog says it; the name can be changed there
            continue;
        }
        emit errorOccurred(error.isEmpty() ? tr("Could not save preset \"%1\"").arg(name) : error);
        return;
    }
}

void PresetsPanel::onRename() {
    const QString oldName = selectedName();
    if (oldName.isEmpty()) return;
    bool ok = false;
    const QString newName =
        QInputDialog::getText(this, tr("Rename preset"), tr("New name:"), QLineEdit::Normal, oldName, &ok).trimmed();
    if (!ok || newName.isEmpty() || (newName == oldName)) return;
    QString error;
    PresetStore::Status status = m_store->rename(oldName, newName, false, &error);
    if ((status == PresetStore::Status::NameClash) && confirmOverwrite(newName))
        status = m_store->rename(oldName, newName, true, &error);
    if (status == PresetStore::Status::Ok)
        selectPreset(newName);
    else if (status != PresetStore::Status::NameClash)
        emit errorOccurred(error.isEmpty() ? tr("Could not rename preset \"%1\"").arg(oldName) : error);
}

void PresetsPanel::onDelete() {
    const QString name = selectedName();
    if (name.isEmpty()) return;
    if (QMessageBox::question(this, tr("Delete preset"), tr("Delete the preset \"%1\"?").arg(name)) != QMessageBox::Yes)
        return;
    QString error;
    if (m_store->remove(name, &error) != PresetStore::Status::Ok)
        emit errorOccurred(error.isEmpty() ? tr("Could not delete preset \"%1\"").arg(name) : error);
}

void PresetsPanel::onImport() {
    const QString path = QFileDialog::getOpenFileName(this, tr("Import preset"), {}, tr("Presets (*.yaml *.yml)"));
    if (path.isEmpty()) return;
    QString error;
    PresetStore::Status status = m_store->importFile(path, false, &error);
    if (status == PresetStore::Status::NameClash) {
        const auto preset = Preset::fromFile(path);
        if (confirmOverwrite(preset ? preset->name : path))
            status = m_store->importFile(path, true, &error);
        else
            return;
    }
    if (status != PresetStore::Status::Ok)
        emit errorOccurred(error.isEmpty() ? tr("Could not import %1").arg(path) : error);
}

void PresetsPanel::onExport() {
    const QString name = selectedName();
    if (name.isEmpty()) return;
    const QString path = QFileDialog::getSaveFileName(this, tr("Export preset"), name + QStringLiteral(".yaml"),
                                                      tr("Presets (*.yaml *.yml)"));
    if (path.isEmpty()) return;
    QString error;
    if (m_store->exportPreset(name, path, &error) != PresetStore::Status::Ok)
        emit errorOccurred(error.isEmpty() ? tr("Could not export to %1").arg(path) : error);
    else
        emit infoMessage(tr("Preset exported to %1").arg(path));
}

void PresetsPanel::updateButtons() {
    const auto preset = m_store->find(selectedName());
    m_apply->setEnabled(preset.has_value());
    m_export->setEnabled(preset.has_value());
    m_rename->setEnabled(preset && !preset->readOnly);
    m_delete->setEnabled(preset && !preset->readOnly);
    m_description->setText(preset ? describe(*preset) : tr("Select a preset to see what it sets."));
}
