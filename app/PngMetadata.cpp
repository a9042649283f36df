#include "PngMetadata.h"
#include "AtomicFile.h"

#include <QBuffer>
#include <QFile>
#include <QFileInfo>
#include <QImageReader>
#include <QImageWriter>
#include <QJsonDocument>

#include <koala/engine.h>

// Text chunks are written and read by the engine (koala::addPngText / readPngText: one rule for tEXt/iTXt, shared
// with koala-cli), not by QImageWriter/QImageReader: QImageWriter compresses values over 40 characters into zTXt
// (which several tools do not read) and QImageReader::text() collapses newlines, which would break the multi-line
// A1111 text. Reading the chunks directly also avoids decoding the pixels during a gallery scan.
namespace {
const QByteArray pngSignature("\x89PNG\r\n\x1a\n", 8);
}  // namespace

const char* const PngMetadata::koalaKey = "koala";
const char* const PngMetadata::parametersKey = "parameters";

bool PngMetadata::write(const QString& path, const QImage& image, const GalleryItem& item, QString* error) {
    auto fail = [&](const QString& message) {
        if (error) *error = message;
        return false;
    };
    if (image.isNull()) return fail(QStringLiteral("Cannot write %1: the image is empty.").arg(path));

    // The A1111 text names the scheduler actually used, so other tools see "Euler" rather than nothing for
    // "default"; our own chunk keeps both the request and the resolved name.
    GenerationParams a1111 = item.params;
    if (!item.schedulerUsed.isEmpty()) a1111.scheduler = item.schedulerUsed;
    if (!item.spacingUsed.isEmpty()) a1111.spacing = item.spacingUsed;
    if (a1111.modelName.isEmpty()) a1111.modelName = item.modelName;

    QBuffer buffer;
    buffer.open(QIODevice::WriteOnly);
    QImageWriter writer(&buffer, "png");
    if (!writer.write(image)) return fail(QStringLiteral("Cannot encode %1: %2").arg(path, writer.errorString()));
    QByteArray png;
    try {
        png = QByteArray::fromStdString(
            koala::addPngText(buffer.data().toStdString(),
                              {{parametersKey, a1111.toA1111().toStdString()},
                               {koalaKey, QJsonDocument(item.toJson()).toJson(QJsonDocument::Compact).toStdString()}}));
    } catch (const koala::Error& e) {
        return fail(QStringLiteral("Cannot encode %1: %2").arg(path, QString::fromStdString(e.what())));
    }

    // Atomically, with a full disk noticed (AtomicFile.h: Qt 6.4's commit() alone would put an empty PNG in place).
    QString why;
    if (!writeFileAtomically(path, png, &why)) return fail(why);
    return true;
}

namespace {

// Why `path` cannot be read as a PNG, in words a person can act on; "" when it starts like one.
QString notPngReason(const QString& path) {
    const QString name = QFileInfo(path).fileName();
    QFile file(path);
    if (!file.exists()) return QStringLiteral("%1 does not exist").arg(path);
    if (!file.open(QIODevice::ReadOnly)) return QStringLiteral("%1 cannot be read: %2").arg(path, file.errorString());
    if (file.read(pngSignature.size()) == pngSignature) return {};
    const QByteArray format = QImageReader::imageFormat(path);
    const QString what = format.isEmpty()
                             ? QStringLiteral("is not an image")
                             : QStringLiteral("is a %1 image, not a PNG").arg(QString::fromLatin1(format).toUpper());
    return QStringLiteral(
               "%1 %2: generation parameters are read from PNG files (KOALA Studio, koala-cli, "
               "AUTOMATIC1111)")
        .arg(name, what);
}

}  // namespace

PngMetadata::ReadResult PngMetadata::read(const QString& path) {
    ReadResult result;
    if (const QString reason = notPngReason(path); !reason.isEmpty()) {
        result.error = reason;
        return result;
    }
    // Not QImageReader: Qt's libpng allocates whatever length a text chunk claims (2 GB for a 257-byte file found by
    // fuzz_app_metadata) before it finds the file too short.
    std::vector<std::pair<std::string, std::string>> chunks;
    int width = 0, height = 0;
    if (!koala::readPngText(QFile::encodeName(path).toStdString(), chunks, &width, &height) || width <= 0 ||
        height <= 0) {
        result.error = QStringLiteral("%1 is a damaged PNG: it does not start with a valid image header (IHDR)")
                           .arg(QFileInfo(path).fileName());
        return result;
    }
    const QSize size(width, height);

    const koala::MetadataReadResult meta = koala::interpretMetadata(chunks);
    result.note = QString::fromStdString(meta.note);
    switch (meta.source) {
    case koala::MetadataSource::Koala: {
        // The engine checked the version and the params; the params object has the same keys as
        // GenerationParams::toJson, and the studio's own keys (timings, compare pair) come along.
        const QJsonDocument doc = QJsonDocument::fromJson(QByteArray::fromStdString(meta.koalaJson));
        result.item = GalleryItem::fromJson(doc.object());
        if (result.item.modelName.isEmpty()) result.item.modelName = result.item.params.modelName;
        result.source = Source::Koala;
        break;
    }
    case koala::MetadataSource::A1111:
        result.item.params = GenerationParams::fromMetadata(meta.metadata);
        result.item.modelName = result.item.params.modelName;
        result.source = Source::A1111;
        break;
    case koala::MetadataSource::ComfyUI: result.source = Source::ComfyUI; break;
    case koala::MetadataSource::None: break;
    }
    if (size.isValid()) {
        result.item.width = size.width();
        result.item.height = size.height();
    }
    return result;
}

std::optional<GenerationParams> PngMetadata::readParams(const QString& path) {
    const ReadResult r = read(path);
    if (r.source != Source::Koala && r.source != Source::A1111) return std::nullopt;
    return r.item.params;
}
