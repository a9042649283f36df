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

void recordFailure(const std::string& why) {
    ++g_failures;
    std::lock_guard<std::mutex> lock(g_errorMutex);
    g_lastError = why;
}

// Graph runner state, shared by the std::function installed in ModelImpl::runner. Graphs are kept per input shape
// (resolution, batch, guidance on/off, dtype): switching between a few sizes replays instead of recapturing. The
// least recently used graph is dropped, with its private pool, beyond kMaxGraphs.
class GraphRunner {
public:
    GraphRunner(std::shared_ptr<models::Unet> unet, bool channelsLast, bool fp32)
        : m_unet(std::move(unet)), m_channelsLast(channelsLast), m_fp32(fp32) {}

    ~GraphRunner() {
        try {
            c10::cuda::device_synchronize();
            m_entries.clear();  // each entry drops its graph before its pool-backed output
        } catch (...) {}
    }

    at::Tensor operator()(const at::Tensor& x, double t, const at::Tensor& ctx, const at::Tensor& textEmbeds,
                          const at::Tensor& timeIds) {
        // An fp32 model asks for fp32 results: no TF32 convolutions for its calls (LibTorch allows them in cuDNN
        // by default), restored afterwards so that other models keep the process's setting.
        Tf32Scope tf32(!m_fp32);
        if (m_failed || !x.is_cuda()) return eager(x, t, ctx, textEmbeds, timeIds);
        try {
            return graphed(x, t, ctx, textEmbeds, timeIds);
        } catch (const std::exception& e) {
            fallBack(e.what());
        }
        return eager(x, t, ctx, textEmbeds, timeIds);
    }

private:
    static constexpr std::size_t kMaxGraphs = 3;
    using ShapeKey = std::tuple<std::vector<std::int64_t>, std::vector<std::int64_t>, std::vector<std::int64_t>,
                                std::vector<std::int64_t>, int /*dtype*/, int /*device*/>;
    using PoolId = decltype(at::cuda::graph_pool_handle());

    struct Tf32Scope {
        explicit Tf32Scope(bool allow) : m_saved(at::globalContext().allowTF32CuDNN()) {
            at::globalContext().setAllowTF32CuDNN(allow);
        }
        ~Tf32Scope() { at::globalContext().setAllowTF32CuDNN(m_saved); }
        bool m_saved;
    };

    // One captured graph with its static inputs and its output (which lives in the graph's private pool).
    struct Entry {
        ShapeKey key;
        PoolId pool{0, 0};
        at::Tensor sx, st /* 0-d float32 timestep */, sctx, stext, sids;
        std::unique_ptr<at::cuda::CUDAGraph> graph;
        at::Tensor out;
        std::uint64_t lastUse = 0;
        ~Entry() {
            graph.reset();  // the graph before its pool-backed output
            out = at::Tensor();
        }
    };

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

    Entry& entryFor(const at::Tensor& x, const at::Tensor& ctx, const at::Tensor& textEmbeds,
                    const at::Tensor& timeIds) {
        const ShapeKey key{
            dims(x), dims(ctx), dims(textEmbeds), dims(timeIds), int(x.scalar_type()), int(x.device().index())};
        for (auto& e : m_entries)
            if (e->key == key) return *e;
        if (m_entries.size() >= kMaxGraphs) {
            // Drop the least recently used graph and give its pool back before capturing a new one.
            auto lru = std::min_element(m_entries.begin(), m_entries.end(),
                                        [](const auto& a, const auto& b) { return a->lastUse < b->lastUse; });
            c10::cuda::device_synchronize();
            m_entries.erase(lru);
            c10::cuda::CUDACachingAllocator::emptyCache();
        }
        auto e = std::make_unique<Entry>();
        e->key = key;
        e->sx = staticLike(x, m_channelsLast);
        e->st = at::empty({}, at::TensorOptions().dtype(at::kFloat).device(m_unet->device()));
        e->sctx = staticLike(ctx);
        e->stext = staticLike(textEmbeds);
        e->sids = staticLike(timeIds);
        e->pool = at::cuda::graph_pool_handle();
        m_entries.push_back(std::move(e));
        return *m_entries.back();
    }

    at::Tensor graphed(const at::Tensor& x, double t, const at::Tensor& ctx, const at::Tensor& textEmbeds,
                       const at::Tensor& timeIds) {
        Entry& e = entryFor(x, ctx, textEmbeds, timeIds);
        e.lastUse = ++m_clock;
        fill(e.sx, x);
        fill(e.sctx, ctx);
        fill(e.stext, textEmbeds);
        fill(e.sids, timeIds);
        e.st.fill_(t);  // a kernel argument: no host buffer to keep alive; float32(t) as the double overload

        if (!e.graph) capture(e);
        e.graph->replay();  // on the current stream, after the copies above
        ++g_replays;
        return e.out.clone();
    }

    void capture(Entry& e) {
        const c10::DeviceIndex dev = e.sx.device().index();
        // One capture stream for the runner's lifetime (as torch.cuda.graph does): its cuBLAS handle and workspace
        // are created by the warm-up, not inside a capture.
        if (!m_stream || m_stream->device_index() != dev) m_stream = c10::cuda::getStreamFromPool(false, dev);
        c10::cuda::CUDAStream side = *m_stream;
        std::unique_ptr<at::cuda::CUDAGraph> graph;
        at::Tensor out;
        {
            c10::cuda::CUDAStreamGuard guard(side);
            // Warm-up on the capture stream for every new shape: cuDNN benchmark searches, cuBLAS handles and
            // workspaces, lazy kernel loading all happen outside the capture.
            c10::cuda::device_synchronize();  // the static inputs are filled
            for (int i = 0; i < 2; ++i) (void)m_unet->forward(e.sx, e.st, e.sctx, e.stext, e.sids);
            side.synchronize();
            // As torch.cuda.graph: synchronise and empty the cache, so that the warm-up's blocks are not kept
            // reserved beside the graph's private pool (that would double the reserved peak).
            c10::cuda::device_synchronize();
            c10::cuda::CUDACachingAllocator::emptyCache();
            graph = std::make_unique<at::cuda::CUDAGraph>();
            bool capturing = false;
            try {
                // Thread-local capture mode: a CUDA call from another thread (the studio's GUI thread, a preview
                // copy) cannot invalidate the capture.
                graph->capture_begin(e.pool, cudaStreamCaptureModeThreadLocal);
                capturing = true;
                // The timestep is read from e.st by the graph's kernels: one graph serves every step.
                out = m_unet->forward(e.sx, e.st, e.sctx, e.stext, e.sids);
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
        e.graph = std::move(graph);
        e.out = std::move(out);
    }

    void fallBack(const std::string& why) {
        m_failed = true;
        try {
            c10::cuda::device_synchronize();
            m_entries.clear();
            c10::cuda::CUDACachingAllocator::emptyCache();
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
    bool m_fp32 = false;
    bool m_failed = false;
    std::uint64_t m_clock = 0;
    std::optional<c10::cuda::CUDAStream> m_stream;
    std::vector<std::unique_ptr<Entry>> m_entries;
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
    // TF32 for fp32 models is switched off per UNet call by the runner (GraphRunner::Tf32Scope), not for the
    // whole process.

    // channels_last convolutions (NHWC is cuDNN's native layout for half-precision tensor-core convolutions).
    bool clUnet = false;
    if (!envDisabled("KOALA_CHANNELS_LAST")) {
        if (m.unet) clUnet = convertToChannelsLast(*m.unet);
        // A VAE shared with a Model loaded earlier was converted when that Model was loaded; it is never touched
        // again, so a loaded Model stays immutable for the Models that share its parts.
        if (m.vae && m.vae->decoder && !m.vae->channelsLast && convertToChannelsLast(*m.vae->decoder))
            m.vae->channelsLast = true;
        if (m.vae && m.vae->channelsLast) g_clVae = true;
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
    auto runner = std::make_shared<GraphRunner>(m.unet, clUnet, m.dtype == at::kFloat);
    m.runner = [runner](const at::Tensor& x, double t, const at::Tensor& ctx, const at::Tensor& te,
                        const at::Tensor& ids) { return (*runner)(x, t, ctx, te, ids); };
#endif
}

}  // namespace koala
