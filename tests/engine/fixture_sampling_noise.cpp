// The seeded CPU generator reproduces the fixtures' `run.<id>.initial_noise` bit for bit (torch 2.11, float32).
#include "harness.h"

#include "sampling/noise.h"

#include <fstream>

#include <nlohmann/json.hpp>

using namespace koala::sampling;

namespace {

void checkPipeline(const std::string& pipe) {
    std::ifstream in(kt::fixturePath(pipe + "/reference.json"));
    KT_CHECK(in.good());
    const auto j = nlohmann::json::parse(in);
    const std::string ref = kt::fixturePath(pipe + "/reference.safetensors");
    int compared = 0;
    for (const auto& run : j.at("runs")) {
        const std::string id = run.at("id");
        const std::uint64_t seed = run.at("seed");
        const int64_t h = run.at("h"), w = run.at("w");
        at::Generator gen = makeCpuGenerator(seed);
        at::Tensor noise = randnCpu(gen, {1, 4, h / 8, w / 8});
        at::Tensor expected = kt::loadTensor(ref, "run." + id + ".initial_noise");
        KT_CHECK(noise.scalar_type() == at::kFloat);
        KT_CHECK(noise.sizes() == expected.sizes());
        if (noise.sizes() != expected.sizes()) continue;
        const double maxDiff = (noise - expected).abs().max().item<double>();
        KT_CHECK_MSG(maxDiff == 0.0, pipe << " run " << id << " (seed " << seed << "): max |diff| " << maxDiff);
        // A second draw continues the stream (EulerAncestral relies on it): it must not repeat the first.
        at::Tensor again = randnCpu(gen, {1, 4, h / 8, w / 8});
        KT_CHECK(!at::equal(again, noise));
        ++compared;
    }
    KT_CHECK_EQ(compared, 4);
}

}  // namespace

KT_TEST(initialNoise700m) { checkPipeline("tiny-koala-700m"); }
KT_TEST(initialNoise1b) { checkPipeline("tiny-koala-1b"); }

KT_TEST(sameSeedSameNoiseOtherSeedDifferent) {
    at::Generator a = makeCpuGenerator(42), b = makeCpuGenerator(42), c = makeCpuGenerator(43);
    at::Tensor x = randnCpu(a, {2, 4, 5, 7}), y = randnCpu(b, {2, 4, 5, 7}), z = randnCpu(c, {2, 4, 5, 7});
    KT_CHECK(at::equal(x, y));
    KT_CHECK(!at::equal(x, z));
    // Standard normal: mean ~0, std ~1 over 280 values.
    KT_CHECK(std::abs(x.mean().item<double>()) < 0.3);
    KT_CHECK(std::abs(x.std().item<double>() - 1.0) < 0.3);
}
