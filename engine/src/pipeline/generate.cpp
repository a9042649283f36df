// One text-to-image run, as diffusers' StableDiffusionXLPipeline.__call__ computes it (see docs: sdxl-pipeline.md
// sections 3 and 7). The seeded noise is drawn on the CPU in the UNet's dtype, as diffusers' randn_tensor draws it
// (float16 and bfloat16 have their own CPU streams), so a seed gives diffusers' noise on every device and dtype.
// Latents stay float32 between steps whatever the UNet dtype (diffusers rounds them to the UNet dtype after each
// step; ours are at least as precise — docs/sdxl-pipeline.md, half precision).
#include "pipeline/model_impl.h"

#include "core/common.h"
#include "core/image_io.h"
#include "pipeline/img2img.h"
#include "sampling/noise.h"

#include <c10/core/GradMode.h>
#include <algorithm>
#include <chrono>
#include <cmath>

namespace koala {
namespace {

using Clock = std::chrono::steady_clock;
double secondsSince(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

void checkCancel(CancelToken* cancel) {
    if (cancel && cancel->cancelled()) fail(ErrorKind::Cancelled, "generation cancelled");
}

}  // namespace

FloatTensor toFloatTensor(const at::Tensor& t) {
    auto c = t.detach().to(at::kCPU).to(at::kFloat).contiguous();
    FloatTensor out;
    out.shape.assign(c.sizes().begin(), c.sizes().end());
    out.data.assign(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
    return out;
}

std::vector<Image> toImages(const at::Tensor& images01) {
    // (x·255).round() rounds half to even, as numpy does in VaeImageProcessor.numpy_to_pil.
    auto u8 = images01.detach()
                  .to(at::kCPU)
                  .to(at::kFloat)
                  .mul(255.0)
                  .round()
                  .clamp(0, 255)
                  .to(at::kByte)
                  .permute({0, 2, 3, 1})
                  .contiguous();
    std::vector<Image> out;
    for (std::int64_t b = 0; b < u8.size(0); ++b) {
        Image img;
        img.height = int(u8.size(1));
        img.width = int(u8.size(2));
        auto p = u8[b].data_ptr<std::uint8_t>();
        img.rgb.assign(p, p + std::size_t(img.width) * img.height * 3);
        out.push_back(std::move(img));
    }
    return out;
}

at::Tensor ModelImpl::decodeLatents(const at::Tensor& latents) {
    const auto& dec = *vae->decoder;
    const double sf = dec.config().scalingFactor;
    const int tile = memory == MemoryMode::Low ? 64 : 0;
    auto z = (latents.to(at::kFloat) / sf);
    auto x = dec.decode(z.to(dec.dtype()), tile);
    if (!at::isfinite(x).all().item<bool>()) {
        if (dec.dtype() == at::kFloat)
            fail(ErrorKind::Internal, "the VAE produced non-finite values (NaN/Inf) even in fp32");
        // A half-precision VAE that overflowed: decode again in fp32 (the force_upcast rule, applied lazily).
        // On a copy: the VAE may be shared with another Model and a loaded Model is immutable.
        x = dec.converted(dec.device(), at::kFloat)->decode(z, tile);
        if (!at::isfinite(x).all().item<bool>())
            fail(ErrorKind::Internal, "the VAE produced non-finite values (NaN/Inf) even in fp32");
    }
    return (x.to(at::kFloat) * 0.5 + 0.5).clamp(0, 1);
}

GenerateResult ModelImpl::generate(const GenerateRequest& r, const Callbacks& cb, CancelToken* cancel) {
    validate(r);
    std::lock_guard<std::mutex> lock(*runMutex);
    c10::NoGradGuard noGrad;
    const auto tStart = Clock::now();
    resetPeakMemory(device);
    GenerateResult result;
    checkCancel(cancel);

    // Classifier-free guidance as diffusers decides it: guidance_scale > 1 and no time_cond_proj_dim.
    const bool cfg = r.guidance > 1.0f;
    const int n = r.numImages;
    const auto& ucfg = unet->config();
    // ---- img2img / inpainting: the output size comes from the image (img2img) or the request (inpainting).
    const bool withImage = r.initImage.has_value();
    const bool inpaint = withImage && r.mask.has_value();
    int width = r.width, height = r.height;
    if (withImage) imageio::imageRequestSize(r, width, height);

    // 1. Prompt encoding.
    auto tEnc = Clock::now();
    PromptEmbeds pe = encodePrompt(r, cfg);
    auto repeat = [n](const at::Tensor& x) {
        std::vector<std::int64_t> reps(std::size_t(x.dim()), 1);
        reps[0] = n;
        return x.repeat(reps);
    };
    at::Tensor ctx = repeat(pe.prompt);
    if (cfg) ctx = at::cat({repeat(pe.negative), ctx});
    ctx = ctx.to(dtype);
    // Stable Diffusion 1.5 / 2.x (issue 11): no pooled embedding and no time ids (UNet without addition_embed_type).
    at::Tensor pooled, timeIds;
    if (pe.pooled.defined()) {
        pooled = repeat(pe.pooled);
        if (cfg) pooled = at::cat({repeat(pe.negativePooled), pooled});
        pooled = pooled.to(dtype);
        // add_time_ids = [orig_h, orig_w, crop_top, crop_left, target_h, target_w]; negative ids equal positive ones.
        timeIds = at::tensor(std::vector<double>{double(height), double(width), 0, 0, double(height), double(width)},
                             at::kDouble)
                      .to(dtype)
                      .unsqueeze(0)
                      .repeat({cfg ? 2 * n : n, 1})
                      .to(device);
    }
    synchronizeDevice(device);
    result.timings.encodeSeconds = secondsSince(tEnc);
    checkCancel(cancel);

    // 2. Scheduler and seeded noise (float32, CPU generator, then moved to the device).
    auto scheduler = sampling::Scheduler::create(r.scheduler, r.spacing, schedulerConfig);
    scheduler->setTimesteps(r.steps);
    scheduler->setNoiseDType(dtype);
    result.schedulerName = toString(scheduler->kind());
    result.spacingName = toString(scheduler->spacing());
    at::Generator gen = sampling::makeCpuGenerator(r.seed);
    const std::int64_t lh = height / 8, lw = width / 8;
    at::Tensor noise, latents;
    // ---- img2img / inpainting: get_timesteps (begin index), prepare_latents, prepare_mask_latents.
    int begin = 0;
    at::Tensor imageLatents, maskLatent;
    if (withImage) {
        const auto tImg = Clock::now();
        const double strength =
            r.strength.value_or(inpaint ? kLimits.defaultInpaintStrength : kLimits.defaultImg2ImgStrength);
        const int run = img2imgSteps(r.steps, strength);
        if (run < 1) fail(ErrorKind::InvalidArgument, "the strength leaves no denoising step");
        begin = r.steps - run;  // t_start = max(N - init_timestep, 0); every scheduler here has order 1
        const at::Tensor image = preprocessImage(*r.initImage, width, height);
        at::Tensor mask;
        if (inpaint) mask = preprocessMask(*r.mask, width, height, r.maskBlur);
        checkCancel(cancel);
        // Draw 1: the posterior sample of the image (encoded once, repeated for the batch).
        imageLatents = encodeImageLatents(*this, image, gen).repeat({n, 1, 1, 1});
        // Draw 2: ε.
        noise = sampling::randnCpu(gen, {n, imageLatents.size(1), lh, lw}, device, dtype);
        if (inpaint && strength == 1.0)
            latents = (noise * scheduler->initNoiseSigma()).to(at::kFloat);  // is_strength_max: pure noise
        else
            latents = scheduler->addNoise(imageLatents, noise, begin);
        if (inpaint) {
            // Draw 3: diffusers VAE-encodes masked_image = image·(mask < 0.5) with the same generator even for a
            // 4-channel UNet, which never uses the result; only the draw (its shape) matters for what follows.
            (void)sampling::randnCpu(gen, {1, imageLatents.size(1), lh, lw}, at::kCPU, posteriorDType(*this));
            maskLatent = at::upsample_nearest2d(mask, {lh, lw}).to(device).repeat({n, 1, 1, 1});
        }
        if (r.keepLatents) {
            result.imageLatents = toFloatTensor(imageLatents);
            result.addedNoise = toFloatTensor(noise);
        }
        synchronizeDevice(device);
        result.timings.encodeImageSeconds = secondsSince(tImg);
    } else {
        noise = sampling::randnCpu(gen, {n, ucfg.inChannels, lh, lw}, device, dtype);
        // prepare_latents: noise · init_noise_sigma in the noise's dtype (rounded as diffusers rounds it), then float32.
        latents = (noise * scheduler->initNoiseSigma()).to(at::kFloat);
    }
    if (r.keepLatents) result.initialNoise = toFloatTensor(noise);

    // 3. Denoising loop (from the begin index for image requests).
    const auto& timesteps = scheduler->timesteps();
    const int total = int(timesteps.size()) - begin;
    std::vector<double> stepTimes;
    const auto tLoop = Clock::now();
    for (int i = 0; i < total; ++i) {
        checkCancel(cancel);
        const auto tStep = Clock::now();
        const int k = begin + i;  // index into the full schedule
        at::Tensor xin = cfg ? at::cat({latents, latents}) : latents;
        xin = scheduler->scaleModelInput(xin, k).to(dtype);
        at::Tensor eps = runner ? runner(xin, timesteps[std::size_t(k)], ctx, pooled, timeIds)
                                : unet->forward(xin, timesteps[std::size_t(k)], ctx, pooled, timeIds);
        eps = eps.to(at::kFloat);
        if (cfg) {
            auto parts = eps.chunk(2);
            eps = sampling::applyGuidance(parts[0], parts[1], r.guidance, r.guidanceRescale);
        }
        latents = scheduler->step(eps, k, latents, &gen);
        if (inpaint) {
            // ---- inpainting: keep the unmasked area on the image, noised to the next timestep.
            at::Tensor proper = imageLatents;
            if (i < total - 1) proper = scheduler->addNoise(imageLatents, noise, k + 1);
            latents = at::rsub(maskLatent, 1.0) * proper + maskLatent * latents;
        }
        synchronizeDevice(device);
        stepTimes.push_back(secondsSince(tStep));

        if (cb.latents) cb.latents(i, toFloatTensor(latents));
        if (cb.preview && r.previews) {
            const auto tPrev = Clock::now();
            auto host = latents.detach().to(at::kCPU).contiguous();
            std::vector<Image> previews;
            for (int b = 0; b < n; ++b) previews.push_back(latentPreview(host[b].data_ptr<float>(), int(lh), int(lw)));
            result.timings.previewSeconds += secondsSince(tPrev);
            cb.preview(i + 1, previews);
        }
        if (cb.progress) {
            Progress p;
            p.step = i + 1;
            p.total = total;
            p.elapsedSeconds = secondsSince(tLoop);
            p.itPerSecond = p.elapsedSeconds > 0 ? p.step / p.elapsedSeconds : 0;
            cb.progress(p);
        }
    }
    result.timings.denoiseSeconds = secondsSince(tLoop);
    if (!stepTimes.empty()) {
        auto sorted = stepTimes;
        std::nth_element(sorted.begin(), sorted.begin() + sorted.size() / 2, sorted.end());
        result.timings.stepMedianSeconds = sorted[sorted.size() / 2];
    }
    if (!at::isfinite(latents).all().item<bool>())
        fail(ErrorKind::Internal, "the denoising loop produced non-finite latents (NaN/Inf); try fp32 or bf16");
    if (r.keepLatents) result.finalLatents = toFloatTensor(latents);
    checkCancel(cancel);

    // 4. VAE decode and 8-bit conversion.
    const auto tDec = Clock::now();
    result.images = toImages(decodeLatents(latents));
    result.timings.decodeSeconds = secondsSince(tDec);
    result.timings.totalSeconds = secondsSince(tStart);
    result.timings.peakDeviceBytes = peakMemoryBytes(device);
    return result;
}

}  // namespace koala
