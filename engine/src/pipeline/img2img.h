// img2img / inpainting (internal): diffusers' StableDiffusionXLImg2ImgPipeline and StableDiffusionXLInpaintPipeline
// (4-channel UNet) on top of the text-to-image loop in generate.cpp. See docs: features-spec.md sections 1-2 and
// tools/reference/img2img_reference.py for what is reproduced.
#pragma once

#include "pipeline/model_impl.h"

namespace koala {

// VaeImageProcessor.preprocess of an RGB image: LANCZOS resize to width x height (PIL, bit for bit), /255, 2x-1 →
// [1,3,H,W] float32 on the CPU.
at::Tensor preprocessImage(const Image& image, int width, int height);
// The mask processor (do_normalize=False, do_binarize=True, do_convert_grayscale=True), after the optional
// mask_processor.blur (PIL GaussianBlur): grey, LANCZOS resize, /255, binarize at 0.5 → [1,1,H,W] float32 (0/1).
at::Tensor preprocessMask(const Image& mask, int width, int height, int blur);

// The VAE encoder of a model, loaded on first use and cached on its (possibly shared) VaeStack. The caller holds the
// run mutex. fp32 when the VAE config says force_upcast (as diffusers), else the VAE's dtype.
const models::VaeEncoder& vaeEncoder(ModelImpl& m);

// The dtype diffusers draws the VAE posterior's sample in: float32 when the VAE config says force_upcast, else the
// pipeline's dtype.
at::ScalarType posteriorDType(const ModelImpl& m);

// scaling_factor · (mean + std·randn(generator)) of the VAE posterior of `image` ([1,3,H,W] in [-1,1]); the one
// draw from `gen` has the latents' shape. Returns float32 on the model's device.
at::Tensor encodeImageLatents(ModelImpl& m, const at::Tensor& image, at::Generator& gen);

}  // namespace koala
