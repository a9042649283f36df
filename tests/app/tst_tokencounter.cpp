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
    // ---- prompt syntax (issue 10) ----
    void a1111LayoutHasChunks();
    void layoutPositionsAreCharacters();
    void plainLayoutFindsTheCut();
    void layoutWithoutTokenizer();

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

// ---- prompt syntax (issue 10) ----
namespace {
QString koalas(const int n) {
    QStringList list;
    for (int i = 0; i < n; ++i) list << QStringLiteral("koala");
    return list.join(QLatin1Char(' '));
}
}  // namespace

void TestTokenCounter::a1111LayoutHasChunks() {
    TokenCounter counter;
    const QString model = fixture("tiny-koala-700m");
    TokenCounter::Layout l =
        counter.layout(model, QStringLiteral("a photo of a koala astronaut, highly detailed"), QStringLiteral("a1111"));
    QCOMPARE(l.tokens, 9);
    QCOMPARE(l.chunks, 1);
    QCOMPARE(l.chunkStarts, QList<int>{0});
    QCOMPARE(l.cut, -1);
    // 80 one-token words: 75 in the first chunk, the 76th word starts the second ("koala " is 6 characters).
    l = counter.layout(model, koalas(80), QStringLiteral("a1111"));
    QCOMPARE(l.tokens, 80);
    QCOMPARE(l.chunks, 2);
    QCOMPARE(l.chunkStarts.size(), 2);
    QCOMPARE(l.chunkStarts.at(1), 75 * 6);
    QCOMPARE(l.cut, -1);
    // BREAK starts a chunk; a <lora:> tag counts for nothing.
    const QString broken = QStringLiteral("a koala BREAK an astronaut");
    l = counter.layout(model, broken, QStringLiteral("a1111"));
    QCOMPARE(l.chunks, 2);
    QVERIFY(l.chunkStarts.at(1) > broken.indexOf(QStringLiteral("BREAK")));
    QCOMPARE(counter.layout(model, QStringLiteral("a koala <lora:style:0.8>"), QStringLiteral("a1111")).tokens, 2);
    // Anything but "plain" reads as a1111.
    QCOMPARE(counter.layout(model, koalas(80), QString()).chunks, 2);
}

void TestTokenCounter::layoutPositionsAreCharacters() {
    // The engine gives byte offsets in UTF-8; the editor needs QString positions.
    TokenCounter counter;
    const QString head = QStringLiteral("caf\u00e9 na\u00efve r\u00e9sum\u00e9 \u00dcn\u00efc\u00f6d\u00e9 ");
    QCOMPARE(counter.count(fixture("tiny-koala-1b"), head), 14);
    const QString text = head + koalas(66);  // 14 + 61 = 75 tokens in the first chunk
    const TokenCounter::Layout l = counter.layout(fixture("tiny-koala-1b"), text, QStringLiteral("a1111"));
    QCOMPARE(l.chunks, 2);
    QCOMPARE(l.chunkStarts.at(1), int(head.size()) + 61 * 6);
}

void TestTokenCounter::plainLayoutFindsTheCut() {
    TokenCounter counter;
    const QString model = fixture("tiny-koala-700m");
    TokenCounter::Layout l = counter.layout(model, koalas(80), QStringLiteral("plain"));
    QCOMPARE(l.tokens, 80);
    QCOMPARE(l.chunks, 1);
    QCOMPARE(l.cut, 75 * 6);
    l = counter.layout(model, koalas(75), QStringLiteral("plain"));
    QCOMPARE(l.tokens, 75);
    QCOMPARE(l.cut, -1);
}

void TestTokenCounter::layoutWithoutTokenizer() {
    TokenCounter counter;
    QCOMPARE(counter.layout(QString(), QStringLiteral("a koala"), QStringLiteral("a1111")).tokens, -1);
}

QTEST_GUILESS_MAIN(TestTokenCounter)
#include "tst_tokencounter.moc"
