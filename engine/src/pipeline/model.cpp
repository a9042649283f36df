// Loading a diffusers SDXL-family folder into a ModelImpl, sharing identical components, and the public
// koala::Model / inspectModel / resolveModelFolder API. LibTorch errors are turned into koala::Error here.
#include "pipeline/model_impl.h"

#include "pipeline/boundary.h"

#include "core/common.h"
#include "io/model_folder.h"
#include "io/weights.h"
#include "text/prompt_syntax.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <new>

namespace fs = std::filesystem;

namespace koala {
namespace {

std::string modelNameOf(const std::string& folder) {
    // .../models--org--name/snapshots/<rev> → "name"; else the folder name.
    fs::path p(folder);
    if (p.parent_path().filename() == "snapshots") {
        std::string repo = p.parent_path().parent_path().filename().string();
        auto pos = repo.rfind("--");
        if (repo.rfind("models--", 0) == 0 && pos != std::string::npos) return repo.substr(pos + 2);
    }
    return p.filename().string();
}

bool sameFileContents(const std::string& a, const std::string& b) {
    std::error_code ec;
    if (fs::equivalent(a, b, ec)) return true;
    if (fs::file_size(a, ec) != fs::file_size(b, ec) || ec) return false;
    std::ifstream fa(a, std::ios::binary), fb(b, std::ios::binary);
    if (!fa || !fb) return false;
    std::vector<char> ba(1 << 20), bb(1 << 20);
    while (fa && fb) {
        fa.read(ba.data(), std::streamsize(ba.size()));
        fb.read(bb.data(), std::streamsize(bb.size()));
        if (fa.gcount() != fb.gcount()) return false;
        if (std::memcmp(ba.data(), bb.data(), std::size_t(fa.gcount())) != 0) return false;
    }
    return true;
}

bool sameFiles(const std::vector<std::string>& a, const std::vector<std::string>& b) {
    if (a.size() != b.size() || a.empty()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (!sameFileContents(a[i], b[i])) return false;
    return true;
}

const char* stDTypeLabel(io::StDType t) {
    switch (t) {
    case io::StDType::F16: return "fp16";
    case io::StDType::BF16: return "bf16";
    case io::StDType::F32: return "fp32";
    default: return io::stDTypeName(t);
    }
}

// A component's weights with LoadOptions::variant resolved for that folder ("auto": io::WeightStore::chooseVariant).
io::WeightStore openWeights(const std::string& dir, const std::string& stem, const std::string& variant, bool half,
                            const std::string& component) {
    return io::WeightStore::openComponent(dir, stem, io::WeightStore::chooseVariant(dir, stem, variant, half),
                                          component);
}

bool isHalf(at::ScalarType t) { return t == at::kHalf || t == at::kBFloat16; }

// diffusers' default size: unet.config.sample_size · vae_scale_factor (2^(len(vae block_out_channels) − 1)).
int defaultSizeOf(const models::UnetConfig& unet, const models::VaeConfig& vae) {
    return unet.sampleSize * (1 << (std::max<int>(1, int(vae.blockOutChannels.size())) - 1));
}

// model_index.json `_class_name`: "sd" (StableDiffusionPipeline: one tokenizer and CLIPTextModel, no pooled
// embedding or time ids) or "sdxl" (StableDiffusionXLPipeline, and folders without a class name); anything else is
// refused by name.
std::string pipelineKindOf(const io::Config& index) {
    const std::string cls = index.getString("_class_name", "StableDiffusionXLPipeline");
    if (cls == "StableDiffusionPipeline") return "sd";
    if (cls == "StableDiffusionXLPipeline") return "sdxl";
    fail(ErrorKind::ModelFormat, index.file() + ": pipeline class '" + cls +
                                     "' is not supported (supported: StableDiffusionPipeline, "
                                     "StableDiffusionXLPipeline)");
}

int encoderCount(const std::string& pipeline) { return pipeline == "sd" ? 1 : 2; }

std::shared_ptr<TextStack> loadText(const std::string& folder, const std::string& variant, at::Device device,
                                    at::ScalarType dtype, const TextStack* shareEncoders, int encoders) {
    auto text = std::make_shared<TextStack>();
    // Tokenizers are cheap and may come in different file formats for the same vocabulary; always load our own.
    text->tokenizer1 = text::ClipTokenizer::load(io::joinPath(folder, "tokenizer"));
    if (encoders == 2) text->tokenizer2 = text::ClipTokenizer::load(io::joinPath(folder, "tokenizer_2"));
    if (shareEncoders) {
        text->encoder1 = shareEncoders->encoder1;
        text->encoder2 = shareEncoders->encoder2;
        text->files = shareEncoders->files;
        return text;
    }
    for (int i = 0; i < encoders; ++i) {
        const std::string comp = i == 0 ? "text_encoder" : "text_encoder_2";
        const std::string dir = io::joinPath(folder, comp);
        auto cfg = io::Config::load(io::joinPath(dir, "config.json"));
        auto store = openWeights(dir, "model", variant, isHalf(dtype), comp);
        store.setTarget(dtype, device);
        auto enc = models::ClipTextEncoder::load(models::ClipTextConfig::fromConfig(cfg), store, i == 1);
        store.finish();
        (i == 0 ? text->encoder1 : text->encoder2) = enc;
        text->files.push_back(cfg.file());
        for (auto& f : store.files()) text->files.push_back(f);
    }
    return text;
}

// The files loadText() records for the encoders (configs + weights), without loading anything.
std::vector<std::string> encoderFilesOf(const std::string& folder, const std::string& variant, bool half,
                                        int encoders) {
    std::vector<std::string> files;
    for (int i = 0; i < encoders; ++i) {
        const char* comp = i == 0 ? "text_encoder" : "text_encoder_2";
        const std::string dir = io::joinPath(folder, comp);
        files.push_back(io::joinPath(dir, "config.json"));
        for (auto& f : openWeights(dir, "model", variant, half, comp).files()) files.push_back(f);
    }
    return files;
}

}  // namespace

at::ScalarType toScalarType(DType d) {
    switch (d) {
    case DType::F16: return at::kHalf;
    case DType::BF16: return at::kBFloat16;
    default: return at::kFloat;
    }
}

DType dtypeOf(at::ScalarType t) { return t == at::kHalf ? DType::F16 : t == at::kBFloat16 ? DType::BF16 : DType::F32; }

const char* dtypeName(at::ScalarType t) { return t == at::kHalf ? "fp16" : t == at::kBFloat16 ? "bf16" : "fp32"; }

std::unique_ptr<ModelImpl> ModelImpl::load(const std::string& path, const LoadOptions& options,
                                           const ModelImpl* shareWith) {
    auto m = std::make_unique<ModelImpl>();
    m->folder = io::resolveModelFolder(path);
    const std::string& folder = m->folder;

    const Device dev = resolveDevice(options.device);
    if (dev == Device::Cuda && !cudaAvailable())
        fail(ErrorKind::InvalidArgument,
             "CUDA was requested but no CUDA device is available in this build/machine; "
             "use --device cpu");
    m->device = dev == Device::Cuda ? at::Device(at::kCUDA, 0) : at::Device(at::kCPU);
    const DType dt = resolveDType(dev, options.dtype);
    if (dt == DType::F16 && dev == Device::Cpu)
        fail(ErrorKind::InvalidArgument, "fp16 compute needs a CUDA device; on the CPU use fp32 or bf16");
    m->dtype = toScalarType(dt);
    m->vaeDType = toScalarType(resolveVaeDType(dev, dt));
    m->memory = options.memory;

    auto index = io::Config::load(io::joinPath(folder, "model_index.json"));
    const std::string pipeline = pipelineKindOf(index);
    const int encoders = encoderCount(pipeline);
    // StableDiffusionPipeline: negative_prompt None encodes "" (there is no force_zeros_for_empty_prompt).
    m->forceZerosForEmptyPrompt = pipeline == "sdxl" && index.getBool("force_zeros_for_empty_prompt", true);
    if (pipeline == "sd") {
        for (const char* comp : {"unet", "vae", "text_encoder", "tokenizer", "scheduler"})
            if (!io::dirExists(io::joinPath(folder, comp)))
                fail(ErrorKind::ModelFormat, folder + ": the '" + comp +
                                                 "' folder is missing (a Stable Diffusion pipeline needs unet, vae, "
                                                 "text_encoder, tokenizer and the scheduler)");
    } else {
        for (const char* comp :
             {"unet", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "scheduler"})
            if (!io::dirExists(io::joinPath(folder, comp)))
                fail(ErrorKind::ModelFormat, folder + ": the '" + comp +
                                                 "' folder is missing (an SDXL-family pipeline "
                                                 "needs unet, vae, both text encoders, both "
                                                 "tokenizers and the scheduler)");
    }

    m->schedulerConfig = sampling::SchedulerConfig::fromConfig(
        io::Config::load(io::joinPath(folder, "scheduler/scheduler_config.json")));
    if (pipeline == "sd") {
        // StableDiffusionPipeline.__init__ rewrites an outdated scheduler config (steps_offset != 1 → 1,
        // clip_sample true → false); schedulers built from it afterwards inherit the written keys.
        auto& sc = m->schedulerConfig;
        if (sc.stepsOffsetInFile && sc.stepsOffset != 1) sc.stepsOffset = 1;
        if (sc.clipSampleInFile && sc.clipSample) sc.clipSample = false;
    }

    // Text encoders in low-memory mode live on the CPU and visit the GPU only to encode.
    const at::Device textDevice = options.memory == MemoryMode::Low ? at::Device(at::kCPU) : m->device;
    const bool shareText =
        shareWith && shareWith->text && shareWith->device == m->device && shareWith->dtype == m->dtype &&
        shareWith->memory == m->memory &&
        sameFiles(shareWith->text->files, encoderFilesOf(folder, options.variant, isHalf(m->dtype), encoders));
    m->text =
        loadText(folder, options.variant, textDevice, m->dtype, shareText ? shareWith->text.get() : nullptr, encoders);
    m->info.sharesTextEncoders = shareText;

    const std::string vaeDir = io::joinPath(folder, "vae");
    auto vaeCfg = io::Config::load(io::joinPath(vaeDir, "config.json"));
    auto vaeStore = openWeights(vaeDir, "diffusion_pytorch_model", options.variant, isHalf(m->dtype), "vae");
    std::vector<std::string> vaeFiles{vaeCfg.file()};
    for (auto& f : vaeStore.files()) vaeFiles.push_back(f);
    if (shareWith && shareWith->vae && shareWith->device == m->device && shareWith->vaeDType == m->vaeDType &&
        sameFiles(shareWith->vae->files, vaeFiles)) {
        m->vae = shareWith->vae;
    } else {
        m->vae = std::make_shared<VaeStack>();
        vaeStore.setTarget(m->vaeDType, m->device);
        m->vae->decoder = models::VaeDecoder::load(models::VaeConfig::fromConfig(vaeCfg), vaeStore);
        vaeStore.finish();
        m->vae->files = vaeFiles;
    }

    const std::string unetDir = io::joinPath(folder, "unet");
    auto unetCfg = models::UnetConfig::fromConfig(io::Config::load(io::joinPath(unetDir, "config.json")));
    if (pipeline == "sd" && !unetCfg.additionEmbedType.empty())
        fail(ErrorKind::ModelFormat, unetDir +
                                         "/config.json: a StableDiffusionPipeline UNet has no "
                                         "addition_embed_type (this one has '" +
                                         unetCfg.additionEmbedType + "')");
    if (pipeline == "sdxl" && unetCfg.additionEmbedType.empty())
        fail(ErrorKind::ModelFormat,
             unetDir + "/config.json: a StableDiffusionXLPipeline UNet needs addition_embed_type 'text_time'");
    auto unetStore = openWeights(unetDir, "diffusion_pytorch_model", options.variant, isHalf(m->dtype), "unet");
    unetStore.setTarget(m->dtype, m->device);
    m->unet = models::Unet::load(unetCfg, unetStore);
    unetStore.finish();

    m->runMutex =
        shareWith && (shareText || m->vae == shareWith->vae) ? shareWith->runMutex : std::make_shared<std::mutex>();
    installCudaFastPath(*m);
    ModelInfo& info = m->info;
    info.path = folder;
    info.name = modelNameOf(folder);
    info.unetShape = models::Unet::shapeNameOf(unetCfg);
    info.unetParameters = unetStore.parameterCount();
    info.weightDType = stDTypeLabel(unetStore.dominantDType());
    info.device = m->device.is_cuda() ? "cuda" : "cpu";
    info.computeDType = dtypeName(m->dtype);
    info.vaeDType = dtypeName(m->vaeDType);
    info.defaultScheduler = toString(m->schedulerConfig.defaultKind());
    info.defaultSpacing = toString(m->schedulerConfig.defaultSpacing());
    info.pipeline = pipeline;
    info.defaultWidth = info.defaultHeight = defaultSizeOf(unetCfg, m->vae->decoder->config());
    return m;
}

std::unique_ptr<ModelImpl> ModelImpl::fromParts(std::shared_ptr<TextStack> text, std::shared_ptr<VaeStack> vae,
                                                std::shared_ptr<models::Unet> unet, sampling::SchedulerConfig sched,
                                                at::Device device, at::ScalarType dtype) {
    auto m = std::make_unique<ModelImpl>();
    m->text = std::move(text);
    m->vae = std::move(vae);
    m->unet = std::move(unet);
    m->schedulerConfig = std::move(sched);
    m->device = device;
    m->dtype = dtype;
    m->vaeDType = toScalarType(resolveVaeDType(device.is_cuda() ? Device::Cuda : Device::Cpu, dtypeOf(dtype)));
    m->runMutex = std::make_shared<std::mutex>();
    m->info.name = "random";
    m->info.unetShape = m->unet->shapeName();
    m->info.unetParameters = m->unet->parameterCount();
    m->info.device = device.is_cuda() ? "cuda" : "cpu";
    m->info.computeDType = dtypeName(dtype);
    m->info.vaeDType = dtypeName(m->vaeDType);
    m->info.defaultScheduler = toString(m->schedulerConfig.defaultKind());
    m->info.defaultSpacing = toString(m->schedulerConfig.defaultSpacing());
    return m;
}

bool cudaAvailable() {
    try {
        return at::hasCUDA();
    } catch (...) {
        return false;
    }
}

Device resolveDevice(Device requested) {
    return resolveDevice(requested, requested == Device::Auto && cudaAvailable());
}

std::string resolveModelFolder(const std::string& path) {
    return guarded("resolving the model folder", [&] { return io::resolveModelFolder(path); });
}

ModelInfo inspectModel(const std::string& path, const std::string& variant) {
    return guarded("reading the model folder", [&] {
        ModelInfo info;
        info.path = io::resolveModelFolder(path);
        info.name = modelNameOf(info.path);
        const std::string unetDir = io::joinPath(info.path, "unet");
        auto cfg = models::UnetConfig::fromConfig(io::Config::load(io::joinPath(unetDir, "config.json")));
        info.unetShape = models::Unet::shapeNameOf(cfg);
        auto store = openWeights(unetDir, "diffusion_pytorch_model", variant, variant == "auto", "unet");
        info.unetParameters = store.parameterCount();
        info.weightDType = stDTypeLabel(store.dominantDType());
        auto sched = sampling::SchedulerConfig::fromConfig(
            io::Config::load(io::joinPath(info.path, "scheduler/scheduler_config.json")));
        info.defaultScheduler = toString(sched.defaultKind());
        info.defaultSpacing = toString(sched.defaultSpacing());
        info.pipeline = pipelineKindOf(io::Config::load(io::joinPath(info.path, "model_index.json")));
        info.defaultWidth = info.defaultHeight = defaultSizeOf(
            cfg, models::VaeConfig::fromConfig(io::Config::load(io::joinPath(info.path, "vae/config.json"))));
        return info;
    });
}

struct PromptTokenizer::Impl {
    std::shared_ptr<text::ClipTokenizer> tokenizer;
};

PromptTokenizer::PromptTokenizer() : m_impl(std::make_unique<Impl>()) {}
PromptTokenizer::~PromptTokenizer() = default;

std::shared_ptr<PromptTokenizer> PromptTokenizer::load(const std::string& modelPath) {
    return guarded("loading the tokenizer", [&] {
        std::shared_ptr<PromptTokenizer> t(new PromptTokenizer());
        t->m_impl->tokenizer = text::ClipTokenizer::load(io::joinPath(io::resolveModelFolder(modelPath), "tokenizer"));
        return t;
    });
}

int PromptTokenizer::count(const std::string& text) const {
    return guarded("tokenizing", [&] { return int(m_impl->tokenizer->encode(text).size()); });
}

// Prompt syntax (issue 10): pipeline/prompt.cpp.
PromptTokenizer::Layout promptLayout(const text::ClipTokenizer& tok, const std::string& text, PromptSyntax syntax);
PromptTokenizer::Layout PromptTokenizer::layout(const std::string& text, PromptSyntax syntax) const {
    return guarded("tokenizing", [&] { return promptLayout(*m_impl->tokenizer, text, syntax); });
}

Model::Model(std::unique_ptr<ModelImpl> impl) : m_impl(std::move(impl)) {}
Model::~Model() = default;

std::shared_ptr<Model> Model::load(const std::string& path, const LoadOptions& options,
                                   std::shared_ptr<Model> shareWith) {
    return guarded("loading the model", [&] {
        auto impl = ModelImpl::load(path, options, shareWith ? shareWith->m_impl.get() : nullptr);
        synchronizeDevice(impl->device);  // the weights are on the device when load() returns
        return std::shared_ptr<Model>(new Model(std::move(impl)));
    });
}

const ModelInfo& Model::info() const { return m_impl->info; }

GenerateResult Model::generate(const GenerateRequest& request, const Callbacks& callbacks, CancelToken* cancel) {
    return guarded("generating", [&] {
        // Stable Diffusion 1.5 / 2.x (issue 11): LoRA merging is written for the two SDXL text encoders; refuse
        // clearly rather than merge half of a LoRA.
        if (m_impl->info.pipeline == "sd") {
            std::vector<text::LoraTag> tags;
            if (request.promptSyntax == PromptSyntax::A1111) {
                text::extractLoraTags(request.prompt, &tags);
                if (request.prompt2) text::extractLoraTags(*request.prompt2, &tags);
            }
            if (!request.loras.empty() || !tags.empty())
                fail(ErrorKind::InvalidArgument, "LoRA is not supported yet for Stable Diffusion 1.5 / 2.x models");
        }
        auto loras = m_impl->applyLoras(request);  // LoRA (issue 10): merge / take off before the run
        GenerateResult r = m_impl->generate(request, callbacks, cancel);
        r.loras = std::move(loras);
        return r;
    });
}

int Model::countTokens(const std::string& text) const {
    return guarded("tokenizing", [&] { return int(m_impl->text->tokenizer1->encode(text).size()); });
}

}  // namespace koala
