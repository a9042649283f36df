#pragma once

#include <optional>

#include <QImage>
#include <QString>

#include "GalleryItem.h"

// PNG files with generation metadata in text chunks:
//   "parameters": the AUTOMATIC1111 text (GenerationParams::toA1111), readable by most SD tools and sites;
//   "koala":      GalleryItem::toJson (model, resolved seed, scheduler actually used, timings, compare group).
// Reading prefers "koala" and falls back to "parameters", so any PNG a user drops in can be read.
class PngMetadata {
public:
    static const char* const koalaKey;       // "koala"
    static const char* const parametersKey;  // "parameters"

    enum class Source { None, Koala, A1111 };

    struct ReadResult {
        Source source = Source::None;
        GalleryItem item;      // item.params filled from the chunk; width/height from the image header
        QString error;         // set when the file is not a readable PNG
    };

    // Writes `image` as PNG with both chunks, atomically (QSaveFile: the file appears complete or not at all).
    // Returns false and sets *error on failure.
    static bool write(const QString& path, const QImage& image, const GalleryItem& item, QString* error = nullptr);

    // Reads the metadata of any PNG. source == None and an empty error: a PNG without generation metadata.
    static ReadResult read(const QString& path);

    // Convenience: the parameters of a dropped PNG, std::nullopt when it has none.
    static std::optional<GenerationParams> readParams(const QString& path);
};
