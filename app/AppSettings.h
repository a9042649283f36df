#pragma once

#include <memory>

#include <QByteArray>
#include <QSettings>
#include <QString>
#include <QStringList>

#include "GenerationParams.h"

// Typed access to the persistent settings (QSettings, organization "KOALA", application "KOALA Studio").
// Values are written immediately; the strings are the engine's names (koala::toString), so they map 1:1 to
// koala::LoadOptions.
//
// A damaged settings file (binary garbage, NUL bytes from a crash, cut off mid-line, not UTF-8, unparsable) is never
// used: it is renamed to <file>.damaged-<time> and the last good copy <file>.bak is restored, or, without one, the
// defaults apply. recoveryMessage() then says what happened, for the UI to show once. The backup is refreshed from
// every file that loaded cleanly and after every successful sync() (also the one in the destructor).
class AppSettings {
public:
    AppSettings();                                 // the user's settings
    explicit AppSettings(const QString& iniFile);  // an explicit INI file (tests, portable mode)
    ~AppSettings();

    // Empty when the settings file was fine; otherwise one line for the user: what was wrong with which file, what
    // was restored (backup or defaults) and where the damaged file was kept.
    QString recoveryMessage() const { return m_recoveryMessage; }
    // The backup next to the settings file (<file>.bak).
    QString backupFileName() const;
    // Why `file` cannot be used as a settings file, or empty when it can (a missing file is fine).
    static QString damage(const QString& file);

    QString device() const;  // "auto", "cpu", "cuda"
    void setDevice(const QString& device);
    QString precision() const;  // "auto", "fp32", "fp16", "bf16"
    void setPrecision(const QString& precision);
    QString memoryMode() const;  // "default", "low"
    void setMemoryMode(const QString& mode);

    // Default: QStandardPaths::PicturesLocation + "/KOALA Studio".
    QString outputFolder() const;
    void setOutputFolder(const QString& folder);
    static QString defaultOutputFolder();

    QStringList extraModelFolders() const;
    void setExtraModelFolders(const QStringList& folders);

    // ---- prompt syntax and LoRA (issue 10) ----
    // Where the LoRA panel and <lora:NAME> tags look, first wins; default: koala::defaultLoraFolder().
    QStringList loraFolders() const;
    void setLoraFolders(const QStringList& folders);
    static QStringList defaultLoraFolders();
    // The syntax new prompts are read with: "a1111" (default) or "plain".
    QString promptSyntax() const;
    void setPromptSyntax(const QString& syntax);

    // The parameters of the last generation (restored at start-up); defaults() when none.
    GenerationParams lastParams() const;
    void setLastParams(const GenerationParams& params);

    QByteArray windowGeometry() const;
    void setWindowGeometry(const QByteArray& geometry);
    QByteArray windowState() const;
    void setWindowState(const QByteArray& state);

    // Device, dtype and memory mode as engine load options (unknown strings fall back to auto/default).
    koala::LoadOptions loadOptions() const;

    void sync();
    QString fileName() const;

private:
    // Checks the file QSettings uses; replaces a damaged one (see the class comment) and reopens it.
    void recoverIfDamaged();
    // Copies the settings file to backupFileName() (atomically) when it is sound.
    void refreshBackup();

    std::unique_ptr<QSettings> m_settings;
    QString m_recoveryMessage;
};
