#include <QLabel>
#include <QTemporaryDir>
#include <QTest>

#include "AppSettings.h"
#include "settingsdialog.h"

class TestSettingsDialog : public QObject {
    Q_OBJECT

private slots:
    void everyMnemonicHasABuddy();
};

// ux-review 10: "&Output folder:" was shown literally (a form row whose field is a layout gets no buddy).
void TestSettingsDialog::everyMnemonicHasABuddy() {
    QTemporaryDir dir;
    AppSettings settings(dir.filePath(QStringLiteral("settings.ini")));
    SettingsDialog dialog(&settings);
    bool sawOutput = false;
    for (const QLabel* label : dialog.findChildren<QLabel*>()) {
        if (!label->text().contains(QLatin1Char('&'))) continue;
        QVERIFY2(label->buddy(), qPrintable(label->text()));
        sawOutput = sawOutput || label->text() == QLatin1String("&Output folder:");
    }
    QVERIFY(sawOutput);
}

QTEST_MAIN(TestSettingsDialog)
#include "tst_settingsdialog.moc"
