// img2img / inpainting: image preprocessing and the lazily loaded VAE encoder (see img2img.h).
#include "pipeline/img2img.h"

#include "core/common.h"
#include "core/image_io.h"
#include "io/model_folder.h"
#include "io/safetensors.h"
#include "io/weights.h"
#include "sampling/noise.h"

#include <c10/core/GradMode.h>

namespace koala {

at::Tensor preprocessImage(const Image& image, int width, int height) {
    const std::vector<std::uint8_t> px =
        imageio::resampleLanczos(image.rgb.data(), image.width, image.height, 3, width, height);
    // pil_to_numpy: astype(float32) / 255; numpy_to_pt; normalize: 2x - 1 (float32 throughout).
    at::Tensor x = at::from_blob(const_cast<std::uint8_t*>(px.data()), {height, width, 3}, at::kByte)
                       .to(at::kFloat)
                       .div(255.0f)
                       .permute({2, 0, 1})
                       .unsqueeze(0)
                       .contiguous();
    return x * 2.0 - 1.0;
}

at::Tensor preprocessMask(const Image& mask, int width, int height, int blur) {
    std::vector<std::uint8_t> gray = imageio::toGray(mask);
    if (blur > 0) gray = imageio::gaussianBlur(gray, mask.width, mask.height, float(blur));
    const std::vector<std::uint8_t> px =
        imageio::resampleLanczos(gray.data(), mask.width, mask.height, 1, width, height);
    at::Tensor m = at::from_blob(const_cast<std::uint8_t*>(px.data()), {1, 1, height, width}, at::kByte)
                       .to(at::kFloat)
                       .div(255.0f);
    // binarize: image[image < 0.5] = 0; image[image >= 0.5] = 1
    return at::where(m < 0.5, at::zeros_like(m), at::ones_like(m));
}

const models::VaeEncoder& vaeEncoder(ModelImpl& m) {
    VaeStack& vs = *m.vae;
    if (vs.encoder) return *vs.encoder;
    const models::VaeConfig& decCfg = vs.decoder->config();
    const at::ScalarType dtype = decCfg.forceUpcast ? at::kFloat : m.vaeDType;
    std::shared_ptr<models::VaeEncoder> enc;
    if (vs.files.empty()) {
        // A VAE built without files (koala-bench's random models): a random encoder of the decoder's shape.
        auto store = io::WeightStore::random("vae", 0x656e636f646572ull);
        store.setTarget(dtype, m.device);
        enc = models::VaeEncoder::load(decCfg, store);
        store.finish();
    } else {
        // files = config.json, then the weight files the decoder was loaded from (the encoder is in the same ones).
        auto cfg = models::VaeConfig::fromConfig(io::Config::load(vs.files.front()));
        std::vector<std::shared_ptr<io::SafetensorsFile>> shards;
        for (std::size_t i = 1; i < vs.files.size(); ++i) shards.push_back(io::SafetensorsFile::open(vs.files[i]));
        io::WeightStore store("vae", std::move(shards));
        store.setTarget(dtype, m.device);
        enc = models::VaeEncoder::load(cfg, store);
        store.finish();  // a VAE folder without encoder weights: ModelFormat naming the missing tensors
    }
    vs.encoder = enc;
    return *vs.encoder;
}

at::ScalarType posteriorDType(const ModelImpl& m) {
    // diffusers encodes in float32 when the VAE config says force_upcast (SDXL's VAE), else in the pipeline's dtype.
    const models::VaeConfig& cfg = m.vae->decoder->config();
    return cfg.forceUpcast ? at::kFloat : m.dtype;
}

at::Tensor encodeImageLatents(ModelImpl& m, const at::Tensor& image, at::Generator& gen) {
    c10::NoGradGuard noGrad;
    const models::VaeEncoder& enc = vaeEncoder(m);
    at::Tensor moments = enc.encode(image.to(m.device, enc.dtype())).to(at::kFloat);
    const models::VaePosterior post = models::vaePosterior(moments);
    // DiagonalGaussianDistribution.sample: randn_tensor(mean.shape, generator, dtype=the VAE's parameters' dtype)
    // (CPU generator), then float32.
    at::Tensor eps = sampling::randnCpu(gen, post.mean.sizes(), post.mean.device(), posteriorDType(m)).to(at::kFloat);
    at::Tensor z = post.mean + post.std * eps;
    return z * enc.config().scalingFactor;
}

}  // namespace koala
