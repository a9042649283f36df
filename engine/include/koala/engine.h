// KOALA engine: SDXL-family text-to-image (KOALA-700M, KOALA-1B, SDXL-base, SSD-1B, Vega) on LibTorch.
//
// This is the only public header of the engine. It has no LibTorch and no Qt types: requests, progress,
// previews and images cross the boundary as plain structs and byte buffers.
//
// Usage:
//   koala::LoadOptions lo = koala::defaultLoadOptions();          // device auto, dtype auto
//   auto model = koala::Model::load("/path/to/koala-700m", lo);     // throws koala::Error
//   koala::GenerateRequest req = koala::defaultRequest();
//   req.prompt = "a koala astronaut";  req.seed = 42;
//   koala::Callbacks cb;  cb.progress = [](const koala::Progress& p) { ... };
//   koala::CancelToken cancel;
//   koala::GenerateResult r = model->generate(req, cb, &cancel); // throws koala::Error
//
// Threading contract:
//   - A Model is loaded once and is immutable afterwards; generate() may be called from any thread, but calls on
//     one Model (and on Models that share components with it) must not overlap: one generation at a time per
//     Model family. The application runs them on a single worker thread.
//   - Callbacks run synchronously on the thread that called generate(), between steps. They must be cheap and must
//     not call back into the Model.
//   - CancelToken::cancel() may be called from any thread at any time; generate() polls it before every step and
//     at every stage boundary and then throws koala::Error with kind Cancelled.
//   - Errors cross the boundary only as koala::Error; LibTorch exceptions never escape.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace koala {

// ---- enums with string round-trips (the same names in the CLI, presets, PNG metadata and the UI) ----------------
enum class Device { Auto, Cpu, Cuda };
enum class DType { Auto, F32, F16, BF16 };
// Default = whatever the model's scheduler_config.json says (class and Karras flag).
enum class SchedulerKind { Default, Euler, EulerKarras, EulerAncestral, DpmPP2M, DpmPP2MKarras, Ddim, Pndm };
// Default = the model's scheduler_config.json `timestep_spacing`.
enum class TimestepSpacing { Default, Leading, Trailing, Linspace };
enum class MemoryMode { Default, Low };

const char* toString(Device v);
const char* toString(DType v);
const char* toString(SchedulerKind v);  // "euler", "euler_karras", "euler_a", "dpmpp_2m", "dpmpp_2m_karras", "ddim",
                                        // "pndm" (PLMS)
const char* toString(TimestepSpacing v);
const char* toString(MemoryMode v);
// Return false (and leave `out` untouched) for an unknown name. Accept the names toString() gives
// ("auto"/"default" included) and the common aliases ("fp32"/"float32", "cuda"/"gpu", ...).
bool fromString(std::string_view s, Device& out);
bool fromString(std::string_view s, DType& out);
bool fromString(std::string_view s, SchedulerKind& out);
bool fromString(std::string_view s, TimestepSpacing& out);
bool fromString(std::string_view s, MemoryMode& out);
// All concrete values (no Default/Auto), in display order, for combo boxes and help texts.
std::vector<SchedulerKind> allSchedulers();

// ---- errors ------------------------------------------------------------------------------------------------------
enum class ErrorKind {
    InvalidArgument,  // a request that cannot be run: size not a multiple of 8, steps < 1, ...
    ModelFormat,      // missing/corrupt model folder, missing tensor, wrong shape, unsupported config value
    Io,               // a file that cannot be read or written
    OutOfMemory,      // the device ran out of memory
    Cancelled,        // CancelToken was set
    Internal          // anything else (a LibTorch error we did not expect)
};
const char* toString(ErrorKind k);

// One exception type for everything that leaves the engine. what() is one line a user can act on: it names the
// file, tensor or config key concerned.
class Error : public std::runtime_error {
public:
    Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), m_kind(kind) {}
    ErrorKind kind() const noexcept { return m_kind; }

private:
    ErrorKind m_kind;
};

// ---- cancellation ------------------------------------------------------------------------------------------------
class CancelToken {
public:
    void cancel() noexcept { m_flag.store(true, std::memory_order_relaxed); }
    void reset() noexcept { m_flag.store(false, std::memory_order_relaxed); }
    bool cancelled() const noexcept { return m_flag.load(std::memory_order_relaxed); }

private:
    std::atomic<bool> m_flag{false};
};

// ---- plain data --------------------------------------------------------------------------------------------------
struct Image {
    int width = 0;
    int height = 0;
    std::vector<std::uint8_t> rgb;  // width*height*3, row-major, 8-bit RGB
};

// A float32 tensor copied out of the engine (latents for --save-latents and the fixture tests).
struct FloatTensor {
    std::vector<std::int64_t> shape;
    std::vector<float> data;
};

// ---- the one table of limits and defaults --------------------------------------------------------------------
// Every range a request, a preset, a spin box, koala-cli or koala-bench accepts comes from here; nothing else
// writes these numbers down. A seed is any uint64 (torch's CPU generator takes the full range).
struct Limits {
    int minSteps = 1, maxSteps = 1000, defaultSteps = 25;
    double minGuidance = 0.0, maxGuidance = 30.0, defaultGuidance = 5.0;  // <= 1 turns guidance off
    double minGuidanceRescale = 0.0, maxGuidanceRescale = 1.0, defaultGuidanceRescale = 0.0;
    int minSize = 64, maxSize = 4096, sizeMultiple = 8, defaultSize = 1024;
    int minImages = 1, maxImages = 64, defaultImages = 1;
    std::uint64_t minSeed = 0, maxSeed = UINT64_MAX;
    // ---- img2img / inpainting: strength in (0, max]; defaults are diffusers' (img2img 0.3, inpainting 0.9999).
    // Image requests accept sizes from minImageSize (diffusers has no 64-pixel minimum; the image decides the size).
    double maxStrength = 1.0, defaultImg2ImgStrength = 0.3, defaultInpaintStrength = 0.9999;
    int minImageSize = 8, maxMaskBlur = 256;
};
constexpr Limits kLimits{};
// The random-seed rule: a seed drawn from the OS entropy source in 0..2^32-1, as AUTOMATIC1111 draws them (short
// enough to read and type; any uint64 is accepted when given).
std::uint64_t randomSeed();
// Parses a seed typed or passed by a person: decimal digits only (surrounding spaces allowed), 0..2^64-1. Returns
// nothing for a negative number, one beyond 2^64-1, an empty string or anything that is not digits.
std::optional<std::uint64_t> parseSeed(std::string_view text);
// Seeds of a run of images (the studio's job: seed, seed+1, ..., one per image) never wrap past kLimits.maxSeed:
// seedInRun gives FIRST + INDEX, or nothing when that is beyond the range; seedRunFits says whether all COUNT seeds
// from FIRST are in range (a run of 0 or 1 always is).
std::optional<std::uint64_t> seedInRun(std::uint64_t first, std::uint64_t index);
bool seedRunFits(std::uint64_t first, std::uint64_t count);
// Whether a width or height is one the engine runs (a multiple of kLimits.sizeMultiple within the range).
bool validSize(int pixels);

struct LoadOptions {
    Device device = Device::Auto;  // Auto: CUDA when available, else CPU
    DType dtype = DType::Auto;     // Auto: fp16 on CUDA, fp32 on CPU
    // "" = plain weights; "fp16" = *.fp16.safetensors (an error when absent); "auto" = the fp16 files when the
    // folder has them and the load is in half precision (fp16/bf16), else the plain ones.
    std::string variant;
    MemoryMode memory = MemoryMode::Default;
};
LoadOptions defaultLoadOptions();

// ---- prompt syntax and LoRA (issue 10) ----------------------------------------------------------------------------
// A1111: AUTOMATIC1111's attention syntax ((x), [x], (x:1.3), \( escapes), BREAK, 75-token chunks (prompts longer
// than 75 tokens are encoded in several 77-token chunks), the "Original" emphasis, `<lora:NAME:WEIGHT>` tags.
// Plain: the literal text cut at 77 tokens, as diffusers. Both give the same embedding for a prompt of at most 75
// tokens without brackets, BREAK, backslashes or tags.
enum class PromptSyntax { A1111, Plain };
const char* toString(PromptSyntax v);  // "a1111", "plain"
bool fromString(std::string_view s, PromptSyntax& out);

// A LoRA to merge for one request: a file (`path`), or a name looked up in the LoRA folders (file stem, without
// .safetensors). `weight` scales it (1 = as trained; negative allowed).
struct LoraRequest {
    std::string path;
    std::string name;
    double weight = 1.0;
};

struct GenerateRequest {
    std::string prompt;
    std::optional<std::string> prompt2;    // for text_encoder_2; absent = prompt
    std::optional<std::string> negative;   // absent = no negative prompt (zeros); "" = encode ""
    std::optional<std::string> negative2;  // absent = negative
    std::uint64_t seed = 0;
    int steps = kLimits.defaultSteps;
    float guidance = float(kLimits.defaultGuidance);  // <= 1 turns classifier-free guidance off
    float guidanceRescale = 0.0f;
    SchedulerKind scheduler = SchedulerKind::Default;
    TimestepSpacing spacing = TimestepSpacing::Default;
    int width = kLimits.defaultSize;  // multiples of 8
    int height = kLimits.defaultSize;
    int numImages = kLimits.defaultImages;  // images per prompt (batch)
    bool previews = true;                   // compute Callbacks::preview images
    bool keepLatents = false;               // fill GenerateResult::initialNoise / finalLatents

    // ---- img2img / inpainting (diffusers' StableDiffusionXLImg2ImgPipeline / StableDiffusionXLInpaintPipeline) ---
    // With initImage and no mask: img2img; the output takes the image's size rounded down to multiples of 8 (the
    // image LANCZOS-resized to it), width/height are ignored. With a mask as well: inpainting with the 4-channel
    // UNet; the output is width x height and image and mask are LANCZOS-resized to it. The mask is grey (an RGB
    // mask is converted as PIL's convert("L")), white = repaint, binarized at 0.5 after the optional blur.
    std::optional<Image> initImage;
    std::optional<Image> mask;
    std::optional<double> strength;  // (0, 1]; absent = kLimits.defaultImg2ImgStrength / defaultInpaintStrength
    int maskBlur = 0;  // PIL GaussianBlur radius applied to the mask first (diffusers' mask_processor.blur)

    // ---- prompt syntax and LoRA (issue 10) ----
    PromptSyntax promptSyntax = PromptSyntax::A1111;
    std::vector<LoraRequest> loras;        // merged in addition to the prompt's <lora:...> tags (A1111 syntax)
    std::vector<std::string> loraFolders;  // where names are looked up, before defaultLoraFolder()

    // ---- Stable Diffusion 1.5 / 2.x (issue 11): diffusers' clip_skip (0 = last_hidden_state; c ≥ 1 = the
    // final-layer-normed hidden_states[-(c+1)], for the prompt only, as diffusers; A1111's "clip skip c+1").
    // Ignored by SDXL-family models.
    int clipSkip = 0;
};
// The one place that fills the defaults.
GenerateRequest defaultRequest();
// "prompt=..., seed=..., steps=..." for logs.
std::string toLogString(const GenerateRequest& r);
// Throws Error(InvalidArgument) naming the field when a request cannot be run.
void validate(const GenerateRequest& r);

struct Progress {
    int step = 0;  // 1-based step just finished
    int total = 0;
    double elapsedSeconds = 0;  // since the denoising loop started
    double itPerSecond = 0;
};

struct Callbacks {
    std::function<void(const Progress&)> progress;
    // Cheap latent-to-RGB preview after each step (one image per batch item, latent resolution ×1).
    std::function<void(int step, const std::vector<Image>&)> preview;
    // Latents after each step (float32 copy); only for tests and tools, costs a device-to-host copy.
    std::function<void(int step, const FloatTensor&)> latents;
};

struct Timings {
    double loadSeconds = 0;         // filled by the caller that loaded the model, if it wants
    double encodeSeconds = 0;       // tokenization + text encoders
    double denoiseSeconds = 0;      // the whole scheduler loop
    double stepMedianSeconds = 0;   // median UNet step (including guidance and the scheduler update)
    double previewSeconds = 0;      // total spent on previews
    double decodeSeconds = 0;       // VAE decode + conversion to 8 bits
    double encodeImageSeconds = 0;  // img2img / inpainting: preprocessing + VAE encoder (+ its first-use load)
    double totalSeconds = 0;
    std::int64_t peakDeviceBytes = 0;  // peak GPU memory allocated during the run (0 on CPU)
};

struct GenerateResult {
    std::vector<Image> images;
    FloatTensor initialNoise;  // only with keepLatents
    FloatTensor finalLatents;  // only with keepLatents
    // img2img / inpainting, only with keepLatents: scaling_factor · the sampled encoder latents, and the ε added to
    // them (initialNoise holds the same ε).
    FloatTensor imageLatents;
    FloatTensor addedNoise;
    Timings timings;
    std::string schedulerName;  // the scheduler actually used (resolved from Default)
    std::string spacingName;

    // ---- LoRA (issue 10) ----
    struct AppliedLora {
        std::string name;  // file stem
        std::string path;
        double weight = 1.0;
        std::string shortHash;                                // AUTOMATIC1111's short hash (12 hex digits)
        bool fromPrompt = false;                              // a <lora:...> tag of the prompt
        int appliedKeys = 0, totalKeys = 0, missingKeys = 0;  // modules merged / in the file / without a target
        std::string report;                                   // "applied N of M keys (K without a target)"
    };
    std::vector<AppliedLora> loras;
};

struct ModelInfo {
    std::string path;       // the resolved model folder
    std::string name;       // folder or repo name ("koala-700m-llava-cap")
    std::string unetShape;  // "koala-700m", "koala-1b", "sdxl-base", "ssd-1b", "vega" or "custom"
    std::int64_t unetParameters = 0;
    std::string weightDType;       // dtype of the UNet weights on disk ("fp16", "fp32", "bf16")
    std::string device;            // "cpu", "cuda"
    std::string computeDType;      // "fp32", "fp16", "bf16"
    std::string vaeDType;          // the VAE's compute dtype (resolveVaeDType)
    std::string defaultScheduler;  // toString(SchedulerKind) of the scheduler_config.json
    std::string defaultSpacing;
    bool sharesTextEncoders = false;  // text encoders / VAE shared with another loaded Model
    // ---- Stable Diffusion 1.5 / 2.x (issue 11)
    std::string pipeline = "sdxl";  // model_index.json: "sd" (StableDiffusionPipeline) or "sdxl"
    int defaultWidth = 1024;        // unet sample_size · vae scale factor (diffusers' default size)
    int defaultHeight = 1024;
};

// Resolve a user-supplied path to a diffusers model folder: the folder itself, a Hugging Face cache repo folder
// (models--org--name, newest snapshot), or a snapshot folder. Throws Error(ModelFormat) when it is not a model.
std::string resolveModelFolder(const std::string& path);

// Cheap description of a model folder without loading weights (reads configs and safetensors headers only).
ModelInfo inspectModel(const std::string& path, const std::string& variant = "");

// Whether this build can use CUDA and a device is present.
bool cudaAvailable();

// The rules Model::load applies to LoadOptions: Auto → CUDA when available, else the CPU (an explicit choice is
// returned as it is); a dtype of Auto → fp16 on CUDA, fp32 on the CPU.
Device resolveDevice(Device requested);
// The same rule with "is CUDA present" given (the app's summary of another machine, tests).
Device resolveDevice(Device requested, bool cudaPresent);
DType resolveDType(Device resolvedDevice, DType requested);
// The VAE's compute dtype for a load: bf16 on CUDA when the rest runs in half precision (fp32 retry on non-finite
// output), else fp32 (SDXL's VAE overflows in fp16, its config's force_upcast).
DType resolveVaeDType(Device resolvedDevice, DType resolvedDType);

// What this binary was built against, for --version, the About box and bug reports.
struct BuildInfo {
    std::string engineVersion;  // "0.1.0"
    std::string torchVersion;   // LibTorch's version at configure time: "1.13.0", "2.11.0"
    std::string torchSource;    // "Debian" (libtorch-dev), "PyPI" (PyTorch's wheel) or "custom"
    bool cudaCompiled = false;  // the CUDA paths are built and libtorch_cuda is linked
    std::string cudaVersion;    // the CUDA toolkit the build used ("13.0"); "" without CUDA
};
BuildInfo buildInfo();
// One line: "LibTorch 2.11.0+cu130 (PyPI), CUDA 13.0 compiled in" or "LibTorch 1.13.0 (Debian), CPU only".
std::string describeBuild();

// The device Device::Auto resolves to on this machine.
struct DeviceInfo {
    Device device = Device::Cpu;        // Cpu or Cuda
    std::string name;                   // "NVIDIA H200"; "CPU" for the CPU
    std::int64_t totalMemoryBytes = 0;  // GPU memory (0 on the CPU)
    int count = 0;                      // CUDA devices visible (0 on the CPU)
};
DeviceInfo defaultDevice();
// "CUDA: NVIDIA H200" or "CPU".
std::string describeDevice(const DeviceInfo& d);

class ModelImpl;
struct ModelAccess;  // engine-internal

// The first tokenizer of a model folder, loaded alone (tens of milliseconds, no weights), for the prompt editors'
// 77-token counter. Thread-safe.
class PromptTokenizer {
public:
    static std::shared_ptr<PromptTokenizer> load(const std::string& modelPath);  // throws Error(ModelFormat)
    ~PromptTokenizer();
    // Tokens the text takes, without the start and end tokens (77 - 2 = 75 fit).
    int count(const std::string& text) const;
    // ---- prompt syntax (issue 10) ----
    // Under a syntax: tokens (A1111: 75 per full chunk plus the last chunk's, as AUTOMATIC1111's counter), chunks
    // and the byte offset in `text` where each chunk starts (BREAK and the comma back-off included); Plain: one
    // chunk, tokens as count(). <lora:...> tags count for nothing.
    struct Layout {
        int tokens = 0;
        int chunks = 1;
        std::vector<std::size_t> chunkStarts{0};
    };
    Layout layout(const std::string& text, PromptSyntax syntax = PromptSyntax::A1111) const;

private:
    PromptTokenizer();
    struct Impl;
    std::unique_ptr<Impl> m_impl;
};

// Loaded weights: tokenizers, both text encoders, the UNet, the VAE and the scheduler config.
class Model {
public:
    // Loads `path` (see resolveModelFolder). With `shareWith`, text encoders, tokenizers and the VAE are taken from
    // that model instead of being loaded again when their weights are identical (same files or same bytes), so a
    // KOALA-700M / KOALA-1B comparison holds one copy of them.
    static std::shared_ptr<Model> load(const std::string& path, const LoadOptions& options,
                                       std::shared_ptr<Model> shareWith = nullptr);
    ~Model();

    const ModelInfo& info() const;
    GenerateResult generate(const GenerateRequest& request, const Callbacks& callbacks = {},
                            CancelToken* cancel = nullptr);
    // Number of tokens (without start/end) the prompt takes in the first tokenizer, for the 77-token counter.
    int countTokens(const std::string& text) const;

private:
    friend struct ModelAccess;
    explicit Model(std::unique_ptr<ModelImpl> impl);
    std::unique_ptr<ModelImpl> m_impl;
};

// ---- helpers shared by the CLI and the application ---------------------------------------------------------------
// A fixed linear latent-to-RGB map (SDXL factors): latents [4,h,w] (float32, channel-major) → RGB8 h×w.
Image latentPreview(const float* latents, int height, int width);

// Write a PNG with tEXt chunks (key, value) atomically (temporary file + rename). Throws Error(Io).
void writePng(const std::string& path, const Image& image,
              const std::vector<std::pair<std::string, std::string>>& text = {});
// An encoded PNG (from any encoder: the studio's QImageWriter) with text chunks (key, value) inserted after IHDR, by
// the rule writePng uses: tEXt for printable ASCII, iTXt (UTF-8) otherwise. Throws Error(InvalidArgument) when `png`
// does not start with a PNG signature and IHDR.
std::string addPngText(const std::string& png, const std::vector<std::pair<std::string, std::string>>& text);
// Read a PNG's tEXt/zTXt/iTXt chunks (values in UTF-8; compressed text inflated up to 64 MiB) without reading its
// pixels, and (when asked) the size its IHDR states (0 x 0 when the first chunk is not a valid IHDR). Returns false
// when the file cannot be opened or is not a PNG. Nothing is allocated from a length the file claims beyond what
// it holds (a text chunk's length is checked against 64 MiB and read only as far as the file goes).
bool readPngText(const std::string& path, std::vector<std::pair<std::string, std::string>>& text, int* width = nullptr,
                 int* height = nullptr);

// ---- image metadata: the one schema of koala-cli's and the studio's PNGs (engine/src/core/metadata.cpp) --------
// Two text chunks: "parameters", AUTOMATIC1111's text (read by most SD tools and sites), and "koala", JSON:
//   {"version": 1, "generator": "koala-cli", "params": {"prompt", "negative_prompt" (null = none), "seed" (a number,
//    or a decimal string above 2^53), "steps", "guidance", "guidance_rescale", "scheduler", "spacing", "width",
//    "height", "count", "model" (folder), "model_name"}, ...writer-specific keys}
// Readers take "koala" when its version is one they know and its params parse, and otherwise fall back to
// "parameters".
constexpr int kMetadataVersion = 1;

struct ImageMetadata {
    std::string prompt;
    std::optional<std::string> negative;  // absent = no negative prompt
    std::optional<std::uint64_t> seed;    // absent = unknown (or random, in a request)
    int steps = kLimits.defaultSteps;
    double guidance = kLimits.defaultGuidance;
    double guidanceRescale = 0.0;
    std::string scheduler = "default";  // toString(SchedulerKind): the scheduler actually used when known
    std::string spacing = "default";
    int width = kLimits.defaultSize;
    int height = kLimits.defaultSize;
    int count = 1;
    std::string modelPath;  // model folder, when known
    std::string modelName;  // "koala-700m-llava-cap"
    std::string generator;  // "koala-cli", "KOALA Studio", ...
    // ---- img2img / inpainting (absent / empty / 0 for text-to-image); A1111: "Denoising strength: 0.75",
    // "Mask blur: 4". The koala chunk's params gain "strength", "init_image", "init_image_sha256" (first 10 hex
    // digits), "mask_image", "mask_image_sha256", "mask_blur".
    std::optional<double> strength;
    std::string initImage, initImageHash;  // file name (no folder), short sha256
    std::string maskImage, maskImageHash;
    int maskBlur = 0;

    // ---- prompt syntax and LoRA (issue 10) ----
    // "a1111" or "plain"; koala chunks written before the field existed read as "plain" (the engine had no other).
    std::string promptSyntax = "a1111";
    struct Lora {
        std::string name;
        double weight = 1.0;
        std::string hash;         // A1111 short hash; "" when unknown
        bool fromPrompt = false;  // a <lora:NAME:WEIGHT> tag of the prompt (then the prompt restores it)
    };
    // koala params: "prompt_syntax", "loras": [{"name", "weight", "hash", "from_prompt"}]; A1111: `Lora hashes:
    // "name: hash, ..."` (weights from the prompt's tags, 1 for a LoRA without a tag).
    std::vector<Lora> loras;
};

// AUTOMATIC1111's sampler and schedule type for one of our scheduler names ({"", ""} for "default"/unknown), and
// back ("" when unknown; the older combined "DPM++ 2M Karras" form is accepted).
std::pair<std::string, std::string> a1111SamplerOf(const std::string& scheduler);
std::string schedulerFromA1111(const std::string& sampler, const std::string& scheduleType = "");

// AUTOMATIC1111's "parameters" text, written and parsed here only:
//   prompt\nNegative prompt: ...\nSteps: 25, Sampler: Euler, Schedule type: Karras, CFG scale: 5, Seed: 42, ...
// parseA1111Parameters returns nothing when the text has no recognisable parameter line.
std::string toA1111Parameters(const ImageMetadata& m);
std::optional<ImageMetadata> parseA1111Parameters(const std::string& text);

// The "params" object (JSON text) and the whole "koala" chunk; `extraJson` (a JSON object) adds writer-specific
// top-level keys. parseKoalaMetadata returns nothing for damaged JSON, an unknown version or missing params.
std::string metadataParamsJson(const ImageMetadata& m);
std::string toKoalaMetadata(const ImageMetadata& m, const std::string& extraJson = "{}");
std::optional<ImageMetadata> parseKoalaMetadata(const std::string& json);
// Both chunks, ready for writePng.
std::vector<std::pair<std::string, std::string>> metadataTextChunks(const ImageMetadata& m,
                                                                    const std::string& extraJson = "{}");

enum class MetadataSource { None, Koala, A1111, ComfyUI };
const char* toString(MetadataSource s);  // "none", "koala", "a1111", "comfyui"
struct MetadataReadResult {
    MetadataSource source = MetadataSource::None;
    ImageMetadata metadata;  // filled for Koala and A1111
    std::string note;        // why a chunk was not used, or what a ComfyUI PNG holds
    std::string koalaJson;   // the raw "koala" chunk when it was used (writer-specific keys)
};
// Reads a PNG's metadata as described above; a ComfyUI PNG ("prompt"/"workflow" chunks, no parameters) is named
// as such. Throws Error(Io) when the file cannot be read as a PNG.
MetadataReadResult readImageMetadata(const std::string& pngPath);
// Classifies already-read text chunks the same way (for callers that read the PNG themselves).
MetadataReadResult interpretMetadata(const std::vector<std::pair<std::string, std::string>>& text);

// ---- img2img / inpainting: image files (engine/src/core/image_io.cpp) ------------------------------------------
// Reads a PNG or JPEG (libpng / libjpeg-turbo; 8 or 16 bits, grey, grey+alpha, RGB, RGBA, palette) as 8-bit RGB
// (16-bit samples keep their high byte, as PIL does). Channel Alpha returns the alpha channel as a grey image
// (R=G=B=alpha; 255 where the file has none), for a mask drawn as transparency. Throws Error(Io) naming the file
// when it cannot be read, is empty, or the build has no decoder for its format.
enum class ImageChannel { Rgb, Alpha };
Image readImage(const std::string& path, ImageChannel channel = ImageChannel::Rgb);
// Which formats this build decodes: "png, jpeg", "png", ... ("" = none).
std::string imageFormatsSupported();
// sha256 of a file as 64 hex digits. Throws Error(Io).
std::string fileSha256(const std::string& path);
// PIL's Image.resize(..., LANCZOS) on 8-bit RGB, bit for bit (what diffusers' image processor does).
Image resizeLanczos(const Image& image, int width, int height);
// The denoising steps an image request runs: min(int(steps·strength), steps) (0 = none; refused by validate()).
int img2imgSteps(int steps, double strength);

// ---- LoRA files (issue 10) ----------------------------------------------------------------------------------------
// $XDG_DATA_HOME/koala-studio/loras, else ~/.local/share/koala-studio/loras; it may not exist.
std::string defaultLoraFolder();
struct LoraFileInfo {
    std::string path;
    std::string name;       // file stem: what <lora:NAME> refers to
    std::string format;     // "kohya", "peft" or "" (not recognised; it will be refused when used)
    std::string shortHash;  // AUTOMATIC1111's short hash (first 12 hex of sha256 of the data after the header)
    std::vector<std::string> triggerWords;  // modelspec.trigger_phrase, else ss_tag_frequency's top tags
    std::int64_t bytes = 0;
};
// *.safetensors directly in each folder (missing folders are skipped), sorted by name; a name found in an earlier
// folder hides later ones. `hashes` false skips the sha256 (fast listing).
std::vector<LoraFileInfo> listLoraFiles(const std::vector<std::string>& folders, bool hashes = true);
LoraFileInfo inspectLoraFile(const std::string& path, bool hash = true);  // throws Error(Io/ModelFormat)
// The file for a <lora:NAME> tag: NAME.safetensors in `folders`, then defaultLoraFolder(); "" when absent.
std::string findLoraFile(const std::string& name, const std::vector<std::string>& folders);

// Write float32 tensors as safetensors atomically. Throws Error(Io).
void writeSafetensors(const std::string& path, const std::vector<std::pair<std::string, FloatTensor>>& tensors);

}  // namespace koala
