#pragma once

#include <QIcon>
#include <QStyle>

namespace Icons {
// The hand-drawn SVG from resources/icons when this Qt has an SVG image/icon plugin; otherwise the style's
// standard icon, so the toolbar never shows blank buttons on a minimal Qt install (Debian's qt6-base alone
// has no SVG support).
QIcon get(const QString& name, QStyle::StandardPixmap fallback);
bool svgSupported();
}  // namespace Icons
