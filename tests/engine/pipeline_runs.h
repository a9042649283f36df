// Helpers shared by the tests that replay diffusers' reference runs (reference.json `runs`) through koala::Model.
#pragma once

#include "harness.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <string>

namespace kt {

inline const char* const kPipelines[] = {"tiny-koala-700m", "tiny-koala-1b"};

inline nlohmann::json referenceJson(const std::string& pipe) {
    std::ifstream in(fixturePath(pipe + "/reference.json"));
    return nlohmann::json::parse(in);
}

inline std::string refFile(const std::string& pipe) { return fixturePath(pipe + "/reference.safetensors"); }

// The request that reproduces one reference run (latents kept for comparison).
inline koala::GenerateRequest requestFor(const nlohmann::json& run) {
    koala::GenerateRequest r = koala::defaultRequest();
    r.prompt = run["prompt"];
    if (!run["neg"].is_null()) r.negative = run["neg"].get<std::string>();
    r.seed = run["seed"];
    r.steps = run["steps"];
    r.guidance = run["guidance"];
    r.width = run["w"];
    r.height = run["h"];
    bool ok = koala::fromString(run["sched"].get<std::string>(), r.scheduler);
    KT_CHECK_MSG(ok, "unknown scheduler in reference.json: " << run["sched"]);
    r.keepLatents = true;
    return r;
}

inline at::Tensor fromFloatTensor(const koala::FloatTensor& t) {
    return at::from_blob(const_cast<float*>(t.data.data()), t.shape, at::kFloat).clone();
}

// Max per-channel difference in 8-bit levels between our image and the reference [1,3,H,W] in [0,1].
inline int maxLevelDiff(const koala::Image& img, const at::Tensor& ref01) {
    auto ref = ref01.mul(255.0).round().clamp(0, 255).to(at::kInt)[0].permute({1, 2, 0}).contiguous();
    if (ref.size(0) != img.height || ref.size(1) != img.width) return 999;
    auto ours =
        at::from_blob(const_cast<std::uint8_t*>(img.rgb.data()), {img.height, img.width, 3}, at::kByte).to(at::kInt);
    return (ours - ref).abs().max().item<int>();
}

}  // namespace kt
