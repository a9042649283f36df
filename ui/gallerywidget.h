#pragma once

#include <optional>

#include <QListView>

#include "GalleryItem.h"

class GalleryModel;
class GalleryFilterModel;
class QSortFilterProxyModel;

// The thumbnail grid, through a sort/filter layer: newest or oldest first, by prompt or by model, a search over the
// prompts and "favourites only". Rows of the view are not rows of the GalleryModel; use the item/tile functions.
// Actions on an image are signals; the main window decides what they do (it owns the store, the prompt panel and
// the message bar). In Trash mode the menu offers Restore and Delete for good instead.
class GalleryWidget final : public QListView {
    Q_OBJECT

public:
    enum class Mode { Gallery, Trash };
    enum class Sort { Newest, Oldest, Prompt, Model };

    explicit GalleryWidget(GalleryModel* model, QWidget* parent = nullptr, Mode mode = Mode::Gallery);

    GalleryModel* galleryModel() const;
    QSortFilterProxyModel* filterModel() const;
    Mode mode() const { return m_mode; }
    std::optional<GalleryItem> currentItem() const;
    // The item shown at a row of the view; std::nullopt for a tile still being generated.
    std::optional<GalleryItem> itemAtViewRow(int row) const;
    QModelIndex viewIndexOfItem(const QString& id) const;
    QModelIndex viewIndexOfTile(qint64 jobId, int imageIndex) const;
    // Makes an image (or a running job's tile) current and scrolls to it; not counted as the user's choice.
    // False when it is not shown (filtered out, or gone).
    bool selectItem(const QString& id);
    bool selectTile(qint64 jobId, int imageIndex);

    void setSearchText(const QString& text);  // words that must all be in the prompt, any case
    QString searchText() const;
    void setSort(Sort sort);
    Sort sort() const;
    void setFavouritesOnly(bool on);
    bool favouritesOnly() const;

signals:
    void currentItemChanged(const GalleryItem& item);
    // The user made an image current (click or keys), as opposed to the window following new images.
    void itemChosen(const GalleryItem& item);
    void openRequested(const GalleryItem& item);  // double-click: large view (or the compare view for a pair)
    void reuseParametersRequested(const GalleryItem& item);
    void reuseSeedRequested(const GalleryItem& item);
    void copySeedRequested(const GalleryItem& item);
    void openFolderRequested(const GalleryItem& item);
    void deleteRequested(const GalleryItem& item);
    void favouriteToggleRequested(const GalleryItem& item);
    void useAsInitImageRequested(const GalleryItem& item);
    void inpaintRequested(const GalleryItem& item);
    void restoreRequested(const GalleryItem& item);        // trash
    void deleteForGoodRequested(const GalleryItem& item);  // trash

protected:
    void contextMenuEvent(QContextMenuEvent* event) override;
    void mousePressEvent(QMouseEvent* event) override;
    void keyPressEvent(QKeyEvent* event) override;
    void resizeEvent(QResizeEvent* event) override;

private:
    void fitTilesToWidth();  // a narrow grid shows smaller tiles (down to 96 px) instead of clipping them

    GalleryModel* m_model = nullptr;
    GalleryFilterModel* m_filter = nullptr;
    Mode m_mode = Mode::Gallery;
    bool m_userInput = false;  // inside a mouse press or key press: a current-row change is the user's
};
