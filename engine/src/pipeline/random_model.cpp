// Full-size SDXL-family and Stable Diffusion 1.5 / 2.x architectures with random weights: see random_model.h.
#include "pipeline/random_model.h"

#include "core/common.h"
#include "io/model_folder.h"
#include "io/weights.h"
#include "pipeline/boundary.h"

#include <algorithm>

namespace koala {
namespace {

using nlohmann::json;

struct ArchKeys {
    const char* name;
    const char* pipeline;  // "sdxl" (SDXL family) or "sd" (StableDiffusionPipeline)
    int layersPerBlock;
    std::vector<int> transformerLayers;  // SDXL family only
    bool midBlock;
    std::int64_t cardParams;
};

const std::vector<ArchKeys>& archTable() {
    // docs/sdxl-pipeline.md section 9: the keys that differ from SDXL-base, and the model cards' counts. SD 1.5 and
    // SD 2.x (issue 11): runwayml/stable-diffusion-v1-5 and stabilityai/stable-diffusion-2(-1), whose model cards
    // give 859,520,964 and 865,910,724 UNet parameters.
    static const std::vector<ArchKeys> t{
        {"koala-700m", "sdxl", 1, {1, 2, 5}, false, 782822724},
        {"koala-1b", "sdxl", 1, {1, 2, 6}, true, 1161184324},
        {"sdxl-base", "sdxl", 2, {1, 2, 10}, true, 2567463684},
        {"sd15", "sd", 2, {}, true, 859520964},
        {"sd2", "sd", 2, {}, true, 865910724},
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
    if (std::string(a->pipeline) == "sd") {
        // runwayml/stable-diffusion-v1-5 unet/config.json: 1x1-convolution proj_in/proj_out, 8 heads everywhere,
        // CLIP ViT-L/14 context (768), 64x64 latents (512 px).
        json j = {
            {"_class_name", "UNet2DConditionModel"},
            {"act_fn", "silu"},
            {"attention_head_dim", 8},
            {"block_out_channels", {320, 640, 1280, 1280}},
            {"center_input_sample", false},
            {"cross_attention_dim", 768},
            {"down_block_types",
             {"CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"}},
            {"downsample_padding", 1},
            {"flip_sin_to_cos", true},
            {"freq_shift", 0},
            {"in_channels", 4},
            {"layers_per_block", 2},
            {"mid_block_scale_factor", 1},
            {"norm_eps", 1e-5},
            {"norm_num_groups", 32},
            {"out_channels", 4},
            {"sample_size", 64},
            {"up_block_types", {"UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"}},
        };
        if (arch == "sd2") {
            // stabilityai/stable-diffusion-2-1 unet/config.json: heads per block (attention_head_dim), linear
            // projections, OpenCLIP ViT-H context (1024), upcast_attention, 96x96 latents (768 px).
            j["attention_head_dim"] = {5, 10, 20, 20};
            j["cross_attention_dim"] = 1024;
            j["dual_cross_attention"] = false;
            j["use_linear_projection"] = true;
            j["upcast_attention"] = true;
            j["sample_size"] = 96;
        }
        return j;
    }
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

models::ClipTextConfig openClipHConfig() {
    models::ClipTextConfig c;  // stabilityai/stable-diffusion-2-1 text_encoder/config.json: OpenCLIP ViT-H/14 text
    c.hiddenSize = 1024;       // tower, 23 of its 24 layers (the penultimate layer is the conditioning)
    c.numLayers = 23;
    c.numHeads = 16;
    c.intermediateSize = 4096;
    c.maxPositions = 77;
    c.vocabSize = 49408;
    c.projectionDim = 512;
    c.eosTokenId = 2;
    c.layerNormEps = 1e-5;
    c.hiddenAct = "gelu";
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

models::VaeConfig sdVaeConfig() {
    models::VaeConfig c = sdxlVaeConfig();  // the same AutoencoderKL layout, SD's scaling factor
    c.scalingFactor = 0.18215;
    return c;
}

std::string randomPipelineOf(const std::string& arch) {
    if (const ArchKeys* a = findArch(arch)) return a->pipeline;
    return unetConfigOf(arch).additionEmbedType.empty() ? "sd" : "sdxl";
}

std::int64_t unetParameterCountOf(const models::UnetConfig& c) {
    // The tensors Unet::load takes, in its order (models/unet.cpp, models/ops.cpp), counted from their shapes.
    using I = std::int64_t;
    auto conv = [](I in, I out, I k) { return out * in * k * k + out; };
    auto linear = [](I in, I out, bool bias = true) { return in * out + (bias ? out : 0); };
    const I c0 = c.blockOutChannels.at(0);
    const I temb = c.timeEmbedDim > 0 ? c.timeEmbedDim : 4 * c0;
    auto resnet = [&](I in, I out) {
        return 2 * in + conv(in, out, 3) + linear(temb, out) + 2 * out + conv(out, out, 3) +
               (in != out ? conv(in, out, 1) : 0);
    };
    auto attn = [&](I dim, I ctx) { return linear(dim, dim, false) + 2 * linear(ctx, dim, false) + linear(dim, dim); };
    auto transformer = [&](I ch, int depth) {
        // GroupNorm, proj_in and proj_out (a linear layer or a 1x1 convolution: the same count), then per block
        // three LayerNorms, self- and cross-attention and the GEGLU feed-forward.
        I n = 2 * ch + 2 * linear(ch, ch);
        for (int j = 0; j < depth; ++j)
            n += 6 * ch + attn(ch, ch) + attn(ch, c.crossAttentionDim) + linear(ch, 8 * ch) + linear(4 * ch, ch);
        return n;
    };
    const std::size_t n = c.blockOutChannels.size();
    const auto& ch = c.blockOutChannels;
    I params = conv(c.inChannels, c0, c.convInKernel) + linear(c0, temb) + linear(temb, temb);
    if (c.additionEmbedType == "text_time")
        params += linear(c.projectionClassEmbeddingsInputDim, temb) + linear(temb, temb);
    I outCh = c0;
    for (std::size_t i = 0; i < n; ++i) {
        const I inCh = outCh;
        outCh = ch[i];
        const bool cross = c.downBlockTypes[i] == "CrossAttnDownBlock2D";
        for (int l = 0; l < c.layersPerBlock[i]; ++l) {
            params += resnet(l == 0 ? inCh : outCh, outCh);
            if (cross) params += transformer(outCh, c.transformerLayersDown[i][std::size_t(l)]);
        }
        if (i + 1 < n) params += conv(outCh, outCh, 3);
    }
    const I midCh = ch[n - 1];
    if (c.midBlockType == "UNetMidBlock2DCrossAttn")
        params += 2 * resnet(midCh, midCh) + transformer(midCh, c.transformerLayersMid);
    else if (c.midBlockType == "UNetMidBlock2D")
        params += resnet(midCh, midCh);
    outCh = ch[n - 1];
    for (std::size_t i = 0; i < n; ++i) {
        const I prevOut = outCh;
        outCh = ch[n - 1 - i];
        const I inCh = ch[n - 1 - std::min(i + 1, n - 1)];
        const int layers = c.layersPerBlock[n - 1 - i] + 1;
        const bool cross = c.upBlockTypes[i] == "CrossAttnUpBlock2D";
        for (int l = 0; l < layers; ++l) {
            const I skipCh = l == layers - 1 ? inCh : outCh;
            params += resnet((l == 0 ? prevOut : outCh) + skipCh, outCh);
            if (cross) params += transformer(outCh, c.transformerLayersUp[i][std::size_t(l)]);
        }
        if (i + 1 < n) params += conv(outCh, outCh, 3);
    }
    params += 2 * c0 + conv(c0, c.outChannels, c.convOutKernel);
    return params;
}

UnetSummary describeUnet(const std::string& arch) {
    return guarded("describing the UNet", [&] {
        const models::UnetConfig c = unetConfigOf(arch);
        UnetSummary s;
        s.arch = arch;
        s.pipeline = randomPipelineOf(arch);
        s.parameters = unetParameterCountOf(c);
        s.cardParameters = modelCardUnetParameters(arch);
        for (std::size_t i = 0; i < c.blockOutChannels.size(); ++i) {
            int depth = 0;
            if (c.downBlockTypes[i] == "CrossAttnDownBlock2D")
                for (int d : c.transformerLayersDown[i]) depth = std::max(depth, d);
            s.transformerBlocks.push_back(depth);
        }
        if (c.midBlockType == "UNetMidBlock2DCrossAttn") {
            s.midBlock = "cross-attention";
            s.midTransformerBlocks = c.transformerLayersMid;
        } else {
            s.midBlock = c.midBlockType.empty() ? "none" : "resnet";
        }
        int vaeLevels = 4;  // the SD / SDXL AutoencoderKL: 8x
        if (!isRandomArchitecture(arch) && io::fileExists(io::joinPath(arch, "vae/config.json")))
            vaeLevels = int(models::VaeConfig::fromConfig(io::Config::load(io::joinPath(arch, "vae/config.json")))
                                .blockOutChannels.size());
        s.defaultWidth = s.defaultHeight = c.sampleSize * (1 << (std::max(1, vaeLevels) - 1));
        s.crossAttentionDim = c.crossAttentionDim;
        return s;
    });
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
    // StableDiffusionPipeline (SD 1.5 / 2.x): one tokenizer and CLIPTextModel, no pooled embedding or time ids.
    const bool sd = randomPipelineOf(o.arch) == "sd";
    const int encoders = sd ? 1 : 2;
    const std::string support = o.supportDir.empty() ? (builtIn ? std::string() : o.arch) : o.supportDir;
    if (support.empty() || !io::dirExists(io::joinPath(support, "tokenizer")) ||
        (!sd && !io::dirExists(io::joinPath(support, "tokenizer_2"))))
        fail(ErrorKind::InvalidArgument,
             sd ? "random model: need a folder with tokenizer/ (e.g. tests/data/fixtures/tiny-sd2), got '" + support +
                      "'"
                : "random model: need a folder with tokenizer/ and tokenizer_2/ (e.g. "
                  "tests/data/fixtures/tiny-koala-700m), got '" +
                      support + "'");
    if (o.dtype == at::kHalf && !o.device.is_cuda())
        fail(ErrorKind::InvalidArgument, "fp16 compute needs a CUDA device; on the CPU use fp32 or bf16");

    // Text side: the real encoders of the architecture (or the folder's), tokenizers from the support folder.
    auto text = std::make_shared<TextStack>();
    text->tokenizer1 = text::ClipTokenizer::load(io::joinPath(support, "tokenizer"));
    if (!sd) text->tokenizer2 = text::ClipTokenizer::load(io::joinPath(support, "tokenizer_2"));
    const at::Device textDevice = o.memory == MemoryMode::Low ? at::Device(at::kCPU) : o.device;
    for (int i = 0; i < encoders; ++i) {
        const char* comp = i == 0 ? "text_encoder" : "text_encoder_2";
        models::ClipTextConfig cfg;
        if (!builtIn)
            cfg = models::ClipTextConfig::fromConfig(
                io::Config::load(io::joinPath(io::joinPath(o.arch, comp), "config.json")));
        else if (o.arch == "sd2")
            cfg = openClipHConfig();
        else
            cfg = i == 0 ? clipLConfig() : clipBigGConfig();
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
            builtIn ? (sd ? sdVaeConfig() : sdxlVaeConfig())
                    : models::VaeConfig::fromConfig(io::Config::load(io::joinPath(o.arch, "vae/config.json")));
        auto store = io::WeightStore::random("vae", o.seed * 16 + 4);
        store.setTarget(vaeDType, o.device);
        vae->decoder = models::VaeDecoder::load(cfg, store);
        store.finish();
    }

    auto unet = buildRandomUnet(o.arch, o.device, o.dtype, o.seed * 16 + 1);
    const int defaultSize =
        unet->config().sampleSize * (1 << (std::max<int>(1, int(vae->decoder->config().blockOutChannels.size())) - 1));

    std::string schedFile = io::joinPath(support, "scheduler/scheduler_config.json");
    if (!io::fileExists(schedFile) && !builtIn) schedFile = io::joinPath(o.arch, "scheduler/scheduler_config.json");
    auto sched = sampling::SchedulerConfig::fromConfig(io::Config::load(schedFile));
    if (sd) {
        // StableDiffusionPipeline.__init__'s rewrite of an outdated scheduler config, as ModelImpl::load does.
        if (sched.stepsOffsetInFile && sched.stepsOffset != 1) sched.stepsOffset = 1;
        if (sched.clipSampleInFile && sched.clipSample) sched.clipSample = false;
    }

    auto m = ModelImpl::fromParts(text, vae, unet, sched, o.device, o.dtype);
    m->memory = o.memory;
    m->folder = builtIn ? std::string() : o.arch;
    m->info.name = "random-" + (builtIn ? o.arch : std::string("custom"));
    m->info.weightDType = dtypeName(o.dtype);
    m->info.pipeline = sd ? "sd" : "sdxl";
    m->info.defaultWidth = m->info.defaultHeight = defaultSize;
    const std::string index = io::joinPath(support, "model_index.json");
    // StableDiffusionPipeline has no force_zeros_for_empty_prompt: an empty negative is encoded.
    if (sd)
        m->forceZerosForEmptyPrompt = false;
    else if (io::fileExists(index))
        m->forceZerosForEmptyPrompt = io::Config::load(index).getBool("force_zeros_for_empty_prompt", true);
    return m;
}

}  // namespace koala
