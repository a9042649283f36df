#pragma once

#include <optional>

#include <QAbstractListModel>
#include <QImage>
#include <QList>
#include <QSet>

#include "GalleryItem.h"

// The gallery's tiles, newest first: every stored image plus one placeholder tile per image of a queued or running
// job. A running job's tile shows each step's preview (scaled up smoothly) and is replaced in place by the final
// image, so the user watches the picture form where it will stay.
class GalleryModel final : public QAbstractListModel {
    Q_OBJECT

public:
    enum Role {
        ItemIdRole = Qt::UserRole + 1,
        PathRole,
        SeedRole,
        PendingRole,  // bool: no stored image yet
        JobIdRole,
        PreviewCountRole,  // how many step previews this tile has shown
        CompareGroupRole,
        FavouriteRole,  // bool
        PromptRole,
        ModelRole,
        CreatedRole  // QDateTime; null for a pending tile
    };

    static constexpr int ThumbnailSize = 192;

    explicit GalleryModel(QObject* parent = nullptr);

    int rowCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;

    void setItems(const QList<GalleryItem>& items);  // oldest first, as GalleryStore gives them
    void addItem(const GalleryItem& item);           // a stored image that belongs to no tile (yet)
    void removeItem(const QString& id);
    // A stored image that comes back (from the trash): placed among the stored images by its creation time.
    void insertItem(const GalleryItem& item);

    void setFavourites(const QSet<QString>& ids);
    void setFavourite(const QString& id, bool favourite);
    bool isFavourite(const QString& id) const { return m_favourites.contains(id); }

    // Placeholder tiles of a new job; `seeds` has one entry per image (compare: one per pair, two tiles each).
    void addPendingTiles(qint64 jobId, const QList<quint64>& seeds, bool compare);
    void setPreview(qint64 jobId, int imageIndex, const QImage& preview);
    // The stored image of a job: replaces the matching tile (same seed, same compare slot).
    void finishTile(qint64 jobId, const GalleryItem& item);
    // Drops the tiles of a job that never got their image (cancelled or failed).
    void dropPendingTiles(qint64 jobId);

    int rowOfItem(const QString& id) const;
    int rowOfTile(qint64 jobId, int imageIndex) const;
    std::optional<GalleryItem> itemAt(int row) const;
    int previewCount(int row) const;
    QImage thumbnail(int row) const;

private:
    struct Tile {
        std::optional<GalleryItem> item;
        qint64 jobId = 0;
        int imageIndex = -1;
        quint64 seed = 0;
        int compareSlot = -1;
        int previewCount = 0;
        QImage thumbnail;  // scaled; loaded lazily from the PNG for stored items
    };

    static QImage loadThumbnail(const QString& path);
    QString caption(const Tile& tile) const;

    QList<Tile> m_tiles;
    QSet<QString> m_favourites;
};
