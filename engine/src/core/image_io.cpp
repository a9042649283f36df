// img2img / inpainting: reading image files (libpng, libjpeg-turbo; each optional at build time), sha256, and the
// PIL operations diffusers' VaeImageProcessor runs (LANCZOS resize, convert("L"), GaussianBlur), reproduced bit for
// bit from Pillow's Resample.c, Convert.c and BoxBlur.c.
#include "core/image_io.h"

#include "core/common.h"
#include "core/sha256.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#if KOALA_HAVE_LIBPNG
#include <png.h>
#endif
#if KOALA_HAVE_LIBJPEG
// jpeglib.h needs FILE and size_t declared first.
#include <jpeglib.h>
// (after jpeglib.h, which it needs)
#include <jerror.h>
#endif

namespace koala {
namespace {

// ---- decoders ----------------------------------------------------------------------------------------------------

struct Rgba {
    int width = 0, height = 0;
    std::vector<std::uint8_t> px;  // width*height*4
};

struct FileCloser {
    void operator()(std::FILE* f) const {
        if (f) std::fclose(f);
    }
};

// PIL's decompression-bomb limit (Image.MAX_IMAGE_PIXELS = 89,478,485; DecompressionBombError above twice that),
// which diffusers' load_image meets too: a header claiming more pixels is refused before anything is allocated.
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
constexpr std::uint64_t kMaxImagePixels = 2ull * 89478485ull;
#else
// Fuzz builds only (CMakeLists.txt): 1 megapixel, as libjpeg-turbo's own fuzzers, so that no input takes seconds
// (a 215-byte JPEG can legally decode to 95 megapixels of grey, which under ASan took 47 s; 4 megapixels still 6 s).
constexpr std::uint64_t kMaxImagePixels = 1ull << 20;
#endif

// "" when width x height may be decoded, else why not.
std::string sizeProblem(std::uint64_t width, std::uint64_t height) {
    if (width == 0 || height == 0) return "it has no pixels";
    if (width * height > kMaxImagePixels)
        return "it is " + std::to_string(width) + "x" + std::to_string(height) + " pixels, more than the " +
               std::to_string(kMaxImagePixels) + " pixels an image may have (PIL's decompression-bomb limit)";
    return {};
}

#if KOALA_HAVE_LIBPNG
struct PngState {
    std::string error;
    Rgba out;
    std::vector<png_bytep> rows;
};

void pngError(png_structp png, png_const_charp msg) {
    static_cast<PngState*>(png_get_error_ptr(png))->error = msg ? msg : "libpng error";
    longjmp(png_jmpbuf(png), 1);
}
void pngWarning(png_structp, png_const_charp) {}

// Heap state only between setjmp and longjmp (no automatic C++ objects are modified there).
void decodePng(std::FILE* f, const std::string& path, Rgba& result) {
    auto state = std::make_unique<PngState>();
    PngState* st = state.get();
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, st, pngError, pngWarning);
    if (!png) fail(ErrorKind::Io, "cannot read " + path + ": out of memory");
    png_infop info = png_create_info_struct(png);
    if (!info || setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, info ? &info : nullptr, nullptr);
        fail(ErrorKind::Io, "cannot read " + path + " as a PNG: " + st->error);
    }
    // Every ancillary chunk but tRNS is skipped unread (libpng reads past it in small pieces): libpng would otherwise
    // allocate whatever length a text or profile chunk claims (1.9 GB for a 257-byte file, found by fuzz_app_metadata;
    // its "chunk data is too large" check is only a warning). The pixels need none of them: like PIL, no gamma or
    // colour profile is applied.
    static const png_byte kTrns[] = "tRNS";
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, nullptr, -1);
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_AS_DEFAULT, kTrns, 1);
    png_init_io(png, f);
    png_read_info(png, info);
    st->error = sizeProblem(png_get_image_width(png, info), png_get_image_height(png, info));
    if (!st->error.empty()) longjmp(png_jmpbuf(png), 1);
    const int colorType = png_get_color_type(png, info);
    const int depth = png_get_bit_depth(png, info);
    if (depth == 16) png_set_strip_16(png);  // the high byte, as PIL's "RGB;16B" unpacker
    if (colorType == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (colorType == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    const bool trns = png_get_valid(png, info, PNG_INFO_tRNS) != 0;
    if (trns) png_set_tRNS_to_alpha(png);
    if (colorType == PNG_COLOR_TYPE_GRAY || colorType == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
    if (!(colorType & PNG_COLOR_MASK_ALPHA) && !trns) png_set_add_alpha(png, 0xff, PNG_FILLER_AFTER);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    st->out.width = int(png_get_image_width(png, info));
    st->out.height = int(png_get_image_height(png, info));
    if (png_get_rowbytes(png, info) != std::size_t(st->out.width) * 4)
        pngError(png, "unexpected row layout after conversion");
    st->out.px.resize(std::size_t(st->out.width) * st->out.height * 4);
    st->rows.resize(std::size_t(st->out.height));
    for (int y = 0; y < st->out.height; ++y)
        st->rows[std::size_t(y)] = st->out.px.data() + std::size_t(y) * st->out.width * 4;
    png_read_image(png, st->rows.data());
    png_read_end(png, nullptr);
    png_destroy_read_struct(&png, &info, nullptr);
    result = std::move(st->out);
}
#endif

#if KOALA_HAVE_LIBJPEG
struct JpegError {
    jpeg_error_mgr mgr;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
};

void jpegErrorExit(j_common_ptr cinfo) {
    auto* e = reinterpret_cast<JpegError*>(cinfo->err);
    (*cinfo->err->format_message)(cinfo, e->message);
    longjmp(e->jump, 1);
}
void jpegOutput(j_common_ptr) {}
// Warnings go by, except the end of the data before the end of the image: libjpeg would fill the rest of the picture
// in grey and go on (a few hundred bytes that declare 13000x13000 pixels kept the fuzzer busy for 30 s), PIL refuses
// such a file ("image file is truncated"), and so do we.
void jpegEmit(j_common_ptr cinfo, int level) {
    if (level >= 0 || cinfo->err->msg_code != JWRN_JPEG_EOF) return;
    auto* e = reinterpret_cast<JpegError*>(cinfo->err);
    std::snprintf(e->message, sizeof e->message, "the file is truncated (the image data ends early)");
    longjmp(e->jump, 1);
}

void decodeJpeg(std::FILE* f, const std::string& path, Rgba& result) {
    // Everything the decoder fills lives on the heap and is created before setjmp: a longjmp back from libjpeg's
    // error handler must not skip the destructor of an object made after it.
    auto cinfo = std::make_unique<jpeg_decompress_struct>();
    auto err = std::make_unique<JpegError>();
    auto out = std::make_unique<Rgba>();
    auto rowBuf = std::make_unique<std::vector<std::uint8_t>>();
    cinfo->err = jpeg_std_error(&err->mgr);
    err->mgr.error_exit = jpegErrorExit;
    err->mgr.output_message = jpegOutput;
    err->mgr.emit_message = jpegEmit;
    err->message[0] = 0;
    if (setjmp(err->jump)) {
        jpeg_destroy_decompress(cinfo.get());
        fail(ErrorKind::Io, "cannot read " + path + " as a JPEG: " + std::string(err->message));
    }
    jpeg_create_decompress(cinfo.get());
    jpeg_stdio_src(cinfo.get(), f);
    jpeg_read_header(cinfo.get(), TRUE);
    {  // (the string is gone before the longjmp)
        const std::string why = sizeProblem(cinfo->image_width, cinfo->image_height);
        std::snprintf(err->message, sizeof err->message, "%s", why.c_str());
    }
    if (err->message[0]) longjmp(err->jump, 1);
    if (cinfo->jpeg_color_space == JCS_CMYK || cinfo->jpeg_color_space == JCS_YCCK) {
        std::snprintf(err->message, sizeof err->message, "CMYK JPEGs are not supported");
        longjmp(err->jump, 1);
    }
    cinfo->out_color_space = JCS_RGB;  // libjpeg's defaults otherwise (ISLOW DCT, fancy upsampling), as PIL
    jpeg_start_decompress(cinfo.get());
    out->width = int(cinfo->output_width);
    out->height = int(cinfo->output_height);
    out->px.resize(std::size_t(out->width) * out->height * 4);
    rowBuf->resize(std::size_t(out->width) * 3);
    while (cinfo->output_scanline < cinfo->output_height) {
        const int y = int(cinfo->output_scanline);
        JSAMPROW row = rowBuf->data();
        jpeg_read_scanlines(cinfo.get(), &row, 1);
        std::uint8_t* dst = out->px.data() + std::size_t(y) * out->width * 4;
        const std::uint8_t* src = rowBuf->data();
        for (int x = 0; x < out->width; ++x, src += 3, dst += 4) {
            dst[0] = src[0];
            dst[1] = src[1];
            dst[2] = src[2];
            dst[3] = 255;
        }
    }
    jpeg_finish_decompress(cinfo.get());
    jpeg_destroy_decompress(cinfo.get());
    result = std::move(*out);
}
#endif

// ---- PIL's LANCZOS (Resample.c) ----------------------------------------------------------------------------------

constexpr int kPrecisionBits = 32 - 8 - 2;

double sincFilter(double x) {
    if (x == 0.0) return 1.0;
    x = x * M_PI;
    return std::sin(x) / x;
}

double lanczosFilter(double x) {
    if (-3.0 <= x && x < 3.0) return sincFilter(x) * sincFilter(x / 3);
    return 0.0;
}

struct Coeffs {
    int ksize = 0;
    std::vector<int> bounds;      // xmin, count per output pixel
    std::vector<std::int32_t> k;  // fixed point, ksize per output pixel
};

Coeffs precomputeCoeffs(int inSize, float in0, float in1, int outSize) {
    double filterscale, scale;
    filterscale = scale = double(in1 - in0) / outSize;
    if (filterscale < 1.0) filterscale = 1.0;
    const double support = 3.0 * filterscale;
    Coeffs c;
    c.ksize = int(std::ceil(support)) * 2 + 1;
    std::vector<double> kk(std::size_t(outSize) * c.ksize, 0.0);
    c.bounds.resize(std::size_t(outSize) * 2);
    for (int xx = 0; xx < outSize; ++xx) {
        const double center = in0 + (xx + 0.5) * scale;
        double ww = 0.0;
        const double ss = 1.0 / filterscale;
        int xmin = int(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = int(center + support + 0.5);
        if (xmax > inSize) xmax = inSize;
        xmax -= xmin;
        double* k = &kk[std::size_t(xx) * c.ksize];
        for (int x = 0; x < xmax; ++x) {
            const double w = lanczosFilter((x + xmin - center + 0.5) * ss);
            k[x] = w;
            ww += w;
        }
        for (int x = 0; x < xmax; ++x)
            if (ww != 0.0) k[x] /= ww;
        c.bounds[std::size_t(xx) * 2] = xmin;
        c.bounds[std::size_t(xx) * 2 + 1] = xmax;
    }
    // normalize_coeffs_8bpc
    c.k.resize(kk.size());
    for (std::size_t i = 0; i < kk.size(); ++i)
        c.k[i] = kk[i] < 0 ? std::int32_t(-0.5 + kk[i] * (1 << kPrecisionBits))
                           : std::int32_t(0.5 + kk[i] * (1 << kPrecisionBits));
    return c;
}

inline std::uint8_t clip8(int v) {
    const int s = v >> kPrecisionBits;  // arithmetic shift, as Pillow's lookup table index
    return std::uint8_t(s < 0 ? 0 : s > 255 ? 255 : s);
}

}  // namespace

namespace imageio {

std::vector<std::uint8_t> resampleLanczos(const std::uint8_t* src, int width, int height, int channels, int outWidth,
                                          int outHeight) {
    const std::size_t inCount = std::size_t(width) * height * channels;
    if (width == outWidth && height == outHeight) return std::vector<std::uint8_t>(src, src + inCount);
    const bool needH = outWidth != width, needV = outHeight != height;
    Coeffs ch = precomputeCoeffs(width, 0.0f, float(width), outWidth);
    Coeffs cv = precomputeCoeffs(height, 0.0f, float(height), outHeight);
    const int yFirst = cv.bounds[0];
    const int yLast = cv.bounds[std::size_t(outHeight) * 2 - 2] + cv.bounds[std::size_t(outHeight) * 2 - 1];

    std::vector<std::uint8_t> cur(src, src + inCount);
    int curW = width, curH = height;
    if (needH) {
        for (int i = 0; i < outHeight; ++i) cv.bounds[std::size_t(i) * 2] -= yFirst;
        const int rows = yLast - yFirst;
        std::vector<std::uint8_t> tmp(std::size_t(outWidth) * rows * channels);
        for (int yy = 0; yy < rows; ++yy) {
            const std::uint8_t* in = src + std::size_t(yy + yFirst) * width * channels;
            for (int xx = 0; xx < outWidth; ++xx) {
                const int xmin = ch.bounds[std::size_t(xx) * 2], xmax = ch.bounds[std::size_t(xx) * 2 + 1];
                const std::int32_t* k = &ch.k[std::size_t(xx) * ch.ksize];
                for (int c = 0; c < channels; ++c) {
                    int ss = 1 << (kPrecisionBits - 1);
                    for (int x = 0; x < xmax; ++x) ss += int(in[std::size_t(x + xmin) * channels + c]) * k[x];
                    tmp[(std::size_t(yy) * outWidth + xx) * channels + c] = clip8(ss);
                }
            }
        }
        cur.swap(tmp);
        curW = outWidth;
        curH = rows;
    }
    if (needV) {
        std::vector<std::uint8_t> out(std::size_t(curW) * outHeight * channels);
        for (int yy = 0; yy < outHeight; ++yy) {
            const int ymin = cv.bounds[std::size_t(yy) * 2], ymax = cv.bounds[std::size_t(yy) * 2 + 1];
            const std::int32_t* k = &cv.k[std::size_t(yy) * cv.ksize];
            for (int xx = 0; xx < curW; ++xx)
                for (int c = 0; c < channels; ++c) {
                    int ss = 1 << (kPrecisionBits - 1);
                    for (int y = 0; y < ymax; ++y)
                        ss += int(cur[(std::size_t(y + ymin) * curW + xx) * channels + c]) * k[y];
                    out[(std::size_t(yy) * curW + xx) * channels + c] = clip8(ss);
                }
        }
        cur.swap(out);
        curH = outHeight;
    }
    (void)curH;
    return cur;
}

std::vector<std::uint8_t> toGray(const Image& rgb) {
    std::vector<std::uint8_t> out(std::size_t(rgb.width) * rgb.height);
    for (std::size_t i = 0; i < out.size(); ++i) {
        const std::uint8_t* p = &rgb.rgb[3 * i];
        out[i] = std::uint8_t(
            (std::uint32_t(p[0]) * 19595 + std::uint32_t(p[1]) * 38470 + std::uint32_t(p[2]) * 7471 + 0x8000) >> 16);
    }
    return out;
}

namespace {

// One line of BoxBlur.c's ImagingLineBoxBlur8.
void lineBoxBlur8(std::uint8_t* out, const std::uint8_t* in, int lastx, int radius, int edgeA, int edgeB,
                  std::uint32_t ww, std::uint32_t fw) {
    std::uint32_t acc, bulk;
    auto move = [&](int subtract, int add) { acc += in[add] - in[subtract]; };
    auto addFar = [&](int left, int right) { bulk = (acc * ww) + (in[left] + in[right]) * fw; };
    auto save = [&](int x) { out[x] = std::uint8_t((bulk + (1u << 23)) >> 24); };
    acc = in[0] * std::uint32_t(radius + 1);
    for (int x = 0; x < edgeA - 1; ++x) acc += in[x];
    acc += in[lastx] * std::uint32_t(radius - edgeA + 1);
    if (edgeA <= edgeB) {
        for (int x = 0; x < edgeA; ++x) move(0, x + radius), addFar(0, x + radius + 1), save(x);
        for (int x = edgeA; x < edgeB; ++x)
            move(x - radius - 1, x + radius), addFar(x - radius - 1, x + radius + 1), save(x);
        for (int x = edgeB; x <= lastx; ++x) move(x - radius - 1, lastx), addFar(x - radius - 1, lastx), save(x);
    } else {
        for (int x = 0; x < edgeB; ++x) move(0, x + radius), addFar(0, x + radius + 1), save(x);
        for (int x = edgeB; x < edgeA; ++x) move(0, lastx), addFar(0, lastx), save(x);
        for (int x = edgeA; x <= lastx; ++x) move(x - radius - 1, lastx), addFar(x - radius - 1, lastx), save(x);
    }
}

// ImagingHorizontalBoxBlur on a one-channel image, in place.
void horizontalBoxBlur(std::vector<std::uint8_t>& img, int width, int height, float floatRadius) {
    const int radius = int(floatRadius);
    const std::uint32_t ww = std::uint32_t(float(std::uint32_t(1 << 24)) / (floatRadius * 2 + 1));
    const std::uint32_t fw = ((1u << 24) - std::uint32_t(radius * 2 + 1) * ww) / 2;
    const int edgeA = std::min(radius + 1, width);
    const int edgeB = std::max(width - radius - 1, 0);
    std::vector<std::uint8_t> line(static_cast<std::size_t>(width));
    for (int y = 0; y < height; ++y) {
        std::uint8_t* row = img.data() + std::size_t(y) * width;
        lineBoxBlur8(line.data(), row, width - 1, radius, edgeA, edgeB, ww, fw);
        std::memcpy(row, line.data(), std::size_t(width));
    }
}

std::vector<std::uint8_t> transpose(const std::vector<std::uint8_t>& img, int width, int height) {
    std::vector<std::uint8_t> t(img.size());
    for (int y = 0; y < height; ++y)
        for (int x = 0; x < width; ++x) t[std::size_t(x) * height + y] = img[std::size_t(y) * width + x];
    return t;
}

float gaussianBlurRadius(float radius, int passes) {
    float sigma2, L, l, a;
    sigma2 = radius * radius / passes;
    L = float(std::sqrt(12.0 * sigma2 + 1.0));
    l = float(std::floor((L - 1.0) / 2.0));
    a = (2 * l + 1) * (l * (l + 1) - 3 * sigma2);
    a /= 6 * (sigma2 - (l + 1) * (l + 1));
    return l + a;
}

}  // namespace

std::vector<std::uint8_t> gaussianBlur(const std::vector<std::uint8_t>& gray, int width, int height, float radius) {
    if (radius == 0) return gray;
    const int passes = 3;
    const float r = gaussianBlurRadius(radius, passes);
    std::vector<std::uint8_t> img = gray;
    if (r != 0) {
        for (int i = 0; i < passes; ++i) horizontalBoxBlur(img, width, height, r);
        std::vector<std::uint8_t> t = transpose(img, width, height);
        for (int i = 0; i < passes; ++i) horizontalBoxBlur(t, height, width, r);
        img = transpose(t, height, width);
    }
    return img;
}

void imageRequestSize(const GenerateRequest& r, int& width, int& height) {
    if (r.initImage && !r.mask) {
        width = r.initImage->width - r.initImage->width % kLimits.sizeMultiple;
        height = r.initImage->height - r.initImage->height % kLimits.sizeMultiple;
    } else {
        width = r.width;
        height = r.height;
    }
}

namespace {
std::string formatNumber(double v) {
    std::ostringstream os;
    os << v;
    return os.str();
}
}  // namespace

void validateImageRequest(const GenerateRequest& r) {
    auto bad = [](const std::string& m) { fail(ErrorKind::InvalidArgument, m); };
    const Limits& L = kLimits;
    if (r.mask && !r.initImage) bad("a mask needs an init image (inpainting repaints part of an image)");
    if (!r.initImage) return;
    const Image& im = *r.initImage;
    if (im.width <= 0 || im.height <= 0 || im.rgb.size() != std::size_t(im.width) * im.height * 3)
        bad("the init image is empty");
    const bool inpaint = r.mask.has_value();
    const double s = r.strength.value_or(inpaint ? L.defaultInpaintStrength : L.defaultImg2ImgStrength);
    if (!(s > 0.0 && s <= L.maxStrength))
        bad("strength must be greater than 0 and at most 1 (got " + formatNumber(s) + ")");
    if (img2imgSteps(r.steps, s) < 1)
        bad("strength " + formatNumber(s) + " with " + std::to_string(r.steps) +
            " steps leaves no denoising step (int(steps x strength) = 0): raise the strength or the steps");
    if (inpaint) {
        const Image& m = *r.mask;
        if (m.width <= 0 || m.height <= 0 || m.rgb.size() != std::size_t(m.width) * m.height * 3)
            bad("the mask image is empty");
        if (m.width != im.width || m.height != im.height)
            bad("the mask is " + std::to_string(m.width) + "x" + std::to_string(m.height) + " but the init image is " +
                std::to_string(im.width) + "x" + std::to_string(im.height) + ": they must be the same size");
    }
    if (r.maskBlur < 0 || r.maskBlur > L.maxMaskBlur)
        bad("mask blur must be between 0 and " + std::to_string(L.maxMaskBlur));
    int w = 0, h = 0;
    imageRequestSize(r, w, h);
    const std::string size = std::to_string(w) + "x" + std::to_string(h);
    if (w % L.sizeMultiple != 0 || h % L.sizeMultiple != 0)
        bad("size " + size + " is impossible: width and height must be multiples of " + std::to_string(L.sizeMultiple));
    if (w < L.minImageSize || h < L.minImageSize || w > L.maxSize || h > L.maxSize)
        bad((inpaint ? "size " : "the init image's size rounded down to multiples of 8, ") + size +
            ", is out of range: width and height must be between " + std::to_string(L.minImageSize) + " and " +
            std::to_string(L.maxSize));
}

}  // namespace imageio

int img2imgSteps(int steps, double strength) {
    // diffusers' get_timesteps: init_timestep = min(int(num_inference_steps * strength), num_inference_steps), in
    // Python floats (int(50 * 0.58) = 28).
    const double prod = double(steps) * strength;
    if (!(prod >= 0)) return 0;
    return std::min(int(prod), steps);
}

std::string imageFormatsSupported() {
    std::string s;
#if KOALA_HAVE_LIBPNG
    s += "png";
#endif
#if KOALA_HAVE_LIBJPEG
    s += s.empty() ? "jpeg" : ", jpeg";
#endif
    return s;
}

std::string fileSha256(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail(ErrorKind::Io, "cannot open " + path);
    Sha256 sha;
    std::vector<char> buf(1 << 16);
    while (in) {
        in.read(buf.data(), std::streamsize(buf.size()));
        const auto n = in.gcount();
        if (n > 0) sha.update(reinterpret_cast<const std::uint8_t*>(buf.data()), std::size_t(n));
    }
    if (in.bad()) fail(ErrorKind::Io, "cannot read " + path);
    return sha.hex();
}

Image readImage(const std::string& path, ImageChannel channel) {
    std::unique_ptr<std::FILE, FileCloser> f(std::fopen(path.c_str(), "rb"));
    if (!f) fail(ErrorKind::Io, "cannot open image " + path + ": " + std::strerror(errno));
    unsigned char magic[8] = {0};
    const std::size_t got = std::fread(magic, 1, 8, f.get());
    if (got == 0) fail(ErrorKind::Io, "image " + path + " is empty");
    std::rewind(f.get());
    const bool isPng = got == 8 && std::memcmp(magic, "\x89PNG\r\n\x1a\n", 8) == 0;
    const bool isJpeg = got >= 3 && magic[0] == 0xFF && magic[1] == 0xD8 && magic[2] == 0xFF;
    Rgba px;
    if (isPng) {
#if KOALA_HAVE_LIBPNG
        decodePng(f.get(), path, px);
#else
        fail(ErrorKind::Io, "cannot read " + path + ": this build has no PNG decoder (libpng was not found)");
#endif
    } else if (isJpeg) {
#if KOALA_HAVE_LIBJPEG
        decodeJpeg(f.get(), path, px);
#else
        fail(ErrorKind::Io, "cannot read " + path + ": this build has no JPEG decoder (libjpeg was not found)");
#endif
    } else {
        fail(ErrorKind::Io, "cannot read " + path + ": not a PNG or JPEG file");
    }
    if (px.width <= 0 || px.height <= 0) fail(ErrorKind::Io, "image " + path + " is empty (0 pixels)");
    Image img;
    img.width = px.width;
    img.height = px.height;
    img.rgb.resize(std::size_t(img.width) * img.height * 3);
    const std::uint8_t* src = px.px.data();
    std::uint8_t* dst = img.rgb.data();
    const std::size_t n = std::size_t(img.width) * img.height;
    if (channel == ImageChannel::Alpha) {
        for (std::size_t i = 0; i < n; ++i, src += 4, dst += 3) dst[0] = dst[1] = dst[2] = src[3];
    } else {
        for (std::size_t i = 0; i < n; ++i, src += 4, dst += 3) {
            dst[0] = src[0];
            dst[1] = src[1];
            dst[2] = src[2];
        }
    }
    return img;
}

Image resizeLanczos(const Image& image, int width, int height) {
    if (width <= 0 || height <= 0) fail(ErrorKind::InvalidArgument, "resize to an empty size");
    Image out;
    out.width = width;
    out.height = height;
    out.rgb = imageio::resampleLanczos(image.rgb.data(), image.width, image.height, 3, width, height);
    return out;
}

}  // namespace koala
