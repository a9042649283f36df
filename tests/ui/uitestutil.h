#pragma once

#include <QDir>
#include <QString>
#include <QTemporaryDir>

#include "AppSettings.h"
#include "mainwindow.h"

// A main window that touches nothing of the user's: settings INI, output folder, presets folder and HF cache all
// live in one temporary folder, and the engine runs on the CPU.
struct IsolatedWindowFiles {
    QTemporaryDir dir;

    // A window test never asks the real Hugging Face hub (the model manager asks it for download sizes when its
    // page is shown): HF_HUB_OFFLINE, as for a user who set it; the page then shows the catalog's estimates.
    IsolatedWindowFiles() { qputenv("HF_HUB_OFFLINE", "1"); }

    MainWindow::Options options(const QStringList& models) const {
        MainWindow::Options o;
        o.settingsFile = dir.filePath(QStringLiteral("settings.ini"));
        {
            AppSettings settings(o.settingsFile);
            settings.setDevice(QStringLiteral("cpu"));
            settings.setPrecision(QStringLiteral("fp32"));
            settings.sync();
        }
        o.outputFolder = dir.filePath(QStringLiteral("out"));
        o.userPresetsDir = dir.filePath(QStringLiteral("presets"));
        o.hfCache = dir.filePath(QStringLiteral("hf-cache"));  // empty: only --model folders count
        QDir().mkpath(o.userPresetsDir);
        QDir().mkpath(o.hfCache);
        o.modelFolders = models;
        return o;
    }
};

inline QString fixtureModel(const char* name) {
    return QStringLiteral(KOALA_TEST_DATA "/fixtures/") + QString::fromLatin1(name);
}
