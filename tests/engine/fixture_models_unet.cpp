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
    KT_CHECK_EQ(unet->shapeName(), std::string("custom"));   // tiny channels: not a named full-size shape
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
