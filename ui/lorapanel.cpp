#include "lorapanel.h"

#include <cmath>

#include <QDir>
#include <QDoubleSpinBox>
#include <QFileInfo>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QListWidget>
#include <QLocale>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QRegularExpression>
#include <QSlider>
#include <QVBoxLayout>

#include <koala/engine.h>

#include "prompteditor.h"

namespace {

enum Role { PathRole = Qt::UserRole + 1, TriggersRole };

// Slider steps of 0.05 from -2 to 2 (the spin box takes any weight from -10 to 10).
constexpr double kSliderStep = 0.05;
constexpr int kSliderMax = 40;

// <lora:NAME>, <lora:NAME:W> or <lora:NAME:W:...> (not <lora:NAMEs>); captures the weight (1) and the rest (2).
QRegularExpression tagPattern(const QString& name) {
    return QRegularExpression(
        QStringLiteral("<lora:%1(?::([^:>]*))?((?::[^>]*)?)>").arg(QRegularExpression::escape(name)));
}

}  // namespace

LoraPanel::LoraPanel(QWidget* parent)
    : QWidget(parent),
      m_list(new QListWidget(this)),
      m_folderLabel(new QLabel(this)),
      m_details(new QLabel(this)),
      m_triggers(new QLabel(this)),
      m_insertTriggers(new QPushButton(tr("Insert &trigger words"), this)),
      m_slider(new QSlider(Qt::Horizontal, this)),
      m_weight(new QDoubleSpinBox(this)),
      m_tagButton(new QPushButton(tr("&Add to prompt"), this)),
      m_report(new QLabel(this)) {
    m_list->setObjectName(QStringLiteral("loraList"));
    m_weight->setObjectName(QStringLiteral("loraWeight"));
    m_slider->setObjectName(QStringLiteral("loraWeightSlider"));
    m_tagButton->setObjectName(QStringLiteral("loraTagButton"));
    m_report->setObjectName(QStringLiteral("loraReport"));
    m_folderLabel->setWordWrap(true);
    m_folderLabel->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_details->setWordWrap(true);
    m_triggers->setWordWrap(true);
    m_triggers->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_report->setWordWrap(true);
    m_report->setTextInteractionFlags(Qt::TextSelectableByMouse);

    m_slider->setRange(-kSliderMax, kSliderMax);
    m_slider->setSingleStep(1);
    m_slider->setPageStep(4);
    m_weight->setRange(-10.0, 10.0);
    m_weight->setDecimals(2);
    m_weight->setSingleStep(kSliderStep);
    m_weight->setValue(1.0);
    m_slider->setValue(int(std::lround(1.0 / kSliderStep)));
    auto* weightLabel = new QLabel(tr("&Weight"), this);
    weightLabel->setBuddy(m_weight);

    auto* rescan = new QPushButton(tr("&Rescan"), this);
    connect(rescan, &QPushButton::clicked, this, &LoraPanel::rescan);

    auto* weightRow = new QHBoxLayout;
    weightRow->addWidget(weightLabel);
    weightRow->addWidget(m_slider, 1);
    weightRow->addWidget(m_weight);
    // Two short rows: the side panels are narrow (the window fits 1000 px).
    auto* buttons = new QHBoxLayout;
    buttons->addWidget(m_tagButton);
    buttons->addStretch();
    buttons->addWidget(rescan);
    auto* triggerRow = new QHBoxLayout;
    triggerRow->addWidget(m_insertTriggers);
    triggerRow->addStretch();

    auto* layout = new QVBoxLayout(this);
    layout->addWidget(m_folderLabel);
    layout->addWidget(m_list, 1);
    layout->addWidget(m_details);
    layout->addWidget(m_triggers);
    layout->addLayout(weightRow);
    layout->addLayout(buttons);
    layout->addLayout(triggerRow);
    layout->addWidget(m_report);

    connect(m_list, &QListWidget::currentRowChanged, this, &LoraPanel::onCurrentChanged);
    connect(m_list, &QListWidget::itemActivated, this, [this]() {
        if (m_prompt && !tagWeight(m_prompt->text(), currentName())) toggleTag();
    });
    connect(m_slider, &QSlider::valueChanged, this, [this](const int v) {
        if (!m_updating) onWeightEdited(v * kSliderStep);
    });
    connect(m_weight, &QDoubleSpinBox::valueChanged, this, [this](const double v) {
        if (!m_updating) onWeightEdited(v);
    });
    connect(m_tagButton, &QPushButton::clicked, this, &LoraPanel::toggleTag);
    connect(m_insertTriggers, &QPushButton::clicked, this, &LoraPanel::insertTriggerWords);

    setReport({});
    setFolders({QString::fromStdString(koala::defaultLoraFolder())});
}

void LoraPanel::setFolders(const QStringList& folders) {
    m_folders = folders;
    rescan();
}

QStringList LoraPanel::folders() const { return m_folders; }

void LoraPanel::rescan() {
    const QString current = currentName();
    std::vector<std::string> folders;
    for (const QString& f : m_folders) folders.push_back(QFile::encodeName(f).toStdString());
    std::vector<koala::LoraFileInfo> files;
    try {
        files = koala::listLoraFiles(folders, false);  // no sha256: listing stays instant with large files
    } catch (const std::exception&) {
        files.clear();
    }
    m_updating = true;
    m_list->clear();
    const QLocale locale;
    for (const koala::LoraFileInfo& f : files) {
        auto* item = new QListWidgetItem(QString::fromStdString(f.name), m_list);
        const QString path = QFile::decodeName(QByteArray::fromStdString(f.path));
        QStringList triggers;
        for (const std::string& t : f.triggerWords) triggers << QString::fromStdString(t);
        const QString format = f.format.empty() ? tr("not a LoRA this build reads") : QString::fromStdString(f.format);
        item->setData(PathRole, path);
        item->setData(TriggersRole, triggers);
        item->setData(Qt::ToolTipRole, tr("%1\n%2 · %3").arg(path, format, locale.formattedDataSize(f.bytes)));
    }
    m_updating = false;
    const QString shown = QStringList(m_folders).replaceInStrings(QDir::homePath(), QStringLiteral("~")).join(", ");
    m_folderLabel->setText(files.empty() ? tr("No LoRA files (*.safetensors) in %1.").arg(shown)
                                         : tr("%n LoRA file(s) in %1", nullptr, int(files.size())).arg(shown));
    if (!selectLora(current) && m_list->count() > 0) m_list->setCurrentRow(0);
    onCurrentChanged();
}

int LoraPanel::loraCount() const { return m_list->count(); }

QStringList LoraPanel::loraNames() const {
    QStringList names;
    for (int i = 0; i < m_list->count(); ++i) names << m_list->item(i)->text();
    return names;
}

void LoraPanel::setPromptEditor(PromptEditor* editor) {
    if (m_prompt) disconnect(m_prompt, nullptr, this, nullptr);
    m_prompt = editor;
    if (m_prompt) connect(m_prompt, &PromptEditor::textChanged, this, &LoraPanel::onPromptChanged);
    onPromptChanged();
}

QString LoraPanel::currentName() const { return m_list->currentItem() ? m_list->currentItem()->text() : QString(); }

bool LoraPanel::selectLora(const QString& name) {
    if (name.isEmpty()) return false;
    const QList<QListWidgetItem*> found = m_list->findItems(name, Qt::MatchExactly);
    if (found.isEmpty()) return false;
    m_list->setCurrentItem(found.first());
    return true;
}

QStringList LoraPanel::currentTriggerWords() const {
    return m_list->currentItem() ? m_list->currentItem()->data(TriggersRole).toStringList() : QStringList();
}

double LoraPanel::weight() const { return m_weight->value(); }

void LoraPanel::setWeight(const double weight) { onWeightEdited(weight); }

void LoraPanel::toggleTag() {
    const QString name = currentName();
    if (!m_prompt || name.isEmpty()) return;
    const QString prompt = m_prompt->text();
    m_prompt->setText(tagWeight(prompt, name) ? withoutTag(prompt, name) : withTag(prompt, name, weight()));
}

void LoraPanel::insertTriggerWords() {
    if (!m_prompt) return;
    QString prompt = m_prompt->text();
    for (const QString& word : currentTriggerWords()) {
        if (prompt.contains(word, Qt::CaseInsensitive)) continue;
        const QString trimmed = prompt.trimmed();
        prompt = trimmed.isEmpty() ? word : (trimmed + QStringLiteral(", ") + word);
    }
    m_prompt->setText(prompt);
}

void LoraPanel::setReport(const QStringList& lines) {
    m_report->setText(lines.isEmpty() ? QString() : tr("Shown image: %1").arg(lines.join(QStringLiteral("; "))));
    m_report->setVisible(!lines.isEmpty());
}

QString LoraPanel::reportText() const { return m_report->text(); }

QString LoraPanel::formatWeight(const double weight) {
    return QString::number(std::round(weight * 100.0) / 100.0, 'g', 6);
}

std::optional<double> LoraPanel::tagWeight(const QString& prompt, const QString& name) {
    if (name.isEmpty()) return std::nullopt;
    const QRegularExpressionMatch m = tagPattern(name).match(prompt);
    if (!m.hasMatch()) return std::nullopt;
    bool ok = false;
    const double w = m.captured(1).trimmed().toDouble(&ok);
    return ok ? w : 1.0;
}

QString LoraPanel::withTag(const QString& prompt, const QString& name, const double weight) {
    const QRegularExpressionMatch m = tagPattern(name).match(prompt);
    const QString tag = QStringLiteral("<lora:%1:%2%3>").arg(name, formatWeight(weight), m.captured(2));
    if (m.hasMatch()) return prompt.left(m.capturedStart()) + tag + prompt.mid(m.capturedEnd());
    QString out = prompt;
    while (!out.isEmpty() && out.back().isSpace()) out.chop(1);
    return out.isEmpty() ? tag : (out + QLatin1Char(' ') + tag);
}

QString LoraPanel::withoutTag(const QString& prompt, const QString& name) {
    QString out = prompt;
    out.remove(QRegularExpression(QStringLiteral("[ \\t]*") + tagPattern(name).pattern()));
    return out.trimmed() == out ? out : out.trimmed();
}

void LoraPanel::onCurrentChanged() {
    if (m_updating) return;
    const QListWidgetItem* item = m_list->currentItem();
    if (!item) {
        m_details->clear();
        m_triggers->clear();
    } else {
        m_details->setText(item->data(Qt::ToolTipRole).toString().section(QLatin1Char('\n'), 1));
        const QStringList triggers = item->data(TriggersRole).toStringList();
        m_triggers->setText(triggers.isEmpty() ? tr("No trigger words in the file's metadata.")
                                               : tr("Trigger words: %1").arg(triggers.join(QStringLiteral(", "))));
    }
    onPromptChanged();
}

void LoraPanel::onPromptChanged() {
    // A tag already in the prompt sets the weight shown; otherwise the last weight chosen stays.
    if (m_prompt) {
        if (const std::optional<double> w = tagWeight(m_prompt->text(), currentName())) {
            m_updating = true;
            m_weight->setValue(*w);
            m_slider->setValue(int(std::lround(qBound(-2.0, *w, 2.0) / kSliderStep)));
            m_updating = false;
        }
    }
    updateControls();
}

void LoraPanel::onWeightEdited(const double weight) {
    m_updating = true;
    m_weight->setValue(weight);
    m_slider->setValue(int(std::lround(qBound(-2.0, weight, 2.0) / kSliderStep)));
    m_updating = false;
    const QString name = currentName();
    if (m_prompt && !name.isEmpty() && tagWeight(m_prompt->text(), name))
        m_prompt->setText(withTag(m_prompt->text(), name, m_weight->value()));
}

void LoraPanel::updateControls() {
    const bool usable = m_prompt && m_list->currentItem();
    const bool tagged = usable && tagWeight(m_prompt->text(), currentName()).has_value();
    m_tagButton->setEnabled(usable);
    m_tagButton->setText(tagged ? tr("&Remove from prompt") : tr("&Add to prompt"));
    m_insertTriggers->setEnabled(usable && !currentTriggerWords().isEmpty());
}
