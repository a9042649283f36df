#pragma once

#include <QImage>
#include <QPointF>
#include <QWidget>

class QPushButton;

// Shows one image, fitted to the widget by default (aspect ratio kept, smooth filtering). Zoom and pan: the wheel
// zooms around the cursor, dragging pans, and the keys F / Ctrl+0 (fit), 1 / Ctrl+1 (100 %), + and - work while
// the viewer has focus. A badge button ("New image") can sit over the top edge. Used for the side and large views
// and for each side of the compare view.
class ImageViewer final : public QWidget {
    Q_OBJECT

public:
    static constexpr double MinZoom = 0.05;
    static constexpr double MaxZoom = 32.0;

    explicit ImageViewer(QWidget* parent = nullptr);

    // A new image keeps the zoom and pan when it has the same size as the old one (a preview followed by the next
    // one, or the final image), so a zoomed-in detail stays in view; otherwise the view fits again.
    void setImage(const QImage& image);
    QImage image() const;
    void setPlaceholderText(const QString& text);
    QString placeholderText() const { return m_placeholder; }

    bool isFit() const { return m_fit; }
    double zoom() const;  // the scale on screen (when fitted: the fitted scale)
    // Zooms to `zoom` keeping the image point under `anchor` (widget coordinates; the centre when omitted) still.
    void setZoom(double zoom, QPointF anchor = QPointF(-1, -1));
    void fitToWindow();
    void actualSize();  // 100 %, centred on what was in the middle
    void zoomIn();
    void zoomOut();
    // Where an image pixel is on the widget and back.
    QPointF imageToWidget(QPointF imagePos) const;
    QPointF widgetToImage(QPointF widgetPos) const;

    // The badge: empty text hides it.
    void setBadgeText(const QString& text);
    QString badgeText() const;
    bool isBadgeShown() const;
    QPushButton* badgeButton() const { return m_badge; }

    QSize sizeHint() const override;
    QSize minimumSizeHint() const override;

signals:
    void doubleClicked();
    void badgeClicked();
    void zoomChanged(double zoom);

protected:
    void paintEvent(QPaintEvent* event) override;
    void resizeEvent(QResizeEvent* event) override;
    void mouseDoubleClickEvent(QMouseEvent* event) override;
    void mousePressEvent(QMouseEvent* event) override;
    void mouseMoveEvent(QMouseEvent* event) override;
    void mouseReleaseEvent(QMouseEvent* event) override;
    void wheelEvent(QWheelEvent* event) override;
    void keyPressEvent(QKeyEvent* event) override;

private:
    QRect targetRect() const;  // the fitted rectangle
    QRectF imageRect() const;  // where the image is drawn now
    void clampOffset();
    void placeBadge();

    QImage m_image;
    // Scaled once per resize/new image instead of per paint: smooth scaling of a 1024² image is not free.
    QPixmap m_scaled;
    QString m_placeholder;
    bool m_fit = true;
    double m_zoom = 1.0;
    QPointF m_offset;  // the image's top-left on the widget when not fitted
    bool m_dragging = false;
    QPointF m_dragStart;
    QPointF m_offsetAtDragStart;
    QPushButton* m_badge = nullptr;
};
