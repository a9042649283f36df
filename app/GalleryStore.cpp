#include "GalleryStore.h"

#include <algorithm>

#include <QDir>
#include <QFile>
#include <QFileInfo>

#include "PngMetadata.h"

GalleryStore::GalleryStore(const QString& folder, QObject* parent) : QObject(parent), m_folder(folder) {}

void GalleryStore::setFolder(const QString& folder) {
    m_folder = folder;
    load();
}

int GalleryStore::load() {
    m_items.clear();
    m_loadErrors.clear();
    const QDir dir(m_folder);
    if (dir.exists()) {
        const QFileInfoList files = dir.entryInfoList({QStringLiteral("*.png"), QStringLiteral("*.PNG")}, QDir::Files);
        for (const QFileInfo& fi : files) {
            const PngMetadata::ReadResult r = PngMetadata::read(fi.absoluteFilePath());
            if (!r.error.isEmpty()) {
                m_loadErrors << r.error;
                continue;
            }
            GalleryItem item = r.item;
            item.id = fi.fileName();
            item.path = fi.absoluteFilePath();
            if (!item.createdAt.isValid()) item.createdAt = fi.lastModified();
            m_items << item;
        }
    }
    // Same-second images (a batch, a compare pair) keep a stable order through the file name.
    std::stable_sort(m_items.begin(), m_items.end(), [](const GalleryItem& a, const GalleryItem& b) {
        if (a.createdAt != b.createdAt) return a.createdAt < b.createdAt;
        return a.id < b.id;
    });
    emit reloaded();
    return int(m_items.size());
}

std::optional<GalleryItem> GalleryStore::item(const QString& id) const {
    for (const GalleryItem& i : m_items) {
        if (i.id == id) return i;
    }
    return std::nullopt;
}

QList<GalleryItem> GalleryStore::compareGroup(const QString& group) const {
    QList<GalleryItem> result;
    if (group.isEmpty()) return result;
    for (const GalleryItem& i : m_items) {
        if (i.compareGroup == group) result << i;
    }
    std::sort(result.begin(), result.end(),
              [](const GalleryItem& a, const GalleryItem& b) { return a.compareSlot < b.compareSlot; });
    return result;
}

QString GalleryStore::uniqueFileName(const GalleryItem& item) const {
    const QDir dir(m_folder);
    QString base = item.createdAt.toLocalTime().toString(QStringLiteral("yyyy-MM-dd_HHmmss"));
    base += QStringLiteral("_seed%1").arg(item.params.seed.value_or(0));
    if (item.compareSlot >= 0) base += item.compareSlot == 0 ? QStringLiteral("_A") : QStringLiteral("_B");
    QString name = base + QStringLiteral(".png");
    for (int i = 2; QFileInfo::exists(dir.filePath(name)); ++i) name = QStringLiteral("%1-%2.png").arg(base).arg(i);
    return name;
}

std::optional<GalleryItem> GalleryStore::add(const QImage& image, GalleryItem item, QString* error) {
    if (!QDir().mkpath(m_folder)) {
        if (error) *error = QStringLiteral("Cannot create the output folder %1").arg(m_folder);
        return std::nullopt;
    }
    if (!item.createdAt.isValid()) item.createdAt = QDateTime::currentDateTime();
    item.width = image.width();
    item.height = image.height();
    item.params.count = 1;
    const QDir dir(m_folder);
    // QSaveFile renames over an existing file, so reserve the name first: a concurrent writer (a second app
    // instance on the same folder) then gets another one instead of being overwritten.
    QString name;
    QString path;
    for (int attempt = 0; attempt < 100; ++attempt) {
        name = uniqueFileName(item);
        path = dir.filePath(name);
        QFile reserve(path);
        if (reserve.open(QIODevice::NewOnly | QIODevice::WriteOnly)) break;
        name.clear();
    }
    if (name.isEmpty()) {
        if (error) *error = QStringLiteral("Cannot create a new file in %1").arg(m_folder);
        return std::nullopt;
    }
    item.id = name;
    item.path = QFileInfo(path).absoluteFilePath();
    QString writeError;
    if (!PngMetadata::write(item.path, image, item, &writeError)) {
        QFile::remove(item.path);
        if (error) *error = writeError;
        return std::nullopt;
    }
    m_items << item;
    emit itemAdded(item);
    return item;
}

bool GalleryStore::remove(const QString& id, QString* error) {
    const auto it = std::find_if(m_items.begin(), m_items.end(), [&](const GalleryItem& i) { return i.id == id; });
    if (it == m_items.end()) {
        if (error) *error = QStringLiteral("No image %1 in the gallery.").arg(id);
        return false;
    }
    QFile file(it->path);
    // The trash first, so a wrong click can be undone; deleted for good where there is no trash.
    if (file.exists() && !file.moveToTrash() && !file.remove()) {
        if (error) *error = QStringLiteral("Cannot delete %1: %2").arg(it->path, file.errorString());
        return false;
    }
    m_items.erase(it);
    emit itemRemoved(id);
    return true;
}
