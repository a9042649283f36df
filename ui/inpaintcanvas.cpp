#include "inpaintcanvas.h"
#include "AtomicFile.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include <QAction>
#include <QActionGroup>
#include <QBuffer>
#include <QDialogButtonBox>
#include <QHBoxLayout>
#include <QImageWriter>
#include <QKeySequence>
#include <QLabel>
#include <QMouseEvent>
#include <QPainter>
#include <QPushButton>
#include <QShortcut>
#include <QSlider>
#include <QToolButton>
#include <QUndoCommand>
#include <QUndoStack>
#include <QVBoxLayout>
#include <QWheelEvent>

// One mask edit: the changed rectangle before and after. The first redo() is the edit itself, already applied.
class MaskEditCommand final : public QUndoCommand {
public:
    MaskEditCommand(InpaintCanvas* canvas, const QString& text, const QRect& rect, QImage before, QImage after)
        : QUndoCommand(text), m_canvas(canvas), m_rect(rect), m_before(std::move(before)), m_after(std::move(after)) {}

    void undo() override { m_canvas->putRegion(m_rect, m_before); }
    void redo() override {
        if (m_applied) m_canvas->putRegion(m_rect, m_after);
        m_applied = true;
    }

private:
    InpaintCanvas* m_canvas;
    QRect m_rect;
    QImage m_before, m_after;
    bool m_applied = false;
};

InpaintCanvas::InpaintCanvas(QWidget* parent) : QWidget(parent), m_undo(new QUndoStack(this)) {
    setObjectName(QStringLiteral("inpaintCanvas"));
    m_undo->setUndoLimit(kUndoLimit);
    setMouseTracking(true);
    setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Expanding);
    setCursor(Qt::CrossCursor);
    setFocusPolicy(Qt::StrongFocus);
}

InpaintCanvas::~InpaintCanvas() {
    // The commands point back at the canvas; drop them before the canvas members go.
    m_undo->clear();
}

void InpaintCanvas::setImage(const QImage& image) {
    m_image = image.convertToFormat(QImage::Format_RGB32);
    m_mask = QImage(m_image.size(), QImage::Format_Grayscale8);
    m_mask.fill(0);
    m_overlay = QImage(m_image.size(), QImage::Format_ARGB32_Premultiplied);
    m_overlay.fill(Qt::transparent);
    m_undo->clear();
    m_stroking = false;
    updateGeometry();
    update();
    emit maskChanged();
}

QImage InpaintCanvas::image() const { return m_image; }

void InpaintCanvas::setMask(const QImage& mask) {
    if (m_image.isNull()) return;
    QImage grey = mask.isNull() ? QImage() : mask.convertToFormat(QImage::Format_Grayscale8);
    if (grey.isNull()) {
        grey = QImage(m_image.size(), QImage::Format_Grayscale8);
        grey.fill(0);
    } else if (grey.size() != m_image.size()) {
        grey = grey.scaled(m_image.size(), Qt::IgnoreAspectRatio, Qt::SmoothTransformation);
    }
    m_mask = grey;
    m_undo->clear();
    refreshOverlay(m_mask.rect());
    update();
    emit maskChanged();
}

QImage InpaintCanvas::mask() const { return m_mask; }

bool InpaintCanvas::isMaskEmpty() const {
    for (int y = 0; y < m_mask.height(); ++y) {
        const uchar* row = m_mask.constScanLine(y);
        if (std::any_of(row, row + m_mask.width(), [](uchar v) { return v != 0; })) return false;
    }
    return true;
}

bool InpaintCanvas::saveMask(const QString& path, QString* error) const {
    QByteArray png;
    QBuffer buffer(&png);
    buffer.open(QIODevice::WriteOnly);
    QImageWriter writer(&buffer, "png");
    if (!writer.write(m_mask)) {
        if (error) *error = tr("Cannot encode the mask %1: %2").arg(path, writer.errorString());
        return false;
    }
    QString why;
    if (!writeFileAtomically(path, png, &why)) {
        if (error) *error = tr("Cannot write the mask: %1").arg(why);
        return false;
    }
    return true;
}

void InpaintCanvas::setTool(Tool tool) { m_tool = tool; }
InpaintCanvas::Tool InpaintCanvas::tool() const { return m_tool; }

void InpaintCanvas::setBrushSize(int diameter) {
    diameter = std::clamp(diameter, kMinBrush, kMaxBrush);
    if (diameter == m_brushSize) return;
    m_brushSize = diameter;
    update();
    emit brushSizeChanged(diameter);
}

int InpaintCanvas::brushSize() const { return m_brushSize; }
void InpaintCanvas::setHardness(double hardness) { m_hardness = std::clamp(hardness, 0.0, 1.0); }
double InpaintCanvas::hardness() const { return m_hardness; }

void InpaintCanvas::setOverlayColor(const QColor& color) {
    m_overlayColor = color;
    refreshOverlay(m_mask.rect());
    update();
}

QColor InpaintCanvas::overlayColor() const { return m_overlayColor; }
QUndoStack* InpaintCanvas::undoStack() const { return m_undo; }

void InpaintCanvas::beginStroke(const QPointF& imagePos, Tool tool) {
    if (m_image.isNull()) return;
    if (m_stroking) endStroke();
    m_stroking = true;
    m_strokeTool = tool;
    m_strokeBefore = m_mask.copy();
    m_strokeRect = QRect();
    m_lastPos = imagePos;
    dab(imagePos);
}

void InpaintCanvas::strokeTo(const QPointF& imagePos) {
    if (!m_stroking) return;
    // Dabs a quarter of the radius apart: a continuous line at any speed.
    const QPointF delta = imagePos - m_lastPos;
    const double distance = std::hypot(delta.x(), delta.y());
    const double spacing = std::max(1.0, m_brushSize / 8.0);
    const int n = int(std::ceil(distance / spacing));
    for (int i = 1; i <= n; ++i) dab(m_lastPos + delta * (double(i) / n));
    m_lastPos = imagePos;
}

void InpaintCanvas::endStroke() {
    if (!m_stroking) return;
    m_stroking = false;
    if (!m_strokeRect.isEmpty())
        pushEdit(m_strokeRect, m_strokeBefore.copy(m_strokeRect),
                 m_strokeTool == Tool::Brush ? tr("Brush stroke") : tr("Eraser stroke"));
    m_strokeBefore = QImage();
}

void InpaintCanvas::clearMask() {
    if (m_mask.isNull() || isMaskEmpty()) return;
    const QImage before = m_mask.copy();
    m_mask.fill(0);
    refreshOverlay(m_mask.rect());
    pushEdit(m_mask.rect(), before, tr("Clear mask"));
    update();
    emit maskChanged();
}

void InpaintCanvas::invertMask() {
    if (m_mask.isNull()) return;
    const QImage before = m_mask.copy();
    for (int y = 0; y < m_mask.height(); ++y) {
        uchar* row = m_mask.scanLine(y);
        for (int x = 0; x < m_mask.width(); ++x) row[x] = uchar(255 - row[x]);
    }
    refreshOverlay(m_mask.rect());
    pushEdit(m_mask.rect(), before, tr("Invert mask"));
    update();
    emit maskChanged();
}

void InpaintCanvas::dab(const QPointF& c) {
    const double r = m_brushSize / 2.0;
    const double inner = r * m_hardness;
    const QRect box = QRect(QPoint(int(std::floor(c.x() - r)), int(std::floor(c.y() - r))),
                            QPoint(int(std::ceil(c.x() + r)), int(std::ceil(c.y() + r)))) &
                      m_mask.rect();
    if (box.isEmpty()) return;
    const bool brush = m_strokeTool == Tool::Brush;
    const int cx = int(std::floor(c.x())), cy = int(std::floor(c.y()));
    for (int y = box.top(); y <= box.bottom(); ++y) {
        uchar* row = m_mask.scanLine(y);
        const double dy = y + 0.5 - c.y();
        for (int x = box.left(); x <= box.right(); ++x) {
            const double dx = x + 0.5 - c.x();
            const double d = std::sqrt(dx * dx + dy * dy);
            double a = 0.0;
            if (d <= inner || (x == cx && y == cy))  // the pixel under the point always, even for a 1-pixel brush
                a = 1.0;
            else if (d < r)
                a = (r - d) / (r - inner);
            else
                continue;
            const int v = int(std::lround(std::clamp(a, 0.0, 1.0) * 255.0));
            row[x] = brush ? uchar(std::max<int>(row[x], v)) : uchar(std::min<int>(row[x], 255 - v));
        }
    }
    m_strokeRect |= box;
    refreshOverlay(box);
    const QRectF shown = imageRect();
    const double s = viewScale();
    update(QRectF(shown.topLeft() + QPointF(box.x(), box.y()) * s, QSizeF(box.width(), box.height()) * s)
               .toAlignedRect()
               .adjusted(-2, -2, 2, 2));
    emit maskChanged();
}

void InpaintCanvas::putRegion(const QRect& rect, const QImage& pixels) {
    const QRect r = rect & m_mask.rect();
    for (int y = r.top(); y <= r.bottom(); ++y)
        std::memcpy(m_mask.scanLine(y) + r.left(), pixels.constScanLine(y - rect.top()) + (r.left() - rect.left()),
                    size_t(r.width()));
    refreshOverlay(r);
    update();
    emit maskChanged();
}

void InpaintCanvas::pushEdit(const QRect& rect, const QImage& before, const QString& text) {
    m_undo->push(new MaskEditCommand(this, text, rect, before, m_mask.copy(rect)));
}

void InpaintCanvas::refreshOverlay(const QRect& rect) {
    if (m_overlay.size() != m_mask.size()) {
        m_overlay = QImage(m_mask.size(), QImage::Format_ARGB32_Premultiplied);
        m_overlay.fill(Qt::transparent);
    }
    const QRect r = rect & m_mask.rect();
    const int cr = m_overlayColor.red(), cg = m_overlayColor.green(), cb = m_overlayColor.blue();
    const int ca = m_overlayColor.alpha();
    for (int y = r.top(); y <= r.bottom(); ++y) {
        const uchar* in = m_mask.constScanLine(y);
        auto* out = reinterpret_cast<QRgb*>(m_overlay.scanLine(y));
        for (int x = r.left(); x <= r.right(); ++x) {
            const int a = in[x] * ca / 255;
            out[x] = qRgba(cr * a / 255, cg * a / 255, cb * a / 255, a);
        }
    }
}

QRectF InpaintCanvas::imageRect() const {
    if (m_image.isNull() || width() <= 0 || height() <= 0) return {};
    const double s = viewScale();
    const QSizeF size(m_image.width() * s, m_image.height() * s);
    return {QPointF((width() - size.width()) / 2.0, (height() - size.height()) / 2.0), size};
}

double InpaintCanvas::viewScale() const {
    if (m_image.isNull()) return 1.0;
    return std::min(double(width()) / m_image.width(), double(height()) / m_image.height());
}

QPointF InpaintCanvas::toImage(const QPointF& widgetPos) const {
    const QRectF r = imageRect();
    if (r.isEmpty()) return widgetPos;
    return (widgetPos - r.topLeft()) / viewScale();
}

QSize InpaintCanvas::sizeHint() const {
    if (m_image.isNull()) return {512, 512};
    return m_image.size().scaled(768, 768, Qt::KeepAspectRatio);
}

void InpaintCanvas::paintEvent(QPaintEvent*) {
    QPainter p(this);
    p.fillRect(rect(), palette().color(QPalette::Dark));
    if (m_image.isNull()) return;
    const QRectF target = imageRect();
    p.setRenderHint(QPainter::SmoothPixmapTransform, viewScale() < 1.0);
    p.drawImage(target, m_image);
    p.drawImage(target, m_overlay);
    if (m_hovering) {
        const double radius = std::max(1.0, m_brushSize / 2.0 * viewScale());
        p.setRenderHint(QPainter::Antialiasing);
        p.setBrush(Qt::NoBrush);
        p.setPen(QPen(Qt::black, 1.0));
        p.drawEllipse(m_hover, radius + 1, radius + 1);
        p.setPen(QPen(Qt::white, 1.0, m_tool == Tool::Eraser ? Qt::DashLine : Qt::SolidLine));
        p.drawEllipse(m_hover, radius, radius);
    }
}

void InpaintCanvas::mousePressEvent(QMouseEvent* event) {
    if (event->button() == Qt::LeftButton)
        beginStroke(toImage(event->position()), m_tool);
    else if (event->button() == Qt::RightButton)
        beginStroke(toImage(event->position()), Tool::Eraser);
    else
        QWidget::mousePressEvent(event);
}

void InpaintCanvas::mouseMoveEvent(QMouseEvent* event) {
    const QPointF old = m_hover;
    m_hover = event->position();
    m_hovering = true;
    if (m_stroking) strokeTo(toImage(event->position()));
    const double radius = m_brushSize / 2.0 * viewScale() + 4;
    update(QRectF(old - QPointF(radius, radius), QSizeF(2 * radius, 2 * radius)).toAlignedRect());
    update(QRectF(m_hover - QPointF(radius, radius), QSizeF(2 * radius, 2 * radius)).toAlignedRect());
}

void InpaintCanvas::mouseReleaseEvent(QMouseEvent* event) {
    if (event->button() == Qt::LeftButton || event->button() == Qt::RightButton) endStroke();
}

void InpaintCanvas::wheelEvent(QWheelEvent* event) {
    // The wheel sizes the brush (about 10% a notch), as in most painting programs.
    const double notches = event->angleDelta().y() / 120.0;
    if (notches == 0.0) return;
    const int next = int(std::lround(m_brushSize * std::pow(1.1, notches)));
    setBrushSize(next == m_brushSize ? m_brushSize + (notches > 0 ? 1 : -1) : next);
    event->accept();
}

void InpaintCanvas::leaveEvent(QEvent*) {
    m_hovering = false;
    update();
}

// ---- InpaintDialog ---------------------------------------------------------------------------------------------

InpaintDialog::InpaintDialog(const QImage& image, const QImage& mask, QWidget* parent)
    : QDialog(parent),
      m_canvas(new InpaintCanvas(this)),
      m_size(new QSlider(Qt::Horizontal, this)),
      m_hardness(new QSlider(Qt::Horizontal, this)),
      m_sizeLabel(new QLabel(this)),
      m_hardnessLabel(new QLabel(this)) {
    setWindowTitle(tr("Inpaint: paint what to repaint"));
    setObjectName(QStringLiteral("inpaintDialog"));
    m_canvas->setImage(image);
    if (!mask.isNull()) m_canvas->setMask(mask);

    auto* tools = new QActionGroup(this);
    auto makeTool = [&](const QString& text, const QString& key, InpaintCanvas::Tool tool, const char* name) {
        auto* action = new QAction(text, tools);
        action->setCheckable(true);
        action->setShortcut(QKeySequence(key));
        action->setToolTip(tr("%1 (%2)").arg(text, key));
        action->setObjectName(QLatin1String(name));
        connect(action, &QAction::triggered, m_canvas, [this, tool]() { m_canvas->setTool(tool); });
        auto* button = new QToolButton(this);
        button->setDefaultAction(action);
        addAction(action);
        return button;
    };
    QToolButton* brush = makeTool(tr("Brush"), QStringLiteral("B"), InpaintCanvas::Tool::Brush, "brushAction");
    QToolButton* eraser = makeTool(tr("Eraser"), QStringLiteral("E"), InpaintCanvas::Tool::Eraser, "eraserAction");
    brush->defaultAction()->setChecked(true);

    m_size->setObjectName(QStringLiteral("brushSizeSlider"));
    m_size->setRange(InpaintCanvas::kMinBrush, InpaintCanvas::kMaxBrush);
    m_size->setValue(m_canvas->brushSize());
    m_size->setToolTip(tr("Brush size in image pixels ([ and ], or the mouse wheel)"));
    m_sizeLabel->setText(tr("Size %1").arg(m_canvas->brushSize()));
    connect(m_size, &QSlider::valueChanged, m_canvas, &InpaintCanvas::setBrushSize);
    connect(m_canvas, &InpaintCanvas::brushSizeChanged, this, [this](int d) {
        m_size->setValue(d);
        m_sizeLabel->setText(tr("Size %1").arg(d));
    });
    m_hardness->setObjectName(QStringLiteral("hardnessSlider"));
    m_hardness->setRange(0, 100);
    m_hardness->setValue(int(std::lround(m_canvas->hardness() * 100)));
    m_hardness->setToolTip(tr("100%: a hard edge; lower: the edge fades out over more of the radius"));
    m_hardnessLabel->setText(tr("Hardness %1%").arg(m_hardness->value()));
    connect(m_hardness, &QSlider::valueChanged, this, [this](int v) {
        m_canvas->setHardness(v / 100.0);
        m_hardnessLabel->setText(tr("Hardness %1%").arg(v));
    });
    auto* smaller = new QShortcut(QKeySequence(Qt::Key_BracketLeft), this);
    connect(smaller, &QShortcut::activated, this,
            [this]() { m_canvas->setBrushSize(int(std::lround(m_canvas->brushSize() / 1.25))); });
    auto* larger = new QShortcut(QKeySequence(Qt::Key_BracketRight), this);
    connect(larger, &QShortcut::activated, this,
            [this]() { m_canvas->setBrushSize(int(std::lround(m_canvas->brushSize() * 1.25)) + 1); });

    QAction* undo = m_canvas->undoStack()->createUndoAction(this, tr("Undo"));
    undo->setShortcut(QKeySequence::Undo);
    QAction* redo = m_canvas->undoStack()->createRedoAction(this, tr("Redo"));
    redo->setShortcut(QKeySequence::Redo);
    addAction(undo);
    addAction(redo);
    auto* undoButton = new QToolButton(this);
    undoButton->setDefaultAction(undo);
    auto* redoButton = new QToolButton(this);
    redoButton->setDefaultAction(redo);
    auto* clear = new QToolButton(this);
    clear->setText(tr("Clear"));
    clear->setToolTip(tr("Clear the mask: nothing is repainted"));
    connect(clear, &QToolButton::clicked, m_canvas, &InpaintCanvas::clearMask);
    auto* invert = new QToolButton(this);
    invert->setText(tr("Invert"));
    invert->setToolTip(tr("Swap what is kept and what is repainted"));
    connect(invert, &QToolButton::clicked, m_canvas, &InpaintCanvas::invertMask);

    auto* bar = new QHBoxLayout;
    bar->addWidget(brush);
    bar->addWidget(eraser);
    bar->addSpacing(12);
    bar->addWidget(m_sizeLabel);
    bar->addWidget(m_size, 2);
    bar->addWidget(m_hardnessLabel);
    bar->addWidget(m_hardness, 1);
    bar->addSpacing(12);
    bar->addWidget(undoButton);
    bar->addWidget(redoButton);
    bar->addWidget(clear);
    bar->addWidget(invert);

    auto* hint = new QLabel(tr("Paint the area to repaint (tinted). Left button: the tool; right button: eraser; "
                               "wheel: brush size."),
                            this);
    hint->setWordWrap(true);
    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, this);
    QPushButton* ok = buttons->button(QDialogButtonBox::Ok);
    ok->setText(tr("Use this mask"));
    connect(buttons, &QDialogButtonBox::accepted, this, &QDialog::accept);
    connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
    auto updateOk = [this, ok]() { ok->setEnabled(!m_canvas->isMaskEmpty()); };
    connect(m_canvas, &InpaintCanvas::maskChanged, this, updateOk);
    updateOk();

    auto* layout = new QVBoxLayout(this);
    layout->addLayout(bar);
    layout->addWidget(m_canvas, 1);
    layout->addWidget(hint);
    layout->addWidget(buttons);
    m_canvas->setFocus();
}

InpaintCanvas* InpaintDialog::canvas() const { return m_canvas; }
QImage InpaintDialog::mask() const { return m_canvas->mask(); }
