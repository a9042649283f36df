#include "AtomicFile.h"

#include <QSaveFile>

bool writeFileAtomically(const QString& path, const QByteArray& data, QString* error) {
    QSaveFile file(path);
    bool ok = file.open(QIODevice::WriteOnly);
    if (ok) ok = file.write(data) == data.size() && file.flush();
    QString why = file.errorString();
    if (ok) {
        ok = file.commit();
        why = file.errorString();
    } else if (file.isOpen()) {
        file.cancelWriting();
        file.commit();  // with writing cancelled: removes the temporary file, leaves `path` as it was
    }
    if (!ok && error) *error = QStringLiteral("Cannot write %1: %2").arg(path, why);
    return ok;
}
