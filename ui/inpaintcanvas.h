#pragma once

#include <QColor>
#include <QDialog>
#include <QImage>
#include <QPointF>
#include <QRect>
#include <QWidget>

class QUndoStack;
class QSlider;
class QToolButton;
class QLabel;

// The inpainting canvas: an image and a mask layer of the same size (QImage::Format_Grayscale8, 0 = keep,
// 255 = repaint, what the engine's GenerateRequest::mask reads as grey), shown as a tinted overlay. Brush and
// eraser dabs have a size (diameter in image pixels) and a hardness: 1 = a hard disc, lower values fade linearly
// from hardness·radius to the rim (a radial falloff). Within one stroke a dab never lowers what the brush already
// painted (nor raises what the eraser cleared), so overlapping dabs do not build up. Every stroke, clear and invert
// is one undo step (the changed rectangle before and after; at most kUndoLimit steps).
//
// Painting happens in image coordinates: the mouse maps widget to image (the image is fitted and centred), and
// tests call beginStroke/strokeTo/endStroke directly. Left button: the current tool; right button: the eraser.
class InpaintCanvas final : public QWidget {
    Q_OBJECT

public:
    enum class Tool { Brush, Eraser };
    static constexpr int kUndoLimit = 50;
    static constexpr int kMinBrush = 1, kMaxBrush = 512, kDefaultBrush = 48;

    explicit InpaintCanvas(QWidget* parent = nullptr);
    ~InpaintCanvas() override;

    // A new image starts an empty mask (same size) and an empty history.
    void setImage(const QImage& image);
    QImage image() const;
    // Replaces the mask (converted to grey and scaled to the image when it differs) and empties the history.
    void setMask(const QImage& mask);
    // The mask, Format_Grayscale8 at the image's size: the 8-bit grey a koala::Image mask is made from.
    QImage mask() const;
    bool isMaskEmpty() const;  // nothing to repaint
    // Writes the mask as an 8-bit grey PNG. False and *error on failure.
    bool saveMask(const QString& path, QString* error = nullptr) const;

    void setTool(Tool tool);
    Tool tool() const;
    void setBrushSize(int diameter);  // clamped to kMinBrush..kMaxBrush
    int brushSize() const;
    void setHardness(double hardness);  // clamped to 0..1
    double hardness() const;
    void setOverlayColor(const QColor& color);  // its alpha is the overlay's opacity where the mask is 255
    QColor overlayColor() const;

    // Painting in image coordinates (what the mouse does); a stroke is one undo step.
    void beginStroke(const QPointF& imagePos, Tool tool);
    void strokeTo(const QPointF& imagePos);
    void endStroke();
    void clearMask();
    void invertMask();

    QUndoStack* undoStack() const;
    // Where a widget point falls on the image (may be outside it), and the scale image -> widget.
    QPointF toImage(const QPointF& widgetPos) const;
    double viewScale() const;

    QSize sizeHint() const override;

signals:
    void maskChanged();
    void brushSizeChanged(int diameter);

protected:
    void paintEvent(QPaintEvent* event) override;
    void mousePressEvent(QMouseEvent* event) override;
    void mouseMoveEvent(QMouseEvent* event) override;
    void mouseReleaseEvent(QMouseEvent* event) override;
    void wheelEvent(QWheelEvent* event) override;
    void leaveEvent(QEvent* event) override;

private:
    friend class MaskEditCommand;
    QRectF imageRect() const;  // where the image is drawn, in widget coordinates
    void dab(const QPointF& center);
    // Puts `pixels` (grey, rect's size) into the mask at rect, refreshes the overlay and announces the change.
    void putRegion(const QRect& rect, const QImage& pixels);
    void pushEdit(const QRect& rect, const QImage& before, const QString& text);
    void refreshOverlay(const QRect& rect);

    QImage m_image;    // RGB32, what is shown
    QImage m_mask;     // Grayscale8, image size
    QImage m_overlay;  // ARGB32_Premultiplied, the tinted mask
    QUndoStack* m_undo = nullptr;
    Tool m_tool = Tool::Brush;
    int m_brushSize = kDefaultBrush;
    double m_hardness = 0.8;
    QColor m_overlayColor{255, 40, 90, 140};
    // The stroke in progress.
    bool m_stroking = false;
    Tool m_strokeTool = Tool::Brush;
    QPointF m_lastPos;
    QImage m_strokeBefore;
    QRect m_strokeRect;
    // Brush outline under the mouse (widget coordinates); null when the mouse is away.
    QPointF m_hover;
    bool m_hovering = false;
};

// The dialog around the canvas: tools, size, hardness, undo/redo, clear, invert, OK/Cancel.
class InpaintDialog final : public QDialog {
    Q_OBJECT

public:
    explicit InpaintDialog(const QImage& image, const QImage& mask = {}, QWidget* parent = nullptr);
    InpaintCanvas* canvas() const;
    QImage mask() const;

private:
    InpaintCanvas* m_canvas = nullptr;
    QSlider* m_size = nullptr;
    QSlider* m_hardness = nullptr;
    QLabel* m_sizeLabel = nullptr;
    QLabel* m_hardnessLabel = nullptr;
};
