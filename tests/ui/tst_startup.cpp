// What the window says at start about files it had to recover (issue 14 item 3): a damaged settings file.
#include "messagebar.h"
#include "uitestutil.h"

#include <QFile>
#include <QTest>

class TestStartup : public QObject {
    Q_OBJECT

private slots:
    void damagedSettingsAreRecoveredAndSaid() {
        IsolatedWindowFiles files;
        MainWindow::Options o = files.options({});
        {
            // A good save first (it leaves the backup), then the file is overwritten with binary garbage.
            AppSettings settings(o.settingsFile);
            settings.setOutputFolder(o.outputFolder);
            settings.sync();
        }
        { AppSettings reopened(o.settingsFile); }  // a clean load refreshes the backup
        QFile f(o.settingsFile);
        QVERIFY(f.open(QIODevice::WriteOnly | QIODevice::Truncate));
        f.write(QByteArray("\x00\x01\x02\xff\xfe garbage \x00", 14));
        f.close();
        MainWindow window(o);
        auto* bar = window.findChild<MessageBar*>();
        QVERIFY(bar);
        QVERIFY2(!bar->currentText().isEmpty(), "no message about the damaged settings file");
        QVERIFY2(bar->currentText().contains(QStringLiteral("settings"), Qt::CaseInsensitive),
                 qPrintable(bar->currentText()));
    }

    void cleanStartSaysNothingAboutSettings() {
        IsolatedWindowFiles files;
        MainWindow window(files.options({}));
        auto* bar = window.findChild<MessageBar*>();
        QVERIFY(bar);
        QVERIFY2(!bar->currentText().contains(QStringLiteral("settings"), Qt::CaseInsensitive),
                 qPrintable(bar->currentText()));
    }
};

QTEST_MAIN(TestStartup)
#include "tst_startup.moc"
