#pragma once

#include <optional>

#include <QImage>
#include <QList>
#include <QObject>
#include <QString>
#include <QStringList>

#include "GalleryItem.h"

// The output folder: one PNG per image, metadata inside the PNG (PngMetadata), no side database, so the folder can
// be copied, cleaned up by hand or shared, and load() rebuilds everything from the files.
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
    // Deletes the file and forgets the item.
    bool remove(const QString& id, QString* error = nullptr);

signals:
    void itemAdded(const GalleryItem& item);
    void itemRemoved(const QString& id);
    void reloaded();

private:
    QString uniqueFileName(const GalleryItem& item) const;

    QString m_folder;
    QList<GalleryItem> m_items;
    QStringList m_loadErrors;
};
