// CUDA fast path: see model_impl.h. Owned by the performance work (issue: CUDA fast path and benchmark).
//
//  - cuDNN benchmark mode (static shapes: the algorithm search runs once per shape).
//  - channels_last convolution weights for the UNet and the VAE, when the models offer a `toChannelsLast()`
//    method (detected at compile time, so this file needs no change when models/unet.h and models/vae.h add it);
//    the UNet input is then fed channels_last too.
//  - A CUDA-graph UNet runner: ONE graph per (input shapes, dtype, device), captured through the tensor-timestep
//    Unet::forward overload with a static 0-d float32 timestep buffer, so every step replays the same graph (one
//    capture on the first image instead of one per timestep). The static inputs (x, context, text embeds, time ids)
//    are refilled with copy_() and the timestep buffer with fill_() (the float32 value of the timestep, as the double
//    overload computes it) before each replay; the output is cloned out of the graph's pool. A failed capture is
//    logged once and the runner falls back to eager calls for the rest of the process. KOALA_CUDA_GRAPHS=0 disables
//    graphs.
#include "pipeline/random_model.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>

#ifdef KOALA_WITH_CUDA
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#endif

namespace koala {
namespace {

// ---- process-wide counters (cudaFastPathStats) --------------------------------------------------------------------
std::atomic<std::int64_t> g_captures{0}, g_replays{0}, g_eager{0}, g_failures{0};
std::atomic<bool> g_clUnet{false}, g_clVae{false};
std::mutex g_errorMutex;
std::string g_lastError;

void recordFailure(const std::string& why) {
    ++g_failures;
    std::lock_guard<std::mutex> lock(g_errorMutex);
    g_lastError = why;
}

// ---- channels_last hook detection ---------------------------------------------------------------------------------
template <typename T, typename = void>
struct HasToChannelsLast : std::false_type {};
template <typename T>
struct HasToChannelsLast<T, std::void_t<decltype(std::declval<T&>().toChannelsLast())>> : std::true_type {};

template <typename T>
bool convertToChannelsLast(T& model) {
    if constexpr (HasToChannelsLast<T>::value) {
        model.toChannelsLast();
        return true;
    } else {
        (void)model;
        return false;
    }
}

bool envDisabled(const char* name) {
    const char* v = std::getenv(name);
    return v && (std::strcmp(v, "0") == 0 || std::strcmp(v, "off") == 0 || std::strcmp(v, "false") == 0);
}

#ifdef KOALA_WITH_CUDA

// Graph runner state, shared by the std::function installed in ModelImpl::runner.
class GraphRunner {
public:
    GraphRunner(std::shared_ptr<models::Unet> unet, bool channelsLast, bool lowMemory)
        : m_unet(std::move(unet)), m_channelsLast(channelsLast), m_lowMemory(lowMemory) {}

    ~GraphRunner() {
        // Graphs before the pool-backed outputs, as in reset().
        try {
            reset();
        } catch (...) {}
    }

    at::Tensor operator()(const at::Tensor& x, double t, const at::Tensor& ctx, const at::Tensor& textEmbeds,
                          const at::Tensor& timeIds) {
        if (m_failed || !x.is_cuda()) return eager(x, t, ctx, textEmbeds, timeIds);
        try {
            return graphed(x, t, ctx, textEmbeds, timeIds);
        } catch (const std::exception& e) {
            fallBack(e.what());
        }
        return eager(x, t, ctx, textEmbeds, timeIds);
    }

private:
    using ShapeKey = std::tuple<std::vector<std::int64_t>, std::vector<std::int64_t>, std::vector<std::int64_t>,
                                std::vector<std::int64_t>, int /*dtype*/, int /*device*/>;

    at::Tensor eager(const at::Tensor& x, double t, const at::Tensor& ctx, const at::Tensor& textEmbeds,
                     const at::Tensor& timeIds) {
        ++g_eager;
        if (m_channelsLast && x.is_cuda())
            return m_unet->forward(x.contiguous(at::MemoryFormat::ChannelsLast), t, ctx, textEmbeds, timeIds);
        return m_unet->forward(x, t, ctx, textEmbeds, timeIds);
    }

    static std::vector<std::int64_t> dims(const at::Tensor& t) {
        return t.defined() ? std::vector<std::int64_t>(t.sizes().begin(), t.sizes().end())
                           : std::vector<std::int64_t>{-1};
    }

    static at::Tensor staticLike(const at::Tensor& t, bool channelsLast = false) {
        if (!t.defined()) return t;
        auto opts = t.options();
        return channelsLast ? at::empty(t.sizes(), opts.memory_format(at::MemoryFormat::ChannelsLast))
                            : at::empty(t.sizes(), opts);
    }

    static void fill(at::Tensor& dst, const at::Tensor& src) {
        if (dst.defined()) dst.copy_(src, /*non_blocking=*/true);
    }

    void reset() {
        c10::cuda::device_synchronize();
        // The graph before its pool-backed output.
        m_graph.reset();
        m_out = at::Tensor();
        m_sx = m_st = m_sctx = m_stext = m_sids = at::Tensor();
        m_haveShape = false;
        m_pool = PoolId{0, 0};
    }

    at::Tensor graphed(const at::Tensor& x, double t, const at::Tensor& ctx, const at::Tensor& textEmbeds,
                       const at::Tensor& timeIds) {
        const ShapeKey key{
            dims(x), dims(ctx), dims(textEmbeds), dims(timeIds), int(x.scalar_type()), int(x.device().index())};
        // A new resolution / batch / dtype: drop the old graph and its pool, allocate new static inputs.
        if (!m_haveShape || key != m_key) {
            reset();
            m_key = key;
            m_haveShape = true;
            m_sx = staticLike(x, m_channelsLast);
            m_st = at::empty({}, at::TensorOptions().dtype(at::kFloat).device(m_unet->device()));
            m_sctx = staticLike(ctx);
            m_stext = staticLike(textEmbeds);
            m_sids = staticLike(timeIds);
            m_pool = at::cuda::graph_pool_handle();
            m_warm = false;
        }
        fill(m_sx, x);
        fill(m_sctx, ctx);
        fill(m_stext, textEmbeds);
        fill(m_sids, timeIds);
        m_st.fill_(t);  // a kernel argument: no host buffer to keep alive; float32(t) as the double overload

        if (!m_graph) capture();
        m_graph->replay();  // on the current stream, after the copies above
        ++g_replays;
        return m_out.clone();
    }

    void capture() {
        const c10::DeviceIndex dev = m_sx.device().index();
        c10::cuda::device_synchronize();  // the static inputs are filled
        if (m_lowMemory) c10::cuda::CUDACachingAllocator::emptyCache();
        // One capture stream for the runner's lifetime (as torch.cuda.graph does): its cuBLAS handle and workspace
        // are created by the warm-up, not inside a capture.
        if (!m_stream || m_stream->device_index() != dev) m_stream = c10::cuda::getStreamFromPool(false, dev);
        c10::cuda::CUDAStream side = *m_stream;
        std::unique_ptr<at::cuda::CUDAGraph> graph;
        at::Tensor out;
        {
            c10::cuda::CUDAStreamGuard guard(side);
            if (!m_warm) {
                // Warm-up on the capture stream: cuDNN benchmark searches, cuBLAS handles and workspaces, lazy
                // kernel loading all happen outside the capture.
                for (int i = 0; i < 2; ++i) (void)m_unet->forward(m_sx, m_st, m_sctx, m_stext, m_sids);
                side.synchronize();
                m_warm = true;
            }
            graph = std::make_unique<at::cuda::CUDAGraph>();
            bool capturing = false;
            try {
                graph->capture_begin(m_pool);
                capturing = true;
                // The timestep is read from m_st by the graph's kernels: one graph serves every step.
                out = m_unet->forward(m_sx, m_st, m_sctx, m_stext, m_sids);
                capturing = false;
                graph->capture_end();
            } catch (...) {
                if (capturing) {
                    // End the stream capture so that the stream is usable again; the graph is discarded.
                    try {
                        graph->capture_end();
                    } catch (...) {}
                }
                out = at::Tensor();
                graph.reset();
                (void)cudaGetLastError();  // clear a non-sticky error left by the invalidated capture
                throw;
            }
        }
        c10::cuda::device_synchronize();
        ++g_captures;
        m_graph = std::move(graph);
        m_out = std::move(out);
    }

    void fallBack(const std::string& why) {
        m_failed = true;
        try {
            reset();
        } catch (...) {}
        recordFailure(why);
        static std::once_flag logged;
        std::call_once(logged, [&] {
            std::string line = why.substr(0, why.find('\n'));
            std::fprintf(stderr, "koala: CUDA graph capture of the UNet failed (%s); running it eagerly\n",
                         line.c_str());
        });
    }

    std::shared_ptr<models::Unet> m_unet;
    bool m_channelsLast = false;
    bool m_lowMemory = false;
    bool m_failed = false;
    bool m_warm = false;
    bool m_haveShape = false;
    using PoolId = decltype(at::cuda::graph_pool_handle());
    ShapeKey m_key;
    PoolId m_pool{0, 0};
    std::optional<c10::cuda::CUDAStream> m_stream;
    at::Tensor m_sx, m_st /* 0-d float32 timestep */, m_sctx, m_stext, m_sids;
    std::unique_ptr<at::cuda::CUDAGraph> m_graph;
    at::Tensor m_out;  // lives in the graph's pool
};

#endif  // KOALA_WITH_CUDA

}  // namespace

CudaFastPathStats cudaFastPathStats() {
    CudaFastPathStats s;
#ifdef KOALA_WITH_CUDA
    s.compiled = true;
#endif
    s.captures = g_captures.load();
    s.replays = g_replays.load();
    s.eagerCalls = g_eager.load();
    s.captureFailures = g_failures.load();
    s.channelsLastUnet = g_clUnet.load();
    s.channelsLastVae = g_clVae.load();
    std::lock_guard<std::mutex> lock(g_errorMutex);
    s.lastError = g_lastError;
    return s;
}

void installCudaFastPath(ModelImpl& m) {
    if (!m.device.is_cuda()) return;
    // cuDNN picks the fastest convolution algorithms for our static shapes after the first step.
    at::globalContext().setBenchmarkCuDNN(true);
    // An fp32 model asked for fp32 results: no TF32 convolutions (LibTorch enables them for cuDNN by default), so
    // the CUDA results stay within the fixtures' fp32 tolerances. Half-precision models are unaffected.
    if (m.dtype == at::kFloat) at::globalContext().setAllowTF32CuDNN(false);

    // channels_last convolutions (NHWC is cuDNN's native layout for half-precision tensor-core convolutions).
    bool clUnet = false;
    if (!envDisabled("KOALA_CHANNELS_LAST")) {
        if (m.unet) clUnet = convertToChannelsLast(*m.unet);
        if (m.vae && m.vae->decoder && convertToChannelsLast(*m.vae->decoder)) g_clVae = true;
    }
    if (clUnet) g_clUnet = true;

#ifdef KOALA_WITH_CUDA
    if (!m.unet) return;
    if (envDisabled("KOALA_CUDA_GRAPHS")) {
        if (clUnet) {
            auto unet = m.unet;
            m.runner = [unet](const at::Tensor& x, double t, const at::Tensor& ctx, const at::Tensor& te,
                              const at::Tensor& ids) {
                ++g_eager;
                return unet->forward(x.contiguous(at::MemoryFormat::ChannelsLast), t, ctx, te, ids);
            };
        }
        return;
    }
    auto runner = std::make_shared<GraphRunner>(m.unet, clUnet, m.memory == MemoryMode::Low);
    m.runner = [runner](const at::Tensor& x, double t, const at::Tensor& ctx, const at::Tensor& te,
                        const at::Tensor& ids) { return (*runner)(x, t, ctx, te, ids); };
#endif
}

}  // namespace koala
