#pragma once

#include <QImage>
#include <QWidget>

class ImageViewer;
class QLabel;

// What one side of a comparison shows: the model's image and what it cost.
struct CompareSide {
    QString modelName;
    QImage image;
    double totalSeconds = 0;
    double secondsPerStep = 0;
    qint64 peakDeviceBytes = 0;  // 0 on CPU: shown as "n/a" rather than "0 MiB"
    QString scheduler;           // the scheduler the side ran with ("ddim", "euler"...); empty: not shown
};

// Two results of the same request side by side (KOALA-700M vs KOALA-1B by default), each with its size, scheduler
// and timings. Models of different families (KOALA at 1024², SD 2 at 768²) each run at their own size; the view
// says so in a note above the images when the two sizes differ.
class CompareView final : public QWidget {
    Q_OBJECT

public:
    explicit CompareView(QWidget* parent = nullptr);

    void setSides(const CompareSide& left, const CompareSide& right);
    // While a comparison runs: one side may be done (or previewing) and the other still waiting.
    void setSide(int index, const CompareSide& side);
    void setPreview(int index, const QImage& preview);
    void clear();
    QString placeholderText(int index) const;

    QImage image(int index) const;
    QString statsText(int index) const;
    QString titleText(int index) const;
    // The note on the pair ("Each model ran at its own size: …"); empty when the sizes agree or a side is missing.
    QString noteText() const;

    static QString formatStats(const CompareSide& side);

private:
    struct Pane {
        QLabel* title = nullptr;
        ImageViewer* viewer = nullptr;
        QLabel* stats = nullptr;
    };

    void updateNote();

    Pane m_panes[2];
    QLabel* m_note = nullptr;
};
