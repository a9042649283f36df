#pragma once

#include <optional>

#include <QList>
#include <QObject>
#include <QString>
#include <QStringList>

#include "GenerationParams.h"

// A named partial set of GenerationParams. Only the fields a preset sets are applied; the prompt and the model
// folder stay as the user has them (the preset's `model` is a hint such as "koala-700m" the UI can match).
//
// YAML form (every key but `name` optional):
//   name: KOALA Lightning 10 steps
//   description: ...
//   model: koala-lightning-700m
//   scheduler: euler          # engine names, see GenerationParams::schedulerNames()
//   spacing: trailing
//   steps: 10
//   guidance: 3.5
//   guidance_rescale: 0.0
//   width: 1024
//   height: 1024
//   count: 1
//   seed: random              # or a whole number 0..18446744073709551615 (-1 = random, as older files say)
//   negative_prompt: "..."    # present = hasNegative
//   prompt_syntax: plain      # a1111 or plain (issue 10)
struct Preset {
    QString name;
    QString description;
    QString modelHint;
    std::optional<QString> scheduler;
    std::optional<QString> spacing;
    std::optional<int> steps;
    std::optional<double> guidance;
    std::optional<double> guidanceRescale;
    std::optional<int> width;
    std::optional<int> height;
    std::optional<int> count;
    std::optional<std::optional<quint64>> seed;  // absent: not set; set to empty: random; else a fixed seed
    std::optional<QString> negativePrompt;
    std::optional<QString> promptSyntax;  // issue 10: "a1111" or "plain"

    QString filePath;       // where it was loaded from / saved to
    bool readOnly = false;  // shipped presets cannot be renamed, deleted or overwritten

    // `base` with this preset's fields replaced.
    GenerationParams applyTo(GenerationParams base) const;
    // A preset holding every setting of `params` except prompt, model paths and seed.
    static Preset fromParams(const QString& name, const QString& description, const GenerationParams& params,
                             const QString& modelHint = {});

    QString toYaml() const;
    // Parses YAML text. On error returns std::nullopt and sets *error to "file:line: message" (line 1-based,
    // from yaml-cpp's Mark), with `fileName` as the file part.
    static std::optional<Preset> fromYaml(const QString& yaml, const QString& fileName, QString* error = nullptr);
    // Reads and parses a file (same error format).
    static std::optional<Preset> fromFile(const QString& path, QString* error = nullptr);
};

// Shipped presets (read-only) plus the user's presets (one YAML file each). A user preset with the same name as a
// shipped one cannot be created; all writes are atomic (QSaveFile).
class PresetStore : public QObject {
    Q_OBJECT

public:
    enum class Status { Ok, NameClash, ReadOnly, NotFound, Invalid, IoError };
    Q_ENUM(Status)

    // Empty `userDir` = defaultUserDir(); empty `shippedDir` = shippedPresetsDir(). Loads immediately.
    explicit PresetStore(const QString& userDir = {}, const QString& shippedDir = {}, QObject* parent = nullptr);

    // QStandardPaths::AppConfigLocation + "/presets".
    static QString defaultUserDir();
    // The presets shipped with the application: presets/ in the source tree (development builds), next to the
    // executable, or <prefix>/share/koala-studio/presets when installed. Empty when none is found.
    static QString shippedPresetsDir();

    QString userDir() const { return m_userDir; }
    QString shippedDir() const { return m_shippedDir; }

    // Re-reads both folders. Malformed files become entries of errors() ("file:line: message"); the rest load.
    void reload();
    QList<Preset> presets() const { return m_presets; }  // shipped first, then user, each sorted by name
    QStringList errors() const { return m_errors; }
    std::optional<Preset> find(const QString& name) const;
    bool contains(const QString& name) const { return find(name).has_value(); }

    // Saves as a user preset. An existing user preset of that name is replaced only with overwrite = true
    // (Status::NameClash otherwise, so the UI can ask); a shipped name gives Status::ReadOnly.
    Status save(const Preset& preset, bool overwrite = false, QString* error = nullptr);
    Status rename(const QString& oldName, const QString& newName, bool overwrite = false, QString* error = nullptr);
    Status remove(const QString& name, QString* error = nullptr);
    // Copies a YAML file in after validating it (Status::Invalid with "file:line: message" when malformed).
    Status importFile(const QString& path, bool overwrite = false, QString* error = nullptr);
    // Writes the preset `name` (shipped or user) to `path`.
    Status exportPreset(const QString& name, const QString& path, QString* error = nullptr) const;

signals:
    void presetsChanged();

private:
    QString userFilePath(const QString& name) const;
    Status writePreset(const Preset& preset, const QString& path, QString* error) const;

    QString m_userDir;
    QString m_shippedDir;
    QList<Preset> m_presets;
    QStringList m_errors;
};
