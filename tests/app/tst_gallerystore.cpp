#include <QImageReader>
#include <QImageWriter>
#include <QtTest>

#include "GalleryStore.h"
#include "PngMetadata.h"

class TestGalleryStore : public QObject {
    Q_OBJECT

private slots:
    void persistsAcrossRestart();
    void uniqueNamesNeverOverwrite();
    void removeDeletesFile();
    void compareGroups();
    void foreignFilesInFolder();
    void createsMissingFolder();
    void trashRestoreAndEmpty();
    void favouritesPersist();
    void damagedIndexRestoredFromBackup();
    void damagedIndexAndBackupRebuiltFromImages();
    void hostileIndexCannotMoveFilesOut();

private:
    static QImage image(int w, int h, QColor c);
    static GalleryItem item(qint64 seed, const QDateTime& when);
    // A gallery in `folder` with two images: `a` a favourite, `b` in the trash (the damaged-index tests' start).
    static bool favouriteAndTrashed(const QString& folder, GalleryItem& a, GalleryItem& b);
};

QImage TestGalleryStore::image(int w, int h, QColor c) {
    QImage img(w, h, QImage::Format_RGB888);
    img.fill(c);
    return img;
}

GalleryItem TestGalleryStore::item(qint64 seed, const QDateTime& when) {
    GalleryItem it;
    it.params = GenerationParams::defaults();
    it.params.prompt = QStringLiteral("prompt %1").arg(seed);
    it.params.seed = quint64(seed);
    it.createdAt = when;
    it.modelName = QStringLiteral("tiny-koala-700m");
    it.timings.totalSeconds = 1.5 + seed;
    it.timings.stepSeconds = 0.05;
    it.timings.peakDeviceBytes = 1024 * seed;
    return it;
}

void TestGalleryStore::persistsAcrossRestart() {
    QTemporaryDir dir;
    const QDateTime t0 = QDateTime::currentDateTime().addSecs(-100);
    QStringList ids;
    {
        GalleryStore store(dir.path());
        QCOMPARE(store.load(), 0);
        QSignalSpy added(&store, &GalleryStore::itemAdded);
        // Added out of time order: load() sorts by creation time.
        for (qint64 seed : {3, 1, 2}) {
            QString error;
            const std::optional<GalleryItem> stored =
                store.add(image(32, 16, QColor(int(seed) * 50, 0, 0)), item(seed, t0.addSecs(seed)), &error);
            QVERIFY2(stored, qPrintable(error));
            QVERIFY(QFile::exists(stored->path));
            QCOMPARE(stored->width, 32);
            QCOMPARE(stored->height, 16);
            QVERIFY(stored->id.contains(QStringLiteral("seed%1").arg(seed)));
            ids << stored->id;
        }
        QCOMPARE(added.count(), 3);
        QCOMPARE(store.items().size(), 3);
    }

    GalleryStore restarted(dir.path());
    QCOMPARE(restarted.load(), 3);
    QVERIFY(restarted.loadErrors().isEmpty());
    const QList<GalleryItem> items = restarted.items();
    QCOMPARE(items.size(), 3);
    for (int i = 0; i < 3; ++i) {
        const GalleryItem& it = items.at(i);
        const qint64 seed = i + 1;
        QCOMPARE(it.params.seed, std::optional<quint64>(seed));
        QCOMPARE(it.params.prompt, QStringLiteral("prompt %1").arg(seed));
        QCOMPARE(it.createdAt, t0.addSecs(seed));
        QCOMPARE(it.modelName, QStringLiteral("tiny-koala-700m"));
        QCOMPARE(it.timings.totalSeconds, 1.5 + seed);
        QCOMPARE(it.timings.peakDeviceBytes, 1024 * seed);
        QVERIFY(ids.contains(it.id));
        QCOMPARE(QImage(it.path).pixelColor(0, 0), QColor(int(seed) * 50, 0, 0));
    }
    QCOMPARE(restarted.item(ids.first())->params.seed, std::optional<quint64>(3));
}

void TestGalleryStore::uniqueNamesNeverOverwrite() {
    QTemporaryDir dir;
    GalleryStore store(dir.path());
    const QDateTime when(QDate(2026, 11, 26), QTime(12, 34, 56));
    QSet<QString> paths;
    for (int i = 0; i < 3; ++i) {
        const std::optional<GalleryItem> stored = store.add(image(8, 8, QColor(i * 80, 0, 0)), item(42, when));
        QVERIFY(stored);
        paths.insert(stored->path);
    }
    QCOMPARE(paths.size(), 3);
    const QStringList files = QDir(dir.path()).entryList(QDir::Files, QDir::Name);
    QCOMPARE(files, (QStringList{QStringLiteral("2026-11-26_123456_seed42-2.png"),
                                 QStringLiteral("2026-11-26_123456_seed42-3.png"),
                                 QStringLiteral("2026-11-26_123456_seed42.png")}));
    // The first image is untouched.
    QCOMPARE(QImage(dir.filePath(QStringLiteral("2026-11-26_123456_seed42.png"))).pixelColor(0, 0), QColor(0, 0, 0));
}

void TestGalleryStore::removeDeletesFile() {
    QTemporaryDir dir;
    GalleryStore store(dir.path());
    const std::optional<GalleryItem> a = store.add(image(8, 8, Qt::red), item(1, QDateTime::currentDateTime()));
    const std::optional<GalleryItem> b = store.add(image(8, 8, Qt::blue), item(2, QDateTime::currentDateTime()));
    QVERIFY(a && b);
    QSignalSpy removed(&store, &GalleryStore::itemRemoved);
    QVERIFY(store.remove(a->id));
    QCOMPARE(removed.count(), 1);
    QCOMPARE(removed.first().first().toString(), a->id);
    QVERIFY(!QFile::exists(a->path));
    QVERIFY(QFile::exists(b->path));
    QString error;
    QVERIFY(!store.remove(a->id, &error));
    QVERIFY(!error.isEmpty());

    GalleryStore restarted(dir.path());
    QCOMPARE(restarted.load(), 1);
    QCOMPARE(restarted.items().first().id, b->id);
}

void TestGalleryStore::compareGroups() {
    QTemporaryDir dir;
    GalleryStore store(dir.path());
    const QDateTime now = QDateTime::currentDateTime();
    GalleryItem b = item(7, now);
    b.compareGroup = QStringLiteral("grp-0");
    b.compareSlot = 1;
    b.modelName = QStringLiteral("tiny-koala-1b");
    GalleryItem a = item(7, now);
    a.compareGroup = QStringLiteral("grp-0");
    a.compareSlot = 0;
    QVERIFY(store.add(image(8, 8, Qt::green), b));
    QVERIFY(store.add(image(8, 8, Qt::green), a));
    QVERIFY(store.add(image(8, 8, Qt::green), item(8, now)));

    GalleryStore restarted(dir.path());
    restarted.load();
    const QList<GalleryItem> pair = restarted.compareGroup(QStringLiteral("grp-0"));
    QCOMPARE(pair.size(), 2);
    QCOMPARE(pair.at(0).compareSlot, 0);
    QCOMPARE(pair.at(1).compareSlot, 1);
    QCOMPARE(pair.at(1).modelName, QStringLiteral("tiny-koala-1b"));
    QVERIFY(restarted.compareGroup(QString()).isEmpty());
}

void TestGalleryStore::foreignFilesInFolder() {
    QTemporaryDir dir;
    // A PNG from another tool, a broken PNG and a non-PNG file.
    QImageWriter writer(dir.filePath(QStringLiteral("a1111.png")), "png");
    writer.setText(QStringLiteral("parameters"),
                   QStringLiteral("a dog\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 9, Size: 16x16"));
    QVERIFY(writer.write(image(16, 16, Qt::white)));
    QFile broken(dir.filePath(QStringLiteral("broken.png")));
    QVERIFY(broken.open(QIODevice::WriteOnly));
    broken.write("garbage");
    broken.close();
    QFile notes(dir.filePath(QStringLiteral("notes.txt")));
    QVERIFY(notes.open(QIODevice::WriteOnly));
    notes.close();

    GalleryStore store(dir.path());
    QCOMPARE(store.load(), 1);
    QCOMPARE(store.loadErrors().size(), 1);
    QVERIFY(store.loadErrors().first().contains(QLatin1String("broken.png")));
    const GalleryItem it = store.items().first();
    QCOMPARE(it.params.prompt, QStringLiteral("a dog"));
    QCOMPARE(it.params.scheduler, QStringLiteral("euler_a"));
    QCOMPARE(it.params.seed, std::optional<quint64>(9));
    QVERIFY(it.createdAt.isValid());
}

void TestGalleryStore::createsMissingFolder() {
    QTemporaryDir dir;
    const QString folder = dir.filePath(QStringLiteral("new/sub folder"));
    GalleryStore store(folder);
    QCOMPARE(store.load(), 0);
    QVERIFY(store.add(image(8, 8, Qt::red), item(1, QDateTime::currentDateTime())));
    QVERIFY(QDir(folder).exists());
}

namespace {
QByteArray readAllFile(const QString& path) {
    QFile file(path);
    return file.open(QIODevice::ReadOnly) ? file.readAll() : QByteArray();
}

void writeFile(const QString& path, const QByteArray& bytes) {
    QFile file(path);
    QVERIFY(file.open(QIODevice::WriteOnly | QIODevice::Truncate));
    file.write(bytes);
}
}  // namespace

// Deleting moves the image to the gallery's trash, where it can be restored until the trash is emptied (ux-review 7).
void TestGalleryStore::trashRestoreAndEmpty() {
    QTemporaryDir dir;
    const QDateTime t0 = QDateTime::currentDateTime().addSecs(-100);
    GalleryItem a;
    GalleryItem b;
    {
        GalleryStore store(dir.path());
        store.load();
        a = *store.add(image(8, 8, Qt::red), item(1, t0));
        b = *store.add(image(8, 8, Qt::blue), item(2, t0.addSecs(5)));
        QSignalSpy trashChanged(&store, &GalleryStore::trashChanged);
        QVERIFY(store.remove(a.id));
        QCOMPARE(trashChanged.count(), 1);
        QVERIFY(!QFile::exists(a.path));
        QCOMPARE(store.items().size(), 1);
        QCOMPARE(store.trashItems().size(), 1);
        QCOMPARE(store.trashItems().first().params.prompt, QStringLiteral("prompt 1"));
        QVERIFY(store.deletedAt(store.trashItems().first().id).isValid());
        QVERIFY(QFile::exists(store.trashItems().first().path));
    }
    // The trash survives a restart; restoring puts the image back under its name, in time order.
    GalleryStore store(dir.path());
    QCOMPARE(store.load(), 1);
    QCOMPARE(store.trashItems().size(), 1);
    const QString trashId = store.trashItems().first().id;
    QSignalSpy restoredSpy(&store, &GalleryStore::itemRestored);
    QString error;
    const std::optional<GalleryItem> restored = store.restore(trashId, &error);
    QVERIFY2(restored, qPrintable(error));
    QCOMPARE(restoredSpy.count(), 1);
    QCOMPARE(restored->id, a.id);
    QVERIFY(QFile::exists(a.path));
    QCOMPARE(QImage(a.path).pixelColor(0, 0), QColor(Qt::red));
    QCOMPARE(store.items().size(), 2);
    QCOMPARE(store.items().first().id, a.id);
    QVERIFY(store.trashItems().isEmpty());
    QVERIFY(!store.restore(trashId, &error));

    // Empty trash deletes for good, also after a restart.
    QVERIFY(store.remove(a.id));
    QVERIFY(store.remove(b.id));
    QCOMPARE(store.trashItems().size(), 2);
    QCOMPARE(store.trashItems().first().id, b.id);  // most recently deleted first
    QVERIFY(store.emptyTrash(&error));
    QVERIFY(store.trashItems().isEmpty());
    QVERIFY(QDir(store.trashFolder()).entryList(QDir::Files).isEmpty());
    GalleryStore restarted(dir.path());
    QCOMPARE(restarted.load(), 0);
    QVERIFY(restarted.trashItems().isEmpty());
    QVERIFY(restarted.recoveryMessage().isEmpty());
}

void TestGalleryStore::favouritesPersist() {
    QTemporaryDir dir;
    GalleryItem a;
    {
        GalleryStore store(dir.path());
        store.load();
        a = *store.add(image(8, 8, Qt::red), item(1, QDateTime::currentDateTime()));
        QSignalSpy changed(&store, &GalleryStore::favouriteChanged);
        QVERIFY(store.setFavourite(a.id, true));
        QCOMPARE(changed.count(), 1);
        QVERIFY(store.isFavourite(a.id));
        QString error;
        QVERIFY(!store.setFavourite(QStringLiteral("nope.png"), true, &error));
        QVERIFY(!error.isEmpty());
    }
    GalleryStore store(dir.path());
    store.load();
    QVERIFY(store.isFavourite(a.id));
    // A favourite keeps its star through the trash and back.
    QVERIFY(store.remove(a.id));
    QVERIFY(!store.isFavourite(a.id));
    QVERIFY(store.restore(store.trashItems().first().id));
    QVERIFY(store.isFavourite(a.id));
    QVERIFY(store.setFavourite(a.id, false));
    GalleryStore restarted(dir.path());
    restarted.load();
    QVERIFY(!restarted.isFavourite(a.id));
}

bool TestGalleryStore::favouriteAndTrashed(const QString& folder, GalleryItem& a, GalleryItem& b) {
    GalleryStore store(folder);
    store.load();
    const auto first = store.add(image(8, 8, Qt::red), item(1, QDateTime::currentDateTime()));
    const auto second = store.add(image(8, 8, Qt::blue), item(2, QDateTime::currentDateTime()));
    if (!first || !second) return false;
    a = *first;
    b = *second;
    return store.setFavourite(a.id, true) && store.remove(b.id);
}

// Issue 14 item 3: a damaged index is recovered from its backup, with a message, and the damaged file is kept.
void TestGalleryStore::damagedIndexRestoredFromBackup() {
    QTemporaryDir dir;
    GalleryItem a;
    GalleryItem b;
    QVERIFY(favouriteAndTrashed(dir.path(), a, b));
    GalleryStore probe(dir.path());
    writeFile(probe.indexPath(), QByteArray("{\"version\": 1, \"favourites\": [\"") + QByteArray(100, '\0'));

    GalleryStore store(dir.path());
    QSignalSpy recovered(&store, &GalleryStore::indexRecovered);
    QCOMPARE(store.load(), 1);
    QCOMPARE(recovered.count(), 1);
    QVERIFY2(store.recoveryMessage().contains(QLatin1String("backup")), qPrintable(store.recoveryMessage()));
    QVERIFY(store.isFavourite(a.id));
    QCOMPARE(store.trashItems().size(), 1);
    QCOMPARE(store.trashItems().first().params.prompt, QStringLiteral("prompt 2"));
    QVERIFY(QFile::exists(store.indexPath() + QStringLiteral(".damaged")));
    // The index was written again: the next start is quiet.
    GalleryStore again(dir.path());
    again.load();
    QVERIFY(again.recoveryMessage().isEmpty());
    QVERIFY(again.isFavourite(a.id));
}

void TestGalleryStore::damagedIndexAndBackupRebuiltFromImages() {
    QTemporaryDir dir;
    GalleryItem a;
    GalleryItem b;
    QVERIFY(favouriteAndTrashed(dir.path(), a, b));
    GalleryStore probe(dir.path());
    writeFile(probe.indexPath(), "[1, 2");
    writeFile(probe.indexPath() + QStringLiteral(".bak"), "{\"version\": 99}");

    GalleryStore store(dir.path());
    QSignalSpy recovered(&store, &GalleryStore::indexRecovered);
    QCOMPARE(store.load(), 1);
    QCOMPARE(recovered.count(), 1);
    QVERIFY2(store.recoveryMessage().contains(QLatin1String("rebuilt")), qPrintable(store.recoveryMessage()));
    // The trash is rebuilt from the trash folder's PNGs and their metadata; the favourite could not be recovered.
    QCOMPARE(store.trashItems().size(), 1);
    QCOMPARE(store.trashItems().first().params.prompt, QStringLiteral("prompt 2"));
    QCOMPARE(store.trashItems().first().params.seed, std::optional<quint64>(2));
    QVERIFY(!store.isFavourite(a.id));
    QVERIFY(store.restore(store.trashItems().first().id));
    QVERIFY(QFile::exists(b.path));
    QCOMPARE(readAllFile(store.indexPath() + QStringLiteral(".damaged")), QByteArray("[1, 2"));
}

// An index naming paths cannot make restore() move files outside the output folder.
void TestGalleryStore::hostileIndexCannotMoveFilesOut() {
    QTemporaryDir dir;
    QDir(dir.path()).mkpath(QStringLiteral("gallery/.koala"));
    const QString folder = dir.filePath(QStringLiteral("gallery"));
    writeFile(dir.filePath(QStringLiteral("secret.png")), "x");
    GalleryStore probe(folder);
    writeFile(probe.indexPath(),
              R"({"version": 1, "favourites": [], "trash": [{"file": "../../secret.png", "original": "a.png"}]})");
    GalleryStore store(folder);
    store.load();
    QVERIFY(store.trashItems().isEmpty());
    QVERIFY(!store.recoveryMessage().isEmpty());
    QVERIFY(QFile::exists(dir.filePath(QStringLiteral("secret.png"))));
}

QTEST_GUILESS_MAIN(TestGalleryStore)
#include "tst_gallerystore.moc"
