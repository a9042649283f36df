#include "promptpanel.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSpinBox>
#include <QToolButton>
#include <QVBoxLayout>

#include "icons.h"

namespace {
const QString CustomSize = QStringLiteral("custom");

constexpr const koala::Limits& L = koala::kLimits;

// The width/height boxes take any number up to five digits, wider than any valid size, so a number typed out of
// range stays visible and is refused with a message instead of losing keystrokes (koala::validSize decides).
constexpr int TypableSize = 99999;

QString sizeKey(const int w, const int h) { return QStringLiteral("%1x%2").arg(w).arg(h); }

QString spacingLabel(const QString& name) {
    return (name == QLatin1String("default")) ? PromptPanel::tr("model default") : name;
}

// Multiples of the engine's size multiple (8), the nearest to `pixels`.
int roundToSizeMultiple(const double pixels) {
    return qMax(L.sizeMultiple, int(pixels / L.sizeMultiple + 0.5) * L.sizeMultiple);
}

QLabel* newProblemLabel(QWidget* parent, const char* name) {
    auto* label = new QLabel(parent);
    label->setObjectName(QString::fromLatin1(name));
    label->setWordWrap(true);
    label->setStyleSheet(QStringLiteral("color: #c62828;"));
    label->setVisible(false);
    return label;
}

QString seedProblem(const QString& text) {
    if (text.trimmed().isEmpty() || koala::parseSeed(text.toStdString())) return {};
    return PromptPanel::tr("Seed \"%1\" is not a seed: use a whole number from %2 to %3.")
        .arg(text.trimmed())
        .arg(L.minSeed)
        .arg(L.maxSeed);
}

QString modelLabel(const ModelEntry& entry) {
    if (entry.unetShape.isEmpty() || (entry.unetShape == QLatin1String("custom")) ||
        entry.displayName.contains(entry.unetShape))
        return entry.displayName;
    return QStringLiteral("%1 (%2)").arg(entry.displayName, entry.unetShape);
}
}  // namespace

void PromptPanel::buildLayout(QWidget* addModel) {
    auto* modelRow = new QHBoxLayout;
    modelRow->addWidget(m_model, 1);
    modelRow->addWidget(addModel);
    m_model->setMinimumContentsLength(12);
    m_model->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
    m_size->setMinimumContentsLength(8);
    m_size->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
    auto* seedRow = new QHBoxLayout;
    seedRow->addWidget(m_seed, 1);
    seedRow->addWidget(m_dice);
    seedRow->addWidget(m_randomSeed);
    auto* customRow = new QHBoxLayout;
    customRow->addWidget(m_width, 1);
    customRow->addWidget(new QLabel(QStringLiteral("×"), this));
    customRow->addWidget(m_height, 1);
    // Swap and lock beside the picker (it shrinks; the boxes need their digits), so the column stays narrow.
    auto* sizeRow = new QHBoxLayout;
    sizeRow->addWidget(m_size, 1);
    sizeRow->addWidget(m_swap);
    sizeRow->addWidget(m_aspectLock);

    auto* form = new QFormLayout;
    form->addRow(tr("Model:"), modelRow);
    form->addRow(tr("Seed:"), seedRow);
    form->addRow(QString(), m_seedProblem);
    form->addRow(tr("S&teps:"), m_steps);
    form->addRow(tr("G&uidance:"), m_guidance);
    form->addRow(tr("Sc&heduler:"), m_scheduler);
    form->addRow(tr("Sp&acing:"), m_spacing);
    auto* sizeLabel = new QLabel(tr("Si&ze:"), this);
    sizeLabel->setBuddy(m_size);  // a row whose field is a layout gets no buddy from QFormLayout
    form->addRow(sizeLabel, sizeRow);
    form->addRow(QString(), customRow);
    form->addRow(QString(), m_sizeProblem);
    form->addRow(tr("&Images:"), m_count);
    form->addRow(tr("Compare &with:"), m_compareModel);

    auto* buttons = new QHBoxLayout;
    m_generate->setDefault(true);
    m_cancel->setToolTip(tr("Stop the running job (Esc)"));
    m_cancel->setEnabled(false);
    buttons->addWidget(m_generate, 2);
    buttons->addWidget(m_compare, 1);
    buttons->addWidget(m_cancel, 1);

    auto* layout = new QVBoxLayout(this);
    layout->addWidget(m_prompt, 3);
    layout->addWidget(m_negative, 2);
    layout->addLayout(form);
    layout->addWidget(m_problem);
    layout->addLayout(buttons);
}

PromptPanel::PromptPanel(QWidget* parent)
    : QWidget(parent),
      m_prompt(
          new PromptEditor(tr("&Prompt"), tr("Describe the image: a koala astronaut floating above the earth…"), this)),
      m_negative(new PromptEditor(tr("&Negative prompt"), tr("What to avoid (optional): blurry, low quality…"), this)),
      m_seed(new QLineEdit(this)),
      m_randomSeed(new QCheckBox(tr("Random per image"), this)),
      m_dice(new QToolButton(this)),
      m_steps(new QSpinBox(this)),
      m_guidance(new QDoubleSpinBox(this)),
      m_scheduler(new QComboBox(this)),
      m_spacing(new QComboBox(this)),
      m_size(new QComboBox(this)),
      m_width(new QSpinBox(this)),
      m_height(new QSpinBox(this)),
      m_swap(new QToolButton(this)),
      m_aspectLock(new QToolButton(this)),
      m_seedProblem(newProblemLabel(this, "seedProblemLabel")),
      m_sizeProblem(newProblemLabel(this, "sizeProblemLabel")),
      m_count(new QSpinBox(this)),
      m_model(new QComboBox(this)),
      m_compareModel(new QComboBox(this)),
      m_generate(new QPushButton(Icons::get(QStringLiteral("generate"), QStyle::SP_MediaPlay), tr("&Generate"), this)),
      m_compare(new QPushButton(Icons::get(QStringLiteral("compare"), QStyle::SP_FileDialogDetailedView),
                                tr("Co&mpare"), this)),
      m_cancel(new QPushButton(Icons::get(QStringLiteral("cancel"), QStyle::SP_BrowserStop), tr("Cancel"), this)),
      m_problem(new QLabel(this)),
      m_hidden(GenerationParams::defaults()) {
    m_prompt->setObjectName(QStringLiteral("promptEditor"));
    m_negative->setObjectName(QStringLiteral("negativeEditor"));
    m_seed->setObjectName(QStringLiteral("seedEdit"));
    m_randomSeed->setObjectName(QStringLiteral("randomSeedCheck"));
    m_dice->setObjectName(QStringLiteral("diceButton"));
    m_steps->setObjectName(QStringLiteral("stepsSpin"));
    m_guidance->setObjectName(QStringLiteral("guidanceSpin"));
    m_scheduler->setObjectName(QStringLiteral("schedulerCombo"));
    m_spacing->setObjectName(QStringLiteral("spacingCombo"));
    m_size->setObjectName(QStringLiteral("sizeCombo"));
    m_width->setObjectName(QStringLiteral("widthSpin"));
    m_height->setObjectName(QStringLiteral("heightSpin"));
    m_count->setObjectName(QStringLiteral("countSpin"));
    m_model->setObjectName(QStringLiteral("modelCombo"));
    m_compareModel->setObjectName(QStringLiteral("compareModelCombo"));
    m_generate->setObjectName(QStringLiteral("generateButton"));
    m_compare->setObjectName(QStringLiteral("compareButton"));
    m_cancel->setObjectName(QStringLiteral("cancelButton"));
    m_problem->setObjectName(QStringLiteral("inputProblemLabel"));

    // Seeds are any uint64 (a QSpinBox stops at 2^31). No validator: what koala::parseSeed refuses stays visible
    // and is named in the problem label rather than silently cut or changed.
    m_seed->setPlaceholderText(tr("seed"));
    m_seed->setToolTip(tr("A whole number from %1 to %2").arg(L.minSeed).arg(L.maxSeed));
    m_dice->setIcon(Icons::get(QStringLiteral("dice"), QStyle::SP_BrowserReload));
    m_dice->setToolTip(tr("Roll a new fixed seed"));
    m_randomSeed->setToolTip(tr("Draw a new random seed for every image"));

    m_steps->setRange(L.minSteps, L.maxSteps);
    m_guidance->setRange(L.minGuidance, L.maxGuidance);
    m_guidance->setSingleStep(0.5);
    m_guidance->setDecimals(2);
    m_guidance->setToolTip(tr("Classifier-free guidance scale; 1 or less turns guidance off"));
    // Readable names; the engine id (what presets and metadata store) is the item data.
    for (const QString& name : GenerationParams::schedulerNames()) {
        m_scheduler->addItem(GenerationParams::schedulerDisplayName(name), name);
        m_scheduler->setItemData(m_scheduler->count() - 1, name, Qt::ToolTipRole);
    }
    for (const QString& name : GenerationParams::spacingNames()) m_spacing->addItem(spacingLabel(name), name);
    m_spacing->setToolTip(tr("Where the sampling steps fall; \"trailing\" is what few-step (Lightning) models need"));

    // The SDXL training buckets (KOALA, SDXL, SSD-1B, Vega), then the Stable Diffusion 1.5 / 2.x sizes.
    for (const QSize& s : GenerationParams::aspectBuckets())
        m_size->addItem(tr("%1 × %2 · SDXL").arg(s.width()).arg(s.height()), sizeKey(s.width(), s.height()));
    m_size->insertSeparator(m_size->count());
    for (const QSize& s : GenerationParams::sdBuckets())
        m_size->addItem(tr("%1 × %2 · SD 1.5/2.x").arg(s.width()).arg(s.height()), sizeKey(s.width(), s.height()));
    m_size->insertSeparator(m_size->count());
    m_size->addItem(tr("Custom…"), CustomSize);
    m_size->setToolTip(
        tr("SDXL-family models (KOALA) are trained at about 1024² pixels, SD 1.5 at 512², SD 2.x at "
           "768²; the boxes below take any other size"));
    for (QSpinBox* spin : {m_width, m_height}) {
        // The VAE downsamples by 8: other sizes cannot be represented in latent space. The arrows step through the
        // usual 512..1536 range by 64; any multiple of 8 the engine runs can be typed.
        spin->setRange(0, TypableSize);
        spin->setSingleStep(GenerationParams::kSizeStep);
        spin->setSuffix(QStringLiteral(" px"));
        spin->setToolTip(tr("Usually %1 to %2 in steps of %3; any multiple of %4 from %5 to %6 runs")
                             .arg(GenerationParams::kMinPickedSize)
                             .arg(GenerationParams::kMaxPickedSize)
                             .arg(GenerationParams::kSizeStep)
                             .arg(L.sizeMultiple)
                             .arg(L.minSize)
                             .arg(L.maxSize));
    }
    m_swap->setObjectName(QStringLiteral("swapSizeButton"));
    m_swap->setText(QStringLiteral("⇄"));
    m_swap->setToolTip(tr("Swap width and height"));
    m_aspectLock->setObjectName(QStringLiteral("aspectLockButton"));
    m_aspectLock->setText(tr("Lock"));
    m_aspectLock->setCheckable(true);
    m_aspectLock->setToolTip(tr("Keep the aspect ratio: changing one side changes the other"));
    m_count->setRange(L.minImages, GenerationParams::kMaxCount);
    m_problem->setWordWrap(true);
    m_problem->setStyleSheet(QStringLiteral("color: #c62828;"));
    m_problem->setVisible(false);
    m_scheduler->setToolTip(tr("The sampler; \"model default\" is the one the model's scheduler_config.json names"));
    m_compareModel->setToolTip(tr("Second model for Compare (the same request on both)"));

    auto* addModel = new QToolButton(this);
    addModel->setObjectName(QStringLiteral("addModelButton"));
    addModel->setIcon(Icons::get(QStringLiteral("folder-add"), QStyle::SP_DirOpenIcon));
    addModel->setToolTip(tr("Add model folder…"));
    buildLayout(addModel);

    connect(m_generate, &QPushButton::clicked, this, &PromptPanel::generateRequested);
    connect(m_compare, &QPushButton::clicked, this, &PromptPanel::compareRequested);
    connect(m_cancel, &QPushButton::clicked, this, &PromptPanel::cancelRequested);
    connect(addModel, &QToolButton::clicked, this, &PromptPanel::addModelFolderRequested);
    connect(m_dice, &QToolButton::clicked, this, [this]() { setSeed(koala::randomSeed()); });
    connect(m_randomSeed, &QCheckBox::toggled, this, &PromptPanel::updateSeedEnabled);
    connect(m_size, &QComboBox::currentIndexChanged, this, &PromptPanel::onSizeChanged);
    connect(m_seed, &QLineEdit::textChanged, this, &PromptPanel::updateInputState);
    connect(m_width, &QSpinBox::valueChanged, this, [this]() { onSizeEdited(true); });
    connect(m_height, &QSpinBox::valueChanged, this, [this]() { onSizeEdited(false); });
    connect(m_swap, &QToolButton::clicked, this, &PromptPanel::swapSize);
    connect(m_aspectLock, &QToolButton::toggled, this, &PromptPanel::setAspectLocked);
    for (QSpinBox* spin : {m_steps, m_count})
        connect(spin, &QSpinBox::valueChanged, this, &PromptPanel::updateInputState);
    connect(m_model, &QComboBox::currentIndexChanged, this, [this]() {
        updateDefaultSchedulerLabel();
        updateInputState();
        emit modelChanged(currentModelPath());
    });
    connect(m_compareModel, &QComboBox::currentIndexChanged, this, &PromptPanel::updateInputState);

    setParams(GenerationParams::defaults());
}

GenerationParams PromptPanel::params() const {
    GenerationParams p = m_hidden;
    p.modelPath = currentModelPath();
    p.modelPath2 = compareModelPath();
    if (m_model->currentIndex() >= 0) p.modelName = m_models.value(m_model->currentIndex()).displayName;
    p.prompt = m_prompt->text();
    p.negativePrompt = m_negative->text();
    p.hasNegative = !p.negativePrompt.isEmpty();
    p.seed.reset();
    if (!m_randomSeed->isChecked()) {
        if (const std::optional<std::uint64_t> seed = koala::parseSeed(m_seed->text().toStdString())) p.seed = *seed;
    }
    p.steps = m_steps->value();
    p.guidance = m_guidance->value();
    p.scheduler = m_scheduler->currentData().toString();
    p.spacing = m_spacing->currentData().toString();
    p.width = m_width->value();
    p.height = m_height->value();
    p.count = m_count->value();
    return p;
}

void PromptPanel::setParams(const GenerationParams& params) {
    m_hidden = params;
    m_prompt->setText(params.prompt);
    m_negative->setText(params.hasNegative ? params.negativePrompt : QString());
    if (params.seed) {
        m_seed->setText(QString::number(*params.seed));
        m_randomSeed->setChecked(false);
    } else {
        m_randomSeed->setChecked(true);
    }
    updateSeedEnabled();
    m_steps->setValue(params.steps);
    m_guidance->setValue(params.guidance);
    const int schedulerIndex = m_scheduler->findData(params.scheduler);
    m_scheduler->setCurrentIndex((schedulerIndex >= 0) ? schedulerIndex : 0);
    const int spacingIndex = m_spacing->findData(params.spacing);
    m_spacing->setCurrentIndex((spacingIndex >= 0) ? spacingIndex : 0);

    {
        // Exactly the given size: the aspect lock does not bend it.
        m_applyingSize = true;
        m_width->setValue(params.width);
        m_height->setValue(params.height);
        m_applyingSize = false;
        syncSizePicker();
        if (isAspectLocked() && params.height > 0) m_lockedRatio = double(params.width) / params.height;
    }
    m_count->setValue(params.count);

    if (!params.modelPath.isEmpty() && (m_model->findData(params.modelPath) >= 0))
        selectModel(params.modelPath);
    else if (!params.modelName.isEmpty())
        selectModelByHint(params.modelName);
    if (!params.modelPath2.isEmpty() && (m_compareModel->findData(params.modelPath2) >= 0))
        selectModel(params.modelPath2, true);
    updateInputState();
}

void PromptPanel::setModels(const QList<ModelEntry>& models) {
    const QString previous = currentModelPath();
    const QString previous2 = compareModelPath();
    m_models = models;
    const QSignalBlocker blocker(m_model);
    m_model->clear();
    m_compareModel->clear();
    for (const ModelEntry& entry : models) {
        m_model->addItem(modelLabel(entry), entry.path);
        m_model->setItemData(m_model->count() - 1, entry.path, Qt::ToolTipRole);
        m_compareModel->addItem(modelLabel(entry), entry.path);
    }
    if (!previous.isEmpty()) selectModel(previous);
    if (!previous2.isEmpty()) {
        selectModel(previous2, true);
    } else if (models.size() > 1) {
        // The comparison users ask for first: KOALA-700M against KOALA-1B, else simply another model.
        if (!(selectModelByHint(QStringLiteral("koala-700m")) && selectModelByHint(QStringLiteral("koala-1b"), true)))
            m_compareModel->setCurrentIndex((m_model->currentIndex() + 1) % models.size());
    }
    updateDefaultSchedulerLabel();
    updateInputState();
    emit modelChanged(currentModelPath());
}

QList<ModelEntry> PromptPanel::models() const { return m_models; }

bool PromptPanel::selectModelByHint(const QString& hint, const bool secondModel) {
    if (hint.isEmpty()) return false;
    for (int i = 0; i < m_models.size(); ++i) {
        const ModelEntry& entry = m_models[i];
        if (entry.displayName.contains(hint, Qt::CaseInsensitive) ||
            (entry.unetShape.compare(hint, Qt::CaseInsensitive) == 0) ||
            entry.repoId.contains(hint, Qt::CaseInsensitive)) {
            (secondModel ? m_compareModel : m_model)->setCurrentIndex(i);
            return true;
        }
    }
    return false;
}

void PromptPanel::selectModel(const QString& path, const bool secondModel) {
    QComboBox* combo = secondModel ? m_compareModel : m_model;
    const int index = combo->findData(path);
    if (index >= 0) combo->setCurrentIndex(index);
}

QString PromptPanel::currentModelPath() const { return m_model->currentData().toString(); }

QString PromptPanel::compareModelPath() const { return m_compareModel->currentData().toString(); }

void PromptPanel::setSeed(const quint64 seed) {
    m_seed->setText(QString::number(seed));
    m_randomSeed->setChecked(false);
    updateSeedEnabled();
}

void PromptPanel::setTokenCounter(const PromptEditor::TokenCounter& counter, const bool exact) {
    m_prompt->setTokenCounter(counter, exact);
    m_negative->setTokenCounter(counter, exact);
}

void PromptPanel::setBusy(const bool busy) { m_cancel->setEnabled(busy); }

PromptEditor* PromptPanel::promptEditor() const { return m_prompt; }

PromptEditor* PromptPanel::negativeEditor() const { return m_negative; }

void PromptPanel::onSizeChanged() {
    const QStringList wh = m_size->currentData().toString().split(QLatin1Char('x'));
    if (wh.size() != 2) return;  // "Custom…": the boxes keep what they have
    // A picked size is taken as it is; the lock then keeps its ratio.
    m_applyingSize = true;
    m_width->setValue(wh[0].toInt());
    m_height->setValue(wh[1].toInt());
    m_applyingSize = false;
    if (m_height->value() > 0) m_lockedRatio = double(m_width->value()) / m_height->value();
    updateInputState();
}

void PromptPanel::onSizeEdited(const bool widthEdited) {
    if (m_applyingSize) return;
    if (isAspectLocked() && m_lockedRatio > 0) {
        m_applyingSize = true;
        if (widthEdited)
            m_height->setValue(qMin(TypableSize, roundToSizeMultiple(m_width->value() / m_lockedRatio)));
        else
            m_width->setValue(qMin(TypableSize, roundToSizeMultiple(m_height->value() * m_lockedRatio)));
        m_applyingSize = false;
    }
    syncSizePicker();
    updateInputState();
}

void PromptPanel::syncSizePicker() {
    const int index = m_size->findData(sizeKey(m_width->value(), m_height->value()));
    const QSignalBlocker blocker(m_size);
    m_size->setCurrentIndex((index >= 0) ? index : m_size->findData(CustomSize));
}

void PromptPanel::swapSize() {
    const int w = m_width->value(), h = m_height->value();
    m_applyingSize = true;
    m_width->setValue(h);
    m_height->setValue(w);
    m_applyingSize = false;
    if (w > 0) m_lockedRatio = double(h) / w;
    syncSizePicker();
    updateInputState();
}

void PromptPanel::setAspectLocked(const bool locked) {
    if (m_aspectLock->isChecked() != locked) m_aspectLock->setChecked(locked);  // comes back here through toggled
    if (locked && m_height->value() > 0) m_lockedRatio = double(m_width->value()) / m_height->value();
}

bool PromptPanel::isAspectLocked() const { return m_aspectLock->isChecked(); }

void PromptPanel::updateDefaultSchedulerLabel() {
    const int index = m_model->currentIndex();
    const QString modelDefault = (index >= 0) ? m_models.value(index).defaultScheduler : QString();
    const int item = m_scheduler->findData(QStringLiteral("default"));
    if (item < 0) return;
    if (modelDefault.isEmpty() || modelDefault == QLatin1String("default")) {
        m_scheduler->setItemText(item, tr("model default"));
        m_scheduler->setItemData(item, tr("The model's own scheduler"), Qt::ToolTipRole);
    } else {
        m_scheduler->setItemText(item,
                                 tr("model default (%1)").arg(GenerationParams::schedulerDisplayName(modelDefault)));
        m_scheduler->setItemData(
            item, tr("The scheduler this model's scheduler_config.json names (%1)").arg(modelDefault), Qt::ToolTipRole);
    }
}

void PromptPanel::updateSeedEnabled() {
    m_seed->setEnabled(!m_randomSeed->isChecked());
    updateInputState();
}

QString PromptPanel::inputProblem() const {
    if (!m_randomSeed->isChecked()) {
        if (const QString seed = seedProblem(m_seed->text()); !seed.isEmpty()) return seed;
    }
    return params().validate();
}

QString PromptPanel::generateBlockedReason() const {
    if (m_models.isEmpty()) return tr("Add a model first (Models → Model manager…, or Add model folder…)");
    return inputProblem();
}

void PromptPanel::updateInputState() {
    const QString problem = inputProblem();
    // Beside the field it is about, as it is typed (ux-review 14); the line above the buttons takes the rest (a seed
    // range that would pass 2^64-1, a missing init image, ...). Generate's tooltip names whichever it is.
    QString seed = m_randomSeed->isChecked() ? QString() : seedProblem(m_seed->text());
    // A fixed seed must leave room for every image of the job (the engine's seedRunFits), said beside the seed too.
    if (seed.isEmpty() && !m_randomSeed->isChecked()) {
        const std::optional<std::uint64_t> first = koala::parseSeed(m_seed->text().toStdString());
        if (first && !koala::seedRunFits(*first, std::uint64_t(m_count->value())))
            seed = tr("Seed %1 leaves no room for %2 images (the seeds count up from it and stop at %3).")
                       .arg(*first)
                       .arg(m_count->value())
                       .arg(L.maxSeed);
    }
    m_seedProblem->setText(seed);
    m_seedProblem->setVisible(!seed.isEmpty());
    const QString size = GenerationParams::sizeProblem(m_width->value(), m_height->value());
    m_sizeProblem->setText(size);
    m_sizeProblem->setVisible(!size.isEmpty());
    const bool shownBeside = (!seed.isEmpty() && (problem == seed || problem.startsWith(QStringLiteral("Seed ")))) ||
                             (!size.isEmpty() && problem == size);
    m_problem->setText(shownBeside ? QString() : problem);
    m_problem->setVisible(!shownBeside && !problem.isEmpty());
    // Both line edits mark what is wrong.
    const QString invalid = QStringLiteral("QLineEdit, QSpinBox { border: 1px solid #c62828; }");
    m_seed->setStyleSheet(seed.isEmpty() ? QString() : invalid);
    for (QSpinBox* spin : {m_width, m_height})
        spin->setStyleSheet((!size.isEmpty() && !koala::validSize(spin->value())) ? invalid : QString());
    const QString blocked = generateBlockedReason();
    m_generate->setEnabled(blocked.isEmpty());
    m_generate->setToolTip(blocked.isEmpty() ? tr("Queue this request (Ctrl+Return)")
                                             : tr("Cannot generate: %1").arg(blocked));
    // ux-review 8: the same model on both sides (e.g. restored from the last session) is not a comparison.
    const bool twoModels = m_models.size() > 1 && currentModelPath() != compareModelPath();
    m_compare->setEnabled(twoModels && problem.isEmpty());
    m_compare->setToolTip(twoModels || m_models.size() < 2
                              ? tr("Run the same request on both models and show them side by side")
                              : tr("Choose a different model in \"Compare with\" to compare"));
}
