#include "settingsdialog.h"

#include <QComboBox>
#include <QDialogButtonBox>
#include <QDir>
#include <QFileDialog>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QVBoxLayout>

#include "AppSettings.h"
#include "desktopintegration.h"

namespace {
void fill(QComboBox* combo, const QList<QPair<QString, QString>>& items, const QString& current) {
    for (const auto& [value, label] : items) combo->addItem(label, value);
    const int index = combo->findData(current);
    combo->setCurrentIndex((index >= 0) ? index : 0);
}
}  // namespace

SettingsDialog::SettingsDialog(AppSettings* settings, QWidget* parent)
    : QDialog(parent),
      m_settings(settings),
      m_device(new QComboBox(this)),
      m_precision(new QComboBox(this)),
      m_memory(new QComboBox(this)),
      m_output(new QLineEdit(this)) {
    setWindowTitle(tr("Settings"));
    m_device->setObjectName(QStringLiteral("deviceCombo"));
    m_precision->setObjectName(QStringLiteral("precisionCombo"));
    m_memory->setObjectName(QStringLiteral("memoryCombo"));
    m_output->setObjectName(QStringLiteral("outputEdit"));

    // Values are the engine's names (koala::toString), labels are for people.
    fill(m_device,
         {{QStringLiteral("auto"), tr("Automatic (GPU when available)")},
          {QStringLiteral("cuda"), tr("GPU (CUDA)")},
          {QStringLiteral("cpu"), tr("CPU")}},
         settings->device());
    fill(m_precision,
         {{QStringLiteral("auto"), tr("Automatic (fp16 on GPU, fp32 on CPU)")},
          {QStringLiteral("fp16"), QStringLiteral("fp16")},
          {QStringLiteral("bf16"), QStringLiteral("bf16")},
          {QStringLiteral("fp32"), QStringLiteral("fp32")}},
         settings->precision());
    fill(m_memory,
         {{QStringLiteral("default"), tr("Default (fastest)")},
          {QStringLiteral("low"), tr("Low memory (slower; for GPUs under 8 GB)")}},
         settings->memoryMode());
    m_output->setText(settings->outputFolder());

    auto* browse = new QPushButton(tr("Browse…"), this);
    auto* outputRow = new QHBoxLayout;
    outputRow->addWidget(m_output, 1);
    outputRow->addWidget(browse);

    auto* form = new QFormLayout;
    form->addRow(tr("&Device:"), m_device);
    form->addRow(tr("&Precision:"), m_precision);
    form->addRow(tr("&Memory mode:"), m_memory);
    // A row whose field is a layout gets no buddy from QFormLayout, so its "&" would show literally (ux-review 10).
    auto* outputLabel = new QLabel(tr("&Output folder:"), this);
    outputLabel->setBuddy(m_output);
    form->addRow(outputLabel, outputRow);

    // ---- prompt syntax and LoRA (issue 10) ----
    m_syntax = new QComboBox(this);
    m_syntax->setObjectName(QStringLiteral("syntaxCombo"));
    fill(m_syntax,
         {{QStringLiteral("a1111"), tr("AUTOMATIC1111 ((word:1.2), BREAK, <lora:…>, long prompts in chunks)")},
          {QStringLiteral("plain"), tr("Plain (the text as it is, cut at 77 tokens, as diffusers)")}},
         settings->promptSyntax());
    form->addRow(tr("Prompt &syntax:"), m_syntax);
    m_loraFolders = new QLineEdit(settings->loraFolders().join(QDir::listSeparator()), this);
    m_loraFolders->setObjectName(QStringLiteral("loraFoldersEdit"));
    m_loraFolders->setToolTip(tr("Folders with LoRA files (*.safetensors), separated by \"%1\"; the first one "
                                 "with a name wins. Empty: %2")
                                  .arg(QDir::listSeparator(), AppSettings::defaultLoraFolders().join(QString())));
    form->addRow(tr("&LoRA folders:"), m_loraFolders);

    // ---- colour theme (issue 13 item 6), applied on OK ----
    m_theme = new QComboBox(this);
    m_theme->setObjectName(QStringLiteral("themeCombo"));
    QList<QPair<QString, QString>> themes;
    for (const QString& name : DesktopIntegration::themeNames())
        themes.append({name, DesktopIntegration::themeLabel(name)});
    fill(m_theme, themes, DesktopIntegration::themeSetting(settings->fileName()));
    form->addRow(tr("&Theme:"), m_theme);

    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, this);
    auto* layout = new QVBoxLayout(this);
    layout->addLayout(form);
    layout->addWidget(buttons);

    connect(buttons, &QDialogButtonBox::accepted, this, &SettingsDialog::accept);
    connect(buttons, &QDialogButtonBox::rejected, this, &SettingsDialog::reject);
    connect(browse, &QPushButton::clicked, this, [this]() {
        const QString dir = QFileDialog::getExistingDirectory(this, tr("Output folder"), m_output->text());
        if (!dir.isEmpty()) m_output->setText(dir);
    });
}

void SettingsDialog::accept() {
    m_settings->setDevice(device());
    m_settings->setPrecision(precision());
    m_settings->setMemoryMode(memoryMode());
    if (!outputFolder().isEmpty()) m_settings->setOutputFolder(outputFolder());
    m_settings->setPromptSyntax(promptSyntax());  // issue 10
    m_settings->setLoraFolders(loraFolders());    // issue 10
    m_settings->sync();
    // The theme is kept in the same settings file, next to AppSettings' keys (issue 13 item 6).
    DesktopIntegration::setThemeSetting(m_settings->fileName(), theme());
    DesktopIntegration::applyTheme(theme());
    QDialog::accept();
}

QString SettingsDialog::device() const { return m_device->currentData().toString(); }

QString SettingsDialog::precision() const { return m_precision->currentData().toString(); }

QString SettingsDialog::memoryMode() const { return m_memory->currentData().toString(); }

QString SettingsDialog::outputFolder() const { return m_output->text().trimmed(); }

// ---- prompt syntax and LoRA (issue 10) ----
QString SettingsDialog::promptSyntax() const { return m_syntax->currentData().toString(); }

QStringList SettingsDialog::loraFolders() const {
    QStringList folders;
    for (const QString& f : m_loraFolders->text().split(QDir::listSeparator(), Qt::SkipEmptyParts))
        if (!f.trimmed().isEmpty()) folders << f.trimmed();
    return folders;
}

QString SettingsDialog::theme() const { return m_theme->currentData().toString(); }
