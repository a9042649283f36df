#include "compareview.h"

#include <QGridLayout>
#include <QLabel>

#include "GenerationParams.h"
#include "imageviewer.h"

CompareView::CompareView(QWidget* parent) : QWidget(parent) {
    auto* layout = new QGridLayout(this);
    layout->setContentsMargins(4, 4, 4, 4);
    m_note = new QLabel(this);
    m_note->setObjectName(QStringLiteral("compareNote"));
    m_note->setAlignment(Qt::AlignCenter);
    m_note->setWordWrap(true);
    m_note->hide();
    layout->addWidget(m_note, 3, 0, 1, 2);
    for (int i = 0; i < 2; ++i) {
        Pane& pane = m_panes[i];
        pane.title = new QLabel(this);
        pane.title->setAlignment(Qt::AlignCenter);
        QFont f = pane.title->font();
        f.setBold(true);
        pane.title->setFont(f);
        pane.viewer = new ImageViewer(this);
        pane.stats = new QLabel(this);
        pane.stats->setAlignment(Qt::AlignCenter);
        pane.stats->setTextInteractionFlags(Qt::TextSelectableByMouse);
        // Wrapped, so a long stats line or model name never sets the window's minimum width (issue 13 item 7).
        pane.stats->setWordWrap(true);
        pane.title->setWordWrap(true);
        layout->addWidget(pane.title, 0, i);
        layout->addWidget(pane.viewer, 1, i);
        layout->addWidget(pane.stats, 2, i);
        layout->setColumnStretch(i, 1);
    }
    layout->setRowStretch(1, 1);
    clear();
}

void CompareView::setSides(const CompareSide& left, const CompareSide& right) {
    setSide(0, left);
    setSide(1, right);
}

void CompareView::setSide(const int index, const CompareSide& side) {
    if ((index < 0) || (index > 1)) return;
    Pane& pane = m_panes[index];
    pane.title->setText(side.modelName);
    pane.viewer->setImage(side.image);
    // A side of a running compare waits for its turn; the "Run Compare" hint is for an empty view only.
    if (side.image.isNull()) pane.viewer->setPlaceholderText(tr("This side is generated after the other one."));
    pane.stats->setText(side.image.isNull() ? tr("waiting…") : formatStats(side));
    updateNote();
}

void CompareView::updateNote() {
    const QImage a = m_panes[0].viewer->image();
    const QImage b = m_panes[1].viewer->image();
    const bool differ = !a.isNull() && !b.isNull() && (a.size() != b.size());
    auto side = [this](int i, const QImage& img) {
        return QStringLiteral("%1 %2×%3")
            .arg(m_panes[i].title->text(), QString::number(img.width()), QString::number(img.height()));
    };
    m_note->setText(
        differ ? tr("Each model ran at its own size and default scheduler: %1, %2.").arg(side(0, a), side(1, b))
               : QString());
    m_note->setVisible(differ);
}

QString CompareView::noteText() const { return m_note->text(); }

void CompareView::setPreview(const int index, const QImage& preview) {
    if ((index < 0) || (index > 1)) return;
    m_panes[index].viewer->setImage(preview);
    m_panes[index].stats->setText(tr("running…"));
}

void CompareView::clear() {
    for (int i = 0; i < 2; ++i) {
        m_panes[i].title->setText(i == 0 ? tr("Model A") : tr("Model B"));
        m_panes[i].viewer->setImage({});
        m_panes[i].viewer->setPlaceholderText(tr("Run \"Compare\" to generate the same request on two models."));
        m_panes[i].stats->clear();
    }
    updateNote();
}

QImage CompareView::image(const int index) const {
    return ((index == 0) || (index == 1)) ? m_panes[index].viewer->image() : QImage();
}

QString CompareView::statsText(const int index) const {
    return ((index == 0) || (index == 1)) ? m_panes[index].stats->text() : QString();
}

QString CompareView::placeholderText(const int index) const {
    return ((index == 0) || (index == 1)) ? m_panes[index].viewer->placeholderText() : QString();
}

QString CompareView::titleText(const int index) const {
    return ((index == 0) || (index == 1)) ? m_panes[index].title->text() : QString();
}

QString CompareView::formatStats(const CompareSide& side) {
    const QString memory = (side.peakDeviceBytes > 0)
                               ? tr("%1 MiB").arg(double(side.peakDeviceBytes) / (1024.0 * 1024.0), 0, 'f', 0)
                               : tr("n/a (CPU)");
    QString setup;
    if (!side.image.isNull()) setup = tr("%1×%2 · ").arg(side.image.width()).arg(side.image.height());
    if (!side.scheduler.isEmpty())
        setup += GenerationParams::schedulerDisplayName(side.scheduler) + QStringLiteral(" · ");
    return setup + tr("total %1 s · %2 s/step · peak GPU memory %3")
                       .arg(side.totalSeconds, 0, 'f', 2)
                       .arg(side.secondsPerStep, 0, 'f', 3)
                       .arg(memory);
}
