#include "initimagepanel.h"

#include <cmath>

#include <QBuffer>
#include <QCryptographicHash>
#include <QDir>
#include <QDoubleSpinBox>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QMimeData>
#include <QPainter>
#include <QPushButton>
#include <QSlider>
#include <QSpinBox>
#include <QUrl>
#include <QVBoxLayout>

#include "AtomicFile.h"
#include "EngineWorker.h"
#include "inpaintcanvas.h"

namespace {

constexpr const koala::Limits& L = koala::kLimits;
constexpr double kMinStrength = 0.01;
constexpr int kSliderScale = 10000;  // slider steps per 1.0: 0.9999, the inpainting default, is one of them
constexpr int kThumbnail = 160;

bool isImageFile(const QString& path) {
    const QString suffix = QFileInfo(path).suffix().toLower();
    return suffix == QLatin1String("png") || suffix == QLatin1String("jpg") || suffix == QLatin1String("jpeg");
}

}  // namespace

InitImagePanel::InitImagePanel(QWidget* parent)
    : QWidget(parent),
      m_thumbnail(new QLabel(this)),
      m_info(new QLabel(this)),
      m_strengthSlider(new QSlider(Qt::Horizontal, this)),
      m_strength(new QDoubleSpinBox(this)),
      m_maskBlur(new QSpinBox(this)),
      m_open(new QPushButton(tr("&Open…"), this)),
      m_inpaint(new QPushButton(tr("&Inpaint…"), this)),
      m_clear(new QPushButton(tr("Clear"), this)) {
    setObjectName(QStringLiteral("initImagePanel"));
    m_thumbnail->setObjectName(QStringLiteral("initImageThumbnail"));
    m_info->setObjectName(QStringLiteral("initImageInfo"));
    m_strengthSlider->setObjectName(QStringLiteral("strengthSlider"));
    m_strength->setObjectName(QStringLiteral("strengthSpin"));
    m_maskBlur->setObjectName(QStringLiteral("maskBlurSpin"));
    m_inpaint->setObjectName(QStringLiteral("inpaintButton"));
    m_clear->setObjectName(QStringLiteral("clearInitImageButton"));
    setAcceptDrops(true);

    m_thumbnail->setFixedSize(kThumbnail, kThumbnail);
    m_thumbnail->setAlignment(Qt::AlignCenter);
    m_thumbnail->setFrameShape(QFrame::StyledPanel);
    m_info->setWordWrap(true);
    m_info->setTextInteractionFlags(Qt::TextSelectableByMouse);

    m_strength->setRange(kMinStrength, L.maxStrength);
    m_strength->setDecimals(4);
    m_strength->setSingleStep(0.05);
    m_strength->setToolTip(
        tr("How much of the image is repainted: low keeps it close to the original, 1 replaces "
           "it (steps run: steps × strength)"));
    m_strengthSlider->setRange(int(std::lround(kMinStrength * kSliderScale)), int(L.maxStrength * kSliderScale));
    m_strengthSlider->setToolTip(m_strength->toolTip());
    connect(m_strengthSlider, &QSlider::valueChanged, this, [this](int v) {
        if (m_settingStrength) return;
        m_strength->setValue(double(v) / kSliderScale);
    });
    connect(m_strength, &QDoubleSpinBox::valueChanged, this, [this](double v) {
        const bool wasSetting = m_settingStrength;
        m_settingStrength = true;
        m_strengthSlider->setValue(int(std::lround(v * kSliderScale)));
        m_settingStrength = wasSetting;
        if (!wasSetting) m_strengthChosen = true;
        emit changed();
    });
    m_maskBlur->setRange(0, L.maxMaskBlur);
    m_maskBlur->setValue(koala::defaultRequest().maskBlur);
    m_maskBlur->setSuffix(tr(" px"));
    m_maskBlur->setToolTip(tr("Blurs the mask's edge before it is used (AUTOMATIC1111's \"Mask blur\")"));
    connect(m_maskBlur, &QSpinBox::valueChanged, this, &InitImagePanel::changed);

    connect(m_open, &QPushButton::clicked, this, &InitImagePanel::chooseFile);
    connect(m_inpaint, &QPushButton::clicked, this, &InitImagePanel::editMask);
    connect(m_clear, &QPushButton::clicked, this, &InitImagePanel::clear);
    m_open->setToolTip(tr("Use a PNG or JPEG file as the init image (or drop one here)"));
    m_inpaint->setToolTip(tr("Paint the area to repaint"));
    m_clear->setToolTip(tr("Back to text-to-image"));

    auto* buttons = new QVBoxLayout;
    buttons->addWidget(m_open);
    buttons->addWidget(m_inpaint);
    buttons->addWidget(m_clear);
    buttons->addStretch(1);
    auto* top = new QHBoxLayout;
    top->addWidget(m_thumbnail);
    top->addLayout(buttons);
    auto* strengthRow = new QHBoxLayout;
    strengthRow->addWidget(m_strengthSlider, 1);
    strengthRow->addWidget(m_strength);
    auto* form = new QFormLayout;
    form->addRow(tr("&Strength"), strengthRow);
    form->addRow(tr("Mask &blur"), m_maskBlur);

    auto* box = new QGroupBox(tr("Init image (img2img / inpainting)"), this);
    auto* boxLayout = new QVBoxLayout(box);
    boxLayout->addLayout(top);
    boxLayout->addWidget(m_info);
    boxLayout->addLayout(form);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(box);

    applyModeDefault();
    updateView();
}

void InitImagePanel::setMaskFolder(const QString& folder) { m_maskFolder = folder; }
QString InitImagePanel::maskFolder() const { return m_maskFolder; }

bool InitImagePanel::setInitImage(const QString& path, QString* error) {
    // Decoded by the engine, as the generation will read it: one decoder and one set of limits (PIL's bomb limit,
    // truncated files refused, the pixels as stored), and none of Qt's libpng allocating what a chunk claims.
    QImage image;
    QString why;
    try {
        image = EngineWorker::toQImage(koala::readImage(QFile::encodeName(path).toStdString()));
    } catch (const koala::Error& e) {
        why = QString::fromStdString(e.what());
    } catch (const std::bad_alloc&) {
        why = tr("there is not enough memory to read it");
    }
    const QString hash = image.isNull() ? QString() : GenerationParams::shortFileHash(path);
    if (image.isNull() || hash.isEmpty()) {
        if (error)
            *error = tr("Cannot use %1 as the init image: %2")
                         .arg(QFileInfo(path).fileName(), image.isNull() ? why : tr("the file cannot be read"));
        return false;
    }
    m_path = QFileInfo(path).absoluteFilePath();
    m_hash = hash;
    m_image = image;
    m_mask = QImage();
    m_maskPath.clear();
    m_maskHash.clear();
    applyModeDefault();
    updateView();
    emit changed();
    return true;
}

QString InitImagePanel::initImagePath() const { return m_path; }
bool InitImagePanel::hasInitImage() const { return !m_path.isEmpty(); }
QImage InitImagePanel::initImage() const { return m_image; }

bool InitImagePanel::setMask(const QImage& mask, QString* error) {
    auto fail = [error](const QString& message) {
        if (error) *error = message;
        return false;
    };
    if (!hasInitImage()) return fail(tr("A mask needs an init image"));
    QImage grey = mask.convertToFormat(QImage::Format_Grayscale8);
    if (grey.size() != m_image.size())
        grey = grey.scaled(m_image.size(), Qt::IgnoreAspectRatio, Qt::SmoothTransformation);
    bool any = false;
    for (int y = 0; y < grey.height() && !any; ++y) {
        const uchar* row = grey.constScanLine(y);
        for (int x = 0; x < grey.width(); ++x) any = any || row[x] != 0;
    }
    if (!any) {
        clearMask();
        return true;
    }
    // Named by its content: the same mask painted twice is one file, and the name is its hash.
    QByteArray png;
    QBuffer buffer(&png);
    buffer.open(QIODevice::WriteOnly);
    if (!grey.save(&buffer, "PNG")) return fail(tr("Cannot encode the mask as PNG"));
    const QString hash =
        QString::fromLatin1(QCryptographicHash::hash(png, QCryptographicHash::Sha256).toHex().left(10));
    const QString folder = m_maskFolder.isEmpty() ? QDir::tempPath() : m_maskFolder;
    if (!QDir().mkpath(folder)) return fail(tr("Cannot create the mask folder %1").arg(folder));
    const QString path = QDir(folder).absoluteFilePath(QStringLiteral("mask-%1.png").arg(hash));
    if (!QFileInfo::exists(path)) {
        QString why;
        if (!writeFileAtomically(path, png, &why)) return fail(tr("Cannot save the mask: %1").arg(why));
    }
    m_mask = grey;
    m_maskPath = path;
    m_maskHash = hash;
    applyModeDefault();
    updateView();
    emit changed();
    return true;
}

bool InitImagePanel::setMaskFile(const QString& path, QString* error) {
    const QImage mask(path);
    if (mask.isNull()) {
        if (error) *error = tr("Cannot read the mask %1").arg(path);
        return false;
    }
    if (!hasInitImage()) {
        if (error) *error = tr("A mask needs an init image");
        return false;
    }
    m_mask = mask.convertToFormat(QImage::Format_Grayscale8);
    m_maskPath = QFileInfo(path).absoluteFilePath();
    m_maskHash = GenerationParams::shortFileHash(path);
    applyModeDefault();
    updateView();
    emit changed();
    return true;
}

void InitImagePanel::clearMask() {
    if (m_maskPath.isEmpty() && m_mask.isNull()) return;
    m_mask = QImage();
    m_maskPath.clear();
    m_maskHash.clear();
    applyModeDefault();
    updateView();
    emit changed();
}

QString InitImagePanel::maskPath() const { return m_maskPath; }
QImage InitImagePanel::mask() const { return m_mask; }
double InitImagePanel::strength() const { return m_strength->value(); }

void InitImagePanel::setStrength(double strength) {
    m_strength->setValue(strength);
    m_strengthChosen = true;
}

int InitImagePanel::maskBlur() const { return m_maskBlur->value(); }
void InitImagePanel::setMaskBlur(int radius) { m_maskBlur->setValue(radius); }

void InitImagePanel::clear() {
    m_path.clear();
    m_hash.clear();
    m_image = QImage();
    m_mask = QImage();
    m_maskPath.clear();
    m_maskHash.clear();
    m_strengthChosen = false;
    applyModeDefault();
    updateView();
    emit changed();
}

void InitImagePanel::applyTo(GenerationParams& params) const {
    params.clearInitImage();
    if (!hasInitImage()) return;
    params.initImagePath = m_path;
    params.initImageHash = m_hash;
    params.strength = strength();
    if (!m_maskPath.isEmpty()) {
        params.maskPath = m_maskPath;
        params.maskHash = m_maskHash;
        params.maskBlur = maskBlur();
    }
}

QString InitImagePanel::restore(const GenerationParams& params) {
    if (!params.hasInitImage()) {
        clear();
        return {};
    }
    QStringList problems;
    QString error;
    if (!setInitImage(params.initImagePath, &error)) {
        clear();
        return tr("The init image %1 is not available: %2").arg(params.initImagePath, error);
    }
    if (!params.initImageHash.isEmpty() && params.initImageHash != m_hash)
        problems << tr("%1 has changed since (hash %2, recorded %3)")
                        .arg(QFileInfo(m_path).fileName(), m_hash, params.initImageHash);
    if (params.isInpaint()) {
        if (!setMaskFile(params.maskPath, &error))
            problems << tr("the mask %1 is not available (img2img without it)").arg(params.maskPath);
        else if (!params.maskHash.isEmpty() && params.maskHash != m_maskHash)
            problems << tr("the mask %1 has changed since").arg(QFileInfo(m_maskPath).fileName());
    }
    setMaskBlur(params.maskBlur);
    if (params.strength) setStrength(*params.strength);
    return problems.join(QStringLiteral("; "));
}

bool InitImagePanel::editMask() {
    if (!hasInitImage()) {
        chooseFile();
        if (!hasInitImage()) return false;
    }
    InpaintDialog dialog(m_image, m_mask, this);
    if (dialog.exec() != QDialog::Accepted) return false;
    QString error;
    if (!setMask(dialog.mask(), &error)) {
        emit errorOccurred(error);
        return false;
    }
    return true;
}

void InitImagePanel::chooseFile() {
    const QString start = hasInitImage() ? QFileInfo(m_path).absolutePath() : QString();
    const QString path = QFileDialog::getOpenFileName(this, tr("Init image"), start, tr("Images (*.png *.jpg *.jpeg)"));
    if (path.isEmpty()) return;
    QString error;
    if (!setInitImage(path, &error)) emit errorOccurred(error);
}

void InitImagePanel::dragEnterEvent(QDragEnterEvent* event) {
    for (const QUrl& url : event->mimeData()->urls()) {
        if (url.isLocalFile() && isImageFile(url.toLocalFile())) {
            event->acceptProposedAction();
            return;
        }
    }
}

void InitImagePanel::dropEvent(QDropEvent* event) {
    for (const QUrl& url : event->mimeData()->urls()) {
        if (!url.isLocalFile() || !isImageFile(url.toLocalFile())) continue;
        QString error;
        if (!setInitImage(url.toLocalFile(), &error)) emit errorOccurred(error);
        event->acceptProposedAction();
        return;
    }
}

void InitImagePanel::applyModeDefault() {
    if (m_strengthChosen) return;
    m_settingStrength = true;
    m_strength->setValue(m_maskPath.isEmpty() ? L.defaultImg2ImgStrength : L.defaultInpaintStrength);
    m_settingStrength = false;
}

void InitImagePanel::updateView() {
    const bool has = hasInitImage();
    m_strength->setEnabled(has);
    m_strengthSlider->setEnabled(has);
    m_maskBlur->setEnabled(has && !m_maskPath.isEmpty());
    m_inpaint->setText(m_maskPath.isEmpty() ? tr("&Inpaint…") : tr("Edit &mask…"));
    m_clear->setEnabled(has);
    if (!has) {
        m_thumbnail->setPixmap({});
        m_thumbnail->setText(tr("Drop an image\nhere"));
        m_info->setText(tr("No init image: text-to-image."));
        return;
    }
    QImage shown = m_image.scaled(kThumbnail, kThumbnail, Qt::KeepAspectRatio, Qt::SmoothTransformation)
                       .convertToFormat(QImage::Format_ARGB32_Premultiplied);
    if (!m_mask.isNull()) {
        // The same tint as the canvas: the mask as the alpha of a flat colour.
        const QImage alpha = m_mask.scaled(shown.size(), Qt::IgnoreAspectRatio, Qt::SmoothTransformation)
                                 .convertToFormat(QImage::Format_Alpha8);
        QImage tint(shown.size(), QImage::Format_ARGB32_Premultiplied);
        tint.fill(QColor(255, 40, 90, 140));
        QPainter tp(&tint);
        tp.setCompositionMode(QPainter::CompositionMode_DestinationIn);
        tp.drawImage(0, 0, alpha);
        tp.end();
        QPainter p(&shown);
        p.drawImage(0, 0, tint);
    }
    m_thumbnail->setPixmap(QPixmap::fromImage(shown));
    const QString mode = m_maskPath.isEmpty()
                             ? tr("img2img: output %1 × %2").arg(m_image.width() / 8 * 8).arg(m_image.height() / 8 * 8)
                             : tr("inpainting, mask %1").arg(QFileInfo(m_maskPath).fileName());
    m_info->setText(
        tr("%1 · %2 × %3 · %4").arg(QFileInfo(m_path).fileName()).arg(m_image.width()).arg(m_image.height()).arg(mode));
    m_info->setToolTip(tr("%1\nsha256 %2…").arg(m_path, m_hash));
}
