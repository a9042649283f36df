#include <QApplication>
#include <QComboBox>
#include <QLabel>
#include <QTemporaryDir>
#include <QTest>

#include "AppSettings.h"
#include "desktopintegration.h"
#include "settingsdialog.h"

class TestSettingsDialog : public QObject {
    Q_OBJECT

private slots:
    void everyMnemonicHasABuddy();
    void themeIsChosenAppliedAndKept();
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

// issue 13 item 6: System (the default), Light and Dark; applied on OK and kept in the settings file.
void TestSettingsDialog::themeIsChosenAppliedAndKept() {
    QTemporaryDir dir;
    const QString file = dir.filePath(QStringLiteral("settings.ini"));
    AppSettings settings(file);
    QCOMPARE(DesktopIntegration::themeSetting(file), QStringLiteral("system"));
    {
        SettingsDialog dialog(&settings);
        auto* theme = dialog.findChild<QComboBox*>(QStringLiteral("themeCombo"));
        QVERIFY(theme);
        QCOMPARE(theme->currentData().toString(), QStringLiteral("system"));
        QCOMPARE(theme->count(), 3);
        theme->setCurrentIndex(theme->findData(QStringLiteral("dark")));
        dialog.accept();
    }
    QCOMPARE(DesktopIntegration::themeSetting(file), QStringLiteral("dark"));
    QVERIFY(DesktopIntegration::currentThemeIsDark());
    QVERIFY(QApplication::palette().color(QPalette::Window).lightness() < 100);
    QVERIFY(QApplication::palette().color(QPalette::WindowText).lightness() > 150);
    QCOMPARE(QApplication::style()->name().toLower(), QStringLiteral("fusion"));
    // AppSettings' own keys survive next to it, and a new dialog shows the choice.
    settings.setDevice(QStringLiteral("cpu"));
    settings.sync();
    QCOMPARE(DesktopIntegration::themeSetting(file), QStringLiteral("dark"));
    {
        SettingsDialog dialog(&settings);
        auto* theme = dialog.findChild<QComboBox*>(QStringLiteral("themeCombo"));
        QCOMPARE(theme->currentData().toString(), QStringLiteral("dark"));
        theme->setCurrentIndex(theme->findData(QStringLiteral("light")));
        dialog.accept();
    }
    QVERIFY(!DesktopIntegration::currentThemeIsDark());
    QVERIFY(QApplication::palette().color(QPalette::Window).lightness() > 150);
    // A cancelled dialog changes nothing; an unknown value reads as "system".
    {
        SettingsDialog dialog(&settings);
        dialog.findChild<QComboBox*>(QStringLiteral("themeCombo"))->setCurrentIndex(0);
        dialog.reject();
    }
    QCOMPARE(DesktopIntegration::themeSetting(file), QStringLiteral("light"));
    DesktopIntegration::setThemeSetting(file, QStringLiteral("purple"));
    QCOMPARE(DesktopIntegration::themeSetting(file), QStringLiteral("system"));
    // System without a desktop preference (offscreen, Qt before 6.5 or no answer) is light.
    QVERIFY(!DesktopIntegration::applyTheme(QStringLiteral("system")));
}

QTEST_MAIN(TestSettingsDialog)
#include "tst_settingsdialog.moc"
