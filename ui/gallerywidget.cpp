#include "gallerywidget.h"

#include <algorithm>

#include <QContextMenuEvent>
#include <QMenu>
#include <QScopedValueRollback>
#include <QSortFilterProxyModel>

#include "gallerymodel.h"
#include "icons.h"

class GalleryFilterModel final : public QSortFilterProxyModel {
public:
    explicit GalleryFilterModel(QObject* parent) : QSortFilterProxyModel(parent) {}

    void setWords(const QString& text) {
        m_text = text;
        m_words = text.simplified().split(QLatin1Char(' '), Qt::SkipEmptyParts);
        invalidateFilter();
    }
    QString text() const { return m_text; }

    void setFavouritesOnly(const bool on) {
        m_favouritesOnly = on;
        invalidateFilter();
    }
    bool favouritesOnly() const { return m_favouritesOnly; }

    void setSortMode(const GalleryWidget::Sort sort) {
        m_sort = sort;
        invalidate();
        this->sort(0, Qt::AscendingOrder);
    }
    GalleryWidget::Sort sortMode() const { return m_sort; }

protected:
    bool filterAcceptsRow(const int row, const QModelIndex& parent) const override {
        const QModelIndex index = sourceModel()->index(row, 0, parent);
        const bool pending = index.data(GalleryModel::PendingRole).toBool();
        if (m_favouritesOnly && !index.data(GalleryModel::FavouriteRole).toBool()) return false;
        if (pending) return true;  // the work in progress stays in view while searching
        const QString prompt = index.data(GalleryModel::PromptRole).toString();
        for (const QString& word : m_words) {
            if (!prompt.contains(word, Qt::CaseInsensitive)) return false;
        }
        return true;
    }

    // The model's own order is newest first (a job's images in their order); the other orders are stable over it.
    bool lessThan(const QModelIndex& left, const QModelIndex& right) const override {
        switch (m_sort) {
        case GalleryWidget::Sort::Newest: break;
        case GalleryWidget::Sort::Oldest: return left.row() > right.row();
        case GalleryWidget::Sort::Prompt:
        case GalleryWidget::Sort::Model: {
            const int role =
                (m_sort == GalleryWidget::Sort::Prompt) ? GalleryModel::PromptRole : GalleryModel::ModelRole;
            const int c = QString::localeAwareCompare(left.data(role).toString().toCaseFolded(),
                                                      right.data(role).toString().toCaseFolded());
            if (c != 0) return c < 0;
            break;
        }
        }
        return left.row() < right.row();
    }

private:
    QString m_text;
    QStringList m_words;
    bool m_favouritesOnly = false;
    GalleryWidget::Sort m_sort = GalleryWidget::Sort::Newest;
};

GalleryWidget::GalleryWidget(GalleryModel* model, QWidget* parent, const Mode mode)
    : QListView(parent), m_model(model), m_filter(new GalleryFilterModel(this)), m_mode(mode) {
    setObjectName(mode == Mode::Trash ? QStringLiteral("trashView") : QStringLiteral("galleryView"));
    m_filter->setSourceModel(model);
    m_filter->setDynamicSortFilter(true);
    m_filter->sort(0, Qt::AscendingOrder);
    setModel(m_filter);
    setViewMode(QListView::IconMode);
    setResizeMode(QListView::Adjust);
    setMovement(QListView::Static);
    setUniformItemSizes(true);
    setWordWrap(true);
    setSpacing(6);
    fitTilesToWidth();
    setSelectionMode(QAbstractItemView::SingleSelection);

    connect(selectionModel(), &QItemSelectionModel::currentChanged, this, [this](const QModelIndex& current) {
        if (const auto item = itemAtViewRow(current.row())) {
            emit currentItemChanged(*item);
            if (m_userInput) emit itemChosen(*item);
        }
    });
    // A tile that finishes while selected: show the final image, not the last preview.
    connect(m_model, &QAbstractItemModel::dataChanged, this,
            [this](const QModelIndex& topLeft, const QModelIndex& bottomRight, const QList<int>& roles) {
                const QModelIndex current = m_filter->mapToSource(currentIndex());
                if (!current.isValid() || (current.row() < topLeft.row()) || (current.row() > bottomRight.row()))
                    return;
                if (!roles.isEmpty() && !roles.contains(Qt::DecorationRole)) return;  // a star, not a new image
                if (const auto item = m_model->itemAt(current.row())) emit currentItemChanged(*item);
            });
    connect(this, &QListView::doubleClicked, this, [this](const QModelIndex& index) {
        if (const auto item = itemAtViewRow(index.row())) emit openRequested(*item);
    });
}

GalleryModel* GalleryWidget::galleryModel() const { return m_model; }

QSortFilterProxyModel* GalleryWidget::filterModel() const { return m_filter; }

std::optional<GalleryItem> GalleryWidget::itemAtViewRow(const int row) const {
    if ((row < 0) || (row >= m_filter->rowCount())) return std::nullopt;
    return m_model->itemAt(m_filter->mapToSource(m_filter->index(row, 0)).row());
}

std::optional<GalleryItem> GalleryWidget::currentItem() const { return itemAtViewRow(currentIndex().row()); }

QModelIndex GalleryWidget::viewIndexOfItem(const QString& id) const {
    const int row = m_model->rowOfItem(id);
    return (row < 0) ? QModelIndex() : m_filter->mapFromSource(m_model->index(row));
}

QModelIndex GalleryWidget::viewIndexOfTile(const qint64 jobId, const int imageIndex) const {
    const int row = m_model->rowOfTile(jobId, imageIndex);
    return (row < 0) ? QModelIndex() : m_filter->mapFromSource(m_model->index(row));
}

bool GalleryWidget::selectItem(const QString& id) {
    const QModelIndex index = viewIndexOfItem(id);
    if (!index.isValid()) return false;
    const QScopedValueRollback<bool> programmatic(m_userInput, false);
    setCurrentIndex(index);
    scrollTo(index);
    return true;
}

bool GalleryWidget::selectTile(const qint64 jobId, const int imageIndex) {
    const QModelIndex index = viewIndexOfTile(jobId, imageIndex);
    if (!index.isValid()) return false;
    const QScopedValueRollback<bool> programmatic(m_userInput, false);
    setCurrentIndex(index);
    scrollTo(index);
    return true;
}

void GalleryWidget::setSearchText(const QString& text) { m_filter->setWords(text); }

QString GalleryWidget::searchText() const { return m_filter->text(); }

void GalleryWidget::setSort(const Sort sort) { m_filter->setSortMode(sort); }

GalleryWidget::Sort GalleryWidget::sort() const { return m_filter->sortMode(); }

void GalleryWidget::setFavouritesOnly(const bool on) { m_filter->setFavouritesOnly(on); }

bool GalleryWidget::favouritesOnly() const { return m_filter->favouritesOnly(); }

void GalleryWidget::mousePressEvent(QMouseEvent* event) {
    const QScopedValueRollback<bool> user(m_userInput, true);
    QListView::mousePressEvent(event);
}

void GalleryWidget::keyPressEvent(QKeyEvent* event) {
    const QScopedValueRollback<bool> user(m_userInput, true);
    QListView::keyPressEvent(event);
}

void GalleryWidget::resizeEvent(QResizeEvent* event) {
    QListView::resizeEvent(event);
    fitTilesToWidth();
}

void GalleryWidget::fitTilesToWidth() {
    // From the widget's width less a scroll bar's, shown or not, so the size cannot flip with the scroll bar.
    const int room = width() - 2 * frameWidth() - style()->pixelMetric(QStyle::PM_ScrollBarExtent) - 2 * spacing();
    const int thumb = std::clamp(room - 16, 96, int(GalleryModel::ThumbnailSize));
    if (iconSize().width() == thumb) return;
    setIconSize({thumb, thumb});
    // Room for two caption lines: the prompt, then model and date.
    setGridSize({thumb + 16, thumb + 48});
}

void GalleryWidget::contextMenuEvent(QContextMenuEvent* event) {
    const QModelIndex index = indexAt(event->pos());
    const auto item = itemAtViewRow(index.row());
    if (!item) return;  // a tile still being generated has nothing to act on yet
    {
        const QScopedValueRollback<bool> user(m_userInput, true);
        setCurrentIndex(index);
    }

    QMenu menu(this);
    if (m_mode == Mode::Trash) {
        menu.addAction(tr("&Restore"), this, [this, item]() { emit restoreRequested(*item); });
        menu.addAction(Icons::get(QStringLiteral("delete"), QStyle::SP_TrashIcon), tr("&Delete for good…"), this,
                       [this, item]() { emit deleteForGoodRequested(*item); });
        menu.exec(event->globalPos());
        return;
    }
    menu.addAction(tr("Open"), this, [this, item]() { emit openRequested(*item); });
    const bool favourite = m_model->isFavourite(item->id);
    menu.addAction(favourite ? tr("Remove from &favourites") : tr("Add to &favourites"), this,
                   [this, item]() { emit favouriteToggleRequested(*item); });
    menu.addSeparator();
    menu.addAction(tr("Reuse all parameters"), this, [this, item]() { emit reuseParametersRequested(*item); });
    menu.addAction(tr("Reuse this image's seed"), this, [this, item]() { emit reuseSeedRequested(*item); });
    menu.addAction(tr("Copy seed"), this, [this, item]() { emit copySeedRequested(*item); });
    menu.addSeparator();
    menu.addAction(tr("Use as &init image"), this, [this, item]() { emit useAsInitImageRequested(*item); });
    menu.addAction(tr("&Inpaint…"), this, [this, item]() { emit inpaintRequested(*item); });
    menu.addSeparator();
    menu.addAction(Icons::get(QStringLiteral("folder-add"), QStyle::SP_DirOpenIcon), tr("Open containing folder"), this,
                   [this, item]() { emit openFolderRequested(*item); });
    menu.addAction(Icons::get(QStringLiteral("delete"), QStyle::SP_TrashIcon), tr("Move to trash…"), this,
                   [this, item]() { emit deleteRequested(*item); });
    menu.exec(event->globalPos());
}
