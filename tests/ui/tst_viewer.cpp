#include <QPushButton>
#include <QSignalSpy>
#include <QTest>
#include <QWheelEvent>

#include "imageviewer.h"

// Zoom and pan in the image viewer (issue 13 item 3) and its "new image" badge (item 2).
class TestViewer : public QObject {
    Q_OBJECT

private slots:
    void fitsByDefault();
    void actualSizeAndKeys();
    void wheelZoomsAroundTheCursor();
    void dragPansWithinTheEdges();
    void sameSizeImageKeepsTheZoom();
    void badgeShowsAndClicks();

private:
    static QImage image(int w, int h) {
        QImage img(w, h, QImage::Format_RGB32);
        img.fill(Qt::darkGreen);
        return img;
    }
};

void TestViewer::fitsByDefault() {
    ImageViewer viewer;
    viewer.resize(400, 300);
    viewer.setImage(image(200, 100));
    QVERIFY(viewer.isFit());
    QCOMPARE(viewer.zoom(), 2.0);  // 200x100 fitted into 400x300
    // Centred: the image's middle is the widget's middle.
    QCOMPARE(viewer.imageToWidget(QPointF(100, 50)), QPointF(200, 150));
}

void TestViewer::actualSizeAndKeys() {
    ImageViewer viewer;
    viewer.resize(400, 300);
    viewer.show();
    QVERIFY(QTest::qWaitForWindowExposed(&viewer));
    viewer.setImage(image(1000, 800));
    QVERIFY(viewer.isFit());
    QCOMPARE(viewer.zoom(), 0.375);
    viewer.actualSize();
    QVERIFY(!viewer.isFit());
    QCOMPARE(viewer.zoom(), 1.0);
    // What was in the middle stays there.
    QCOMPARE(viewer.widgetToImage(QPointF(200, 150)), QPointF(500, 400));
    QTest::keyClick(&viewer, Qt::Key_F);
    QVERIFY(viewer.isFit());
    QTest::keyClick(&viewer, Qt::Key_1);
    QCOMPARE(viewer.zoom(), 1.0);
    QTest::keyClick(&viewer, Qt::Key_Plus);
    QCOMPARE(viewer.zoom(), 1.25);
    QTest::keyClick(&viewer, Qt::Key_Minus);
    QCOMPARE(viewer.zoom(), 1.0);
    QTest::keyClick(&viewer, Qt::Key_0, Qt::ControlModifier);
    QVERIFY(viewer.isFit());
}

void TestViewer::wheelZoomsAroundTheCursor() {
    ImageViewer viewer;
    viewer.resize(400, 300);
    viewer.setImage(image(1000, 800));
    viewer.actualSize();
    const QPointF cursor(100, 80);
    const QPointF under = viewer.widgetToImage(cursor);
    QWheelEvent wheel(cursor, viewer.mapToGlobal(cursor), QPoint(), QPoint(0, 120), Qt::NoButton, Qt::NoModifier,
                      Qt::NoScrollPhase, false);
    QApplication::sendEvent(&viewer, &wheel);
    QVERIFY(wheel.isAccepted());
    QCOMPARE(viewer.zoom(), 1.25);
    // The image point under the cursor did not move.
    const QPointF after = viewer.widgetToImage(cursor);
    QVERIFY2(qAbs(after.x() - under.x()) < 1e-6 && qAbs(after.y() - under.y()) < 1e-6,
             qPrintable(QStringLiteral("%1,%2 -> %3,%4").arg(under.x()).arg(under.y()).arg(after.x()).arg(after.y())));
    // Zooming out stops at the minimum.
    for (int i = 0; i < 40; ++i) viewer.zoomOut();
    QCOMPARE(viewer.zoom(), ImageViewer::MinZoom);
}

void TestViewer::dragPansWithinTheEdges() {
    ImageViewer viewer;
    viewer.resize(400, 300);
    viewer.show();
    QVERIFY(QTest::qWaitForWindowExposed(&viewer));
    viewer.setImage(image(1000, 800));
    viewer.actualSize();
    const QPointF before = viewer.widgetToImage(QPointF(200, 150));
    QTest::mousePress(&viewer, Qt::LeftButton, {}, QPoint(200, 150));
    QMouseEvent move(QEvent::MouseMove, QPointF(150, 110), viewer.mapToGlobal(QPointF(150, 110)), Qt::NoButton,
                     Qt::LeftButton, Qt::NoModifier);
    QApplication::sendEvent(&viewer, &move);
    QTest::mouseRelease(&viewer, Qt::LeftButton, {}, QPoint(150, 110));
    // Dragged up-left by (50, 40): the view moved right-down over the image.
    QCOMPARE(viewer.widgetToImage(QPointF(200, 150)), before + QPointF(50, 40));
    // Far beyond the edge: the image's corner stops at the widget's corner.
    QTest::mousePress(&viewer, Qt::LeftButton, {}, QPoint(1, 1));
    QMouseEvent far(QEvent::MouseMove, QPointF(399, 299), viewer.mapToGlobal(QPointF(399, 299)), Qt::NoButton,
                    Qt::LeftButton, Qt::NoModifier);
    QApplication::sendEvent(&viewer, &far);
    QTest::mouseRelease(&viewer, Qt::LeftButton, {}, QPoint(399, 299));
    QCOMPARE(viewer.imageToWidget(QPointF(0, 0)), QPointF(0, 0));
}

// A preview followed by the next one (or the final image) at the same size keeps a zoomed-in detail in view.
void TestViewer::sameSizeImageKeepsTheZoom() {
    ImageViewer viewer;
    viewer.resize(400, 300);
    viewer.setImage(image(1000, 800));
    viewer.setZoom(2.0, QPointF(100, 100));
    const QPointF corner = viewer.imageToWidget(QPointF(0, 0));
    viewer.setImage(image(1000, 800));
    QCOMPARE(viewer.zoom(), 2.0);
    QCOMPARE(viewer.imageToWidget(QPointF(0, 0)), corner);
    viewer.setImage(image(64, 64));
    QVERIFY(viewer.isFit());
}

void TestViewer::badgeShowsAndClicks() {
    ImageViewer viewer;
    viewer.resize(400, 300);
    viewer.show();
    QVERIFY(QTest::qWaitForWindowExposed(&viewer));
    QVERIFY(!viewer.isBadgeShown());
    QSignalSpy clicked(&viewer, &ImageViewer::badgeClicked);
    viewer.setBadgeText(QStringLiteral("New image"));
    QVERIFY(viewer.isBadgeShown());
    QVERIFY(viewer.badgeButton()->isVisible());
    QVERIFY(viewer.rect().contains(viewer.badgeButton()->geometry()));
    QTest::mouseClick(viewer.badgeButton(), Qt::LeftButton);
    QCOMPARE(clicked.count(), 1);
    viewer.setBadgeText({});
    QVERIFY(!viewer.isBadgeShown());
}

QTEST_MAIN(TestViewer)
#include "tst_viewer.moc"
