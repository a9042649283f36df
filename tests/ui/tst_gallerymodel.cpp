#include <QTest>

#include "GalleryItem.h"
#include "gallerymodel.h"

class TestGalleryModel : public QObject {
    Q_OBJECT

private slots:
    void jobImagesKeepTheirOrderAfterRestart();
    void jobKeyRoundTripsThroughJson();
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

QTEST_MAIN(TestGalleryModel)
#include "tst_gallerymodel.moc"
