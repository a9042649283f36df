#include "desktopintegration.h"

#include <algorithm>
#include <tuple>

#include <QAction>
#include <QApplication>
#include <QDialog>
#include <QDialogButtonBox>
#include <QHeaderView>
#include <QLabel>
#include <QMenu>
#include <QMenuBar>
#include <QPalette>
#include <QSettings>
#include <QShortcut>
#include <QStyle>
#include <QStyleFactory>
#include <QStyleHints>
#include <QSystemTrayIcon>
#include <QTableWidget>
#include <QVBoxLayout>
#include <QWindow>

#ifdef KOALA_HAVE_DBUS
#include <QDBusConnection>
#include <QDBusMessage>
#endif

#include "JobQueue.h"
#include "mainwindow.h"
#include "messagebar.h"

namespace {
const QString ThemeKey = QStringLiteral("ui/theme");
QString g_currentTheme = QStringLiteral("system");
bool g_currentDark = false;

QString plainText(QString text) {
    text.replace(QLatin1String("&&"), QStringLiteral("\x01"));
    text.remove(QLatin1Char('&'));
    text.replace(QStringLiteral("\x01"), QStringLiteral("&"));
    return text.trimmed();
}

QPalette darkPalette() {
    QPalette p;
    const QColor window(0x2b, 0x2b, 0x2b), base(0x1e, 0x1e, 0x1e), text(0xe6, 0xe6, 0xe6), disabled(0x7f, 0x7f, 0x7f);
    const QColor highlight(0x2f, 0x6f, 0xb8);
    p.setColor(QPalette::Window, window);
    p.setColor(QPalette::WindowText, text);
    p.setColor(QPalette::Base, base);
    p.setColor(QPalette::AlternateBase, QColor(0x26, 0x26, 0x26));
    p.setColor(QPalette::ToolTipBase, QColor(0x3a, 0x3a, 0x3a));
    p.setColor(QPalette::ToolTipText, text);
    p.setColor(QPalette::PlaceholderText, disabled);
    p.setColor(QPalette::Text, text);
    p.setColor(QPalette::Button, QColor(0x35, 0x35, 0x35));
    p.setColor(QPalette::ButtonText, text);
    p.setColor(QPalette::BrightText, Qt::red);
    p.setColor(QPalette::Light, QColor(0x45, 0x45, 0x45));
    p.setColor(QPalette::Midlight, QColor(0x3a, 0x3a, 0x3a));
    p.setColor(QPalette::Mid, QColor(0x25, 0x25, 0x25));
    p.setColor(QPalette::Dark, QColor(0x18, 0x18, 0x18));
    p.setColor(QPalette::Shadow, Qt::black);
    p.setColor(QPalette::Link, QColor(0x6a, 0xa9, 0xf0));
    p.setColor(QPalette::Highlight, highlight);
    p.setColor(QPalette::HighlightedText, Qt::white);
    for (const QPalette::ColorRole role : {QPalette::WindowText, QPalette::Text, QPalette::ButtonText})
        p.setColor(QPalette::Disabled, role, disabled);
    p.setColor(QPalette::Disabled, QPalette::Highlight, QColor(0x50, 0x50, 0x50));
    return p;
}

// What the desktop asks for, when the theme is "system".
bool systemPrefersDark() {
#if QT_VERSION >= QT_VERSION_CHECK(6, 5, 0)
    const Qt::ColorScheme scheme = QGuiApplication::styleHints()->colorScheme();
    if (scheme != Qt::ColorScheme::Unknown) return scheme == Qt::ColorScheme::Dark;
#endif
    // Before Qt 6.5 (or with no answer): the platform theme's own palette, as the desktop set it (light when none).
    static const QPalette platform = QGuiApplication::palette();
    return platform.color(QPalette::Window).lightness() < 128;
}
}  // namespace

DesktopIntegration::DesktopIntegration(MainWindow* window)
    : QObject(window), m_window(window), m_baseTitle(window->windowTitle()) {
    JobQueue* queue = window->jobQueue();
    connect(queue, &JobQueue::jobProgress, this, &DesktopIntegration::updateProgress);
    connect(queue, &JobQueue::jobStateChanged, this, &DesktopIntegration::updateProgress);
    connect(queue, &JobQueue::imageReady, this, [this]() {
        ++m_imagesInRun;
        updateProgress();
    });
    connect(queue, &JobQueue::jobFinished, this, [this]() { ++m_jobsInRun; });
    connect(queue, &JobQueue::jobCancelled, this, [this]() { ++m_jobsInRun; });
    connect(queue, &JobQueue::jobFailed, this, [this]() {
        ++m_jobsInRun;
        ++m_failedInRun;
    });
    connect(queue, &JobQueue::idle, this, &DesktopIntegration::onIdle);

    // Help → Keyboard shortcuts, first in the Help menu (one is made when the window has none).
    QMenu* help = nullptr;
    for (QAction* action : window->menuBar()->actions()) {
        if (action->menu() && plainText(action->text()) == tr("Help")) help = action->menu();
    }
    if (!help) help = window->menuBar()->addMenu(tr("&Help"));
    m_shortcutsAction = new QAction(tr("&Keyboard shortcuts"), window);
    m_shortcutsAction->setObjectName(QStringLiteral("keyboardShortcutsAction"));
    m_shortcutsAction->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_Slash));
    m_shortcutsAction->setShortcutContext(Qt::WindowShortcut);
    help->insertAction(help->actions().value(0), m_shortcutsAction);
    window->addAction(m_shortcutsAction);
    connect(m_shortcutsAction, &QAction::triggered, this, &DesktopIntegration::showShortcuts);

#if QT_VERSION >= QT_VERSION_CHECK(6, 5, 0)
    connect(QGuiApplication::styleHints(), &QStyleHints::colorSchemeChanged, this, []() {
        if (currentTheme() == QLatin1String("system")) applyTheme(QStringLiteral("system"));
    });
#endif
}

// ---- progress ---------------------------------------------------------------------------------------------------

void DesktopIntegration::updateProgress() {
    const JobQueue* queue = m_window->jobQueue();
    int percent = -1;
    if (const auto job = queue->job(queue->currentJobId()); job && job->state == Job::State::Running)
        percent = qBound(0, int(job->progress * 100.0), 100);
    // The title is the window's own when nothing runs; a title it set meanwhile becomes the base.
    const QString title = m_window->windowTitle();
    if (!title.startsWith(QLatin1Char('['))) m_baseTitle = title;
    if (percent == m_percent) return;
    m_percent = percent;
    m_window->setWindowTitle(percent < 0 ? m_baseTitle : QStringLiteral("[%1%] %2").arg(percent).arg(m_baseTitle));
    sendLauncherEntry(percent);
}

QVariantMap DesktopIntegration::launcherEntryProperties(const int percent) {
    QVariantMap properties;
    properties.insert(QStringLiteral("progress"), percent < 0 ? 0.0 : percent / 100.0);
    properties.insert(QStringLiteral("progress-visible"), percent >= 0);
    return properties;
}

void DesktopIntegration::sendLauncherEntry(const int percent) {
#ifdef KOALA_HAVE_DBUS
    // com.canonical.Unity.LauncherEntry: read by KDE Plasma's task manager, Ubuntu's dock and Dash to Dock; other
    // desktops ignore it. The application is named by its desktop file.
    QDBusConnection bus = QDBusConnection::sessionBus();
    if (!bus.isConnected()) return;
    QDBusMessage message =
        QDBusMessage::createSignal(QStringLiteral("/org/koala/studio/launcherentry"),
                                   QStringLiteral("com.canonical.Unity.LauncherEntry"), QStringLiteral("Update"));
    const QString desktopFile = QGuiApplication::desktopFileName().isEmpty() ? QStringLiteral("koala-studio")
                                                                             : QGuiApplication::desktopFileName();
    message << QStringLiteral("application://%1.desktop").arg(desktopFile) << launcherEntryProperties(percent);
    bus.send(message);
#else
    Q_UNUSED(percent)
#endif
}

// ---- notification ---------------------------------------------------------------------------------------------

bool DesktopIntegration::windowInBackground() const {
    if (m_backgroundOverride >= 0) return m_backgroundOverride == 1;
    return !m_window->isActiveWindow() || m_window->isMinimized();
}

void DesktopIntegration::onIdle() {
    updateProgress();
    const int jobs = m_jobsInRun, images = m_imagesInRun, failed = m_failedInRun;
    m_jobsInRun = m_imagesInRun = m_failedInRun = 0;
    // One job the user is probably watching needs no notification; a queue of several finishing unseen does.
    if (jobs < 2 || !windowInBackground()) return;
    QString text = tr("%1 jobs finished").arg(jobs) + QStringLiteral(" · ") +
                   (images == 1 ? tr("1 image") : tr("%1 images").arg(images));
    if (failed > 0) text += QStringLiteral(" · ") + tr("%1 failed").arg(failed);
    notify(tr("KOALA Studio: queue done"), text);
}

void DesktopIntegration::notify(const QString& title, const QString& text) {
    m_lastNotification = text;
    if (QSystemTrayIcon::isSystemTrayAvailable() && QSystemTrayIcon::supportsMessages()) {
        if (!m_tray) {
            m_tray = new QSystemTrayIcon(
                m_window->windowIcon().isNull() ? QApplication::windowIcon() : m_window->windowIcon(), this);
            m_tray->setToolTip(m_baseTitle);
            connect(m_tray, &QSystemTrayIcon::messageClicked, m_window, [this]() {
                m_window->showNormal();
                m_window->raise();
                m_window->activateWindow();
            });
        }
        m_tray->show();
        m_tray->showMessage(title, text, QSystemTrayIcon::Information, 10000);
        m_lastChannel = QStringLiteral("tray");
    } else {
        m_window->messageBar()->showMessage(text, MessageBar::Level::Info);
        m_lastChannel = QStringLiteral("banner");
    }
    // The taskbar entry asks for attention until the window is activated.
    QApplication::alert(m_window);
}

// ---- keyboard shortcuts ---------------------------------------------------------------------------------------

QList<DesktopIntegration::ShortcutRow> DesktopIntegration::shortcutRows(const QWidget* window) {
    QList<ShortcutRow> rows;
    const auto keysText = [](const QList<QKeySequence>& keys) {
        QStringList parts;
        for (const QKeySequence& k : keys) {
            if (!k.isEmpty()) parts << k.toString(QKeySequence::NativeText);
        }
        return parts.join(QStringLiteral(", "));
    };
    for (const QAction* action : window->findChildren<QAction*>()) {
        const QString keys = keysText(action->shortcuts());
        if (keys.isEmpty() || action->isSeparator()) continue;
        QStringList where;
        for (const QObject* object : action->associatedObjects()) {
            if (const auto* menu = qobject_cast<const QMenu*>(object); menu && !menu->title().isEmpty())
                where << plainText(menu->title());
        }
        where.removeDuplicates();
        const QString what = plainText(action->text().isEmpty() ? action->toolTip() : action->text());
        rows << ShortcutRow{what.isEmpty() ? action->objectName() : what, keys,
                            where.isEmpty() ? QObject::tr("Window") : where.join(QStringLiteral(", "))};
    }
    for (const QShortcut* shortcut : window->findChildren<QShortcut*>()) {
        const QString keys = keysText(shortcut->keys());
        if (keys.isEmpty()) continue;
        QString what = shortcut->whatsThis();
        if (what.isEmpty()) what = shortcut->objectName();
        const QWidget* parent = qobject_cast<const QWidget*>(shortcut->parent());
        QString where = parent ? parent->accessibleName() : QString();
        if (where.isEmpty() && parent) where = parent->objectName();
        rows << ShortcutRow{what.isEmpty() ? QObject::tr("(unnamed)") : what, keys,
                            where.isEmpty() ? QObject::tr("Window") : where};
    }
    std::sort(rows.begin(), rows.end(), [](const ShortcutRow& a, const ShortcutRow& b) {
        return std::tie(a.where, a.what) < std::tie(b.where, b.what);
    });
    return rows;
}

QDialog* DesktopIntegration::createShortcutsDialog(QWidget* window) {
    auto* dialog = new QDialog(window);
    dialog->setObjectName(QStringLiteral("shortcutsDialog"));
    dialog->setWindowTitle(tr("Keyboard shortcuts"));
    const QList<ShortcutRow> rows = shortcutRows(window);
    auto* table = new QTableWidget(int(rows.size()), 3, dialog);
    table->setObjectName(QStringLiteral("shortcutsTable"));
    table->setHorizontalHeaderLabels({tr("Action"), tr("Keys"), tr("Where")});
    table->verticalHeader()->setVisible(false);
    table->setEditTriggers(QAbstractItemView::NoEditTriggers);
    table->setSelectionBehavior(QAbstractItemView::SelectRows);
    for (int i = 0; i < rows.size(); ++i) {
        table->setItem(i, 0, new QTableWidgetItem(rows[i].what));
        table->setItem(i, 1, new QTableWidgetItem(rows[i].keys));
        table->setItem(i, 2, new QTableWidgetItem(rows[i].where));
    }
    table->resizeColumnsToContents();
    table->horizontalHeader()->setStretchLastSection(true);
    auto* note = new QLabel(tr("Underlined letters in menus and labels work with Alt."), dialog);
    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Close, dialog);
    connect(buttons, &QDialogButtonBox::rejected, dialog, &QDialog::reject);
    auto* layout = new QVBoxLayout(dialog);
    layout->addWidget(table, 1);
    layout->addWidget(note);
    layout->addWidget(buttons);
    dialog->resize(520, 420);
    return dialog;
}

void DesktopIntegration::showShortcuts() {
    QDialog* dialog = createShortcutsDialog(m_window);
    dialog->setAttribute(Qt::WA_DeleteOnClose);
    dialog->show();
}

// ---- themes ---------------------------------------------------------------------------------------------------

QStringList DesktopIntegration::themeNames() {
    return {QStringLiteral("system"), QStringLiteral("light"), QStringLiteral("dark")};
}

QString DesktopIntegration::themeLabel(const QString& theme) {
    if (theme == QLatin1String("light")) return tr("Light");
    if (theme == QLatin1String("dark")) return tr("Dark");
    return tr("System (follow the desktop)");
}

QString DesktopIntegration::themeSetting(const QString& settingsFile) {
    const QString theme = QSettings(settingsFile, QSettings::IniFormat).value(ThemeKey).toString();
    return themeNames().contains(theme) ? theme : QStringLiteral("system");
}

void DesktopIntegration::setThemeSetting(const QString& settingsFile, const QString& theme) {
    QSettings settings(settingsFile, QSettings::IniFormat);
    settings.setValue(ThemeKey, themeNames().contains(theme) ? theme : QStringLiteral("system"));
    settings.sync();
}

bool DesktopIntegration::applyTheme(const QString& themeIn) {
    const QString theme = themeNames().contains(themeIn) ? themeIn : QStringLiteral("system");
    const bool systemDark = systemPrefersDark();  // read (and remembered) before the first palette change
    const bool dark = (theme == QLatin1String("dark")) || (theme == QLatin1String("system") && systemDark);
    if (QStyle* fusion = QStyleFactory::create(QStringLiteral("Fusion"))) {
        QApplication::setStyle(fusion);
        QApplication::setPalette(dark ? darkPalette() : fusion->standardPalette());
    }
    g_currentTheme = theme;
    g_currentDark = dark;
    return dark;
}

QString DesktopIntegration::currentTheme() { return g_currentTheme; }

bool DesktopIntegration::currentThemeIsDark() { return g_currentDark; }
