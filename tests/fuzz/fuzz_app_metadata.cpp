// Fuzz target: the studio's own PNG reading (app/PngMetadata.cpp: its text-chunk reader, the koala / A1111
// fallback into GalleryItem) and GenerationParams::fromA1111 (app/GenerationParams.cpp) on the same bytes as text.
// The input is the PNG file.
#include "fuzz_util.h"

#include "GenerationParams.h"
#include "PngMetadata.h"

#include <QCoreApplication>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static int argc = 1;
    static char name[] = "fuzz_app_metadata";
    static char* argv[] = {name, nullptr};
    static QCoreApplication* app = QCoreApplication::instance() ? nullptr : new QCoreApplication(argc, argv);
    (void)app;
    static const std::string path = fuzz::scratchDir() + "/input.png";
    fuzz::writeFile(path, data, size);
    try {
        auto r = PngMetadata::read(QString::fromStdString(path));
        (void)r.item.params.toA1111();
        (void)PngMetadata::readParams(QString::fromStdString(path));
        if (auto p =
                GenerationParams::fromA1111(QString::fromUtf8(reinterpret_cast<const char*>(data), qsizetype(size))))
            (void)GenerationParams::fromA1111(p->toA1111());
    } catch (const std::exception& e) {
        fuzz::unexpected("app_metadata", e);
    }
    return 0;
}
