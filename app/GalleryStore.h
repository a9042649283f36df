#pragma once

#include <optional>

#include <QImage>
#include <QList>
#include <QObject>
#include <QSet>
#include <QString>
#include <QStringList>

#include "GalleryItem.h"

// The output folder: one PNG per image, metadata inside the PNG (PngMetadata), so the folder can be copied, cleaned
// up by hand or shared, and load() rebuilds every image from the files. What the PNGs cannot hold lives in a small
// index, <folder>/.koala/gallery.json (favourites and the trash), written atomically with a backup beside it
// (gallery.json.bak). Deleted images move to <folder>/.koala/trash/ and can be restored until the trash is emptied.
// A damaged index is recovered from: the backup when it reads, else rebuilt from the images (the trash folder's
// PNGs and their metadata); the damaged file is kept as gallery.json.damaged and recoveryMessage() says what
// happened (indexRecovered is emitted too).
class GalleryStore : public QObject {
    Q_OBJECT

public:
    explicit GalleryStore(const QString& folder, QObject* parent = nullptr);

    QString folder() const { return m_folder; }
    // Switches folder and reloads.
    void setFolder(const QString& folder);

    // Scans the folder (non-recursive) and reads every PNG's metadata back, sorted by creation time (oldest first).
    // PNGs without generation metadata are listed too (params default, createdAt = file time). Returns the count.
    int load();
    QStringList loadErrors() const { return m_loadErrors; }

    QList<GalleryItem> items() const { return m_items; }
    std::optional<GalleryItem> item(const QString& id) const;
    // The items sharing `group`, ordered by compareSlot.
    QList<GalleryItem> compareGroup(const QString& group) const;

    // Writes the image and its metadata atomically under a new unique name (2026-11-26_123456_seed42.png, then
    // ..._seed42-2.png; never overwrites). Fills id, path, width, height and createdAt (when null). Returns the stored
    // item, or std::nullopt with *error set (the folder is created when missing).
    std::optional<GalleryItem> add(const QImage& image, GalleryItem item, QString* error = nullptr);
    // Moves the file to the trash and forgets the item (restore() brings it back).
    bool remove(const QString& id, QString* error = nullptr);

    // ---- favourites (kept in the index)
    bool isFavourite(const QString& id) const { return m_favourites.contains(id); }
    QSet<QString> favourites() const { return m_favourites; }
    bool setFavourite(const QString& id, bool favourite, QString* error = nullptr);

    // ---- the trash: items whose id is the file name in trashFolder(), most recently deleted first
    QString trashFolder() const;
    QList<GalleryItem> trashItems() const { return m_trash; }
    // When the item was deleted; null for an unknown id.
    QDateTime deletedAt(const QString& trashId) const;
    // Moves it back into the gallery (under its old name when free); returns the restored item.
    std::optional<GalleryItem> restore(const QString& trashId, QString* error = nullptr);
    // Deletes one trashed image for good, or all of them. False and *error when a file could not be deleted.
    bool deleteForGood(const QString& trashId, QString* error = nullptr);
    bool emptyTrash(QString* error = nullptr);

    QString indexPath() const;
    // Set by load() when the index was damaged or missing with a backup: what was recovered and how; else empty.
    QString recoveryMessage() const { return m_recoveryMessage; }

signals:
    void itemAdded(const GalleryItem& item);
    void itemRemoved(const QString& id);
    void itemRestored(const GalleryItem& item);  // back from the trash; not at the newest end of the gallery
    void favouriteChanged(const QString& id, bool favourite);
    void trashChanged();
    void indexRecovered(const QString& message);
    void reloaded();

private:
    struct TrashEntry {
        QString file;      // name in the trash folder
        QString original;  // its name in the gallery
        QDateTime deletedAt;
        bool favourite = false;
    };

    QString uniqueFileName(const GalleryItem& item) const;
    void loadIndex();
    bool saveIndex(QString* error = nullptr);
    std::optional<GalleryItem> readTrashItem(const QString& file) const;

    QString m_folder;
    QList<GalleryItem> m_items;
    QStringList m_loadErrors;
    QSet<QString> m_favourites;
    QList<TrashEntry> m_trashEntries;  // most recently deleted first
    QList<GalleryItem> m_trash;        // the same order
    QString m_recoveryMessage;
};
