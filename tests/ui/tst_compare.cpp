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
    void koalaAgainstSd2EachAtItsOwnSize();
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

// Issue 11: KOALA-700M against SD 2 (the tiny fixtures: KOALA 64², SD 2 96² = unet sample_size 12 x 8, DDIM
// v-prediction). Each side runs at its own size and default scheduler, whatever the request says, and the view says
// so; the gallery keeps what each side really ran with.
void TestCompare::koalaAgainstSd2EachAtItsOwnSize() {
    IsolatedWindowFiles files;
    MainWindow window(files.options({fixtureModel("tiny-koala-700m"), fixtureModel("tiny-sd2")}));
    window.show();
    QVERIFY(QTest::qWaitForWindowExposed(&window));
    PromptPanel* panel = window.promptPanel();
    QCOMPARE(panel->models().size(), 2);
    QVERIFY(panel->selectModelByHint(QStringLiteral("koala-700m")));
    QVERIFY(panel->selectModelByHint(QStringLiteral("sd2"), true));
    QVERIFY(panel->compareModelPath().endsWith(QLatin1String("tiny-sd2")));

    GenerationParams params = panel->params();
    params.prompt = QStringLiteral("a koala astronaut");
    params.seed = 5;
    params.steps = 2;
    params.width = 128;  // neither model's own size
    params.height = 64;
    params.scheduler = QStringLiteral("dpmpp_2m");
    params.count = 1;
    panel->setParams(params);

    QSignalSpy ready(window.jobQueue(), &JobQueue::compareReady);
    QSignalSpy failed(window.jobQueue(), &JobQueue::jobFailed);
    auto* compare = panel->findChild<QPushButton*>(QStringLiteral("compareButton"));
    QVERIFY(compare && compare->isEnabled());
    QTest::mouseClick(compare, Qt::LeftButton);
    QTRY_VERIFY_WITH_TIMEOUT(!ready.isEmpty() || !failed.isEmpty(), 180000);
    QVERIFY2(failed.isEmpty(), failed.isEmpty() ? "" : qPrintable(failed.first().at(1).toString()));

    CompareView* view = window.compareView();
    QCOMPARE(view->image(0).size(), QSize(64, 64));
    QCOMPARE(view->image(1).size(), QSize(96, 96));
    QVERIFY2(view->statsText(0).startsWith(QStringLiteral("64×64 · Euler · ")), qPrintable(view->statsText(0)));
    QVERIFY2(view->statsText(1).startsWith(QStringLiteral("96×96 · DDIM · ")), qPrintable(view->statsText(1)));
    QVERIFY(view->titleText(1).contains(QStringLiteral("sd2")));
    const QString note = view->noteText();
    QVERIFY2(note.contains(QStringLiteral("own size")) && note.contains(QStringLiteral("64×64")) &&
                 note.contains(QStringLiteral("96×96")),
             qPrintable(note));
    QVERIFY(view->findChild<QWidget*>(QStringLiteral("compareNote"))->isVisible());

    const QList<QVariant> pair = ready.first();
    const GalleryItem a = pair.at(1).value<GalleryItem>();
    const GalleryItem b = pair.at(2).value<GalleryItem>();
    QCOMPARE(a.width, 64);
    QCOMPARE(b.width, 96);
    QCOMPARE(b.params.width, 96);  // the stored parameters are the ones the side ran with
    QCOMPARE(b.params.height, 96);
    QCOMPARE(a.schedulerUsed, QStringLiteral("euler"));
    QCOMPARE(b.schedulerUsed, QStringLiteral("ddim"));

    // Clearing the view takes the note away.
    view->clear();
    QVERIFY(view->noteText().isEmpty());
}

QTEST_MAIN(TestCompare)
#include "tst_compare.moc"
