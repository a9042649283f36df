#include <QPlainTextEdit>
#include <QRegularExpression>
#include <QTest>
#include <QTextEdit>

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
    // ---- prompt syntax (issue 10) ----
    void a1111CountsChunksAndTintsThem();
    void countOnlyCounterGivesChunks();
    void plainMarksTheCut();
    void editAttention_data();
    void editAttention();
    void ctrlUpDownInTheEditor();
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
    editor.setSyntax(QStringLiteral("plain"));
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

// ---- prompt syntax (issue 10) ----
namespace {
// One token per word; a1111 chunks of 75 words, plain cut after the 75th word (positions as the app computes them).
PromptEditor::TokenLayout wordLayout(const QString& text, const QString& syntax) {
    PromptEditor::TokenLayout l;
    l.tokens = 0;
    l.chunkStarts << 0;
    static const QRegularExpression word(QStringLiteral("\\S+"));
    auto it = word.globalMatch(text);
    while (it.hasNext()) {
        const QRegularExpressionMatch m = it.next();
        if (l.tokens > 0 && l.tokens % 75 == 0) {
            if (syntax == QLatin1String("plain")) {
                if (l.cut < 0) l.cut = int(m.capturedStart());
            } else {
                l.chunkStarts << int(m.capturedStart());
            }
        }
        ++l.tokens;
    }
    l.chunks = int(l.chunkStarts.size());
    return l;
}
}  // namespace

void TestPromptEditor::a1111CountsChunksAndTintsThem() {
    PromptEditor editor(QStringLiteral("Prompt"), {});
    QCOMPARE(editor.syntax(), QStringLiteral("a1111"));
    editor.setLayoutCounter(&wordLayout);
    editor.setText(words(94));
    QCOMPARE(editor.counterText(), QStringLiteral("94 tokens \u00b7 2 chunks"));
    QVERIFY(!editor.isOverLimit());
    auto* counter = editor.findChild<QWidget*>(QStringLiteral("tokenCounter"));
    QVERIFY(!counter->styleSheet().contains(QStringLiteral("color")));
    // The second chunk (from the 76th word to the end) is tinted; the first is not.
    const QList<QTextEdit::ExtraSelection> marks = editor.editor()->extraSelections();
    QCOMPARE(marks.size(), 1);
    QCOMPARE(marks.at(0).cursor.selectionStart(), 75 * 6);
    QCOMPARE(marks.at(0).cursor.selectionEnd(), int(editor.text().size()));
    // Three chunks: the second tinted, the third not.
    editor.setText(words(160));
    QCOMPARE(editor.counterText(), QStringLiteral("160 tokens \u00b7 3 chunks"));
    QCOMPARE(editor.editor()->extraSelections().size(), 1);
    QCOMPARE(editor.editor()->extraSelections().at(0).cursor.selectionEnd(), 150 * 6);
    // One chunk reads as before.
    editor.setText(words(3));
    QCOMPARE(editor.counterText(), QStringLiteral("5 / 77 tokens"));
    QVERIFY(editor.editor()->extraSelections().isEmpty());
}

void TestPromptEditor::countOnlyCounterGivesChunks() {
    PromptEditor editor(QStringLiteral("Prompt"), {});
    editor.setTokenCounter(&TokenEstimate::count, false);
    editor.setText(words(94));
    QCOMPARE(editor.counterText(), QStringLiteral("\u224894 tokens \u00b7 2 chunks"));
    editor.setSyntax(QStringLiteral("plain"));
    QCOMPARE(editor.counterText(), QStringLiteral("\u224896 / 77 tokens"));
    QVERIFY(editor.isOverLimit());
}

void TestPromptEditor::plainMarksTheCut() {
    PromptEditor editor(QStringLiteral("Prompt"), {});
    editor.setSyntax(QStringLiteral("plain"));
    editor.setLayoutCounter(&wordLayout);
    editor.setText(words(80));
    QCOMPARE(editor.counterText(), QStringLiteral("82 / 77 tokens"));
    QVERIFY(editor.isOverLimit());
    QCOMPARE(editor.layout().cut, 75 * 6);
    const QList<QTextEdit::ExtraSelection> marks = editor.editor()->extraSelections();
    QCOMPARE(marks.size(), 1);
    QCOMPARE(marks.at(0).cursor.selectionStart(), 75 * 6);
    QCOMPARE(marks.at(0).cursor.selectionEnd(), int(editor.text().size()));
    QVERIFY(marks.at(0).format.fontStrikeOut());
    // Back to a1111: the same text is two chunks, nothing dropped.
    editor.setSyntax(QStringLiteral("a1111"));
    QCOMPARE(editor.counterText(), QStringLiteral("80 tokens \u00b7 2 chunks"));
    QVERIFY(!editor.isOverLimit());
    QVERIFY(!editor.editor()->extraSelections().at(0).format.fontStrikeOut());
}

// AUTOMATIC1111's edit-attention.js with its defaults (0.1 for attention, 0.05 for <...> tags). "|" marks the cursor,
// "[[...]]" the selection, in the input; the expected selection in the output likewise.
void TestPromptEditor::editAttention_data() {
    QTest::addColumn<QString>("input");
    QTest::addColumn<bool>("up");
    QTest::addColumn<QString>("expected");
    QTest::newRow("word under the cursor")
        << QStringLiteral("a ko|ala astronaut") << true << QStringLiteral("a ([[koala]]:1.1) astronaut");
    QTest::newRow("down from plain") << QStringLiteral("a ko|ala") << false << QStringLiteral("a ([[koala]]:0.9)");
    QTest::newRow("selection") << QStringLiteral("a [[koala astronaut]], space") << true
                               << QStringLiteral("a ([[koala astronaut]]:1.1), space");
    QTest::newRow("trailing space not wrapped")
        << QStringLiteral("[[koala ]]astronaut") << true << QStringLiteral("([[koala]]:1.1) astronaut");
    QTest::newRow("step an existing weight")
        << QStringLiteral("a (ko|ala:1.1), b") << true << QStringLiteral("a ([[koala]]:1.2), b");
    QTest::newRow("no float noise") << QStringLiteral("(ko|ala:1.2)") << true << QStringLiteral("([[koala]]:1.3)");
    QTest::newRow("back to 1.0 drops the parentheses")
        << QStringLiteral("a (ko|ala:1.1) b") << false << QStringLiteral("a [[koala]] b");
    QTest::newRow("whole number") << QStringLiteral("(ko|ala:1.9)") << true << QStringLiteral("([[koala]]:2.0)");
    QTest::newRow("old-style emphasis") << QStringLiteral("((ko|ala))") << true << QStringLiteral("([[koala]]:1.3)");
    // [koala] is 0.9; one step up is 1.0, the plain word.
    QTest::newRow("old-style de-emphasis") << QStringLiteral("[ko|ala]") << true << QStringLiteral("[[koala]]");
    QTest::newRow("old-style de-emphasis down")
        << QStringLiteral("[ko|ala]") << false << QStringLiteral("([[koala]]:0.8)");
    QTest::newRow("lora tag") << QStringLiteral("a koala <lora:st|yle:0.8>") << true
                              << QStringLiteral("a koala <[[lora:style]]:0.85>");
    QTest::newRow("lora tag down to 1") << QStringLiteral("<lora:st|yle:1.05>") << false
                                        << QStringLiteral("<[[lora:style]]:1.0>");
    QTest::newRow("nothing to weight") << QStringLiteral("a ,| b") << true << QStringLiteral("a ,| b");
}

namespace {
// "|" = cursor, "[[...]]" = selection.
void unmark(QString text, QString& plain, int& start, int& end) {
    start = end = int(text.indexOf(QLatin1Char('|')));
    if (start >= 0) {
        text.remove(start, 1);
    } else {
        start = int(text.indexOf(QStringLiteral("[[")));
        text.remove(start, 2);
        end = int(text.indexOf(QStringLiteral("]]")));
        text.remove(end, 2);
    }
    plain = text;
}
QString mark(const QString& text, const int start, const int end) {
    if (start == end) return text.left(start) + QLatin1Char('|') + text.mid(start);
    return text.left(start) + QStringLiteral("[[") + text.mid(start, end - start) + QStringLiteral("]]") +
           text.mid(end);
}
}  // namespace

void TestPromptEditor::editAttention() {
    QFETCH(QString, input);
    QFETCH(bool, up);
    QFETCH(QString, expected);
    QString text;
    int start = 0, end = 0;
    unmark(input, text, start, end);
    const bool changed = PromptEditor::editAttention(text, start, end, up);
    if (!changed) {
        QCOMPARE(mark(text, start, end).remove(QStringLiteral("[[")).remove(QStringLiteral("]]")), expected);
        return;
    }
    QCOMPARE(mark(text, start, end), expected);
}

void TestPromptEditor::ctrlUpDownInTheEditor() {
    PromptEditor editor(QStringLiteral("Prompt"), {});
    editor.setText(QStringLiteral("a koala astronaut"));
    QTextCursor cursor = editor.editor()->textCursor();
    cursor.setPosition(4);
    editor.editor()->setTextCursor(cursor);
    QTest::keyClick(editor.editor(), Qt::Key_Up, Qt::ControlModifier);
    QCOMPARE(editor.text(), QStringLiteral("a (koala:1.1) astronaut"));
    QCOMPARE(editor.editor()->textCursor().selectedText(), QStringLiteral("koala"));
    QTest::keyClick(editor.editor(), Qt::Key_Up, Qt::ControlModifier);
    QCOMPARE(editor.text(), QStringLiteral("a (koala:1.2) astronaut"));
    QTest::keyClick(editor.editor(), Qt::Key_Down, Qt::ControlModifier);
    QTest::keyClick(editor.editor(), Qt::Key_Down, Qt::ControlModifier);
    QCOMPARE(editor.text(), QStringLiteral("a koala astronaut"));
    // Each step is one undo.
    editor.editor()->undo();
    QCOMPARE(editor.text(), QStringLiteral("a (koala:1.1) astronaut"));
}

QTEST_MAIN(TestPromptEditor)
#include "tst_prompteditor.moc"
