#include "imageviewer.h"

#include <QPainter>
#include <QPalette>

ImageViewer::ImageViewer(QWidget* parent) : QWidget(parent) {
    setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Expanding);
    setAutoFillBackground(true);
    QPalette pal = palette();
    pal.setColor(QPalette::Window, QColor(0x26, 0x26, 0x26));
    setPalette(pal);
}

void ImageViewer::setImage(const QImage& image) {
    m_image = image;
    m_scaled = {};
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

void ImageViewer::paintEvent(QPaintEvent*) {
    QPainter painter(this);
    if (m_image.isNull()) {
        painter.setPen(QColor(0xb0, 0xb0, 0xb0));
        painter.drawText(rect().adjusted(12, 12, -12, -12), Qt::AlignCenter | Qt::TextWordWrap, m_placeholder);
        return;
    }
    const QRect target = targetRect();
    if (m_scaled.isNull() || (m_scaled.deviceIndependentSize().toSize() != target.size())) {
        m_scaled = QPixmap::fromImage(
            m_image.scaled(target.size() * devicePixelRatioF(), Qt::KeepAspectRatio, Qt::SmoothTransformation));
        m_scaled.setDevicePixelRatio(devicePixelRatioF());
    }
    painter.drawPixmap(target.topLeft(), m_scaled);
}

void ImageViewer::resizeEvent(QResizeEvent* event) {
    m_scaled = {};
    QWidget::resizeEvent(event);
}

void ImageViewer::mouseDoubleClickEvent(QMouseEvent* event) {
    emit doubleClicked();
    QWidget::mouseDoubleClickEvent(event);
}
