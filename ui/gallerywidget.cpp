#include "gallerywidget.h"

#include <QContextMenuEvent>
#include <QMenu>

#include "gallerymodel.h"
#include "icons.h"

GalleryWidget::GalleryWidget(GalleryModel* model, QWidget* parent) : QListView(parent), m_model(model) {
    setObjectName(QStringLiteral("galleryView"));
    setModel(model);
    setViewMode(QListView::IconMode);
    setResizeMode(QListView::Adjust);
    setMovement(QListView::Static);
    setUniformItemSizes(true);
    setWordWrap(true);
    setSpacing(6);
    setIconSize({GalleryModel::ThumbnailSize, GalleryModel::ThumbnailSize});
    setGridSize({GalleryModel::ThumbnailSize + 16, GalleryModel::ThumbnailSize + 36});
    setSelectionMode(QAbstractItemView::SingleSelection);

    connect(selectionModel(), &QItemSelectionModel::currentChanged, this, [this](const QModelIndex& current) {
        if (const auto item = m_model->itemAt(current.row())) emit currentItemChanged(*item);
    });
    // A tile that finishes while selected: show the final image, not the last preview.
    connect(m_model, &QAbstractItemModel::dataChanged, this, [this](const QModelIndex& topLeft) {
        if ((topLeft.row() == currentIndex().row())) {
            if (const auto item = m_model->itemAt(topLeft.row())) emit currentItemChanged(*item);
        }
    });
    connect(this, &QListView::doubleClicked, this, [this](const QModelIndex& index) {
        if (const auto item = m_model->itemAt(index.row())) emit openRequested(*item);
    });
}

GalleryModel* GalleryWidget::galleryModel() const { return m_model; }

std::optional<GalleryItem> GalleryWidget::currentItem() const { return m_model->itemAt(currentIndex().row()); }

void GalleryWidget::contextMenuEvent(QContextMenuEvent* event) {
    const QModelIndex index = indexAt(event->pos());
    const auto item = m_model->itemAt(index.row());
    if (!item) return;  // a tile still being generated has nothing to act on yet
    setCurrentIndex(index);

    QMenu menu(this);
    menu.addAction(tr("Open"), this, [this, item]() { emit openRequested(*item); });
    menu.addSeparator();
    menu.addAction(tr("Reuse all parameters"), this, [this, item]() { emit reuseParametersRequested(*item); });
    menu.addAction(tr("Reuse this image's seed"), this, [this, item]() { emit reuseSeedRequested(*item); });
    menu.addAction(tr("Copy seed"), this, [this, item]() { emit copySeedRequested(*item); });
    menu.addSeparator();
    menu.addAction(Icons::get(QStringLiteral("folder-add"), QStyle::SP_DirOpenIcon), tr("Open containing folder"), this,
                   [this, item]() { emit openFolderRequested(*item); });
    menu.addAction(Icons::get(QStringLiteral("delete"), QStyle::SP_TrashIcon), tr("Delete…"), this,
                   [this, item]() { emit deleteRequested(*item); });
    menu.exec(event->globalPos());
}
