// The fused CUDA kernels (models/fused.h, engine/src/cuda/fused_kernels.cu) against LibTorch's own ops on the device:
// GroupNorm+SiLU in NCHW and channels_last, GEGLU, in float32 / float16 / bfloat16 (label gpu; the CUDA cases skip
// without a CUDA device or without the kernels built in).
#include "harness.h"

#include "models/fused.h"

#include <cstdio>

namespace {

using koala::models::GroupNormW;

void requireKernels() {
    if (!koala::models::fusedKernelsBuilt()) kt::skip("fused kernels not built (needs a CUDA LibTorch and nvcc)");
    if (!at::hasCUDA()) kt::skip("no CUDA device");
}

double tolFor(at::ScalarType t) { return t == at::kFloat ? 1e-5 : t == at::kHalf ? 2e-3 : 1.6e-2; }

GroupNormW randomNorm(std::int64_t c, int groups, at::ScalarType t, const at::Device& d) {
    GroupNormW gn;
    gn.groups = groups;
    gn.eps = 1e-5;
    gn.weight = (at::randn({c}) * 0.5 + 1.0).to(d, t);
    gn.bias = (at::randn({c}) * 0.2).to(d, t);
    return gn;
}

}  // namespace

KT_TEST(fallback_without_the_switch_is_libtorchs_ops) {
    // On the CPU (and whenever KOALA_FUSED_KERNELS is not 1) the dispatchers are the plain ops, bit for bit.
    at::manual_seed(1);
    auto x = at::randn({2, 64, 8, 8});
    auto gn = randomNorm(64, 32, at::kFloat, at::kCPU);
    KT_CHECK(at::equal(koala::models::groupNormSilu(gn, x), at::silu(at::group_norm(x, 32, gn.weight, gn.bias, 1e-5))));
    auto p = at::randn({2, 7, 32});
    auto ag = p.chunk(2, -1);
    KT_CHECK(at::equal(koala::models::geglu(p), ag[0] * at::gelu(ag[1])));
}

KT_TEST(group_norm_silu_kernel_matches_libtorch) {
    requireKernels();
    const at::Device dev(at::kCUDA, 0);
    struct Shape {
        std::int64_t n, c, h, w;
        int groups;
    };
    const Shape shapes[] = {{2, 320, 32, 32, 32}, {1, 64, 17, 9, 32}, {2, 1280, 8, 8, 32}, {1, 128, 64, 64, 32}};
    for (at::ScalarType t : {at::kFloat, at::kHalf, at::kBFloat16}) {
        for (const auto& s : shapes) {
            for (bool cl : {false, true}) {
                at::manual_seed(7);
                // An offset and scale per channel, as activations have, so a naive E[x²]−E[x]² would lose digits.
                at::Tensor x32 = at::randn({s.n, s.c, s.h, s.w}) * 3.0 + at::randn({1, s.c, 1, 1}) * 4.0;
                at::Tensor x = x32.to(dev, t);
                if (cl) x = x.contiguous(at::MemoryFormat::ChannelsLast);
                auto gn = randomNorm(s.c, s.groups, t, dev);
                at::Tensor ours = koala::models::groupNormSiluFused(gn, x).to(at::kFloat);
                // Reference: LibTorch's ops in float32 on the same (rounded) inputs.
                at::Tensor ref = at::silu(at::group_norm(x.to(at::kFloat), s.groups, gn.weight.to(at::kFloat),
                                                         gn.bias.to(at::kFloat), gn.eps));
                const double e = kt::relErr(ours.cpu(), ref.cpu());
                std::fprintf(stderr, "  groupnorm+silu %s %lldx%lldx%lldx%lld %s: rel err %.3g\n", c10::toString(t),
                             (long long)s.n, (long long)s.c, (long long)s.h, (long long)s.w,
                             cl ? "channels_last" : "nchw", e);
                KT_CHECK_MSG(e < tolFor(t), "groupnorm+silu rel err " << e);
                if (cl)
                    KT_CHECK(koala::models::groupNormSiluFused(gn, x).is_contiguous(at::MemoryFormat::ChannelsLast));
                // And without the SiLU: the plain GroupNorm.
                at::Tensor plain = koala::models::groupNormSiluFused(gn, x, false).to(at::kFloat);
                at::Tensor refPlain = at::group_norm(x.to(at::kFloat), s.groups, gn.weight.to(at::kFloat),
                                                     gn.bias.to(at::kFloat), gn.eps);
                KT_CHECK_REL(plain.cpu(), refPlain.cpu(), tolFor(t));
            }
        }
    }
}

KT_TEST(geglu_kernel_matches_libtorch) {
    requireKernels();
    const at::Device dev(at::kCUDA, 0);
    for (at::ScalarType t : {at::kFloat, at::kHalf, at::kBFloat16}) {
        for (auto shape : {std::vector<std::int64_t>{2, 4096, 2 * 640}, std::vector<std::int64_t>{1, 77, 2 * 1280},
                           std::vector<std::int64_t>{3, 5, 2 * 7}}) {
            at::manual_seed(3);
            at::Tensor p = (at::randn(shape) * 2.0).to(dev, t);
            at::Tensor ours = koala::models::gegluFused(p).to(at::kFloat);
            auto ag = p.to(at::kFloat).chunk(2, -1);
            at::Tensor ref = ag[0] * at::gelu(ag[1]);
            KT_CHECK(ours.sizes() == ref.sizes());
            const double e = kt::relErr(ours.cpu(), ref.cpu());
            std::fprintf(stderr, "  geglu %s last dim %lld: rel err %.3g\n", c10::toString(t), (long long)shape.back(),
                         e);
            KT_CHECK_MSG(e < tolFor(t), "geglu rel err " << e);
        }
    }
}

KT_TEST(fused_kernels_refuse_what_they_cannot_run) {
    if (!koala::models::fusedKernelsBuilt()) {
        auto gn = randomNorm(64, 32, at::kFloat, at::kCPU);
        KT_CHECK_THROWS(koala::models::groupNormSiluFused(gn, at::randn({1, 64, 4, 4})), koala::ErrorKind::Internal,
                        "not built");
        return;
    }
    auto gn = randomNorm(64, 32, at::kFloat, at::kCPU);
    KT_CHECK_THROWS(koala::models::groupNormSiluFused(gn, at::randn({1, 64, 4, 4})), koala::ErrorKind::Internal,
                    "CUDA");
    KT_CHECK_THROWS(koala::models::gegluFused(at::randn({2, 8})), koala::ErrorKind::Internal, "CUDA");
}
