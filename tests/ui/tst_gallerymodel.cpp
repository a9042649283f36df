#include <QSignalSpy>
#include <QTest>

#include "GalleryItem.h"
#include "gallerymodel.h"

class TestGalleryModel : public QObject {
    Q_OBJECT

private slots:
    void jobImagesKeepTheirOrderAfterRestart();
    void jobKeyRoundTripsThroughJson();
    void restoredItemGoesBackInTimeOrder();
    void favouritesShowInCaptionAndRole();
};

namespace {
GalleryItem item(const QString& job, int index, quint64 seed, int second) {
    GalleryItem it;
    it.id = QStringLiteral("%1-%2").arg(job).arg(index);
    it.job = job;
    it.jobIndex = index;
    it.params.seed = seed;
    it.createdAt = QDateTime(QDate(2026, 1, 1), QTime(12, 0, second));
    return it;
}

QList<quint64> seedsInRows(const GalleryModel& model) {
    QList<quint64> seeds;
    for (int row = 0; row < model.rowCount(); ++row) seeds << model.itemAt(row)->params.seed.value();
    return seeds;
}
}  // namespace

// ux-review 9: while a job runs its tiles read 100, 101, 102 left to right; after a restart they came back reversed.
void TestGalleryModel::jobImagesKeepTheirOrderAfterRestart() {
    GalleryModel live;
    live.addPendingTiles(1, {100, 101, 102}, false);
    for (int i = 0; i < 3; ++i) live.finishTile(1, item(QStringLiteral("a"), i, 100 + i, i));
    QCOMPARE(seedsInRows(live), (QList<quint64>{100, 101, 102}));

    // The store gives items oldest first: job "a" (three images), then job "b" (two).
    GalleryModel restarted;
    restarted.setItems({item(QStringLiteral("a"), 0, 100, 0), item(QStringLiteral("a"), 1, 101, 1),
                        item(QStringLiteral("a"), 2, 102, 2), item(QStringLiteral("b"), 0, 7, 3),
                        item(QStringLiteral("b"), 1, 8, 4)});
    QCOMPARE(seedsInRows(restarted), (QList<quint64>{7, 8, 100, 101, 102}));
}

void TestGalleryModel::jobKeyRoundTripsThroughJson() {
    const GalleryItem back = GalleryItem::fromJson(item(QStringLiteral("20260101-4"), 2, 5, 0).toJson());
    QCOMPARE(back.job, QStringLiteral("20260101-4"));
    QCOMPARE(back.jobIndex, 2);
    QCOMPARE(GalleryItem::fromJson(QJsonObject{}).jobIndex, -1);
}

// An image restored from the trash is placed by its date among the stored images, below the running job's tiles.
void TestGalleryModel::restoredItemGoesBackInTimeOrder() {
    GalleryModel model;
    model.setItems({item(QStringLiteral("a"), 0, 1, 0), item(QStringLiteral("b"), 0, 3, 30)});
    model.addPendingTiles(9, {50}, false);
    model.insertItem(item(QStringLiteral("c"), 0, 2, 10));
    QCOMPARE(model.rowCount(), 4);
    QVERIFY(model.data(model.index(0), GalleryModel::PendingRole).toBool());
    QCOMPARE(model.itemAt(1)->params.seed, std::optional<quint64>(3));
    QCOMPARE(model.itemAt(2)->params.seed, std::optional<quint64>(2));
    QCOMPARE(model.itemAt(3)->params.seed, std::optional<quint64>(1));
    model.insertItem(item(QStringLiteral("c"), 0, 2, 10));  // already there: nothing added
    QCOMPARE(model.rowCount(), 4);
}

void TestGalleryModel::favouritesShowInCaptionAndRole() {
    GalleryModel model;
    GalleryItem it = item(QStringLiteral("a"), 0, 1, 0);
    it.params.prompt = QStringLiteral("a very long prompt about a koala sitting in a eucalyptus tree");
    it.modelName = QStringLiteral("koala-700m");
    model.setItems({it});
    QSignalSpy changed(&model, &QAbstractItemModel::dataChanged);
    const QString plain = model.data(model.index(0), Qt::DisplayRole).toString();
    QVERIFY2(plain.startsWith(QStringLiteral("a very long prompt")) && plain.contains(QStringLiteral("koala-700m")),
             qPrintable(plain));
    QVERIFY(plain.section(QLatin1Char('\n'), 0, 0).size() <= 28);  // cut, the tooltip has it all
    QVERIFY(model.data(model.index(0), Qt::ToolTipRole).toString().contains(it.params.prompt));
    model.setFavourite(it.id, true);
    QCOMPARE(changed.count(), 1);
    QVERIFY(model.data(model.index(0), GalleryModel::FavouriteRole).toBool());
    QVERIFY(model.data(model.index(0), Qt::DisplayRole).toString().startsWith(QStringLiteral("\u2605 ")));
    model.setFavourites({});
    QVERIFY(!model.data(model.index(0), GalleryModel::FavouriteRole).toBool());
}

QTEST_MAIN(TestGalleryModel)
#include "tst_gallerymodel.moc"
