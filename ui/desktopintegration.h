#pragma once

#include <QObject>
#include <QPointer>
#include <QString>
#include <QVariantMap>

class MainWindow;
class QAction;
class QDialog;
class QSystemTrayIcon;
class QWidget;

// The desktop habits of issue 13 item 6, installed on a MainWindow from outside it (main.cpp, tests):
//  - the running job's progress in the window title ("[42%] KOALA Studio") and, on Linux desktops that read the
//    Unity launcher API over D-Bus (KDE Plasma's task manager, Ubuntu's dock / Dash to Dock), in the taskbar entry;
//    the status bar's own progress bar is the in-window fallback everywhere;
//  - a notification when a queue of several jobs finishes while the window is in the background: a tray balloon
//    where there is a system tray, else a banner in the window plus QApplication::alert (taskbar attention);
//  - Help → Keyboard shortcuts: a table built from the window's QActions and QShortcuts when it opens, so it lists
//    exactly what the window has;
//  - the colour theme (see applyTheme), read from the settings at start and set again by the Settings dialog.
class DesktopIntegration final : public QObject {
    Q_OBJECT

public:
    // Parented to the window; the window must have its job queue and menus built.
    explicit DesktopIntegration(MainWindow* window);

    // ---- title and taskbar progress
    // The title without the progress prefix ("KOALA Studio").
    QString baseTitle() const { return m_baseTitle; }
    // -1 when nothing runs, else 0..100 (what the title shows).
    int progressPercent() const { return m_percent; }
    // The properties of the Unity launcher entry "Update" signal for a progress (-1 = none running).
    static QVariantMap launcherEntryProperties(int percent);

    // ---- notification at the end of a queue
    // Jobs ended (done, failed or cancelled) since the queue was last idle.
    int jobsInRun() const { return m_jobsInRun; }
    // The last notification's text ("" when none was given) and how it was given ("tray" or "banner").
    QString lastNotification() const { return m_lastNotification; }
    QString lastNotificationChannel() const { return m_lastChannel; }
    // Whether the window counts as in the background (not the active window, or minimised). Tests may force it.
    bool windowInBackground() const;
    void setBackgroundOverride(int override) { m_backgroundOverride = override; }  // -1 = ask the window, 0/1

    // ---- keyboard shortcuts
    QAction* shortcutsAction() const { return m_shortcutsAction; }
    // One row per shortcut the window has: {what, keys, where}. Read when called (nothing is written down twice).
    struct ShortcutRow {
        QString what;
        QString keys;  // native text, several sequences joined with ", "
        QString where;
    };
    static QList<ShortcutRow> shortcutRows(const QWidget* window);
    // Builds the dialog (not shown).
    static QDialog* createShortcutsDialog(QWidget* window);
    void showShortcuts();

    // ---- themes: "system" (the desktop's colour scheme: QStyleHints::colorScheme on Qt >= 6.5, else the
    // platform palette's lightness, light when in doubt), "light", "dark"; Fusion style with a palette.
    static QStringList themeNames();
    static QString themeLabel(const QString& theme);
    // The theme kept in a settings file (AppSettings::fileName(); key "ui/theme"), "system" when none or unknown.
    static QString themeSetting(const QString& settingsFile);
    static void setThemeSetting(const QString& settingsFile, const QString& theme);
    // Applies a theme to the whole application; returns whether the result is dark.
    static bool applyTheme(const QString& theme);
    static QString currentTheme();
    static bool currentThemeIsDark();

private:
    void updateProgress();
    void onIdle();
    void notify(const QString& title, const QString& text);
    void sendLauncherEntry(int percent);

    MainWindow* m_window = nullptr;
    QString m_baseTitle;
    int m_percent = -1;
    int m_jobsInRun = 0;
    int m_imagesInRun = 0;
    int m_failedInRun = 0;
    int m_backgroundOverride = -1;
    QString m_lastNotification;
    QString m_lastChannel;
    QAction* m_shortcutsAction = nullptr;
    QPointer<QSystemTrayIcon> m_tray;
};
