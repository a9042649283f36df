#include "GalleryStore.h"
#include "AtomicFile.h"

#include <algorithm>

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QSaveFile>

#include "PngMetadata.h"

namespace {
constexpr int IndexVersion = 1;

// A gallery item from a PNG: its metadata, the file name as id, the file time when the metadata has no date.
std::optional<GalleryItem> itemFromFile(const QFileInfo& fi, QString* error) {
    const PngMetadata::ReadResult r = PngMetadata::read(fi.absoluteFilePath());
    if (!r.error.isEmpty()) {
        if (error) *error = r.error;
        return std::nullopt;
    }
    GalleryItem item = r.item;
    item.id = fi.fileName();
    item.path = fi.absoluteFilePath();
    if (!item.createdAt.isValid()) item.createdAt = fi.lastModified();
    return item;
}

bool olderFirst(const GalleryItem& a, const GalleryItem& b) {
    if (a.createdAt != b.createdAt) return a.createdAt < b.createdAt;
    return a.id < b.id;
}

// A free file name in `dir` for `name`: the name itself, else name-2.png, name-3.png...
QString freeName(const QDir& dir, const QString& name) {
    if (!QFileInfo::exists(dir.filePath(name))) return name;
    const QString base = QFileInfo(name).completeBaseName();
    const QString suffix = QFileInfo(name).suffix();
    for (int i = 2;; ++i) {
        const QString candidate = QStringLiteral("%1-%2.%3").arg(base).arg(i).arg(suffix);
        if (!QFileInfo::exists(dir.filePath(candidate))) return candidate;
    }
}

QByteArray readAll(const QString& path) {
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly)) return {};
    return file.readAll();
}
}  // namespace

GalleryStore::GalleryStore(const QString& folder, QObject* parent) : QObject(parent), m_folder(folder) {}

QString GalleryStore::indexPath() const { return QDir(m_folder).filePath(QStringLiteral(".koala/gallery.json")); }

QString GalleryStore::trashFolder() const { return QDir(m_folder).filePath(QStringLiteral(".koala/trash")); }

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
            QString error;
            if (const auto item = itemFromFile(fi, &error))
                m_items << *item;
            else
                m_loadErrors << error;
        }
    }
    // Same-second images (a batch, a compare pair) keep a stable order through the file name.
    std::stable_sort(m_items.begin(), m_items.end(), olderFirst);
    loadIndex();
    emit reloaded();
    if (!m_recoveryMessage.isEmpty()) emit indexRecovered(m_recoveryMessage);
    return int(m_items.size());
}

void GalleryStore::loadIndex() {
    m_favourites.clear();
    m_trashEntries.clear();
    m_trash.clear();
    m_recoveryMessage.clear();
    const QString path = indexPath();
    const QString backup = path + QStringLiteral(".bak");
    const QString damaged = path + QStringLiteral(".damaged");

    QSet<QString> favourites;
    QList<TrashEntry> entries;
    const auto parse = [&favourites, &entries](const QByteArray& bytes) {
        favourites.clear();
        entries.clear();
        QJsonParseError parseError{};
        const QJsonDocument doc = QJsonDocument::fromJson(bytes, &parseError);
        if ((parseError.error != QJsonParseError::NoError) || !doc.isObject()) return false;
        const QJsonObject root = doc.object();
        if (root.value(QStringLiteral("version")).toInt() != IndexVersion) return false;
        const QJsonValue favs = root.value(QStringLiteral("favourites"));
        const QJsonValue trash = root.value(QStringLiteral("trash"));
        if (!favs.isArray() || !trash.isArray()) return false;
        for (const QJsonValue& v : favs.toArray()) {
            if (!v.isString()) return false;
            favourites.insert(v.toString());
        }
        for (const QJsonValue& v : trash.toArray()) {
            const QJsonObject o = v.toObject();
            TrashEntry e;
            e.file = o.value(QStringLiteral("file")).toString();
            e.original = o.value(QStringLiteral("original")).toString();
            e.deletedAt = QDateTime::fromString(o.value(QStringLiteral("deleted_at")).toString(), Qt::ISODateWithMs);
            e.favourite = o.value(QStringLiteral("favourite")).toBool();
            // A name with a path in it would let the index move files outside the folder.
            if (e.file.isEmpty() || e.file.startsWith(QLatin1Char('.')) || e.original.startsWith(QLatin1Char('.')) ||
                e.file.contains(QLatin1Char('/')) || e.file.contains(QLatin1Char('\\')) ||
                e.original.contains(QLatin1Char('/')) || e.original.contains(QLatin1Char('\\')))
                return false;
            if (e.original.isEmpty()) e.original = e.file;
            entries << e;
        }
        return true;
    };

    bool recovered = false;
    if (QFileInfo::exists(path)) {
        if (!parse(readAll(path))) {
            recovered = true;
            QFile::remove(damaged);
            QFile::rename(path, damaged);
            if (QFileInfo::exists(backup) && parse(readAll(backup))) {
                m_recoveryMessage = tr("The gallery index %1 was damaged; it was restored from its backup. The "
                                       "damaged file is kept as %2.")
                                        .arg(QDir::toNativeSeparators(path), QFileInfo(damaged).fileName());
            } else {
                favourites.clear();
                entries.clear();
                m_recoveryMessage = tr("The gallery index %1 was damaged and has no readable backup; it was rebuilt "
                                       "from the images (the trash is complete, favourites were lost). The damaged "
                                       "file is kept as %2.")
                                        .arg(QDir::toNativeSeparators(path), QFileInfo(damaged).fileName());
            }
        }
    } else if (QFileInfo::exists(backup)) {
        recovered = true;
        if (parse(readAll(backup))) {
            m_recoveryMessage = tr("The gallery index %1 was missing; it was restored from its backup.")
                                    .arg(QDir::toNativeSeparators(path));
        } else {
            favourites.clear();
            entries.clear();
            m_recoveryMessage = tr("The gallery index %1 was missing and its backup is damaged; it was rebuilt from "
                                   "the images (favourites were lost).")
                                    .arg(QDir::toNativeSeparators(path));
        }
    }

    // Favourites of images that are still there; the trash as the trash folder holds it (an entry whose file is gone
    // is dropped, a PNG nobody listed is added with its file time).
    for (const GalleryItem& item : m_items) {
        if (favourites.contains(item.id)) m_favourites.insert(item.id);
    }
    const QDir trashDir(trashFolder());
    QSet<QString> listed;
    for (const TrashEntry& e : entries) {
        if (listed.contains(e.file) || !QFileInfo::exists(trashDir.filePath(e.file))) continue;
        listed.insert(e.file);
        m_trashEntries << e;
    }
    if (trashDir.exists()) {
        const QFileInfoList files =
            trashDir.entryInfoList({QStringLiteral("*.png"), QStringLiteral("*.PNG")}, QDir::Files);
        for (const QFileInfo& fi : files) {
            if (listed.contains(fi.fileName())) continue;
            TrashEntry e;
            e.file = fi.fileName();
            e.original = fi.fileName();
            e.deletedAt = fi.lastModified();
            m_trashEntries << e;
        }
    }
    std::stable_sort(m_trashEntries.begin(), m_trashEntries.end(),
                     [](const TrashEntry& a, const TrashEntry& b) { return a.deletedAt > b.deletedAt; });
    for (const TrashEntry& e : m_trashEntries) {
        if (auto item = readTrashItem(e.file)) m_trash << *item;
    }
    if (recovered) {
        QString error;
        if (!saveIndex(&error)) m_recoveryMessage += QLatin1Char(' ') + error;
    }
}

std::optional<GalleryItem> GalleryStore::readTrashItem(const QString& file) const {
    const QFileInfo fi(QDir(trashFolder()).filePath(file));
    QString error;
    if (auto item = itemFromFile(fi, &error)) return item;
    // Unreadable metadata: still listed, so it can be restored or deleted.
    GalleryItem item;
    item.id = fi.fileName();
    item.path = fi.absoluteFilePath();
    item.createdAt = fi.lastModified();
    return item;
}

bool GalleryStore::saveIndex(QString* error) {
    QJsonArray favs;
    QStringList sorted(m_favourites.cbegin(), m_favourites.cend());
    sorted.sort();
    for (const QString& id : sorted) favs.append(id);
    QJsonArray trash;
    for (const TrashEntry& e : m_trashEntries) {
        trash.append(QJsonObject{{QStringLiteral("file"), e.file},
                                 {QStringLiteral("original"), e.original},
                                 {QStringLiteral("deleted_at"), e.deletedAt.toString(Qt::ISODateWithMs)},
                                 {QStringLiteral("favourite"), e.favourite}});
    }
    const QByteArray bytes = QJsonDocument(QJsonObject{{QStringLiteral("version"), IndexVersion},
                                                       {QStringLiteral("favourites"), favs},
                                                       {QStringLiteral("trash"), trash}})
                                 .toJson(QJsonDocument::Indented);
    const QString path = indexPath();
    if (!QDir().mkpath(QFileInfo(path).absolutePath())) {
        if (error) *error = tr("Cannot create the folder %1").arg(QFileInfo(path).absolutePath());
        return false;
    }
    // The index, then the backup with the same content: whichever one a crash or a bad disk damages, the other reads.
    for (const QString& target : {path, path + QStringLiteral(".bak")}) {
        QString why;
        if (!writeFileAtomically(target, bytes, &why)) {
            if (error) *error = tr("Cannot write the gallery index: %1").arg(why);
            return false;
        }
    }
    return true;
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
    // To the gallery's own trash, so a wrong click can be undone until the trash is emptied.
    const bool wasFavourite = m_favourites.contains(id);
    if (QFileInfo::exists(it->path)) {
        const QDir trashDir(trashFolder());
        if (!QDir().mkpath(trashDir.path())) {
            if (error) *error = tr("Cannot create the trash folder %1").arg(trashDir.path());
            return false;
        }
        const QString name = freeName(trashDir, it->id);
        QFile file(it->path);
        if (!file.rename(trashDir.filePath(name))) {
            if (error) *error = tr("Cannot move %1 to the trash: %2").arg(it->path, file.errorString());
            return false;
        }
        TrashEntry entry;
        entry.file = name;
        entry.original = it->id;
        entry.deletedAt = QDateTime::currentDateTime();
        entry.favourite = wasFavourite;
        m_trashEntries.prepend(entry);
        GalleryItem trashed = *it;
        trashed.id = name;
        trashed.path = QFileInfo(trashDir.filePath(name)).absoluteFilePath();
        m_trash.prepend(trashed);
    }
    m_items.erase(it);
    m_favourites.remove(id);
    saveIndex();  // a failure loses nothing: load() lists every PNG in the trash folder
    emit itemRemoved(id);
    emit trashChanged();
    return true;
}

bool GalleryStore::setFavourite(const QString& id, const bool favourite, QString* error) {
    if (!item(id)) {
        if (error) *error = tr("No image %1 in the gallery.").arg(id);
        return false;
    }
    if (m_favourites.contains(id) == favourite) return true;
    if (favourite)
        m_favourites.insert(id);
    else
        m_favourites.remove(id);
    if (!saveIndex(error)) {
        if (favourite)
            m_favourites.remove(id);
        else
            m_favourites.insert(id);
        return false;
    }
    emit favouriteChanged(id, favourite);
    return true;
}

QDateTime GalleryStore::deletedAt(const QString& trashId) const {
    for (const TrashEntry& e : m_trashEntries) {
        if (e.file == trashId) return e.deletedAt;
    }
    return {};
}

std::optional<GalleryItem> GalleryStore::restore(const QString& trashId, QString* error) {
    qsizetype at = -1;
    for (qsizetype i = 0; i < m_trashEntries.size(); ++i) {
        if (m_trashEntries[i].file == trashId) at = i;
    }
    if (at < 0) {
        if (error) *error = tr("No image %1 in the trash.").arg(trashId);
        return std::nullopt;
    }
    const TrashEntry entry = m_trashEntries[at];
    const QDir dir(m_folder);
    if (!QDir().mkpath(m_folder)) {
        if (error) *error = tr("Cannot create the output folder %1").arg(m_folder);
        return std::nullopt;
    }
    const QString name = freeName(dir, entry.original);
    QFile file(QDir(trashFolder()).filePath(entry.file));
    if (!file.rename(dir.filePath(name))) {
        if (error) *error = tr("Cannot restore %1: %2").arg(entry.original, file.errorString());
        return std::nullopt;
    }
    QString readError;
    std::optional<GalleryItem> restored = itemFromFile(QFileInfo(dir.filePath(name)), &readError);
    m_trashEntries.removeAt(at);
    m_trash.removeAt(at);
    if (!restored) {
        // Back in the folder but not a readable PNG: it stays there, outside the gallery, and the message says so.
        saveIndex();
        emit trashChanged();
        if (error) *error = readError;
        return std::nullopt;
    }
    m_items.insert(std::upper_bound(m_items.begin(), m_items.end(), *restored, olderFirst), *restored);
    if (entry.favourite) m_favourites.insert(restored->id);
    saveIndex();
    emit itemRestored(*restored);
    emit trashChanged();
    if (entry.favourite) emit favouriteChanged(restored->id, true);
    return restored;
}

bool GalleryStore::deleteForGood(const QString& trashId, QString* error) {
    for (qsizetype i = 0; i < m_trashEntries.size(); ++i) {
        if (m_trashEntries[i].file != trashId) continue;
        QFile file(QDir(trashFolder()).filePath(trashId));
        if (file.exists() && !file.remove()) {
            if (error) *error = tr("Cannot delete %1: %2").arg(file.fileName(), file.errorString());
            return false;
        }
        m_trashEntries.removeAt(i);
        m_trash.removeAt(i);
        saveIndex();
        emit trashChanged();
        return true;
    }
    if (error) *error = tr("No image %1 in the trash.").arg(trashId);
    return false;
}

bool GalleryStore::emptyTrash(QString* error) {
    QStringList failed;
    for (qsizetype i = m_trashEntries.size() - 1; i >= 0; --i) {
        QFile file(QDir(trashFolder()).filePath(m_trashEntries[i].file));
        if (file.exists() && !file.remove()) {
            failed << QStringLiteral("%1 (%2)").arg(file.fileName(), file.errorString());
            continue;
        }
        m_trashEntries.removeAt(i);
        m_trash.removeAt(i);
    }
    saveIndex();
    emit trashChanged();
    if (!failed.isEmpty()) {
        if (error) *error = tr("Could not delete from the trash: %1").arg(failed.join(QStringLiteral(", ")));
        return false;
    }
    return true;
}
