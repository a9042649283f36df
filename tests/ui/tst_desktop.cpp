#include <QAction>
#include <QDialog>
#include <QMenu>
#include <QMenuBar>
#include <QShortcut>
#include <QSignalSpy>
#include <QTableWidget>
#include <QTest>

#include "JobQueue.h"
#include "desktopintegration.h"
#include "mainwindow.h"
#include "messagebar.h"
#include "promptpanel.h"
#include "uitestutil.h"

// issue 13 item 6: progress in the title (and the taskbar entry), a notification when a queue of several jobs ends
// in the background, Help → Keyboard shortcuts generated from the window's actions.
class TestDesktop : public QObject {
    Q_OBJECT

private slots:
    void init();
    void cleanup();
    void titleShowsProgressWhileRunning();
    void queueOfSeveralJobsNotifiesInBackground();
    void noNotificationWhenWatchingOrSingleJob();
    void shortcutsListTheWindowsActions();

private:
    void queueJobs(int jobs, int steps);

    std::unique_ptr<IsolatedWindowFiles> m_files;
    std::unique_ptr<MainWindow> m_window;
    DesktopIntegration* m_desktop = nullptr;
};

void TestDesktop::init() {
    m_files = std::make_unique<IsolatedWindowFiles>();
    m_window = std::make_unique<MainWindow>(m_files->options({fixtureModel("tiny-koala-700m")}));
    m_desktop = new DesktopIntegration(m_window.get());
    m_window->show();
    QVERIFY(QTest::qWaitForWindowExposed(m_window.get()));
}

void TestDesktop::cleanup() {
    m_window.reset();
    m_files.reset();
}

void TestDesktop::queueJobs(const int jobs, const int steps) {
    GenerationParams params = m_window->promptPanel()->params();
    params.prompt = QStringLiteral("a koala");
    params.steps = steps;
    params.width = 64;
    params.height = 64;
    params.count = 1;
    for (int i = 0; i < jobs; ++i) {
        params.seed = 10 + i;
        m_window->promptPanel()->setParams(params);
        QVERIFY(m_window->generate() > 0);
    }
}

void TestDesktop::titleShowsProgressWhileRunning() {
    QCOMPARE(m_window->windowTitle(), QStringLiteral("KOALA Studio"));
    QStringList titles;
    connect(m_window.get(), &QWidget::windowTitleChanged, this, [&titles](const QString& t) { titles << t; });
    queueJobs(1, 6);
    QTRY_VERIFY_WITH_TIMEOUT(!m_window->jobQueue()->isBusy(), 120000);
    QTRY_COMPARE(m_window->windowTitle(), QStringLiteral("KOALA Studio"));
    // "[N%] KOALA Studio" while running, rising, back to the plain title at the end.
    QVERIFY2(titles.size() >= 3, qPrintable(titles.join(QLatin1Char('|'))));
    int last = -1;
    for (const QString& t : titles.mid(0, titles.size() - 1)) {
        QVERIFY2(t.startsWith(QLatin1Char('[')) && t.endsWith(QLatin1String("%] KOALA Studio")), qPrintable(t));
        const int percent = t.mid(1, t.indexOf(QLatin1Char('%')) - 1).toInt();
        QVERIFY(percent >= last);
        last = percent;
    }
    QVERIFY(last > 0);
    QCOMPARE(m_desktop->progressPercent(), -1);
    const QVariantMap running = DesktopIntegration::launcherEntryProperties(42);
    QCOMPARE(running.value(QStringLiteral("progress")).toDouble(), 0.42);
    QVERIFY(running.value(QStringLiteral("progress-visible")).toBool());
    QVERIFY(!DesktopIntegration::launcherEntryProperties(-1).value(QStringLiteral("progress-visible")).toBool());
}

void TestDesktop::queueOfSeveralJobsNotifiesInBackground() {
    m_desktop->setBackgroundOverride(1);
    queueJobs(3, 2);
    QTRY_VERIFY_WITH_TIMEOUT(!m_desktop->lastNotification().isEmpty(), 120000);
    QVERIFY2(m_desktop->lastNotification().contains(QLatin1String("3 jobs finished")),
             qPrintable(m_desktop->lastNotification()));
    // No system tray on the offscreen platform: a banner in the window.
    QCOMPARE(m_desktop->lastNotificationChannel(), QStringLiteral("banner"));
    QVERIFY(m_window->messageBar()->messages().join(QLatin1Char('|')).contains(QLatin1String("3 jobs finished")));
}

void TestDesktop::noNotificationWhenWatchingOrSingleJob() {
    m_desktop->setBackgroundOverride(0);  // the user is looking
    queueJobs(2, 2);
    QTRY_VERIFY_WITH_TIMEOUT(!m_window->jobQueue()->isBusy() && m_window->jobQueue()->pendingCount() == 0, 120000);
    QTest::qWait(50);
    QVERIFY(m_desktop->lastNotification().isEmpty());
    m_desktop->setBackgroundOverride(1);
    queueJobs(1, 2);  // a single job is not a queue worth a notification
    QTRY_VERIFY_WITH_TIMEOUT(!m_window->jobQueue()->isBusy(), 120000);
    QTest::qWait(50);
    QVERIFY(m_desktop->lastNotification().isEmpty());
}

void TestDesktop::shortcutsListTheWindowsActions() {
    // Help → Keyboard shortcuts is in the Help menu.
    QMenu* help = nullptr;
    for (QAction* a : m_window->menuBar()->actions()) {
        if (a->menu() && a->text().remove(QLatin1Char('&')) == QLatin1String("Help")) help = a->menu();
    }
    QVERIFY(help);
    QVERIFY(help->actions().contains(m_desktop->shortcutsAction()));

    // Every action with a shortcut is listed, with its keys: Generate (Ctrl+Return), Cancel (Esc), Quit.
    const auto listed = [this]() {
        std::unique_ptr<QDialog> dialog(DesktopIntegration::createShortcutsDialog(m_window.get()));
        auto* table = dialog->findChild<QTableWidget*>(QStringLiteral("shortcutsTable"));
        QStringList rows;
        for (int i = 0; table && i < table->rowCount(); ++i)
            rows << table->item(i, 0)->text() + QLatin1Char('=') + table->item(i, 1)->text();
        return rows;
    };
    const QStringList rows = listed();
    int withKeys = 0;
    for (const QAction* action : m_window->findChildren<QAction*>()) {
        if (action->shortcut().isEmpty()) continue;
        ++withKeys;
        const QString what = action->text().remove(QLatin1Char('&')).trimmed();
        const QString keys = action->shortcut().toString(QKeySequence::NativeText);
        QVERIFY2(rows.contains(what + QLatin1Char('=') + keys) ||
                     std::any_of(
                         rows.cbegin(), rows.cend(),
                         [&](const QString& r) { return r.startsWith(what + QLatin1Char('=')) && r.contains(keys); }),
                 qPrintable(what + QLatin1Char('=') + keys + QStringLiteral(" not in ") + rows.join(QLatin1Char('|'))));
    }
    QVERIFY(withKeys >= 4);  // Quit, Generate, Cancel, Keyboard shortcuts at least
    QCOMPARE(rows.size(), qsizetype(DesktopIntegration::shortcutRows(m_window.get()).size()));
    QVERIFY(std::any_of(rows.cbegin(), rows.cend(),
                        [](const QString& r) { return r.startsWith(QLatin1String("Generate=")); }));

    // It cannot drift: a shortcut added later is in the next listing.
    auto* extra = new QAction(QStringLiteral("&Frobnicate"), m_window.get());
    extra->setShortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_F));
    m_window->addAction(extra);
    auto* shortcut = new QShortcut(QKeySequence(Qt::Key_F7), m_window.get());
    shortcut->setWhatsThis(QStringLiteral("Zoom to 100%"));
    const QStringList after = listed();
    QCOMPARE(after.size(), rows.size() + 2);
    QVERIFY(after.contains(QStringLiteral("Frobnicate=") + extra->shortcut().toString(QKeySequence::NativeText)));
    QVERIFY(after.contains(QStringLiteral("Zoom to 100%=F7")));

    m_desktop->shortcutsAction()->trigger();
    QTRY_VERIFY(m_window->findChild<QDialog*>(QStringLiteral("shortcutsDialog")));
}

QTEST_MAIN(TestDesktop)
#include "tst_desktop.moc"
