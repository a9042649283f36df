#include "icons.h"

#include <QApplication>
#include <QImageReader>

bool Icons::svgSupported() {
    static const bool supported = QImageReader::supportedImageFormats().contains("svg");
    return supported;
}

QIcon Icons::get(const QString& name, const QStyle::StandardPixmap fallback) {
    if (svgSupported()) {
        const QIcon icon(QStringLiteral(":/icons/%1.svg").arg(name));
        if (!icon.isNull()) return icon;
    }
    return QApplication::style()->standardIcon(fallback);
}
