// One rule for writing user data (settings, queue, gallery index, presets, download state, PNGs): the new file
// appears whole or not at all, and a failure — a full disk included — is reported, never a silently empty file.
#pragma once

#include <QByteArray>
#include <QString>

// Writes `data` to `path` through QSaveFile (a temporary file renamed over `path` on success). Checks flush()
// before commit(): Qt 6.4's QSaveFile::commit() does not notice a failed flush of its write buffer (a full disk) and
// would rename an empty or cut-off file into place. On failure the old file is untouched, the temporary file
// removed, and *error (if given) says "Cannot write <path>: <reason>".
bool writeFileAtomically(const QString& path, const QByteArray& data, QString* error = nullptr);
