#include <QScrollArea>
#include <QSplitter>
#include <QTabWidget>
#include <QTest>

#include "gallerywidget.h"
#include "mainwindow.h"
#include "promptpanel.h"
#include "uitestutil.h"

// ux-review 3: the window could not be made 1000×700 (minimum width 1093 px, gallery clipped at that size).
class TestLayout : public QObject {
    Q_OBJECT

private slots:
    void fitsIn1000x700();
};

void TestLayout::fitsIn1000x700() {
    IsolatedWindowFiles files;
    MainWindow window(files.options({fixtureModel("tiny-koala-700m")}));
    window.resize(1000, 700);
    window.show();
    QVERIFY(QTest::qWaitForWindowExposed(&window));
    const QSize minimum = window.minimumSizeHint().expandedTo(window.minimumSize());
    QVERIFY2(minimum.width() <= 1000 && minimum.height() <= 700,
             qPrintable(QStringLiteral("%1×%2").arg(minimum.width()).arg(minimum.height())));
    QTRY_COMPARE(window.size(), QSize(1000, 700));
    // The gallery gets room to show at least one tile column, not a clipped sliver.
    QWidget* gallery = window.galleryWidget();
    QVERIFY2(gallery->width() >= 200, qPrintable(QString::number(gallery->width())));
    QVERIFY(gallery->visibleRegion().boundingRect().width() >= 200);
}

QTEST_MAIN(TestLayout)
#include "tst_layout.moc"
