#include "PngMetadata.h"

#include <QFileInfo>
#include <QImageReader>
#include <QImageWriter>
#include <QJsonDocument>
#include <QSaveFile>

const char* const PngMetadata::koalaKey = "koala";
const char* const PngMetadata::parametersKey = "parameters";

bool PngMetadata::write(const QString& path, const QImage& image, const GalleryItem& item, QString* error)
{
    auto fail = [&](const QString& message) {
        if (error)
            *error = message;
        return false;
    };
    if (image.isNull())
        return fail(QStringLiteral("Cannot write %1: the image is empty.").arg(path));

    // The A1111 text names the scheduler actually used, so other tools see "Euler" rather than nothing for
    // "default"; our own chunk keeps both the request and the resolved name.
    GenerationParams a1111 = item.params;
    if (!item.schedulerUsed.isEmpty())
        a1111.scheduler = item.schedulerUsed;
    if (!item.spacingUsed.isEmpty())
        a1111.spacing = item.spacingUsed;
    if (a1111.modelName.isEmpty())
        a1111.modelName = item.modelName;

    QSaveFile file(path);
    if (!file.open(QIODevice::WriteOnly))
        return fail(QStringLiteral("Cannot write %1: %2").arg(path, file.errorString()));
    QImageWriter writer(&file, "png");
    writer.setText(QString::fromLatin1(parametersKey), a1111.toA1111());
    writer.setText(QString::fromLatin1(koalaKey),
                   QString::fromUtf8(QJsonDocument(item.toJson()).toJson(QJsonDocument::Compact)));
    if (!writer.write(image)) {
        file.cancelWriting();
        return fail(QStringLiteral("Cannot write %1: %2").arg(path, writer.errorString()));
    }
    if (!file.commit())
        return fail(QStringLiteral("Cannot write %1: %2").arg(path, file.errorString()));
    return true;
}

PngMetadata::ReadResult PngMetadata::read(const QString& path)
{
    ReadResult result;
    QImageReader reader(path, "png");
    if (!reader.canRead()) {
        result.error = QStringLiteral("%1 is not a readable PNG: %2").arg(path, reader.errorString());
        return result;
    }
    const QSize size = reader.size();

    const QString koala = reader.text(QString::fromLatin1(koalaKey));
    if (!koala.isEmpty()) {
        QJsonParseError parseError;
        const QJsonDocument doc = QJsonDocument::fromJson(koala.toUtf8(), &parseError);
        if (doc.isObject()) {
            result.item = GalleryItem::fromJson(doc.object());
            result.source = Source::Koala;
        }
        // A damaged "koala" chunk falls through to "parameters".
    }
    if (result.source == Source::None) {
        QString parameters = reader.text(QString::fromLatin1(parametersKey));
        if (parameters.isEmpty() && reader.text(QString::fromLatin1(koalaKey)).isEmpty()) {
            // Text chunks after the image data are only seen once the image is decoded; only foreign files
            // without metadata in front pay for that.
            reader.read();
            parameters = reader.text(QString::fromLatin1(parametersKey));
            const QString late = reader.text(QString::fromLatin1(koalaKey));
            const QJsonDocument doc = QJsonDocument::fromJson(late.toUtf8());
            if (doc.isObject()) {
                result.item = GalleryItem::fromJson(doc.object());
                result.source = Source::Koala;
                parameters.clear();
            }
        }
        if (!parameters.isEmpty()) {
            if (std::optional<GenerationParams> p = GenerationParams::fromA1111(parameters)) {
                result.item.params = *p;
                result.item.modelName = p->modelName;
                result.source = Source::A1111;
            }
        }
    }
    if (size.isValid()) {
        result.item.width = size.width();
        result.item.height = size.height();
    }
    return result;
}

std::optional<GenerationParams> PngMetadata::readParams(const QString& path)
{
    const ReadResult r = read(path);
    if (r.source == Source::None)
        return std::nullopt;
    return r.item.params;
}
