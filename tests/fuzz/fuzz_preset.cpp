// Fuzz target: the preset YAML loader (app/PresetStore.cpp Preset::fromYaml). Malformed text must give
// std::nullopt and a "file:line: message" error, never an exception; a preset that loads must write back
// (toYaml) and load again.
#include "fuzz_util.h"

#include "PresetStore.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const QString yaml = QString::fromUtf8(reinterpret_cast<const char*>(data), qsizetype(size));
    try {
        QString error;
        auto p = Preset::fromYaml(yaml, QStringLiteral("fuzz.yaml"), &error);
        if (!p && error.isEmpty()) {
            std::fprintf(stderr, "fromYaml failed without an error message\n");
            std::abort();
        }
        if (p) {
            (void)p->applyTo(GenerationParams());
            QString again;
            if (!Preset::fromYaml(p->toYaml(), QStringLiteral("again.yaml"), &again)) {
                std::fprintf(stderr, "a loaded preset does not load again: %s\n", again.toStdString().c_str());
                std::abort();
            }
        }
    } catch (const std::exception& e) {
        fuzz::unexpected("preset", e);
    }
    return 0;
}
