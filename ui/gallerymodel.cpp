#include "gallerymodel.h"

#include <algorithm>

#include <QColor>
#include <QFileInfo>
#include <QIcon>
#include <QImageReader>
#include <QLocale>
#include <QPixmap>

GalleryModel::GalleryModel(QObject* parent) : QAbstractListModel(parent) {}

int GalleryModel::rowCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : int(m_tiles.size()); }

QVariant GalleryModel::data(const QModelIndex& index, const int role) const {
    if (!index.isValid() || (index.row() >= m_tiles.size())) return {};
    const Tile& tile = m_tiles[index.row()];
    switch (role) {
    case Qt::DisplayRole: return caption(tile);
    case Qt::DecorationRole: {
        QImage thumb = thumbnail(index.row());
        if (thumb.isNull()) {
            // Queued, no preview yet: a neutral square keeps the grid aligned.
            thumb = QImage(ThumbnailSize, ThumbnailSize, QImage::Format_RGB32);
            thumb.fill(QColor(0x3a, 0x3a, 0x3a));
        }
        // An icon, not a pixmap: the view draws it at its icon size (smaller tiles in a narrow grid).
        return QIcon(QPixmap::fromImage(thumb));
    }
    case Qt::ToolTipRole:
        if (tile.item) {
            const GalleryItem& item = *tile.item;
            return QStringLiteral("%1%2\n%3 · %4\n%5")
                .arg(m_favourites.contains(item.id) ? QStringLiteral("\u2605 ") : QString(), item.params.prompt,
                     item.modelName.isEmpty() ? QFileInfo(item.params.modelPath).fileName() : item.modelName,
                     QLocale().toString(item.createdAt, QLocale::ShortFormat),
                     item.params.toA1111().section(QLatin1Char('\n'), -1));
        }
        return tr("Job %1: waiting for the image").arg(tile.jobId);
    case Qt::BackgroundRole:
        // Compare pairs get a tint so the two halves read as one unit in the grid.
        if (tile.compareSlot >= 0) return QColor(tile.compareSlot == 0 ? 0xdbe9f7 : 0xdff2e0);
        return {};
    case ItemIdRole: return tile.item ? tile.item->id : QString();
    case PathRole: return tile.item ? tile.item->path : QString();
    case SeedRole: return tile.seed;
    case PendingRole: return !tile.item.has_value();
    case JobIdRole: return tile.jobId;
    case PreviewCountRole: return tile.previewCount;
    case CompareGroupRole: return tile.item ? tile.item->compareGroup : QString();
    case FavouriteRole: return tile.item && m_favourites.contains(tile.item->id);
    case PromptRole: return tile.item ? tile.item->params.prompt : QString();
    case ModelRole:
        return tile.item ? (tile.item->modelName.isEmpty() ? QFileInfo(tile.item->params.modelPath).fileName()
                                                           : tile.item->modelName)
                         : QString();
    case CreatedRole: return tile.item ? tile.item->createdAt : QDateTime();
    default: return {};
    }
}

void GalleryModel::setItems(const QList<GalleryItem>& items) {
    beginResetModel();
    m_tiles.clear();
    for (auto it = items.crbegin(); it != items.crend(); ++it) {
        Tile tile;
        tile.item = *it;
        tile.seed = it->params.seed.value_or(0);
        tile.compareSlot = it->compareSlot;
        tile.imageIndex = it->jobIndex;
        m_tiles.append(tile);
    }
    // Newest job first, but a job's own images in their order, as they were shown while it ran (ux-review 9).
    for (qsizetype begin = 0; begin < m_tiles.size();) {
        qsizetype end = begin + 1;
        const QString job = m_tiles[begin].item->job;
        while (!job.isEmpty() && end < m_tiles.size() && m_tiles[end].item->job == job) ++end;
        std::stable_sort(m_tiles.begin() + begin, m_tiles.begin() + end,
                         [](const Tile& a, const Tile& b) { return a.imageIndex < b.imageIndex; });
        begin = end;
    }
    endResetModel();
}

void GalleryModel::addItem(const GalleryItem& item) {
    if (rowOfItem(item.id) >= 0) return;
    beginInsertRows({}, 0, 0);
    Tile tile;
    tile.item = item;
    tile.seed = item.params.seed.value_or(0);
    tile.compareSlot = item.compareSlot;
    m_tiles.prepend(tile);
    endInsertRows();
}

void GalleryModel::removeItem(const QString& id) {
    const int row = rowOfItem(id);
    if (row < 0) return;
    beginRemoveRows({}, row, row);
    m_tiles.removeAt(row);
    endRemoveRows();
}

void GalleryModel::insertItem(const GalleryItem& item) {
    if (rowOfItem(item.id) >= 0) return;
    // Newest first: before the first stored image that is older (pending tiles stay at the top).
    int row = 0;
    while ((row < m_tiles.size()) &&
           (!m_tiles[row].item || (m_tiles[row].item->createdAt > item.createdAt) ||
            ((m_tiles[row].item->createdAt == item.createdAt) && (m_tiles[row].item->id > item.id))))
        ++row;
    beginInsertRows({}, row, row);
    Tile tile;
    tile.item = item;
    tile.seed = item.params.seed.value_or(0);
    tile.compareSlot = item.compareSlot;
    tile.imageIndex = item.jobIndex;
    m_tiles.insert(row, tile);
    endInsertRows();
}

void GalleryModel::setFavourites(const QSet<QString>& ids) {
    m_favourites = ids;
    if (!m_tiles.isEmpty()) emit dataChanged(index(0), index(int(m_tiles.size()) - 1));
}

void GalleryModel::setFavourite(const QString& id, const bool favourite) {
    if (favourite)
        m_favourites.insert(id);
    else
        m_favourites.remove(id);
    const int row = rowOfItem(id);
    if (row >= 0) emit dataChanged(index(row), index(row), {Qt::DisplayRole, Qt::ToolTipRole, FavouriteRole});
}

void GalleryModel::addPendingTiles(const qint64 jobId, const QList<quint64>& seeds, const bool compare) {
    QList<Tile> tiles;
    for (int i = 0; i < seeds.size(); ++i) {
        for (int slot = 0; slot < (compare ? 2 : 1); ++slot) {
            Tile tile;
            tile.jobId = jobId;
            tile.imageIndex = compare ? (2 * i + slot) : i;
            tile.seed = seeds[i];
            tile.compareSlot = compare ? slot : -1;
            tiles.append(tile);
        }
    }
    if (tiles.isEmpty()) return;
    // Newest first, but a job's own images read left to right in their order.
    beginInsertRows({}, 0, int(tiles.size()) - 1);
    m_tiles = tiles + m_tiles;
    endInsertRows();
}

void GalleryModel::setPreview(const qint64 jobId, const int imageIndex, const QImage& preview) {
    const int row = rowOfTile(jobId, imageIndex);
    if ((row < 0) || preview.isNull()) return;
    Tile& tile = m_tiles[row];
    // Previews come at latent resolution (1/8 of the image): smooth scaling turns blocks into a soft picture.
    tile.thumbnail = preview.scaled(ThumbnailSize, ThumbnailSize, Qt::KeepAspectRatio, Qt::SmoothTransformation);
    ++tile.previewCount;
    const QModelIndex idx = index(row);
    emit dataChanged(idx, idx, {Qt::DecorationRole, Qt::DisplayRole, PreviewCountRole});
}

void GalleryModel::finishTile(const qint64 jobId, const GalleryItem& item) {
    int row = -1;
    for (int i = 0; i < m_tiles.size(); ++i) {
        const Tile& tile = m_tiles[i];
        if ((tile.jobId == jobId) && !tile.item && (tile.seed == item.params.seed.value_or(0)) &&
            (tile.compareSlot == item.compareSlot)) {
            row = i;
            break;
        }
    }
    if (row < 0) {
        addItem(item);
        return;
    }
    Tile& tile = m_tiles[row];
    tile.item = item;
    tile.thumbnail = loadThumbnail(item.path);
    const QModelIndex idx = index(row);
    emit dataChanged(idx, idx);
}

void GalleryModel::dropPendingTiles(const qint64 jobId) {
    for (int i = int(m_tiles.size()) - 1; i >= 0; --i) {
        if ((m_tiles[i].jobId == jobId) && !m_tiles[i].item) {
            beginRemoveRows({}, i, i);
            m_tiles.removeAt(i);
            endRemoveRows();
        }
    }
}

int GalleryModel::rowOfItem(const QString& id) const {
    if (id.isEmpty()) return -1;
    for (int i = 0; i < m_tiles.size(); ++i) {
        if (m_tiles[i].item && (m_tiles[i].item->id == id)) return i;
    }
    return -1;
}

int GalleryModel::rowOfTile(const qint64 jobId, const int imageIndex) const {
    for (int i = 0; i < m_tiles.size(); ++i) {
        if ((m_tiles[i].jobId == jobId) && (m_tiles[i].imageIndex == imageIndex)) return i;
    }
    return -1;
}

std::optional<GalleryItem> GalleryModel::itemAt(const int row) const {
    if ((row < 0) || (row >= m_tiles.size())) return std::nullopt;
    return m_tiles[row].item;
}

int GalleryModel::previewCount(const int row) const {
    return ((row >= 0) && (row < m_tiles.size())) ? m_tiles[row].previewCount : 0;
}

QImage GalleryModel::thumbnail(const int row) const {
    if ((row < 0) || (row >= m_tiles.size())) return {};
    // Stored images are read on first display only: a gallery of thousands must not stall the start-up.
    Tile& tile = const_cast<Tile&>(m_tiles[row]);
    if (tile.thumbnail.isNull() && tile.item) tile.thumbnail = loadThumbnail(tile.item->path);
    return tile.thumbnail;
}

QImage GalleryModel::loadThumbnail(const QString& path) {
    QImageReader reader(path);
    const QSize size = reader.size();
    if (size.isValid()) reader.setScaledSize(size.scaled(ThumbnailSize, ThumbnailSize, Qt::KeepAspectRatio));
    return reader.read();
}

// Two short lines: the prompt's start (a star for a favourite), then the model and the date; the tooltip has it all.
QString GalleryModel::caption(const Tile& tile) const {
    QString text;
    if (tile.item) {
        const GalleryItem& item = *tile.item;
        QString prompt = item.params.prompt.simplified();
        if (prompt.isEmpty()) prompt = tr("seed %1").arg(tile.seed);
        if (prompt.size() > 28) prompt = prompt.left(27) + QStringLiteral("\u2026");
        if (m_favourites.contains(item.id)) prompt = QStringLiteral("\u2605 ") + prompt;
        QString model = item.modelName.isEmpty() ? QFileInfo(item.params.modelPath).fileName() : item.modelName;
        if (model.size() > 16) model = model.left(15) + QStringLiteral("\u2026");
        const QString when =
            item.createdAt.isValid() ? QLocale().toString(item.createdAt, QStringLiteral("MMM d HH:mm")) : QString();
        text = QStringLiteral("%1\n%2").arg(prompt, QStringList{model, when}.join(QStringLiteral(" · ")));
    } else {
        text = (tile.previewCount > 0) ? tr("step %1…").arg(tile.previewCount) : tr("queued");
    }
    return text;
}
