#pragma once

#include <QListView>

#include "GalleryItem.h"

class GalleryModel;

// The thumbnail grid. Actions on an image are signals; the main window decides what they do (it owns the store,
// the prompt panel and the message bar).
class GalleryWidget final : public QListView {
    Q_OBJECT

public:
    explicit GalleryWidget(GalleryModel* model, QWidget* parent = nullptr);

    GalleryModel* galleryModel() const;
    std::optional<GalleryItem> currentItem() const;

signals:
    void currentItemChanged(const GalleryItem& item);
    void openRequested(const GalleryItem& item);  // double-click: large view (or the compare view for a pair)
    void reuseParametersRequested(const GalleryItem& item);
    void reuseSeedRequested(const GalleryItem& item);
    void copySeedRequested(const GalleryItem& item);
    void openFolderRequested(const GalleryItem& item);
    void deleteRequested(const GalleryItem& item);

protected:
    void contextMenuEvent(QContextMenuEvent* event) override;

private:
    GalleryModel* m_model = nullptr;
};
