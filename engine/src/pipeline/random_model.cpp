// Full-size SDXL-family architectures with random weights: see random_model.h.
#include "pipeline/random_model.h"

#include "core/common.h"
#include "io/model_folder.h"
#include "io/weights.h"

#include <algorithm>

namespace koala {
namespace {

using nlohmann::json;

struct ArchKeys {
    const char* name;
    int layersPerBlock;
    std::vector<int> transformerLayers;
    bool midBlock;
    std::int64_t cardParams;
};

const std::vector<ArchKeys>& archTable() {
    // docs/sdxl-pipeline.md section 9: the keys that differ from SDXL-base, and the model cards' counts.
    static const std::vector<ArchKeys> t{
        {"koala-700m", 1, {1, 2, 5}, false, 782822724},
        {"koala-1b", 1, {1, 2, 6}, true, 1161184324},
        {"sdxl-base", 2, {1, 2, 10}, true, 2567463684},
    };
    return t;
}

const ArchKeys* findArch(const std::string& name) {
    for (const auto& a : archTable())
        if (name == a.name) return &a;
    return nullptr;
}

std::string archList() {
    std::string s;
    for (const auto& a : archTable()) s += (s.empty() ? "" : ", ") + std::string(a.name);
    return s;
}

// The architecture's UNet config: built in, or read from <folder>/unet/config.json.
models::UnetConfig unetConfigOf(const std::string& arch) {
    if (isRandomArchitecture(arch))
        return models::UnetConfig::fromConfig(io::Config(randomUnetConfigJson(arch), arch + " (built-in unet config)"));
    if (io::dirExists(arch))
        return models::UnetConfig::fromConfig(io::Config::load(io::joinPath(arch, "unet/config.json")));
    fail(ErrorKind::InvalidArgument, "unknown random architecture '" + arch + "' (use " + archList() +
                                         ", or a model folder whose configs give the architecture)");
}

}  // namespace

std::vector<std::string> randomArchitectures() {
    std::vector<std::string> out;
    for (const auto& a : archTable()) out.push_back(a.name);
    return out;
}

bool isRandomArchitecture(const std::string& name) { return findArch(name) != nullptr; }

json randomUnetConfigJson(const std::string& arch) {
    const ArchKeys* a = findArch(arch);
    if (!a) fail(ErrorKind::InvalidArgument, "unknown random architecture '" + arch + "' (use " + archList() + ")");
    // SDXL-base unet/config.json (docs/sdxl-pipeline.md section 0) with the KOALA differences of section 9.
    json j = {
        {"_class_name", "UNet2DConditionModel"},
        {"act_fn", "silu"},
        {"addition_embed_type", "text_time"},
        {"addition_time_embed_dim", 256},
        {"attention_head_dim", {5, 10, 20}},
        {"block_out_channels", {320, 640, 1280}},
        {"center_input_sample", false},
        {"class_embed_type", nullptr},
        {"conv_in_kernel", 3},
        {"conv_out_kernel", 3},
        {"cross_attention_dim", 2048},
        {"down_block_types", {"DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"}},
        {"downsample_padding", 1},
        {"flip_sin_to_cos", true},
        {"freq_shift", 0},
        {"in_channels", 4},
        {"layers_per_block", a->layersPerBlock},
        {"mid_block_scale_factor", 1},
        {"mid_block_type", a->midBlock ? json("UNetMidBlock2DCrossAttn") : json(nullptr)},
        {"norm_eps", 1e-5},
        {"norm_num_groups", 32},
        {"num_attention_heads", nullptr},
        {"out_channels", 4},
        {"projection_class_embeddings_input_dim", 2816},
        {"resnet_time_scale_shift", "default"},
        {"sample_size", 128},
        {"time_cond_proj_dim", nullptr},
        {"time_embedding_type", "positional"},
        {"transformer_layers_per_block", a->transformerLayers},
        {"up_block_types", {"CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"}},
        {"upcast_attention", nullptr},
        {"use_linear_projection", true},
    };
    return j;
}

std::int64_t modelCardUnetParameters(const std::string& arch) {
    const ArchKeys* a = findArch(arch);
    return a ? a->cardParams : 0;
}

models::ClipTextConfig clipLConfig() {
    models::ClipTextConfig c;  // CLIP ViT-L/14 text tower
    c.hiddenSize = 768;
    c.numLayers = 12;
    c.numHeads = 12;
    c.intermediateSize = 3072;
    c.maxPositions = 77;
    c.vocabSize = 49408;
    c.projectionDim = 768;
    c.eosTokenId = 2;
    c.layerNormEps = 1e-5;
    c.hiddenAct = "quick_gelu";
    return c;
}

models::ClipTextConfig clipBigGConfig() {
    models::ClipTextConfig c;  // OpenCLIP ViT-bigG/14 text tower, with projection
    c.hiddenSize = 1280;
    c.numLayers = 32;
    c.numHeads = 20;
    c.intermediateSize = 5120;
    c.maxPositions = 77;
    c.vocabSize = 49408;
    c.projectionDim = 1280;
    c.eosTokenId = 2;
    c.layerNormEps = 1e-5;
    c.hiddenAct = "gelu";
    return c;
}

models::VaeConfig sdxlVaeConfig() {
    models::VaeConfig c;
    c.blockOutChannels = {128, 256, 512, 512};
    c.layersPerBlock = 2;
    c.latentChannels = 4;
    c.normNumGroups = 32;
    c.outChannels = 3;
    c.scalingFactor = 0.13025;
    c.forceUpcast = true;
    c.usePostQuantConv = true;
    c.midBlockAddAttention = true;
    return c;
}

std::shared_ptr<models::Unet> buildRandomUnet(const std::string& arch, at::Device device, at::ScalarType dtype,
                                              std::uint64_t seed) {
    auto cfg = unetConfigOf(arch);
    auto store = io::WeightStore::random("unet", seed);
    store.setTarget(dtype, device);
    auto unet = models::Unet::load(cfg, store);
    store.finish();
    return unet;
}

std::unique_ptr<ModelImpl> buildRandomModel(const RandomModelOptions& o) {
    const bool builtIn = isRandomArchitecture(o.arch);
    if (!builtIn && !io::dirExists(o.arch))
        fail(ErrorKind::InvalidArgument, "unknown random architecture '" + o.arch + "' (use " + archList() +
                                             ", or a model folder whose configs give the architecture)");
    const std::string support = o.supportDir.empty() ? (builtIn ? std::string() : o.arch) : o.supportDir;
    if (support.empty() || !io::dirExists(io::joinPath(support, "tokenizer")) ||
        !io::dirExists(io::joinPath(support, "tokenizer_2")))
        fail(ErrorKind::InvalidArgument,
             "random model: need a folder with tokenizer/ and tokenizer_2/ (e.g. tests/data/fixtures/tiny-koala-700m), "
             "got '" +
                 support + "'");
    if (o.dtype == at::kHalf && !o.device.is_cuda())
        fail(ErrorKind::InvalidArgument, "fp16 compute needs a CUDA device; on the CPU use fp32 or bf16");

    // Text side: the real SDXL encoders (or the folder's), tokenizers from the support folder.
    auto text = std::make_shared<TextStack>();
    text->tokenizer1 = text::ClipTokenizer::load(io::joinPath(support, "tokenizer"));
    text->tokenizer2 = text::ClipTokenizer::load(io::joinPath(support, "tokenizer_2"));
    const at::Device textDevice = o.memory == MemoryMode::Low ? at::Device(at::kCPU) : o.device;
    for (int i = 0; i < 2; ++i) {
        const char* comp = i == 0 ? "text_encoder" : "text_encoder_2";
        models::ClipTextConfig cfg = builtIn ? (i == 0 ? clipLConfig() : clipBigGConfig())
                                             : models::ClipTextConfig::fromConfig(io::Config::load(
                                                   io::joinPath(io::joinPath(o.arch, comp), "config.json")));
        auto store = io::WeightStore::random(comp, o.seed * 16 + 2 + std::uint64_t(i));
        store.setTarget(o.dtype, textDevice);
        auto enc = models::ClipTextEncoder::load(cfg, store, i == 1);
        store.finish();
        (i == 0 ? text->encoder1 : text->encoder2) = enc;
    }

    // VAE in the dtype ModelImpl::fromParts chooses (bf16 on CUDA for half compute, else fp32).
    const at::ScalarType vaeDType =
        toScalarType(resolveVaeDType(o.device.is_cuda() ? Device::Cuda : Device::Cpu, dtypeOf(o.dtype)));
    auto vae = std::make_shared<VaeStack>();
    {
        models::VaeConfig cfg =
            builtIn ? sdxlVaeConfig()
                    : models::VaeConfig::fromConfig(io::Config::load(io::joinPath(o.arch, "vae/config.json")));
        auto store = io::WeightStore::random("vae", o.seed * 16 + 4);
        store.setTarget(vaeDType, o.device);
        vae->decoder = models::VaeDecoder::load(cfg, store);
        store.finish();
    }

    auto unet = buildRandomUnet(o.arch, o.device, o.dtype, o.seed * 16 + 1);

    std::string schedFile = io::joinPath(support, "scheduler/scheduler_config.json");
    if (!io::fileExists(schedFile) && !builtIn) schedFile = io::joinPath(o.arch, "scheduler/scheduler_config.json");
    auto sched = sampling::SchedulerConfig::fromConfig(io::Config::load(schedFile));

    auto m = ModelImpl::fromParts(text, vae, unet, sched, o.device, o.dtype);
    m->memory = o.memory;
    m->folder = builtIn ? std::string() : o.arch;
    m->info.name = "random-" + (builtIn ? o.arch : std::string("custom"));
    m->info.weightDType = dtypeName(o.dtype);
    const std::string index = io::joinPath(support, "model_index.json");
    if (io::fileExists(index))
        m->forceZerosForEmptyPrompt = io::Config::load(index).getBool("force_zeros_for_empty_prompt", true);
    return m;
}

}  // namespace koala
