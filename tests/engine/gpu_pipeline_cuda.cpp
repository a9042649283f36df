// The pipeline on CUDA (label gpu; skipped, exit 77, where there is no CUDA device): the tiny fixtures against
// diffusers' reference runs in fp32 / fp16 / bf16, and the CUDA-graph UNet runner against eager calls.
#include "harness.h"
#include "pipeline_runs.h"

#include "pipeline/model_impl.h"
#include "pipeline/random_model.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>

namespace {

using kt::fromFloatTensor;
using kt::kPipelines;
using kt::maxLevelDiff;
using kt::referenceJson;
using kt::refFile;
using kt::requestFor;

void requireCuda() {
    if (!koala::cudaAvailable()) kt::skip("no CUDA device in this build/machine");
}

std::shared_ptr<koala::Model> loadCuda(const std::string& pipe, koala::DType dt,
                                       koala::MemoryMode mem = koala::MemoryMode::Default) {
    koala::LoadOptions lo = koala::defaultLoadOptions();
    lo.device = koala::Device::Cuda;
    lo.dtype = dt;
    lo.memory = mem;
    return koala::Model::load(kt::fixturePath(pipe), lo);
}

// Every reference run of `pipe` on CUDA: noise bit-identical, final latents within `tol`, everything finite.
void checkRuns(const std::string& pipe, koala::DType dt, double tol, int maxLevels,
               koala::MemoryMode mem = koala::MemoryMode::Default) {
    auto model = loadCuda(pipe, dt, mem);
    KT_CHECK_EQ(model->info().device, std::string("cuda"));
    auto ref = referenceJson(pipe);
    const std::string file = refFile(pipe);
    for (const auto& run : ref["runs"]) {
        const std::string id = run["id"];
        auto req = requestFor(run);
        auto res = model->generate(req);
        auto noise = fromFloatTensor(res.initialNoise);
        auto noiseRef = kt::loadTensor(file, "run." + id + ".initial_noise");
        KT_CHECK_MSG(noise.sizes() == noiseRef.sizes() && at::equal(noise, noiseRef),
                     pipe << "/" << id << ": initial noise is not bit-identical");
        auto fin = fromFloatTensor(res.finalLatents);
        KT_CHECK_MSG(at::isfinite(fin).all().item<bool>(), pipe << "/" << id << ": non-finite final latents");
        const double e = kt::relErr(fin, kt::loadTensor(file, "run." + id + ".final_latents"));
        std::fprintf(stderr, "  %s / %s / %s / %s: final latents rel err %.3g, peak %.1f MiB\n", pipe.c_str(),
                     id.c_str(), koala::toString(dt), koala::toString(mem), e,
                     double(res.timings.peakDeviceBytes) / (1 << 20));
        KT_CHECK_MSG(e < tol, pipe << "/" << id << ": final latents rel err " << e << " (tolerance " << tol << ")");
        KT_CHECK_EQ(int(res.images.size()), 1);
        KT_CHECK(res.timings.peakDeviceBytes > 0);
        if (maxLevels >= 0) {
            int diff = maxLevelDiff(res.images[0], kt::loadTensor(file, "run." + id + ".image"));
            KT_CHECK_MSG(diff <= maxLevels, pipe << "/" << id << ": 8-bit image differs by " << diff << " levels");
        }
    }
}

}  // namespace

KT_TEST(fixtures_on_cuda_fp32_match_diffusers) {
    requireCuda();
    for (const char* pipe : kPipelines) checkRuns(pipe, koala::DType::F32, 1e-3, 1);
}

KT_TEST(fixtures_on_cuda_fp16_and_bf16_match_diffusers_half_runs) {
    // diffusers' own float16/bfloat16 runs (tests/data/fixtures/half): a half run draws its noise in the half dtype,
    // another stream than the float32 runs', so the half runs are compared with diffusers' half runs, seed for seed.
    requireCuda();
    std::ifstream in(kt::fixturePath("half/reference.json"));
    const auto ref = nlohmann::json::parse(in);
    const std::string file = kt::fixturePath("half/reference.safetensors");
    for (koala::DType dt : {koala::DType::F16, koala::DType::BF16}) {
        const std::string name = dt == koala::DType::F16 ? "fp16" : "bf16";
        auto model = loadCuda("tiny-koala-700m", dt);
        int ran = 0;
        for (const auto& run : ref["runs"]) {
            if (run["dtype"] != name) continue;
            const std::string id = run["id"];
            auto res = model->generate(requestFor(run));
            auto noise = fromFloatTensor(res.initialNoise);
            auto noiseRef = kt::loadTensor(file, "run." + id + ".initial_noise");
            KT_CHECK_MSG(noise.sizes() == noiseRef.sizes() && at::equal(noise, noiseRef),
                         id << ": initial noise is not diffusers' " << name << " draw");
            auto fin = fromFloatTensor(res.finalLatents);
            KT_CHECK_MSG(at::isfinite(fin).all().item<bool>(), id << ": non-finite final latents");
            const double e = kt::relErr(fin, kt::loadTensor(file, "run." + id + ".final_latents"));
            std::fprintf(stderr, "  half / %s: final latents rel err %.3g\n", id.c_str(), e);
            const double tol = dt == koala::DType::F16 ? 0.02 : 0.05;
            KT_CHECK_MSG(e < tol, id << ": final latents rel err " << e << " (tolerance " << tol << ")");
            ++ran;
        }
        KT_CHECK(ran >= 1);
    }
}

KT_TEST(low_memory_mode_on_cuda_matches_diffusers) {
    requireCuda();
    checkRuns("tiny-koala-700m", koala::DType::F32, 1e-3, 1, koala::MemoryMode::Low);
}

KT_TEST(graph_runner_equals_eager_unet_calls) {
    requireCuda();
    for (koala::DType dt : {koala::DType::F32, koala::DType::F16}) {
        auto model = loadCuda("tiny-koala-1b", dt);
        auto& impl = koala::ModelAccess::impl(*model);
        KT_CHECK_MSG(bool(impl.runner), "no UNet runner installed on CUDA (KOALA_CUDA_GRAPHS=0 in the environment?)");
        if (!impl.runner) return;
        const std::string file = refFile("tiny-koala-1b");
        const auto dev = impl.device;
        const auto dtype = impl.dtype;
        auto sample = kt::loadTensor(file, "unet.sample").to(dev, dtype);
        auto ctx = kt::loadTensor(file, "unet.encoder_hidden_states").to(dev, dtype);
        auto te = kt::loadTensor(file, "unet.text_embeds").to(dev, dtype);
        auto ids = kt::loadTensor(file, "unet.time_ids").to(dev, dtype);
        const auto before = koala::cudaFastPathStats();
        for (double t : {999.0, 500.0, 1.0}) {
            // Twice per timestep with different inputs: the second call replays the graph captured by the first,
            // so a replay that ignored the new inputs would fail here.
            for (int k = 0; k < 2; ++k) {
                auto x = k == 0 ? sample : (sample * -0.5 + 0.25);
                auto c = k == 0 ? ctx : ctx.flip({1});
                auto viaRunner = impl.runner(x, t, c, te, ids).to(at::kFloat);
                auto eager = impl.unet->forward(x, t, c, te, ids).to(at::kFloat);
                KT_CHECK_MSG(at::isfinite(viaRunner).all().item<bool>(), "non-finite runner output at t=" << t);
                KT_CHECK_REL(viaRunner, eager, 1e-3);
            }
        }
        const auto after = koala::cudaFastPathStats();
        KT_CHECK_MSG(after.captureFailures == before.captureFailures, "CUDA graph capture failed: " << after.lastError);
        KT_CHECK_MSG(after.captures - before.captures == 1,
                     "captures (one graph serves every timestep): " << after.captures - before.captures);
        KT_CHECK_MSG(after.replays - before.replays == 6, "replays: " << after.replays - before.replays);

        // A whole run through the graphs equals the same run with the eager UNet.
        auto ref = referenceJson("tiny-koala-1b");
        auto req = requestFor(ref["runs"][0]);
        auto graphed = model->generate(req);
        auto runner = impl.runner;
        impl.runner = nullptr;
        auto eagerRun = model->generate(req);
        impl.runner = runner;
        KT_CHECK_REL(fromFloatTensor(graphed.finalLatents), fromFloatTensor(eagerRun.finalLatents), 1e-3);
        // Repeating the graphed run gives the same latents (replays reuse the captured graphs).
        auto again = model->generate(req);
        KT_CHECK_REL(fromFloatTensor(again.finalLatents), fromFloatTensor(graphed.finalLatents), 1e-5);
    }
}

KT_TEST(graphs_can_be_switched_off) {
    requireCuda();
    ::setenv("KOALA_CUDA_GRAPHS", "0", 1);
    auto model = loadCuda("tiny-koala-700m", koala::DType::F16);
    ::unsetenv("KOALA_CUDA_GRAPHS");
    const auto before = koala::cudaFastPathStats();
    auto ref = referenceJson("tiny-koala-700m");
    auto res = model->generate(requestFor(ref["runs"][0]));
    const auto after = koala::cudaFastPathStats();
    KT_CHECK_EQ(after.captures, before.captures);
    KT_CHECK_EQ(after.replays, before.replays);
    KT_CHECK(at::isfinite(fromFloatTensor(res.finalLatents)).all().item<bool>());
}

KT_TEST(random_full_size_koala_700m_step_on_cuda_is_finite) {
    // One small full-size KOALA-700M image in fp16 with random weights, through the graph runner (what koala-bench
    // times): random init must keep fp16 activations finite.
    requireCuda();
    koala::RandomModelOptions o;
    o.arch = "koala-700m";
    o.supportDir = kt::fixturePath("tiny-koala-700m");
    o.device = at::Device(at::kCUDA, 0);
    o.dtype = at::kHalf;
    auto m = koala::buildRandomModel(o);
    koala::installCudaFastPath(*m);
    KT_CHECK_EQ(m->unet->parameterCount(), koala::modelCardUnetParameters("koala-700m"));
    koala::GenerateRequest r = koala::defaultRequest();
    r.prompt = "a koala";
    r.negative = std::string("blurry");
    r.steps = 3;
    r.width = r.height = 256;
    r.keepLatents = true;
    auto res = m->generate(r, {}, nullptr);
    KT_CHECK(at::isfinite(fromFloatTensor(res.finalLatents)).all().item<bool>());
    KT_CHECK(res.timings.peakDeviceBytes > 0);
}
