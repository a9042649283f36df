#include <QtTest>

#include "TokenCounter.h"

// Exact token counts from the tiny fixture models (real 49,408-token CLIP vocabulary). tiny-koala-700m ships
// vocab.json + merges.txt, tiny-koala-1b tokenizer.json: both must count alike. Expected values from the diffusers
// references in tests/data/fixtures/tokenizer_cases.json (ids_unpadded minus start and end).
class TestTokenCounter : public QObject {
    Q_OBJECT

private slots:
    void countsLikeClip_data();
    void countsLikeClip();
    void missingFolderGivesMinusOne();
    void cachesPerModel();

private:
    static QString fixture(const char* name);
};

QString TestTokenCounter::fixture(const char* name) {
    return QStringLiteral(KOALA_TEST_DATA "/fixtures/") + QLatin1String(name);
}

void TestTokenCounter::countsLikeClip_data() {
    QTest::addColumn<QString>("text");
    QTest::addColumn<int>("expected");
    QTest::newRow("koala astronaut") << QStringLiteral("a photo of a koala astronaut, highly detailed") << 9;
    QTest::newRow("portrait") << QStringLiteral("A portrait painting of a Golden Retriever like Leonard da Vinci")
                              << 11;
    QTest::newRow("negative") << QStringLiteral("worst quality, low quality, illustration, low resolution") << 10;
    QTest::newRow("camera") << QStringLiteral("a photo of a koala, 35mm, f/1.8, bokeh") << 18;
    QTest::newRow("empty") << QString() << 0;
    QTest::newRow("blank") << QStringLiteral("   ") << 0;
    QTest::newRow("non-ascii") << QStringLiteral("café naïve résumé Ünïcödé") << 14;
    QTest::newRow("weights") << QStringLiteral("(masterpiece:1.2), [blurry], {cat}") << 13;
}

void TestTokenCounter::countsLikeClip() {
    QFETCH(QString, text);
    QFETCH(int, expected);
    TokenCounter counter;
    const int n700m = counter.count(fixture("tiny-koala-700m"), text);
    const int n1b = counter.count(fixture("tiny-koala-1b"), text);
    QCOMPARE(n700m, expected);
    QCOMPARE(n1b, expected);
}

void TestTokenCounter::missingFolderGivesMinusOne() {
    TokenCounter counter;
    const QString missing =
        QDir::temp().filePath(QStringLiteral("koala-no-such-model-%1").arg(QCoreApplication::applicationPid()));
    QCOMPARE(counter.count(missing, QStringLiteral("a koala")), -1);
    QVERIFY(!counter.isAvailable(missing));
    QCOMPARE(counter.count(QString(), QStringLiteral("a koala")), -1);
    // A folder that is not a model: no exception escapes either.
    QTemporaryDir notAModel;
    QVERIFY(notAModel.isValid());
    QCOMPARE(counter.count(notAModel.path(), QStringLiteral("a koala")), -1);
    QVERIFY(counter.isAvailable(fixture("tiny-koala-700m")));
}

void TestTokenCounter::cachesPerModel() {
    TokenCounter counter;
    const QString path = fixture("tiny-koala-1b");
    QCOMPARE(counter.count(path, QStringLiteral("a koala")), 2);
    QCOMPARE(counter.count(path, QStringLiteral("a koala, a koala")), 5);
    // Another spelling of the same folder shares the cached tokenizer and counts alike.
    QCOMPARE(counter.count(path + QStringLiteral("/"), QStringLiteral("a koala")), 2);
    counter.clear();
    QCOMPARE(counter.count(path, QStringLiteral("a koala")), 2);
}

QTEST_GUILESS_MAIN(TestTokenCounter)
#include "tst_tokencounter.moc"
