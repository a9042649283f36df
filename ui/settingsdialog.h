#pragma once

#include <QDialog>

class AppSettings;
class QComboBox;
class QLineEdit;

// Device, precision, memory mode and output folder. Values are read from and written to AppSettings (on OK only),
// so a cancelled dialog changes nothing.
class SettingsDialog final : public QDialog {
    Q_OBJECT

public:
    SettingsDialog(AppSettings* settings, QWidget* parent = nullptr);

    void accept() override;

    QString device() const;
    QString precision() const;
    QString memoryMode() const;
    QString outputFolder() const;
    // ---- prompt syntax and LoRA (issue 10) ----
    QString promptSyntax() const;  // "a1111" or "plain"
    QStringList loraFolders() const;
    // ---- colour theme (issue 13 item 6): "system", "light" or "dark" ----
    QString theme() const;

private:
    AppSettings* m_settings = nullptr;
    QComboBox* m_device = nullptr;
    QComboBox* m_precision = nullptr;
    QComboBox* m_memory = nullptr;
    QLineEdit* m_output = nullptr;
    QComboBox* m_syntax = nullptr;       // issue 10
    QLineEdit* m_loraFolders = nullptr;  // issue 10
    QComboBox* m_theme = nullptr;        // issue 13 item 6
};
