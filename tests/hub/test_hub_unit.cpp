// koala_hub without a network: file selection, names, hashing, environment, cache status and removal.
#include "hub_test.h"
#include "internal.h"
#include "koala/hub.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;
namespace hub = koala::hub;
using hub::ErrorKind;

namespace {

const char* kIndex = R"({"_class_name": "StableDiffusionXLPipeline", "feature_extractor": [null, null],
  "scheduler": ["diffusers", "EulerDiscreteScheduler"], "text_encoder": ["transformers", "CLIPTextModel"],
  "tokenizer": ["transformers", "CLIPTokenizer"], "unet": ["diffusers", "UNet2DConditionModel"],
  "vae": ["diffusers", "AutoencoderKL"]})";

bool has(const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

HT_TEST(selects_what_the_pipeline_needs) {
    const std::vector<std::string> repo = {
        ".gitattributes",
        "README.md",
        "koala.png",
        "assets/sample.jpg",
        "model_index.json",
        "sd_xl_base_1.0.safetensors",  // a single-file checkpoint outside the components
        "scheduler/scheduler_config.json",
        "text_encoder/config.json",
        "text_encoder/model.safetensors",
        "text_encoder/model.fp16.safetensors",
        "text_encoder/pytorch_model.bin",
        "text_encoder/flax_model.msgpack",
        "tokenizer/vocab.json",
        "tokenizer/merges.txt",
        "tokenizer/special_tokens_map.json",
        "tokenizer/tokenizer_config.json",
        "unet/config.json",
        "unet/diffusion_pytorch_model.safetensors.index.json",
        "unet/diffusion_pytorch_model-00001-of-00002.safetensors",
        "unet/diffusion_pytorch_model-00002-of-00002.safetensors",
        "unet/diffusion_pytorch_model.safetensors.index.fp16.json",
        "unet/diffusion_pytorch_model.fp16-00001-of-00002.safetensors",
        "unet/diffusion_pytorch_model.fp16-00002-of-00002.safetensors",
        "unet/diffusion_pytorch_model.fp16.bin",
        "unet/model.onnx",
        "vae/config.json",
        "vae/diffusion_pytorch_model.safetensors",
        "vae/diffusion_pytorch_model.bin",
        "vae_decoder/model.onnx",
        "vae_decoder/config.json",
        "vae_encoder/model.onnx",
        "feature_extractor/preprocessor_config.json",
        "unet/nested/extra.json"};
    auto sel = hub::selectPipelineFiles(repo, kIndex);
    const std::vector<std::string> expected = {"model_index.json",
                                               "scheduler/scheduler_config.json",
                                               "text_encoder/config.json",
                                               "text_encoder/model.fp16.safetensors",
                                               "tokenizer/merges.txt",
                                               "tokenizer/special_tokens_map.json",
                                               "tokenizer/tokenizer_config.json",
                                               "tokenizer/vocab.json",
                                               "unet/config.json",
                                               "unet/diffusion_pytorch_model.fp16-00001-of-00002.safetensors",
                                               "unet/diffusion_pytorch_model.fp16-00002-of-00002.safetensors",
                                               "unet/diffusion_pytorch_model.safetensors.index.fp16.json",
                                               "vae/config.json",
                                               "vae/diffusion_pytorch_model.safetensors"};
    HT_CHECK_EQ(sel.size(), expected.size());
    for (const auto& e : expected) HT_CHECK_MSG(has(sel, e), e << " not selected");
    for (const auto& s : sel) HT_CHECK_MSG(has(expected, s), s << " selected");

    auto plain = hub::selectPipelineFiles(repo, kIndex, "plain");
    HT_CHECK(has(plain, "text_encoder/model.safetensors") && !has(plain, "text_encoder/model.fp16.safetensors"));
    HT_CHECK(has(plain, "unet/diffusion_pytorch_model.safetensors.index.json"));
    HT_CHECK(has(plain, "unet/diffusion_pytorch_model-00002-of-00002.safetensors"));
    HT_CHECK(!has(plain, "unet/diffusion_pytorch_model.fp16-00001-of-00002.safetensors"));
    auto all = hub::selectPipelineFiles(repo, kIndex, "all");
    HT_CHECK(has(all, "text_encoder/model.safetensors") && has(all, "text_encoder/model.fp16.safetensors"));
    HT_CHECK(!has(all, "vae/diffusion_pytorch_model.bin"));
    // The other index spellings of a variant.
    auto other = hub::selectPipelineFiles(
        {"model_index.json", "unet/diffusion_pytorch_model.fp16.safetensors.index.json",
         "unet/diffusion_pytorch_model.safetensors.fp16.index.json", "unet/diffusion_pytorch_model.safetensors",
         "unet/diffusion_pytorch_model.ema.safetensors"},
        kIndex);
    HT_CHECK(has(other, "unet/diffusion_pytorch_model.fp16.safetensors.index.json"));
    HT_CHECK(has(other, "unet/diffusion_pytorch_model.safetensors.fp16.index.json"));
    HT_CHECK(!has(other, "unet/diffusion_pytorch_model.safetensors"));
    HT_CHECK(!has(other, "unet/diffusion_pytorch_model.ema.safetensors"));
    HT_CHECK_THROWS(hub::selectPipelineFiles(repo, "not json"), ErrorKind::Protocol, "model_index.json");
    HT_CHECK_THROWS(hub::selectPipelineFiles(repo, kIndex, "fp8"), ErrorKind::Usage, "fp8");
}

HT_TEST(names_paths_and_etags) {
    HT_CHECK_EQ(hub::repoFolderName("etri-vilab/koala-700m-llava-cap"), "models--etri-vilab--koala-700m-llava-cap");
    HT_CHECK_EQ(hub::repoFolderName("gpt2"), "models--gpt2");
    for (const char* bad : {"", "a/b/c", "../x", "a/..", "a b/c", "-a/b", "a//b", "a--b/c", "a/b.", "/a"})
        HT_CHECK_THROWS(hub::validateRepoId(bad), ErrorKind::Usage, "invalid repo id");
    using namespace hub::detail;
    HT_CHECK_EQ(normalizeEtag("W/\"abc\""), "abc");
    HT_CHECK_EQ(normalizeEtag("\"abc\""), "abc");
    HT_CHECK_EQ(blobLinkTarget("model_index.json", "e"), "../../blobs/e");
    HT_CHECK_EQ(blobLinkTarget("unet/config.json", "e"), "../../../blobs/e");
    HT_CHECK(isCommitHash(std::string(40, 'a')) && !isCommitHash(std::string(40, 'A')) && !isCommitHash("main"));
    HT_CHECK(isSha256(std::string(64, '0')) && !isSha256(std::string(40, '0')));
    HT_CHECK(safeRepoPath("unet/config.json") && !safeRepoPath("../x") && !safeRepoPath("a/./b") &&
             !safeRepoPath("/etc/passwd") && !safeRepoPath("a//b") && !safeRepoPath(""));
}

HT_TEST(sha256_matches_known_digests) {
    using hub::detail::Sha256;
    Sha256 a;
    HT_CHECK_EQ(a.hexDigest(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    Sha256 b;
    b.update("abc", 3);
    HT_CHECK_EQ(b.hexDigest(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    // Fed in odd pieces: the million 'a' vector of FIPS 180-2.
    Sha256 c;
    std::string chunk(997, 'a');
    std::size_t left = 1000000;
    while (left) {
        std::size_t n = std::min(left, chunk.size());
        c.update(chunk.data(), n);
        left -= n;
    }
    HT_CHECK_EQ(c.hexDigest(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

HT_TEST(sha1_and_git_blob_ids_match_git) {
    using hub::detail::Sha1;
    Sha1 a;
    HT_CHECK_EQ(a.hexDigest(), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    Sha1 b;
    b.update("abc", 3);
    HT_CHECK_EQ(b.hexDigest(), "a9993e364706816aba3e25717850c26c9cd0d89d");
    Sha1 c;  // a million 'a' in odd pieces (FIPS 180-2)
    std::string chunk(997, 'a');
    for (std::size_t left = 1000000; left;) {
        const std::size_t n = std::min(left, chunk.size());
        c.update(chunk.data(), n);
        left -= n;
    }
    HT_CHECK_EQ(c.hexDigest(), "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
    // What `git hash-object` prints, and what the hub gives as the ETag of a small file.
    HT_CHECK_EQ(hub::detail::gitBlobSha1(""), "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
    HT_CHECK_EQ(hub::detail::gitBlobSha1("hello world\n"), "3b18e512dba79e4c8300dd08aeb37f8e728b8dad");
    const std::string file = ht::tempRoot() + "/blob.txt";
    std::ofstream(file, std::ios::binary) << "hello world\n";
    HT_CHECK_EQ(hub::detail::gitBlobSha1OfFile(file), "3b18e512dba79e4c8300dd08aeb37f8e728b8dad");
    HT_CHECK_EQ(hub::detail::gitBlobSha1OfFile(ht::tempRoot() + "/missing"), "");
}

HT_TEST(environment_as_huggingface_hub_reads_it) {
    const std::string root = ht::tempRoot() + "/env";
    fs::create_directories(root + "/home");
    std::ofstream(root + "/home/token") << "hf_filetoken\n";
    ::setenv("HF_HOME", (root + "/home").c_str(), 1);
    ::unsetenv("HF_HUB_CACHE");
    ::unsetenv("HUGGINGFACE_HUB_CACHE");
    ::unsetenv("HF_TOKEN");
    ::unsetenv("HF_TOKEN_PATH");
    ::setenv("HF_ENDPOINT", "http://mirror.example/", 1);
    ::setenv("HF_HUB_OFFLINE", "yes", 1);
    auto e = hub::environmentFromEnv();
    HT_CHECK_EQ(e.cacheDir, root + "/home/hub");
    HT_CHECK_EQ(e.token, "hf_filetoken");
    HT_CHECK_EQ(e.endpoint, "http://mirror.example");
    HT_CHECK(e.offline);
    ::setenv("HF_HUB_CACHE", (root + "/cache").c_str(), 1);
    ::setenv("HF_TOKEN", "hf_envtoken", 1);
    ::setenv("HF_HUB_OFFLINE", "0", 1);
    ::unsetenv("HF_ENDPOINT");
    e = hub::environmentFromEnv();
    HT_CHECK_EQ(e.cacheDir, root + "/cache");
    HT_CHECK_EQ(e.token, "hf_envtoken");
    HT_CHECK_EQ(e.endpoint, "https://huggingface.co");
    HT_CHECK(!e.offline);
    for (const char* v : {"HF_HOME", "HF_HUB_CACHE", "HF_TOKEN", "HF_HUB_OFFLINE"}) ::unsetenv(v);
}

namespace {
// A cache repo with two snapshots sharing one blob, one ref each, and a partial download.
fs::path makeCache(const std::string& cache) {
    const fs::path repo = fs::path(cache) / "models--org--pipe";
    fs::create_directories(repo / "blobs");
    auto blob = [&](const std::string& name, const std::string& text) { std::ofstream(repo / "blobs" / name) << text; };
    blob("shared", std::string(100, 's'));
    blob("old-only", std::string(1000, 'o'));
    blob("new-only", std::string(10, 'n'));
    blob("index", R"({"unet": ["diffusers", "UNet2DConditionModel"]})");
    blob("x.incomplete", std::string(50, 'x'));
    const std::string oldC(40, 'a'), newC(40, 'b');
    for (const auto& [c, own] : {std::pair{oldC, "old-only"}, std::pair{newC, "new-only"}}) {
        const fs::path snap = repo / "snapshots" / c;
        fs::create_directories(snap / "unet");
        fs::create_symlink("../../blobs/index", snap / "model_index.json");
        fs::create_symlink("../../../blobs/shared", snap / "unet" / "config.json");
        fs::create_symlink(std::string("../../../blobs/") + own, snap / "unet" / "w.safetensors");
    }
    fs::create_directories(repo / "refs");
    std::ofstream(repo / "refs" / "main") << newC;
    std::ofstream(repo / "refs" / "v1") << oldC;
    return repo;
}
}  // namespace

HT_TEST(cache_status_and_removal_keep_shared_blobs) {
    const std::string cache = ht::tempRoot() + "/cache-status";
    const fs::path repo = makeCache(cache);
    auto all = hub::scanCache(cache);
    HT_CHECK_EQ(all.size(), 1u);
    auto st = hub::repoStatus(cache, "org/pipe");
    HT_CHECK(st.has_value());
    if (!st) return;
    HT_CHECK_EQ(st->repoId, "org/pipe");
    HT_CHECK_EQ(st->snapshots.size(), 2u);
    HT_CHECK(st->installed());
    HT_CHECK_EQ(st->loadablePath(), (repo / "snapshots" / std::string(40, 'b')).string());
    HT_CHECK_EQ(st->incompleteFiles, 1);
    HT_CHECK_EQ(st->incompleteBytes, 50u);
    HT_CHECK(!st->downloading);
    HT_CHECK(!hub::repoStatus(cache, "org/other"));
    HT_CHECK(hub::cachedSnapshot(cache, "org/pipe", "v1").has_value());
    HT_CHECK(!hub::cachedSnapshot(cache, "org/pipe", "v2").has_value());

    // A dangling link makes a snapshot incomplete.
    fs::remove(repo / "blobs" / "new-only");
    st = hub::repoStatus(cache, "org/pipe");
    for (const auto& s : st->snapshots)
        if (s.commit == std::string(40, 'b')) {
            HT_CHECK(!s.complete);
            HT_CHECK(!s.missing.empty() && s.missing[0] == "unet/w.safetensors");
        }
    HT_CHECK_EQ(st->loadablePath(), (repo / "snapshots" / std::string(40, 'a')).string());
    std::ofstream(repo / "blobs" / "new-only") << std::string(10, 'n');

    // Busy while a download holds the repo lock.
    {
        hub::detail::FileLock held;
        HT_CHECK(held.tryLock(hub::detail::repoLockPath(cache, "org/pipe"), hub::detail::FileLock::Mode::Shared));
        HT_CHECK(hub::repoStatus(cache, "org/pipe")->downloading);
        HT_CHECK_THROWS(hub::removeRevision(cache, "org/pipe", "v1"), ErrorKind::Busy, "running");
    }
    // Removing v1 frees only its own blob; the shared one stays for main.
    HT_CHECK_EQ(hub::removeRevision(cache, "org/pipe", "v1"), 1000u);
    HT_CHECK(!fs::exists(repo / "blobs" / "old-only"));
    HT_CHECK(fs::exists(repo / "blobs" / "shared") && fs::exists(repo / "blobs" / "index"));
    HT_CHECK(!fs::exists(repo / "refs" / "v1") && fs::exists(repo / "refs" / "main"));
    HT_CHECK(hub::cachedSnapshot(cache, "org/pipe", "main").has_value());
    HT_CHECK_THROWS(hub::removeRevision(cache, "org/pipe", "v1"), ErrorKind::NotFound, "not in the cache");
    HT_CHECK_EQ(hub::removeIncomplete(cache, "org/pipe"), 50u);
    // The last snapshot takes the repo with it.
    HT_CHECK(hub::removeRevision(cache, "org/pipe", "main") > 0);
    HT_CHECK(!fs::exists(repo));
    makeCache(cache);
    HT_CHECK(hub::removeRepo(cache, "org/pipe") > 1000u);
    HT_CHECK(hub::scanCache(cache).empty());
}

int main() { return ht::runAll(); }
