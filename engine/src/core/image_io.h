// img2img / inpainting image handling (internal): decoders (image_io.cpp) and PIL-exact 8-bit operations, so that
// the engine's preprocessing is byte for byte what diffusers' VaeImageProcessor does with PIL.
#pragma once

#include "koala/engine.h"

#include <cstdint>
#include <vector>

namespace koala::imageio {

// PIL's Image.resize((outW, outH), Image.LANCZOS) on an 8-bit image with `channels` interleaved channels
// (Pillow's Resample.c: separable, horizontal pass first, support 3, fixed-point coefficients, 8-bit rounding and
// clipping between the passes). Returns a copy when the size does not change (as PIL does).
std::vector<std::uint8_t> resampleLanczos(const std::uint8_t* src, int width, int height, int channels, int outWidth,
                                          int outHeight);
// PIL's convert("L") of RGB: (R·19595 + G·38470 + B·7471 + 0x8000) >> 16.
std::vector<std::uint8_t> toGray(const Image& rgb);
// PIL's ImageFilter.GaussianBlur(radius) on a one-channel 8-bit image (3 extended box-blur passes, BoxBlur.c).
std::vector<std::uint8_t> gaussianBlur(const std::vector<std::uint8_t>& gray, int width, int height, float radius);

// The image-request rules of validate(): strength, steps left after strength, mask and sizes. Throws
// Error(InvalidArgument) naming the field.
void validateImageRequest(const GenerateRequest& r);
// The output size of an image request (img2img: the image's size rounded down to multiples of 8; inpainting: the
// requested size).
void imageRequestSize(const GenerateRequest& r, int& width, int& height);

}  // namespace koala::imageio
