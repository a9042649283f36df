// writeFileAtomically (app/AtomicFile.h): the one way user data is written.
#include "AtomicFile.h"

#include <QDir>
#include <QFile>
#include <QTemporaryDir>
#include <QTest>

#include <sys/resource.h>
#include <csignal>

class TestAtomicFile : public QObject {
    Q_OBJECT

private slots:
    void writesAndReplaces() {
        QTemporaryDir dir;
        const QString path = dir.filePath(QStringLiteral("a.json"));
        QString error;
        QVERIFY(writeFileAtomically(path, "first", &error));
        QVERIFY(writeFileAtomically(path, "second, longer", &error));
        QFile f(path);
        QVERIFY(f.open(QIODevice::ReadOnly));
        QCOMPARE(f.readAll(), QByteArray("second, longer"));
        QVERIFY(error.isEmpty());
        QCOMPARE(QDir(dir.path()).entryList(QDir::Files).size(), 1);  // no temporary file left
    }

    void missingFolderIsReportedWithThePath() {
        QTemporaryDir dir;
        const QString path = dir.filePath(QStringLiteral("no/such/folder/a.json"));
        QString error;
        QVERIFY(!writeFileAtomically(path, "x", &error));
        QVERIFY2(error.startsWith(QStringLiteral("Cannot write ")) && error.contains(path), qPrintable(error));
    }

    // 8 KiB stays in QFileDevice's 16 KiB write buffer, so only flush()/commit() meet the error.
    // A write the file system refuses half way (here the process's file-size limit, which fails write(2) with EFBIG
    // as a full disk fails it with ENOSPC) keeps the old file and says so: Qt 6.4's commit() alone would have put a
    // cut-off file in place.
    void failedWriteKeepsTheOldFile() {
        QTemporaryDir dir;
        const QString path = dir.filePath(QStringLiteral("queue.json"));
        QVERIFY(writeFileAtomically(path, "old content"));
        struct rlimit old {};
        QVERIFY(getrlimit(RLIMIT_FSIZE, &old) == 0);
        auto oldHandler = std::signal(SIGXFSZ, SIG_IGN);
        struct rlimit small = old;
        small.rlim_cur = 4096;
        QVERIFY(setrlimit(RLIMIT_FSIZE, &small) == 0);
        QString error;
        const bool ok = writeFileAtomically(path, QByteArray(8 * 1024, 'x'), &error);
        setrlimit(RLIMIT_FSIZE, &old);
        std::signal(SIGXFSZ, oldHandler);
        QVERIFY(!ok);
        QVERIFY2(error.contains(path), qPrintable(error));
        QFile f(path);
        QVERIFY(f.open(QIODevice::ReadOnly));
        QCOMPARE(f.readAll(), QByteArray("old content"));
        QCOMPARE(QDir(dir.path()).entryList(QDir::Files).size(), 1);
    }
};

QTEST_GUILESS_MAIN(TestAtomicFile)
#include "tst_atomicfile.moc"
