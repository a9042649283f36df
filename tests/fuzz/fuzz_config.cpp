// Fuzz target: model folder configs (engine/src/io/model_folder.cpp, UnetConfig / VaeConfig / ClipTextConfig /
// SchedulerConfig::fromConfig). The input is up to five JSON texts separated by lines "--FILE--": model_index.json,
// unet/config.json, vae/config.json, text_encoder/config.json, scheduler/scheduler_config.json; a single text is
// used for all five. They are written into a model folder, which is resolved and read as the loader does.
#include "fuzz_util.h"

#include "io/model_folder.h"
#include "koala/engine.h"
#include "models/clip.h"
#include "models/unet.h"
#include "models/vae.h"
#include "sampling/scheduler.h"

#include <filesystem>

namespace {

const std::string& folder() {
    static const std::string dir = [] {
        std::string d = fuzz::scratchDir() + "/model";
        for (const char* sub : {"unet", "vae", "text_encoder", "scheduler"})
            std::filesystem::create_directories(d + "/" + sub);
        return d;
    }();
    return dir;
}

template <class F>
void guarded(F&& f) {
    fuzz::guarded<koala::Error>("config", std::forward<F>(f));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    namespace io = koala::io;
    const std::string& dir = folder();
    auto parts = fuzz::split(data, size, "\n--FILE--\n", 5);
    const char* files[] = {"model_index.json", "unet/config.json", "vae/config.json", "text_encoder/config.json",
                           "scheduler/scheduler_config.json"};
    for (std::size_t i = 0; i < 5; ++i)
        fuzz::writeFile(dir + "/" + files[i], parts.size() == 1 ? parts[0] : i < parts.size() ? parts[i] : "");

    guarded([&] {
        const std::string folderPath = io::resolveModelFolder(dir);
        auto index = io::Config::load(io::joinPath(folderPath, "model_index.json"));
        (void)index.getString("_class_name", "StableDiffusionXLPipeline");
        (void)index.getBool("force_zeros_for_empty_prompt", true);
    });
    guarded([&] {
        auto cfg = koala::models::UnetConfig::fromConfig(io::Config::load(dir + "/unet/config.json"));
        (void)koala::models::Unet::shapeNameOf(cfg);
    });
    guarded([&] { (void)koala::models::VaeConfig::fromConfig(io::Config::load(dir + "/vae/config.json")); });
    guarded(
        [&] { (void)koala::models::ClipTextConfig::fromConfig(io::Config::load(dir + "/text_encoder/config.json")); });
    guarded([&] {
        auto s =
            koala::sampling::SchedulerConfig::fromConfig(io::Config::load(dir + "/scheduler/scheduler_config.json"));
        (void)s.defaultKind();
        (void)s.defaultSpacing();
    });
    return 0;
}
