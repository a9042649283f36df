#include "PngMetadata.h"
#include "AtomicFile.h"

#include <QBuffer>
#include <QFile>
#include <QFileInfo>
#include <QHash>
#include <QImageReader>
#include <QImageWriter>
#include <QJsonDocument>

namespace {

// Our own text chunk handling: QImageWriter compresses values over 40 characters into zTXt (which several tools,
// the engine's reader included, do not read) and QImageReader::text() collapses newlines, which would break the
// multi-line A1111 text. So chunks are written as uncompressed tEXt (Latin-1) / iTXt (UTF-8) and parsed directly,
// which also avoids decoding the pixels during a gallery scan.
const QByteArray pngSignature("\x89PNG\r\n\x1a\n", 8);

quint32 crc32(const QByteArray& data) {
    static quint32 table[256];
    static bool init = false;
    if (!init) {
        for (quint32 n = 0; n < 256; ++n) {
            quint32 c = n;
            for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
            table[n] = c;
        }
        init = true;
    }
    quint32 c = 0xffffffffu;
    for (char ch : data) c = table[(c ^ quint8(ch)) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

void appendBigEndian(QByteArray& out, quint32 v) {
    out.append(char(v >> 24)).append(char(v >> 16)).append(char(v >> 8)).append(char(v));
}

quint32 readBigEndian(const QByteArray& data, qsizetype at) {
    return (quint32(quint8(data[at])) << 24) | (quint32(quint8(data[at + 1])) << 16) |
           (quint32(quint8(data[at + 2])) << 8) | quint32(quint8(data[at + 3]));
}

QByteArray textChunk(const QString& key, const QString& value) {
    QByteArray typeAndBody;
    // tEXt is Latin-1 by the PNG spec; anything else goes into iTXt as UTF-8 (what A1111/PIL do too).
    bool latin1 = true;
    for (QChar c : value) {
        if (c.unicode() > 0xff) {
            latin1 = false;
            break;
        }
    }
    if (latin1) {
        typeAndBody = "tEXt" + key.toLatin1() + '\0' + value.toLatin1();
    } else {
        // keyword, 0, compression flag 0, method 0, empty language tag, 0, empty translated keyword, 0, text.
        typeAndBody = "iTXt" + key.toLatin1() + '\0' + '\0' + '\0' + '\0' + '\0' + value.toUtf8();
    }
    QByteArray chunk;
    appendBigEndian(chunk, quint32(typeAndBody.size() - 4));
    chunk += typeAndBody;
    appendBigEndian(chunk, crc32(typeAndBody));
    return chunk;
}

QByteArray inflate(const QByteArray& zlibData) {
    // qUncompress wants a 4-byte expected-size prefix; it grows the buffer when the guess is too small.
    QByteArray prefixed;
    appendBigEndian(prefixed, quint32(qMax<qsizetype>(zlibData.size() * 4, 1024)));
    return qUncompress(prefixed + zlibData);
}

// All tEXt / zTXt / iTXt chunks of a PNG file. False when the file is not a PNG.
bool readTextChunks(const QString& path, QHash<QString, QString>& texts, QString* error) {
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly)) {
        *error = file.errorString();
        return false;
    }
    if (file.read(8) != pngSignature) {
        *error = QStringLiteral("not a PNG file");
        return false;
    }
    while (!file.atEnd()) {
        const QByteArray header = file.read(8);
        if (header.size() < 8) break;
        const quint32 length = readBigEndian(header, 0);
        const QByteArray type = header.mid(4, 4);
        if (type == "IEND" || length > 64u * 1024 * 1024) break;
        if (type != "tEXt" && type != "zTXt" && type != "iTXt") {
            if (!file.seek(file.pos() + length + 4)) break;
            continue;
        }
        const QByteArray body = file.read(length);
        file.read(4);  // CRC
        const qsizetype nul = body.indexOf('\0');
        if (nul <= 0) continue;
        const QString key = QString::fromLatin1(body.left(nul));
        QString value;
        if (type == "tEXt") {
            value = QString::fromLatin1(body.mid(nul + 1));
        } else if (type == "zTXt") {
            value = QString::fromLatin1(inflate(body.mid(nul + 2)));
        } else {
            if (body.size() < nul + 3) continue;
            const bool compressed = body[nul + 1] != 0;
            qsizetype pos = body.indexOf('\0', nul + 3);  // end of language tag
            if (pos < 0) continue;
            pos = body.indexOf('\0', pos + 1);  // end of translated keyword
            if (pos < 0) continue;
            const QByteArray text = body.mid(pos + 1);
            value = QString::fromUtf8(compressed ? inflate(text) : text);
        }
        texts.insert(key, value);
    }
    return true;
}

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
    QByteArray png = buffer.data();
    // IHDR is always first: signature (8) + length, type, 13 data bytes, CRC (25).
    const qsizetype afterIhdr = 8 + 25;
    if (png.size() < afterIhdr || !png.startsWith(pngSignature))
        return fail(QStringLiteral("Cannot encode %1: unexpected PNG encoder output").arg(path));
    const QByteArray chunks = textChunk(QString::fromLatin1(parametersKey), a1111.toA1111()) +
                              textChunk(QString::fromLatin1(koalaKey),
                                        QString::fromUtf8(QJsonDocument(item.toJson()).toJson(QJsonDocument::Compact)));
    png.insert(afterIhdr, chunks);

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
    QImageReader reader(path, "png");
    QHash<QString, QString> texts;
    QString chunkError;
    if (!reader.canRead() || !readTextChunks(path, texts, &chunkError)) {
        result.error = QStringLiteral("%1 is a damaged PNG: %2")
                           .arg(QFileInfo(path).fileName(), chunkError.isEmpty() ? reader.errorString() : chunkError);
        return result;
    }
    const QSize size = reader.size();

    std::vector<std::pair<std::string, std::string>> chunks;
    for (auto it = texts.cbegin(); it != texts.cend(); ++it)
        chunks.emplace_back(it.key().toStdString(), it.value().toStdString());
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
