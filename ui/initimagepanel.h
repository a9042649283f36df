#pragma once

#include <QImage>
#include <QWidget>

#include "GenerationParams.h"

class QDoubleSpinBox;
class QLabel;
class QPushButton;
class QSlider;
class QSpinBox;

// The init image of an img2img or inpainting request, in the prompt column: a thumbnail (with the mask tinted on
// it), the strength (slider and spin box, 0.01..1, the engine's default for the mode until the user moves it),
// the mask blur, "Inpaint…" (the canvas dialog) and "Clear". No init image = text-to-image. Image files can be
// dropped on it. A painted mask is saved as a grey PNG named by its content (mask-<hash>.png) in the mask folder,
// so the image's metadata can name it and "reuse parameters" can load it again.
class InitImagePanel final : public QWidget {
    Q_OBJECT

public:
    explicit InitImagePanel(QWidget* parent = nullptr);

    void setMaskFolder(const QString& folder);  // created when the first mask is saved
    QString maskFolder() const;

    // Uses a PNG or JPEG file as the init image and drops the mask. False and *error when it cannot be read.
    bool setInitImage(const QString& path, QString* error = nullptr);
    QString initImagePath() const;
    bool hasInitImage() const;
    QImage initImage() const;

    // Sets the painted mask (any format; converted to 8-bit grey at the image's size) and saves it. An empty mask
    // (nothing painted) clears it: img2img again. False and *error when it cannot be saved.
    bool setMask(const QImage& mask, QString* error = nullptr);
    bool setMaskFile(const QString& path, QString* error = nullptr);
    void clearMask();
    QString maskPath() const;
    QImage mask() const;  // Format_Grayscale8; null without a mask

    double strength() const;
    void setStrength(double strength);  // counts as the user's choice (kept when the mode changes)
    int maskBlur() const;
    void setMaskBlur(int radius);

    void clear();  // text-to-image again

    // Writes the init image fields into `params` (clears them when there is no init image).
    void applyTo(GenerationParams& params) const;
    // Takes them from stored parameters. Returns "" or a message naming a file that is gone or has changed.
    QString restore(const GenerationParams& params);

public slots:
    // Opens the inpainting canvas on the init image; true when a mask was accepted.
    bool editMask();
    // Asks for an image file to use.
    void chooseFile();

signals:
    void changed();
    void errorOccurred(const QString& message);

protected:
    void dragEnterEvent(QDragEnterEvent* event) override;
    void dropEvent(QDropEvent* event) override;

private:
    void updateView();
    void applyModeDefault();  // the engine's default strength for the mode, unless the user chose one

    QString m_path;
    QString m_hash;
    QImage m_image;
    QString m_maskPath;
    QString m_maskHash;
    QImage m_mask;
    QString m_maskFolder;
    bool m_strengthChosen = false;
    bool m_settingStrength = false;

    QLabel* m_thumbnail = nullptr;
    QLabel* m_info = nullptr;
    QSlider* m_strengthSlider = nullptr;
    QDoubleSpinBox* m_strength = nullptr;
    QSpinBox* m_maskBlur = nullptr;
    QPushButton* m_open = nullptr;
    QPushButton* m_inpaint = nullptr;
    QPushButton* m_clear = nullptr;
};
