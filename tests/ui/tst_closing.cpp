#include <QFile>
#include <QSignalSpy>
#include <QTest>

#include "JobQueue.h"
#include "mainwindow.h"
#include "messagebar.h"
#include "promptpanel.h"
#include "uitestutil.h"

// ux-review 4: closing during a run asks what to do with the unfinished work; kept work comes back at the next start.
class TestClosing : public QObject {
    Q_OBJECT

private slots:
    void init();
    void cleanup();
    void keepForNextTimeRestoresQueue();
    void discardForgetsQueue();
    void finishFirstClosesWhenDone();
    void closingIdleWindowAsksNothing();

private:
    std::unique_ptr<MainWindow> newWindow();
    // A long job (seeds 7, 8) running and a short one (seed 70) queued behind it.
    void startTwoJobs(MainWindow& window);

    std::unique_ptr<IsolatedWindowFiles> m_files;
};

void TestClosing::init() { m_files = std::make_unique<IsolatedWindowFiles>(); }

void TestClosing::cleanup() { m_files.reset(); }

std::unique_ptr<MainWindow> TestClosing::newWindow() {
    auto window = std::make_unique<MainWindow>(m_files->options({fixtureModel("tiny-koala-700m")}));
    window->show();
    return window;
}

void TestClosing::startTwoJobs(MainWindow& window) {
    GenerationParams params = window.promptPanel()->params();
    params.prompt = QStringLiteral("a koala");
    params.seed = 7;
    params.steps = 200;
    params.width = 256;
    params.height = 256;
    params.count = 2;
    window.promptPanel()->setParams(params);
    QSignalSpy previews(window.jobQueue(), &JobQueue::jobPreview);
    QVERIFY(window.generate() > 0);
    params.seed = 70;
    params.steps = 2;
    params.count = 1;
    window.promptPanel()->setParams(params);
    QVERIFY(window.generate() > 0);
    QTRY_VERIFY_WITH_TIMEOUT(!previews.isEmpty(), 120000);
}

void TestClosing::keepForNextTimeRestoresQueue() {
    {
        std::unique_ptr<MainWindow> window = newWindow();
        startTwoJobs(*window);
        QVERIFY(window->closeWith(MainWindow::CloseChoice::KeepForNextTime));
        QVERIFY(QFile::exists(window->queueFilePath()));
    }
    std::unique_ptr<MainWindow> window = newWindow();
    const QList<Job> jobs = window->jobQueue()->jobs();
    QCOMPARE(jobs.size(), 2);
    QCOMPARE(jobs.at(0).seeds, (QList<quint64>{7, 8}));
    QCOMPARE(jobs.at(0).params.steps, 200);
    QCOMPARE(jobs.at(1).seeds, (QList<quint64>{70}));
    const QStringList messages = window->messageBar()->messages();
    QVERIFY2(messages.join(QLatin1Char('|')).contains(QLatin1String("2 jobs from the last session")),
             qPrintable(messages.join(QLatin1Char('|'))));
    QVERIFY(window->closeWith(MainWindow::CloseChoice::Discard));
}

void TestClosing::discardForgetsQueue() {
    {
        std::unique_ptr<MainWindow> window = newWindow();
        startTwoJobs(*window);
        QVERIFY(window->closeWith(MainWindow::CloseChoice::Discard));
        QVERIFY(!QFile::exists(window->queueFilePath()));
    }
    std::unique_ptr<MainWindow> window = newWindow();
    QVERIFY(window->jobQueue()->jobs().isEmpty());
}

void TestClosing::finishFirstClosesWhenDone() {
    std::unique_ptr<MainWindow> window = newWindow();
    GenerationParams params = window->promptPanel()->params();
    params.prompt = QStringLiteral("a koala");
    params.seed = 3;
    params.steps = 3;
    params.width = 64;
    params.height = 64;
    params.count = 2;
    window->promptPanel()->setParams(params);
    QSignalSpy images(window->jobQueue(), &JobQueue::imageReady);
    QVERIFY(window->generate() > 0);
    QVERIFY(!window->closeWith(MainWindow::CloseChoice::FinishFirst));
    QVERIFY(window->isVisible());
    QVERIFY(window->statusText().contains(QLatin1String("closes when the queue is done")));
    QTRY_VERIFY_WITH_TIMEOUT(!window->isVisible(), 120000);
    QCOMPARE(images.count(), 2);
    QVERIFY(window->jobQueue()->unfinishedJobs().isEmpty());
}

void TestClosing::closingIdleWindowAsksNothing() {
    std::unique_ptr<MainWindow> window = newWindow();
    QVERIFY(window->close());  // no dialog: nothing is unfinished
    QVERIFY(!window->isVisible());
}

QTEST_MAIN(TestClosing)
#include "tst_closing.moc"
