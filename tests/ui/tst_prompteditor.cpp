#include <QPlainTextEdit>
#include <QTest>

#include "prompteditor.h"
#include "tokenestimate.h"

// The counter logic of the prompt editor, with a counter whose answer the test knows (one token per word).
class TestPromptEditor : public QObject {
    Q_OBJECT

private slots:
    void countsIncludeStartAndEndTokens();
    void turnsRedOverTheLimit();
    void unknownWithoutTokenizer();
    void estimateIsMarked();
    void estimateFollowsClipSplitting();
};

namespace {
int wordCount(const QString& text) { return int(text.split(QLatin1Char(' '), Qt::SkipEmptyParts).size()); }

QString words(const int n) {
    QStringList list;
    for (int i = 0; i < n; ++i) list << QStringLiteral("koala");
    return list.join(QLatin1Char(' '));
}
}  // namespace

void TestPromptEditor::countsIncludeStartAndEndTokens() {
    PromptEditor editor(QStringLiteral("Prompt"), {});
    editor.setTokenCounter(&wordCount);
    QCOMPARE(editor.tokenCount(), 2);
    QTest::keyClicks(editor.editor(), QStringLiteral("a koala astronaut"));
    QCOMPARE(editor.tokenCount(), 5);
    QCOMPARE(editor.counterText(), QStringLiteral("5 / 77 tokens"));
    QVERIFY(!editor.isOverLimit());
}

void TestPromptEditor::turnsRedOverTheLimit() {
    PromptEditor editor(QStringLiteral("Prompt"), {});
    editor.setTokenCounter(&wordCount);
    auto* counter = editor.findChild<QWidget*>(QStringLiteral("tokenCounter"));
    QVERIFY(counter);

    editor.setText(words(75));  // 75 + start + end = exactly the limit
    QCOMPARE(editor.tokenCount(), 77);
    QVERIFY(!editor.isOverLimit());
    QVERIFY(!counter->styleSheet().contains(QStringLiteral("color")));

    editor.setText(words(76));
    QCOMPARE(editor.tokenCount(), 78);
    QVERIFY(editor.isOverLimit());
    QVERIFY(counter->styleSheet().contains(QStringLiteral("#d32f2f")));

    editor.setText(words(3));
    QVERIFY(!editor.isOverLimit());
    QVERIFY(!counter->styleSheet().contains(QStringLiteral("color")));
}

void TestPromptEditor::unknownWithoutTokenizer() {
    PromptEditor editor(QStringLiteral("Prompt"), {});
    editor.setText(QStringLiteral("a koala"));
    QCOMPARE(editor.tokenCount(), -1);
    QVERIFY(editor.counterText().startsWith(QLatin1Char('?')));
    editor.setTokenCounter([](const QString&) { return -1; });
    QCOMPARE(editor.tokenCount(), -1);
}

void TestPromptEditor::estimateIsMarked() {
    PromptEditor editor(QStringLiteral("Prompt"), {});
    editor.setTokenCounter(&TokenEstimate::count, false);
    editor.setText(QStringLiteral("a koala astronaut"));
    QVERIFY(!editor.isExact());
    QCOMPARE(editor.counterText(), QStringLiteral("\u22485 / 77 tokens"));
}

void TestPromptEditor::estimateFollowsClipSplitting() {
    QCOMPARE(TokenEstimate::count(QString()), 0);
    QCOMPARE(TokenEstimate::count(QStringLiteral("a koala astronaut")), 3);
    // CLIP's pre-tokenizer splits numbers into single digits.
    QCOMPARE(TokenEstimate::count(QStringLiteral("1024")), 4);
    QCOMPARE(TokenEstimate::count(QStringLiteral("koala, astronaut")), 3);
    QCOMPARE(TokenEstimate::count(QStringLiteral("it's")), 2);
    // Long rare words split into several pieces.
    QVERIFY(TokenEstimate::count(QStringLiteral("supercalifragilisticexpialidocious")) > 3);
    QVERIFY(TokenEstimate::count(words(80)) > 75);
}

QTEST_MAIN(TestPromptEditor)
#include "tst_prompteditor.moc"
