#include "models/fused.h"

#include "core/common.h"

#if defined(KOALA_FUSED_CUDA)
#include "cuda/fused_kernels.h"

#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace koala::models {

namespace {

#if defined(KOALA_FUSED_CUDA)
bool elemType(at::ScalarType s, cuda::ElemType& t) {
    if (s == at::kFloat)
        t = cuda::ElemType::F32;
    else if (s == at::kHalf)
        t = cuda::ElemType::F16;
    else if (s == at::kBFloat16)
        t = cuda::ElemType::BF16;
    else
        return false;
    return true;
}

void check(int err, const char* what) {
    if (err != 0) fail(ErrorKind::Internal, std::string(what) + ": CUDA error " + std::to_string(err));
}
#endif

// The layout groupNormSiluFused can read: 0 = NCHW contiguous, 1 = channels_last, -1 = neither.
int layoutOf(const at::Tensor& x) {
    if (x.dim() != 4) return -1;
    if (x.is_contiguous()) return 0;
    if (x.is_contiguous(at::MemoryFormat::ChannelsLast)) return 1;
    return -1;
}

bool fusable(const at::Tensor& x, const at::Tensor& w) {
    return fusedKernelsBuilt() && x.is_cuda() && w.defined() && w.scalar_type() == x.scalar_type() &&
           (x.scalar_type() == at::kFloat || x.scalar_type() == at::kHalf || x.scalar_type() == at::kBFloat16);
}

}  // namespace

bool fusedKernelsBuilt() {
#if defined(KOALA_FUSED_CUDA)
    return true;
#else
    return false;
#endif
}

bool fusedKernelsEnabled() {
    static const bool on = [] {
        const char* e = std::getenv("KOALA_FUSED_KERNELS");
        return fusedKernelsBuilt() && e && std::strcmp(e, "1") == 0;
    }();
    return on;
}

at::Tensor groupNormSiluFused(const GroupNormW& gn, const at::Tensor& x, bool silu) {
#if defined(KOALA_FUSED_CUDA)
    const int layout = layoutOf(x);
    cuda::ElemType t;
    if (!x.is_cuda() || layout < 0 || !elemType(x.scalar_type(), t) || gn.weight.scalar_type() != x.scalar_type() ||
        gn.bias.scalar_type() != x.scalar_type() || x.size(1) % gn.groups != 0)
        fail(ErrorKind::Internal,
             "fused GroupNorm: needs a 4-d CUDA tensor (NCHW or channels_last, f32/f16/bf16) "
             "with weights of its dtype");
    const c10::cuda::CUDAGuard guard(x.device());
    const at::Tensor w = gn.weight.contiguous(), b = gn.bias.contiguous();
    at::Tensor y = at::empty_like(x);  // keeps x's memory format
    at::Tensor stats = at::empty({x.size(0) * gn.groups * 2}, x.options().dtype(at::kFloat));
    check(cuda::groupNormSilu(x.data_ptr(), y.data_ptr(), w.data_ptr(), b.data_ptr(), stats.data_ptr<float>(), t,
                              x.size(0), x.size(1), x.size(2) * x.size(3), gn.groups, float(gn.eps), layout == 1, silu,
                              c10::cuda::getCurrentCUDAStream(x.device().index()).stream()),
          "fused GroupNorm+SiLU");
    return y;
#else
    (void)gn, (void)x, (void)silu;
    fail(ErrorKind::Internal, "fused kernels are not built in (a CUDA LibTorch and nvcc are needed)");
#endif
}

at::Tensor gegluFused(const at::Tensor& p) {
#if defined(KOALA_FUSED_CUDA)
    cuda::ElemType t;
    if (!p.is_cuda() || !elemType(p.scalar_type(), t) || p.size(-1) % 2 != 0)
        fail(ErrorKind::Internal, "fused GEGLU: needs a CUDA tensor (f32/f16/bf16) with an even last dimension");
    const c10::cuda::CUDAGuard guard(p.device());
    const at::Tensor pc = p.contiguous();
    const std::int64_t d = pc.size(-1) / 2;
    std::vector<std::int64_t> shape(pc.sizes().begin(), pc.sizes().end());
    shape.back() = d;
    at::Tensor out = at::empty(shape, pc.options());
    check(cuda::geglu(pc.data_ptr(), out.data_ptr(), t, pc.numel() / pc.size(-1), d,
                      c10::cuda::getCurrentCUDAStream(p.device().index()).stream()),
          "fused GEGLU");
    return out;
#else
    (void)p;
    fail(ErrorKind::Internal, "fused kernels are not built in (a CUDA LibTorch and nvcc are needed)");
#endif
}

at::Tensor groupNormSilu(const GroupNormW& gn, const at::Tensor& x) {
    if (fusedKernelsEnabled() && fusable(x, gn.weight) && layoutOf(x) >= 0 && x.size(1) % gn.groups == 0)
        return groupNormSiluFused(gn, x);
    return at::silu(gn(x));
}

at::Tensor geglu(const at::Tensor& p) {
    if (fusedKernelsEnabled() && fusable(p, p) && p.size(-1) % 2 == 0) return gegluFused(p);
    auto ag = p.chunk(2, -1);
    return ag[0] * at::gelu(ag[1]);  // exact (erf) GELU, as diffusers' GEGLU
}

}  // namespace koala::models
