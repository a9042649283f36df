#pragma once

#include <QImage>
#include <QWidget>

// Shows one image scaled to fit the widget (aspect ratio kept, smooth filtering), with an optional placeholder
// text when there is no image. Used for the large view and for each side of the compare view.
class ImageViewer final : public QWidget {
    Q_OBJECT

public:
    explicit ImageViewer(QWidget* parent = nullptr);

    void setImage(const QImage& image);
    QImage image() const;
    void setPlaceholderText(const QString& text);
    QString placeholderText() const { return m_placeholder; }

    QSize sizeHint() const override;
    QSize minimumSizeHint() const override;

signals:
    void doubleClicked();

protected:
    void paintEvent(QPaintEvent* event) override;
    void resizeEvent(QResizeEvent* event) override;
    void mouseDoubleClickEvent(QMouseEvent* event) override;

private:
    QRect targetRect() const;

    QImage m_image;
    // Scaled once per resize/new image instead of per paint: smooth scaling of a 1024² image is not free.
    QPixmap m_scaled;
    QString m_placeholder;
};
