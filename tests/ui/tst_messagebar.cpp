#include <QLabel>
#include <QTest>
#include <QToolButton>

#include "messagebar.h"

// ux-review 13: banners piled up, pushed the layout down and never went away.
class TestMessageBar : public QObject {
    Q_OBJECT

private slots:
    void oneAtATimeNewestFirst();
    void dismissShowsTheNextWaiting();
    void messagesDismissThemselves();
    void sameTextIsNotQueuedTwice();
};

void TestMessageBar::oneAtATimeNewestFirst() {
    MessageBar bar;
    bar.show();
    const int oneRow = bar.sizeHint().height();
    for (int i = 1; i <= 5; ++i) bar.showMessage(QStringLiteral("error %1").arg(i));
    QVERIFY(bar.isVisible());
    QCOMPARE(bar.currentText(), QStringLiteral("error 5"));
    QCOMPARE(bar.messageCount(), 5);
    QCOMPARE(bar.findChildren<QLabel*>(QStringLiteral("messageText")).size(), 1);
    QCOMPARE(bar.findChild<QLabel*>(QStringLiteral("messageMore"))->text(), QStringLiteral("+4 more"));
    QVERIFY(bar.sizeHint().height() <= oneRow + 4);  // the layout below does not move
}

void TestMessageBar::dismissShowsTheNextWaiting() {
    MessageBar bar;
    bar.show();
    bar.showMessage(QStringLiteral("first"));
    bar.showMessage(QStringLiteral("second"), MessageBar::Level::Warning);
    QTest::mouseClick(bar.findChild<QToolButton*>(QStringLiteral("messageClose")), Qt::LeftButton);
    QCOMPARE(bar.currentText(), QStringLiteral("first"));
    QVERIFY(!bar.findChild<QLabel*>(QStringLiteral("messageMore"))->isVisible());
    bar.dismissCurrent();
    QVERIFY(!bar.isVisible());
    QCOMPARE(bar.messageCount(), 0);
}

void TestMessageBar::messagesDismissThemselves() {
    MessageBar bar;
    QVERIFY(bar.lifetimeMs(MessageBar::Level::Info) < bar.lifetimeMs(MessageBar::Level::Error));
    bar.setLifetimesMs(50, 100, 150);
    bar.show();
    bar.showMessage(QStringLiteral("an error"), MessageBar::Level::Error);
    bar.showMessage(QStringLiteral("some info"), MessageBar::Level::Info);
    QCOMPARE(bar.currentText(), QStringLiteral("some info"));
    QTRY_COMPARE_WITH_TIMEOUT(bar.currentText(), QStringLiteral("an error"), 2000);
    QTRY_VERIFY_WITH_TIMEOUT(!bar.isVisible(), 2000);
    QCOMPARE(bar.messageCount(), 0);
}

void TestMessageBar::sameTextIsNotQueuedTwice() {
    MessageBar bar;
    bar.showMessage(QStringLiteral("model failed"));
    bar.showMessage(QStringLiteral("other"));
    bar.showMessage(QStringLiteral("model failed"));
    QCOMPARE(bar.messages(), (QStringList{QStringLiteral("model failed"), QStringLiteral("other")}));
}

QTEST_MAIN(TestMessageBar)
#include "tst_messagebar.moc"
