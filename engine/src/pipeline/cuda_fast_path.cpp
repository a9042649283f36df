// CUDA fast path: see model_impl.h. Owned by the performance work (issue: CUDA fast path and benchmark).
#include "pipeline/model_impl.h"

namespace koala {

void installCudaFastPath(ModelImpl& m) {
    if (!m.device.is_cuda()) return;
    // cuDNN picks the fastest convolution algorithms for our static shapes after the first step.
    at::globalContext().setBenchmarkCuDNN(true);
}

}  // namespace koala
