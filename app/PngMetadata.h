#pragma once

#include <optional>

#include <QImage>
#include <QString>

#include "GalleryItem.h"

// PNG files with generation metadata in text chunks:
//   "parameters": the AUTOMATIC1111 text (GenerationParams::toA1111), readable by most SD tools and sites;
//   "koala":      GalleryItem::toJson (model, resolved seed, scheduler actually used, timings, compare group).
// The schema and the A1111 text are the engine's (koala::metadataTextChunks / koala::interpretMetadata), so
// koala-cli's PNGs and ours read the same. Reading takes "koala" when its version is known and falls back to
// "parameters" otherwise; a ComfyUI PNG is named as such (its node graph is not applied).
class PngMetadata {
public:
    static const char* const koalaKey;       // "koala"
    static const char* const parametersKey;  // "parameters"

    enum class Source { None, Koala, A1111, ComfyUI };

    struct ReadResult {
        Source source = Source::None;
        GalleryItem item;  // item.params filled from the chunk; width/height from the image header
        QString error;     // set when the file is not a readable PNG
        QString note;      // why the koala chunk was not used, or what a ComfyUI PNG holds
    };

    // Writes `image` as PNG with both chunks, atomically (QSaveFile: the file appears complete or not at all).
    // Returns false and sets *error on failure.
    static bool write(const QString& path, const QImage& image, const GalleryItem& item, QString* error = nullptr);

    // Reads the metadata of any PNG. source == None and an empty error: a PNG without generation metadata.
    static ReadResult read(const QString& path);

    // Convenience: the parameters of a dropped PNG, std::nullopt when it has none.
    static std::optional<GenerationParams> readParams(const QString& path);
};
