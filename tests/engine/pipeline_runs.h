// Helpers shared by the tests that replay diffusers' reference runs (reference.json `runs`) through koala::Model.
#pragma once

#include "harness.h"

#include <nlohmann/json.hpp>

#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
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

// One shell word: 'text' with every ' written as '\''.
inline std::string shellQuote(const std::string& s) {
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

// Runs the koala-cli that ctest names in KOALA_CLI with ARGS (already shell-quoted), stdout discarded; its stderr
// goes to STDERRTEXT. Returns the exit status (-1 when it did not exit normally); skips the test without KOALA_CLI.
inline int runCli(const std::string& args, std::string& stderrText) {
    const char* cli = std::getenv("KOALA_CLI");
    if (!cli) skip("KOALA_CLI is not set (run through ctest)");
    std::string errFile = tempDir() + "/stderr.txt";
    std::string cmd = shellQuote(cli) + " " + args + " 2>" + shellQuote(errFile) + " >/dev/null";
    int rc = std::system(cmd.c_str());
    std::ifstream in(errFile);
    stderrText.assign((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

}  // namespace kt
