// The UNet against diffusers: one call per timestep on the tiny KOALA pipelines' fixed inputs (fp32, CPU).
#include "harness.h"

#include "io/model_folder.h"
#include "io/weights.h"
#include "models/unet.h"

#include <cstdio>

using namespace koala;

namespace {

void checkPipeline(const std::string& name) {
    const std::string dir = kt::fixturePath(name);
    const std::string ref = dir + "/reference.safetensors";
    const auto cfg = models::UnetConfig::fromConfig(io::Config::load(dir + "/unet/config.json"));
    auto store = io::WeightStore::openComponent(dir + "/unet", "diffusion_pytorch_model", "", "unet");
    store.setTarget(at::kFloat, at::kCPU);
    auto unet = models::Unet::load(cfg, store);
    store.finish();

    // Every floating-point tensor of the file is used, with its exact shape.
    KT_CHECK_EQ(unet->parameterCount(), store.parameterCount());
    KT_CHECK_EQ(unet->shapeName(), std::string("custom"));  // tiny channels: not a named full-size shape
    KT_CHECK(unet->dtype() == at::kFloat);

    const at::Tensor sample = kt::loadTensor(ref, "unet.sample");
    const at::Tensor ctx = kt::loadTensor(ref, "unet.encoder_hidden_states");
    const at::Tensor textEmbeds = kt::loadTensor(ref, "unet.text_embeds");
    const at::Tensor timeIds = kt::loadTensor(ref, "unet.time_ids");
    // 8×12 latents: W is not a multiple of 2^num_upsamplers = 4, so upsample sizes are forwarded.
    KT_CHECK(sample.size(2) == 8 && sample.size(3) == 12);

    for (int t : {999, 500, 1}) {
        const at::Tensor expected = kt::loadTensor(ref, "unet.t" + std::to_string(t) + ".out");
        const at::Tensor out = unet->forward(sample, t, ctx, textEmbeds, timeIds);
        KT_CHECK(out.sizes() == sample.sizes());
        KT_CHECK(out.scalar_type() == at::kFloat);
        std::printf("  %s t=%d: rel err %.3g\n", name.c_str(), t, kt::relErr(out, expected));
        KT_CHECK_REL(out, expected, 1e-4);
    }
}

}  // namespace

KT_TEST(tinyKoala1bMatchesDiffusers) { checkPipeline("tiny-koala-1b"); }

KT_TEST(tinyKoala700mMatchesDiffusers) { checkPipeline("tiny-koala-700m"); }

// The forward does not mutate its inputs (skips and residuals are shared tensors; the in-place adds must stay on
// fresh activations) and is deterministic.
KT_TEST(forwardLeavesInputsAlone) {
    const std::string dir = kt::fixturePath("tiny-koala-1b");
    const std::string ref = dir + "/reference.safetensors";
    const auto cfg = models::UnetConfig::fromConfig(io::Config::load(dir + "/unet/config.json"));
    auto store = io::WeightStore::openComponent(dir + "/unet", "diffusion_pytorch_model", "", "unet");
    store.setTarget(at::kFloat, at::kCPU);
    auto unet = models::Unet::load(cfg, store);
    const at::Tensor sample = kt::loadTensor(ref, "unet.sample");
    const at::Tensor ctx = kt::loadTensor(ref, "unet.encoder_hidden_states");
    const at::Tensor textEmbeds = kt::loadTensor(ref, "unet.text_embeds");
    const at::Tensor timeIds = kt::loadTensor(ref, "unet.time_ids");
    const at::Tensor s0 = sample.clone(), c0 = ctx.clone();
    const at::Tensor a = unet->forward(sample, 500, ctx, textEmbeds, timeIds);
    const at::Tensor b = unet->forward(sample, 500, ctx, textEmbeds, timeIds);
    KT_CHECK(at::equal(sample, s0));
    KT_CHECK(at::equal(ctx, c0));
    KT_CHECK(at::equal(a, b));
}

// channels_last activations (the CUDA fast path) give the same result: nothing in the forward assumes NCHW strides.
KT_TEST(channelsLastMatches) {
    const std::string dir = kt::fixturePath("tiny-koala-700m");
    const std::string ref = dir + "/reference.safetensors";
    const auto cfg = models::UnetConfig::fromConfig(io::Config::load(dir + "/unet/config.json"));
    auto store = io::WeightStore::openComponent(dir + "/unet", "diffusion_pytorch_model", "", "unet");
    store.setTarget(at::kFloat, at::kCPU);
    auto unet = models::Unet::load(cfg, store);
    const at::Tensor sample = kt::loadTensor(ref, "unet.sample").contiguous(at::MemoryFormat::ChannelsLast);
    const at::Tensor out = unet->forward(sample, 500, kt::loadTensor(ref, "unet.encoder_hidden_states"),
                                         kt::loadTensor(ref, "unet.text_embeds"), kt::loadTensor(ref, "unet.time_ids"));
    KT_CHECK_REL(out, kt::loadTensor(ref, "unet.t500.out"), 1e-4);
}

namespace {

std::shared_ptr<models::Unet> loadUnet(const std::string& dir) {
    const auto cfg = models::UnetConfig::fromConfig(io::Config::load(dir + "/unet/config.json"));
    auto store = io::WeightStore::openComponent(dir + "/unet", "diffusion_pytorch_model", "", "unet");
    store.setTarget(at::kFloat, at::kCPU);
    auto unet = models::Unet::load(cfg, store);
    store.finish();
    return unet;
}

}  // namespace

// toChannelsLast() (the CUDA fast path's hook) stores every conv weight channels_last in place and leaves the
// results unchanged, for NCHW and channels_last inputs.
KT_TEST(toChannelsLastKeepsResults) {
    for (const char* name : {"tiny-koala-1b", "tiny-koala-700m"}) {
        const std::string dir = kt::fixturePath(name);
        const std::string ref = dir + "/reference.safetensors";
        auto unet = loadUnet(dir);
        const at::Tensor sample = kt::loadTensor(ref, "unet.sample");
        const at::Tensor ctx = kt::loadTensor(ref, "unet.encoder_hidden_states");
        const at::Tensor textEmbeds = kt::loadTensor(ref, "unet.text_embeds");
        const at::Tensor timeIds = kt::loadTensor(ref, "unet.time_ids");
        const at::Tensor before = unet->forward(sample, 500, ctx, textEmbeds, timeIds);
        const std::int64_t params = unet->parameterCount();

        const auto nchw = unet->convWeights();
        KT_CHECK(!nchw.empty());
        bool anyNchwOnly = false;  // a 3x3 conv weight is not channels_last before the conversion
        for (const auto& w : nchw) anyNchwOnly = anyNchwOnly || !w.is_contiguous(at::MemoryFormat::ChannelsLast);
        KT_CHECK(anyNchwOnly);

        unet->toChannelsLast();
        const auto cl = unet->convWeights();
        KT_CHECK_EQ(cl.size(), nchw.size());
        for (const auto& w : cl) {
            KT_CHECK_EQ(w.dim(), 4);
            KT_CHECK(w.is_contiguous(at::MemoryFormat::ChannelsLast));
        }
        KT_CHECK_EQ(unet->parameterCount(), params);
        KT_CHECK(unet->dtype() == at::kFloat);

        const at::Tensor outCl =
            unet->forward(sample.contiguous(at::MemoryFormat::ChannelsLast), 500, ctx, textEmbeds, timeIds);
        const at::Tensor outNchw = unet->forward(sample, 500, ctx, textEmbeds, timeIds);
        std::printf("  %s channels_last: rel err %.3g vs before, %.3g (NCHW input)\n", name, kt::relErr(outCl, before),
                    kt::relErr(outNchw, before));
        KT_CHECK(outCl.sizes() == sample.sizes());
        KT_CHECK_REL(outCl, before, 1e-5);
        KT_CHECK_REL(outNchw, before, 1e-5);
        KT_CHECK_REL(outCl, kt::loadTensor(ref, "unet.t500.out"), 1e-4);
        for (int t : {999, 1})
            KT_CHECK_REL(unet->forward(sample.contiguous(at::MemoryFormat::ChannelsLast), t, ctx, textEmbeds, timeIds),
                         kt::loadTensor(ref, "unet.t" + std::to_string(t) + ".out"), 1e-4);
        // Idempotent.
        unet->toChannelsLast();
        KT_CHECK_REL(unet->forward(sample, 500, ctx, textEmbeds, timeIds), before, 1e-5);
    }
}

// The tensor-timestep overload (one CUDA graph for every step) computes what the double overload computes: 0-d,
// [1] and [B] timesteps, float32 or another dtype; per-sample timesteps in a batch.
KT_TEST(tensorTimestepMatchesDouble) {
    const std::string dir = kt::fixturePath("tiny-koala-1b");
    const std::string ref = dir + "/reference.safetensors";
    auto unet = loadUnet(dir);
    const at::Tensor sample = kt::loadTensor(ref, "unet.sample");
    const at::Tensor ctx = kt::loadTensor(ref, "unet.encoder_hidden_states");
    const at::Tensor textEmbeds = kt::loadTensor(ref, "unet.text_embeds");
    const at::Tensor timeIds = kt::loadTensor(ref, "unet.time_ids");
    const std::int64_t b = sample.size(0);
    const auto f32 = at::TensorOptions().dtype(at::kFloat);
    for (double t : {999.0, 500.0, 1.0, 0.0, 687.5, 123.456}) {
        const at::Tensor d = unet->forward(sample, t, ctx, textEmbeds, timeIds);
        const at::Tensor s0 = unet->forward(sample, at::scalar_tensor(t, f32), ctx, textEmbeds, timeIds);
        const at::Tensor s1 = unet->forward(sample, at::full({1}, t, f32), ctx, textEmbeds, timeIds);
        const at::Tensor sb = unet->forward(sample, at::full({b}, t, f32), ctx, textEmbeds, timeIds);
        const at::Tensor s64 =
            unet->forward(sample, at::scalar_tensor(t, f32.dtype(at::kDouble)), ctx, textEmbeds, timeIds);
        KT_CHECK_REL(s0, d, 1e-6);
        KT_CHECK_REL(s1, d, 1e-6);
        KT_CHECK_REL(sb, d, 1e-6);
        KT_CHECK_REL(s64, d, 1e-6);
    }
    // A reused timestep buffer refilled in place (what a CUDA graph replay sees).
    at::Tensor buf = at::empty({}, f32);
    for (int t : {999, 500, 1}) {
        buf.copy_(at::scalar_tensor(double(t), f32));
        KT_CHECK_REL(unet->forward(sample, buf, ctx, textEmbeds, timeIds),
                     kt::loadTensor(ref, "unet.t" + std::to_string(t) + ".out"), 1e-4);
    }
    // Per-sample timesteps: a doubled batch with [999, 1] per half is each half's own step.
    {
        auto two = [](const at::Tensor& x) { return at::cat({x, x}, 0); };
        at::Tensor ts = at::cat({at::full({b}, 999.0, f32), at::full({b}, 1.0, f32)});
        at::Tensor out = unet->forward(two(sample), ts, two(ctx), two(textEmbeds), two(timeIds));
        KT_CHECK_REL(out.slice(0, 0, b), unet->forward(sample, 999, ctx, textEmbeds, timeIds), 1e-5);
        KT_CHECK_REL(out.slice(0, b, 2 * b), unet->forward(sample, 1, ctx, textEmbeds, timeIds), 1e-5);
    }
    // Wrong shapes are errors, not broadcasts.
    KT_CHECK_THROWS(unet->forward(sample, at::zeros({b + 1}, f32), ctx, textEmbeds, timeIds),
                    koala::ErrorKind::InvalidArgument, "timestep");
    KT_CHECK_THROWS(unet->forward(sample, at::zeros({1, 1}, f32), ctx, textEmbeds, timeIds),
                    koala::ErrorKind::InvalidArgument, "timestep");
    KT_CHECK_THROWS(unet->forward(sample, at::Tensor(), ctx, textEmbeds, timeIds), koala::ErrorKind::InvalidArgument,
                    "timestep");
}
