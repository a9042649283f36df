#include "imageviewer.h"

#include <algorithm>
#include <cmath>

#include <QKeyEvent>
#include <QMouseEvent>
#include <QPainter>
#include <QPalette>
#include <QPushButton>
#include <QWheelEvent>

ImageViewer::ImageViewer(QWidget* parent) : QWidget(parent) {
    setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Expanding);
    setAutoFillBackground(true);
    setFocusPolicy(Qt::StrongFocus);
    QPalette pal = palette();
    pal.setColor(QPalette::Window, QColor(0x26, 0x26, 0x26));
    setPalette(pal);
    m_badge = new QPushButton(this);
    m_badge->setObjectName(QStringLiteral("newImageBadge"));
    m_badge->setCursor(Qt::PointingHandCursor);
    m_badge->setStyleSheet(
        QStringLiteral("QPushButton { background: #2f7de1; color: white; border: none; "
                       "border-radius: 10px; padding: 3px 12px; font-weight: bold; }"));
    m_badge->hide();
    connect(m_badge, &QPushButton::clicked, this, &ImageViewer::badgeClicked);
}

void ImageViewer::setImage(const QImage& image) {
    const bool sameSize = !m_image.isNull() && (image.size() == m_image.size());
    m_image = image;
    m_scaled = {};
    if (!sameSize && !m_fit) {
        m_fit = true;
        emit zoomChanged(zoom());
    }
    setCursor(m_fit ? Qt::ArrowCursor : Qt::OpenHandCursor);
    update();
}

QImage ImageViewer::image() const { return m_image; }

void ImageViewer::setPlaceholderText(const QString& text) {
    m_placeholder = text;
    update();
}

// Small enough that a side viewer leaves the gallery beside it room at 1000 px (ux-review 3); it grows with the window.
QSize ImageViewer::sizeHint() const { return {256, 256}; }

QSize ImageViewer::minimumSizeHint() const { return {128, 128}; }

QRect ImageViewer::targetRect() const {
    if (m_image.isNull()) return {};
    const QSize fitted = m_image.size().scaled(rect().size(), Qt::KeepAspectRatio);
    QRect r(QPoint(0, 0), fitted);
    r.moveCenter(rect().center());
    return r;
}

// Exact (not rounded to pixels like targetRect), so zooming from the fitted view keeps the right point still.
QRectF ImageViewer::imageRect() const {
    if (m_image.isNull()) return {};
    const QSizeF shown = QSizeF(m_image.size()) * zoom();
    if (m_fit) return {QPointF((width() - shown.width()) / 2.0, (height() - shown.height()) / 2.0), shown};
    return {m_offset, shown};
}

double ImageViewer::zoom() const {
    if (m_image.isNull() || (m_image.width() == 0) || (m_image.height() == 0)) return 1.0;
    if (m_fit) return std::min(double(width()) / m_image.width(), double(height()) / m_image.height());
    return m_zoom;
}

QPointF ImageViewer::imageToWidget(const QPointF imagePos) const {
    const QRectF r = imageRect();
    return r.topLeft() + imagePos * zoom();
}

QPointF ImageViewer::widgetToImage(const QPointF widgetPos) const {
    const QRectF r = imageRect();
    const double z = zoom();
    return (z > 0) ? (widgetPos - r.topLeft()) / z : QPointF();
}

// An image smaller than the widget is centred; a larger one cannot be dragged past its edges.
void ImageViewer::clampOffset() {
    const QSizeF shown = QSizeF(m_image.size()) * m_zoom;
    const auto clampAxis = [](double offset, double extent, double room) {
        if (extent <= room) return (room - extent) / 2.0;
        return std::clamp(offset, room - extent, 0.0);
    };
    m_offset.setX(clampAxis(m_offset.x(), shown.width(), width()));
    m_offset.setY(clampAxis(m_offset.y(), shown.height(), height()));
}

void ImageViewer::setZoom(double zoom, QPointF anchor) {
    if (m_image.isNull()) return;
    zoom = std::clamp(zoom, MinZoom, MaxZoom);
    if ((anchor.x() < 0) || (anchor.y() < 0)) anchor = QPointF(width() / 2.0, height() / 2.0);
    const QPointF imagePoint = widgetToImage(anchor);
    m_zoom = zoom;
    m_fit = false;
    m_offset = anchor - imagePoint * zoom;
    clampOffset();
    setCursor(Qt::OpenHandCursor);
    update();
    emit zoomChanged(m_zoom);
}

void ImageViewer::fitToWindow() {
    m_fit = true;
    setCursor(Qt::ArrowCursor);
    update();
    emit zoomChanged(zoom());
}

void ImageViewer::actualSize() { setZoom(1.0); }

void ImageViewer::zoomIn() { setZoom(zoom() * 1.25); }

void ImageViewer::zoomOut() { setZoom(zoom() / 1.25); }

void ImageViewer::setBadgeText(const QString& text) {
    m_badge->setText(text);
    m_badge->setVisible(!text.isEmpty());
    if (!text.isEmpty()) {
        m_badge->adjustSize();
        placeBadge();
        m_badge->raise();
    }
}

QString ImageViewer::badgeText() const { return m_badge->isHidden() ? QString() : m_badge->text(); }

bool ImageViewer::isBadgeShown() const { return !m_badge->isHidden(); }

void ImageViewer::placeBadge() { m_badge->move((width() - m_badge->width()) / 2, 8); }

void ImageViewer::paintEvent(QPaintEvent*) {
    QPainter painter(this);
    if (m_image.isNull()) {
        painter.setPen(QColor(0xb0, 0xb0, 0xb0));
        painter.drawText(rect().adjusted(12, 12, -12, -12), Qt::AlignCenter | Qt::TextWordWrap, m_placeholder);
        return;
    }
    if (m_fit) {
        const QRect target = targetRect();
        if (m_scaled.isNull() || (m_scaled.deviceIndependentSize().toSize() != target.size())) {
            m_scaled = QPixmap::fromImage(
                m_image.scaled(target.size() * devicePixelRatioF(), Qt::KeepAspectRatio, Qt::SmoothTransformation));
            m_scaled.setDevicePixelRatio(devicePixelRatioF());
        }
        painter.drawPixmap(target.topLeft(), m_scaled);
        return;
    }
    // Zoomed: smooth below 200 %, sharp pixels above (that is what a close look is for).
    painter.setRenderHint(QPainter::SmoothPixmapTransform, m_zoom < 2.0);
    painter.drawImage(imageRect(), m_image);
    // The zoom in the corner, so 100 % can be told from "nearly".
    const QString percent = QStringLiteral("%1 %").arg(qRound(m_zoom * 100.0));
    const QRect box = painter.fontMetrics().boundingRect(percent).adjusted(-6, -3, 6, 3);
    const QRect corner(rect().bottomRight() - QPoint(box.width() + 8, box.height() + 8), box.size());
    painter.fillRect(corner, QColor(0, 0, 0, 150));
    painter.setPen(Qt::white);
    painter.drawText(corner, Qt::AlignCenter, percent);
}

void ImageViewer::resizeEvent(QResizeEvent* event) {
    m_scaled = {};
    if (!m_fit && !m_image.isNull()) clampOffset();
    placeBadge();
    QWidget::resizeEvent(event);
}

void ImageViewer::mouseDoubleClickEvent(QMouseEvent* event) {
    emit doubleClicked();
    QWidget::mouseDoubleClickEvent(event);
}

void ImageViewer::mousePressEvent(QMouseEvent* event) {
    setFocus(Qt::MouseFocusReason);
    if ((event->button() == Qt::LeftButton) && !m_fit && !m_image.isNull()) {
        m_dragging = true;
        m_dragStart = event->position();
        m_offsetAtDragStart = m_offset;
        setCursor(Qt::ClosedHandCursor);
        event->accept();
        return;
    }
    QWidget::mousePressEvent(event);
}

void ImageViewer::mouseMoveEvent(QMouseEvent* event) {
    if (m_dragging) {
        m_offset = m_offsetAtDragStart + (event->position() - m_dragStart);
        clampOffset();
        update();
        event->accept();
        return;
    }
    QWidget::mouseMoveEvent(event);
}

void ImageViewer::mouseReleaseEvent(QMouseEvent* event) {
    if (m_dragging && (event->button() == Qt::LeftButton)) {
        m_dragging = false;
        setCursor(m_fit ? Qt::ArrowCursor : Qt::OpenHandCursor);
        event->accept();
        return;
    }
    QWidget::mouseReleaseEvent(event);
}

void ImageViewer::wheelEvent(QWheelEvent* event) {
    if (m_image.isNull()) {
        QWidget::wheelEvent(event);
        return;
    }
    const int delta = event->angleDelta().y();
    if (delta == 0) {
        event->ignore();
        return;
    }
    // One notch (120) = x1.25, around the cursor.
    setZoom(zoom() * std::pow(1.25, delta / 120.0), event->position());
    event->accept();
}

void ImageViewer::keyPressEvent(QKeyEvent* event) {
    const bool ctrl = event->modifiers() & Qt::ControlModifier;
    switch (event->key()) {
    case Qt::Key_F: fitToWindow(); break;
    case Qt::Key_0:
        if (!ctrl) return QWidget::keyPressEvent(event);
        fitToWindow();
        break;
    case Qt::Key_1: actualSize(); break;
    case Qt::Key_Plus:
    case Qt::Key_Equal: zoomIn(); break;
    case Qt::Key_Minus: zoomOut(); break;
    default: QWidget::keyPressEvent(event); return;
    }
    event->accept();
}
