#include <QPushButton>
#include <QSignalSpy>
#include <QTest>

#include "GalleryStore.h"
#include "JobQueue.h"
#include "compareview.h"
#include "gallerymodel.h"
#include "mainwindow.h"
#include "promptpanel.h"
#include "uitestutil.h"

// Compare on the two tiny models: one click, two images side by side with each model's timings, kept as a pair.
class TestCompare : public QObject {
    Q_OBJECT

private slots:
    void compareShowsTwoImagesSideBySide();
};

void TestCompare::compareShowsTwoImagesSideBySide() {
    IsolatedWindowFiles files;
    MainWindow window(files.options({fixtureModel("tiny-koala-700m"), fixtureModel("tiny-koala-1b")}));
    window.show();
    QVERIFY(QTest::qWaitForWindowExposed(&window));
    PromptPanel* panel = window.promptPanel();
    QCOMPARE(panel->models().size(), 2);
    QVERIFY(panel->currentModelPath() != panel->compareModelPath());

    GenerationParams params = panel->params();
    params.prompt = QStringLiteral("a koala reading a book");
    params.seed = 3;
    params.steps = 3;
    params.width = 64;
    params.height = 64;
    params.count = 1;
    panel->setParams(params);

    QSignalSpy ready(window.jobQueue(), &JobQueue::compareReady);
    QSignalSpy failed(window.jobQueue(), &JobQueue::jobFailed);
    QSignalSpy previews(window.jobQueue(), &JobQueue::jobPreview);
    auto* compare = panel->findChild<QPushButton*>(QStringLiteral("compareButton"));
    QVERIFY(compare && compare->isEnabled());
    QTest::mouseClick(compare, Qt::LeftButton);
    QCOMPARE(window.galleryModel()->rowCount(), 2);  // one placeholder per side
    // ux-review 11: a waiting side said 'Run "Compare" to generate…' under "waiting…".
    for (int side = 0; side < 2; ++side) {
        QCOMPARE(window.compareView()->statsText(side), QStringLiteral("waiting…"));
        QVERIFY2(!window.compareView()->placeholderText(side).contains(QLatin1String("Run")),
                 qPrintable(window.compareView()->placeholderText(side)));
    }

    QTRY_VERIFY_WITH_TIMEOUT(!ready.isEmpty() || !failed.isEmpty(), 180000);
    QVERIFY2(failed.isEmpty(), failed.isEmpty() ? "" : qPrintable(failed.first().at(1).toString()));
    QCOMPARE(previews.count(), 2 * params.steps);

    CompareView* view = window.compareView();
    QVERIFY(view->isVisible());
    for (int side = 0; side < 2; ++side) {
        QCOMPARE(view->image(side).size(), QSize(64, 64));
        QVERIFY(view->statsText(side).contains(QStringLiteral("s/step")));
        QVERIFY(view->statsText(side).contains(QStringLiteral("peak GPU memory")));
    }
    QVERIFY(view->titleText(0).contains(QStringLiteral("700m")));
    QVERIFY(view->titleText(1).contains(QStringLiteral("1b")));

    // The pair stays in the gallery: two stored tiles sharing one compare group, one per slot.
    GalleryModel* model = window.galleryModel();
    QCOMPARE(model->rowCount(), 2);
    const auto a = model->itemAt(0);
    const auto b = model->itemAt(1);
    QVERIFY(a && b);
    QVERIFY(!a->compareGroup.isEmpty());
    QCOMPARE(a->compareGroup, b->compareGroup);
    QCOMPARE(a->compareSlot + b->compareSlot, 1);
    QCOMPARE(window.galleryStore()->compareGroup(a->compareGroup).size(), 2);
}

QTEST_MAIN(TestCompare)
#include "tst_compare.moc"
