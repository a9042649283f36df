// koala_hub and `koala-cli --download` against a local stand-in for the hub (tests/hub/fake_hub.py): full download,
// resume after a dropped connection and after a restart, a wrong checksum, 404, 401/403, a full disk, two downloads
// at once, offline mode, cancel, and a reference run of the downloaded pipeline.
#include "hub_test.h"
#include "internal.h"
#include "koala/hub.h"

#include <nlohmann/json.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

namespace fs = std::filesystem;
namespace hub = koala::hub;
using hub::ErrorKind;

namespace {

const std::string kFixture = std::string(KOALA_TEST_DATA) + "/fixtures/tiny-koala-700m";

// The fake hub, started once for all tests.
struct Server {
    pid_t pid = -1;
    int port = 0;
    std::string error;
    Server() {
        int fds[2];
        if (::pipe(fds) != 0) return;
        pid = ::fork();
        if (pid == 0) {
            ::dup2(fds[1], 1);
            ::close(fds[0]);
            ::close(fds[1]);
            const char* py = std::getenv("KOALA_PYTHON") ? std::getenv("KOALA_PYTHON") : "python3";
            const std::string script = std::string(KOALA_HUB_TEST_DIR) + "/fake_hub.py";
            ::execlp(py, py, script.c_str(), "--fixture", kFixture.c_str(), (char*)nullptr);
            std::_Exit(127);
        }
        ::close(fds[1]);
        std::string line;
        char c;
        while (::read(fds[0], &c, 1) == 1 && c != '\n') line += c;
        ::close(fds[0]);
        if (line.rfind("PORT ", 0) == 0) port = std::atoi(line.c_str() + 5);
        if (!port) error = "the fake hub did not start (python3 missing?): '" + line + "'";
    }
    ~Server() {
        if (pid > 0) {
            ::kill(pid, SIGTERM);
            ::waitpid(pid, nullptr, 0);
        }
    }
    std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port); }
};

Server& server() {
    static Server s;
    if (!s.port) ht::skip(s.error);
    return s;
}

// A minimal HTTP GET for the server's request log (the tests do not depend on the client for it).
nlohmann::json serverLog(bool clear = true) {
    hub::DownloadOptions o;
    (void)o;
    const std::string url = server().endpoint() + "/_log" + (clear ? "?clear=1" : "");
    const std::string out = ht::tempRoot() + "/log.json";
    const std::string cmd = "python3 -c \"import sys,urllib.request;sys.stdout.write(urllib.request.urlopen('" + url +
                            "').read().decode())\" > " + out;
    if (std::system(cmd.c_str()) != 0) return nlohmann::json::array();
    return nlohmann::json::parse(ht::readFile(out));
}

hub::DownloadOptions options(const std::string& cacheName) {
    hub::DownloadOptions o;
    o.env.endpoint = server().endpoint();
    o.env.cacheDir = ht::tempRoot() + "/" + cacheName;
    o.env.token.clear();
    o.env.offline = false;
    o.stallSeconds = 10;
    return o;
}

std::string sha256Of(const std::string& data) {
    hub::detail::Sha256 h;
    h.update(data.data(), data.size());
    return h.hexDigest();
}

// What the snapshot must hold: fixture path -> repo path (fp16 variant where the fake hub has one).
std::vector<std::pair<std::string, std::string>> expectedFiles() {
    std::vector<std::pair<std::string, std::string>> out;
    for (auto& e : fs::recursive_directory_iterator(kFixture)) {
        if (!e.is_regular_file()) continue;
        std::string rel = fs::relative(e.path(), kFixture).generic_string();
        if (rel.rfind("reference.", 0) == 0) continue;
        std::string repoPath = rel;
        if (rel == "unet/diffusion_pytorch_model.safetensors")
            repoPath = "unet/diffusion_pytorch_model.fp16.safetensors";
        if (rel == "text_encoder/model.safetensors" || rel == "text_encoder_2/model.safetensors")
            repoPath = rel.substr(0, rel.size() - 12) + ".fp16.safetensors";
        out.emplace_back(rel, repoPath);
    }
    return out;
}

// Checks a downloaded snapshot against the fixture and the huggingface_hub layout.
void checkSnapshot(const std::string& cache, const std::string& repoId, const std::string& snapshotDir) {
    const fs::path repo = fs::path(cache) / hub::repoFolderName(repoId);
    const fs::path snap(snapshotDir);
    HT_CHECK_EQ(snap.parent_path().string(), (repo / "snapshots").string());
    const std::string commit = snap.filename().string();
    HT_CHECK(hub::detail::isCommitHash(commit));
    HT_CHECK_EQ(ht::readFile((repo / "refs" / "main").string()), commit);
    const auto expected = expectedFiles();
    int files = 0;
    for (auto& e : fs::recursive_directory_iterator(snap)) {
        if (e.is_directory()) continue;
        ++files;
        HT_CHECK_MSG(e.is_symlink(), e.path() << " is not a symlink");
    }
    HT_CHECK_EQ(files, int(expected.size()));
    for (const auto& [rel, repoPath] : expected) {
        const fs::path link = snap / repoPath;
        HT_CHECK_MSG(fs::is_symlink(link), repoPath << " missing");
        if (!fs::is_symlink(link)) continue;
        const std::string target = fs::read_symlink(link).string();
        const std::string data = ht::readFile((fs::path(kFixture) / rel).string());
        const bool lfs = repoPath.size() > 12 && repoPath.compare(repoPath.size() - 12, 12, ".safetensors") == 0;
        const std::string etag = fs::path(target).filename().string();
        HT_CHECK_EQ(target, hub::detail::blobLinkTarget(repoPath, etag));
        if (lfs)
            HT_CHECK_EQ(etag, sha256Of(data));
        else  // the hub's ETag of a small file: its git blob id (what `git hash-object` prints)
            HT_CHECK_EQ(etag, hub::detail::gitBlobSha1(data));
        HT_CHECK_MSG(ht::readFile(link.string()) == data, repoPath << " differs from the fixture");
    }
    for (auto& e : fs::directory_iterator(repo / "blobs"))
        HT_CHECK_MSG(e.path().extension() != ".incomplete", e.path() << " left behind");
}

bool logHas(const nlohmann::json& log, const std::string& pathPart, const std::string& method = "") {
    for (const auto& r : log)
        if (r["path"].get<std::string>().find(pathPart) != std::string::npos &&
            (method.empty() || r["method"] == method))
            return true;
    return false;
}

int countCdnGets(const nlohmann::json& log) {
    int n = 0;
    for (const auto& r : log)
        if (r["method"] == "GET" && r["path"].get<std::string>().rfind("/cdn/", 0) == 0) ++n;
    return n;
}

std::string shellQuote(const std::string& s) {
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

struct CliRun {
    int rc = -1;
    std::string out, err;
};

CliRun runCli(const std::string& args, const std::string& env, const std::string& tag) {
    const char* cli = std::getenv("KOALA_CLI");
    if (!cli) ht::skip("KOALA_CLI is not set (run through ctest)");
    CliRun r;
    const std::string o = ht::tempRoot() + "/" + tag + ".out", e = ht::tempRoot() + "/" + tag + ".err";
    const std::string cmd = env + " " + shellQuote(cli) + " " + args + " >" + shellQuote(o) + " 2>" + shellQuote(e);
    const int rc = std::system(cmd.c_str());
    r.rc = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    r.out = ht::readFile(o);
    r.err = ht::readFile(e);
    return r;
}

// Safetensors F32 tensors, read without LibTorch.
std::vector<float> readF32(const std::string& file, const std::string& name) {
    const std::string d = ht::readFile(file);
    if (d.size() < 8) return {};
    std::uint64_t n = 0;
    std::memcpy(&n, d.data(), 8);
    auto h = nlohmann::json::parse(d.substr(8, n));
    if (!h.contains(name) || h[name]["dtype"] != "F32") return {};
    const auto off = h[name]["data_offsets"];
    const std::size_t a = off[0].get<std::size_t>(), b = off[1].get<std::size_t>();
    std::vector<float> out((b - a) / 4);
    std::memcpy(out.data(), d.data() + 8 + n + a, b - a);
    return out;
}

}  // namespace

HT_TEST(full_download_into_the_hf_cache_layout) {
    auto o = options("full");
    serverLog();
    std::vector<hub::DownloadProgress> seen;
    o.progress = [&](const hub::DownloadProgress& p) { seen.push_back(p); };
    const auto r = hub::download("koala/tiny", o);
    HT_CHECK(!r.fromCache);
    checkSnapshot(o.env.cacheDir, "koala/tiny", r.snapshotDir);
    HT_CHECK_EQ(r.files.size(), expectedFiles().size());
    HT_CHECK(r.bytesDownloaded > 10'000'000);
    // Only what the pipeline needs was asked for: no .bin, no ONNX folders, no README or images, no plain weights
    // where an fp16 variant exists; the VAE (no variant) came plain.
    auto log = serverLog();
    for (const char* never : {".bin", ".onnx", "vae_encoder/", "vae_decoder/", "README", "koala.png", ".gitattributes",
                              "unet/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors"})
        HT_CHECK_MSG(!logHas(log, never), "requested " << never);
    HT_CHECK(logHas(log, "vae/diffusion_pytorch_model.safetensors", "HEAD"));
    HT_CHECK(logHas(log, "/api/models/koala/tiny/revision/main"));
    // Progress: every phase, bytes that add up, a rate and time left.
    bool downloading = false, verifying = false, rate = false;
    for (const auto& p : seen) {
        downloading |= p.phase == hub::DownloadProgress::Phase::Downloading;
        verifying |= p.phase == hub::DownloadProgress::Phase::Verifying;
        rate |= p.bytesPerSecond > 0 || p.secondsLeft >= 0;
        HT_CHECK(p.bytesDone <= p.bytesTotal || p.bytesTotal == 0);
    }
    HT_CHECK(downloading && verifying && rate);
    HT_CHECK(!seen.empty() && seen.back().phase == hub::DownloadProgress::Phase::Done);
    HT_CHECK(!seen.empty() && seen.back().bytesDone == seen.back().bytesTotal);
    // Status for the studio's model list.
    auto st = hub::repoStatus(o.env.cacheDir, "koala/tiny");
    HT_CHECK(st && st->installed() && st->loadablePath() == r.snapshotDir && !st->downloading);
    HT_CHECK(st && st->snapshots.size() == 1 && st->snapshots[0].refs == std::vector<std::string>{"main"});
    // A second download fetches nothing.
    auto again = hub::download("koala/tiny", o);
    HT_CHECK_EQ(again.snapshotDir, r.snapshotDir);
    HT_CHECK_EQ(again.bytesDownloaded, 0u);
    HT_CHECK_EQ(countCdnGets(serverLog()), 0);
    // By commit hash: no ref written for it, same snapshot.
    o.revision = r.commit;
    HT_CHECK_EQ(hub::download("koala/tiny", o).snapshotDir, r.snapshotDir);
    HT_CHECK(!fs::exists(fs::path(r.repoDir) / "refs" / r.commit));
}

HT_TEST(resume_after_a_dropped_connection) {
    auto o = options("flaky");
    serverLog();
    const auto r = hub::download("koala/flaky-a", o);
    checkSnapshot(o.env.cacheDir, "koala/flaky-a", r.snapshotDir);
    int ranged = 0;
    for (const auto& e : serverLog())
        if (!e["range"].is_null() && e["status"] == 206) ++ranged;
    HT_CHECK_MSG(ranged >= 3, ranged << " ranged requests");  // each large file was cut once and resumed
}

HT_TEST(resume_after_a_restart) {
    auto o = options("restart");
    o.retries = 0;
    HT_CHECK_THROWS(hub::download("koala/flaky-b", o), ErrorKind::Network, "run the download again to resume");
    const fs::path repo = fs::path(o.env.cacheDir) / "models--koala--flaky-b";
    // Several files were on their way at once: each one's partial file stays.
    std::vector<std::uintmax_t> partials;
    std::uintmax_t partialBytes = 0;
    int partialFiles = 0;
    for (auto& e : fs::directory_iterator(repo / "blobs"))
        if (e.path().extension() == ".incomplete") {
            ++partialFiles;
            partialBytes += e.file_size();
            if (e.file_size() > 0) partials.push_back(e.file_size());
        }
    HT_CHECK(!partials.empty());
    HT_CHECK(!hub::cachedSnapshot(o.env.cacheDir, "koala/flaky-b"));
    auto st = hub::repoStatus(o.env.cacheDir, "koala/flaky-b");
    HT_CHECK(st && !st->installed() && st->incompleteFiles == partialFiles && st->incompleteBytes == partialBytes);
    // What is left to fetch, as the model manager shows it.
    const auto plan = hub::planDownload("koala/flaky-b", o);
    HT_CHECK_EQ(plan.bytesPartial, partialBytes);
    HT_CHECK(plan.bytesLeft() + plan.bytesPartial + plan.bytesCached == plan.bytesTotal);
    serverLog();
    o.retries = 5;
    const auto r = hub::download("koala/flaky-b", o);
    checkSnapshot(o.env.cacheDir, "koala/flaky-b", r.snapshotDir);
    const auto log = serverLog();
    for (const auto partial : partials) {
        bool resumedAt = false;
        for (const auto& e : log)
            resumedAt |= e["range"].is_string() && e["range"] == "bytes=" + std::to_string(partial) + "-";
        HT_CHECK_MSG(resumedAt, "no request resumed at byte " << partial);
    }
}

HT_TEST(a_wrong_checksum_is_refused_and_not_left_in_place) {
    auto o = options("corrupt");
    HT_CHECK_THROWS(hub::download("koala/corrupt", o), ErrorKind::Checksum, "unet/diffusion_pytorch_model.fp16");
    const fs::path repo = fs::path(o.env.cacheDir) / "models--koala--corrupt";
    const std::string sha = sha256Of(ht::readFile(kFixture + "/unet/diffusion_pytorch_model.safetensors"));
    HT_CHECK(!fs::exists(repo / "blobs" / sha));
    HT_CHECK(!fs::exists(repo / "blobs" / (sha + ".incomplete")));
    HT_CHECK(!hub::cachedSnapshot(o.env.cacheDir, "koala/corrupt"));
    HT_CHECK(!fs::exists(repo / "refs" / "main"));
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(repo / "snapshots", ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
        HT_CHECK_MSG(it->path().filename() != "model_index.json", "a snapshot that looks complete");
}

HT_TEST(not_found_names_the_repo_or_revision) {
    auto o = options("notfound");
    HT_CHECK_THROWS(hub::download("koala/missing", o), ErrorKind::NotFound, "koala/missing");
    HT_CHECK(!fs::exists(fs::path(o.env.cacheDir) / "models--koala--missing"));  // nothing left behind
    o.revision = "v9";
    HT_CHECK_THROWS(hub::download("koala/tiny", o), ErrorKind::NotFound, "revision 'v9'");
    o.revision = "main";
    HT_CHECK_THROWS(hub::download("bad id!", o), ErrorKind::Usage, "invalid repo id");
}

HT_TEST(tokens_401_and_gated_403) {
    auto o = options("auth");
    HT_CHECK_THROWS(hub::download("koala/private", o), ErrorKind::Unauthorized, "HF_TOKEN");
    o.env.token = "wrong";
    HT_CHECK_THROWS(hub::download("koala/private", o), ErrorKind::Unauthorized, "refused the token");
    o.env.token = "secret-token";
    serverLog();
    const auto r = hub::download("koala/private", o);
    checkSnapshot(o.env.cacheDir, "koala/private", r.snapshotDir);
    // The token goes to the hub, not to the CDN.
    for (const auto& e : serverLog())
        if (e["path"].get<std::string>().rfind("/koala/private/", 0) == 0) HT_CHECK(e["auth"] == "Bearer secret-token");
    o.env.token.clear();
    HT_CHECK_THROWS(hub::download("koala/gated", o), ErrorKind::Forbidden, "accept its terms");
}

HT_TEST(a_full_disk_is_reported_and_resumes_later) {
    auto o = options("diskfull");
    serverLog();
    o.assumeFreeBytes = 1000;
    HT_CHECK_THROWS(hub::download("koala/tiny", o), ErrorKind::DiskFull, "not enough disk space");
    HT_CHECK_EQ(countCdnGets(serverLog()), 0);  // refused before any large file
    o.assumeFreeBytes = -1;
    o.failWritesAfterBytes = 3'000'000;
    HT_CHECK_THROWS(hub::download("koala/tiny", o), ErrorKind::DiskFull, "no space left");
    HT_CHECK(!hub::cachedSnapshot(o.env.cacheDir, "koala/tiny"));
    auto st = hub::repoStatus(o.env.cacheDir, "koala/tiny");
    HT_CHECK(st && st->incompleteFiles >= 1);  // one per file that was on its way
    o.failWritesAfterBytes = -1;
    const auto r = hub::download("koala/tiny", o);
    checkSnapshot(o.env.cacheDir, "koala/tiny", r.snapshotDir);
}

HT_TEST(two_downloads_at_once) {
    auto o = options("twice");
    serverLog();
    std::string dirs[2];
    std::string errors[2];
    std::thread t[2];
    for (int i = 0; i < 2; ++i)
        t[i] = std::thread([&, i] {
            try {
                dirs[i] = hub::download("koala/slow-a", o).snapshotDir;
            } catch (const std::exception& e) {
                errors[i] = e.what();
            }
        });
    for (auto& th : t) th.join();
    HT_CHECK_MSG(errors[0].empty() && errors[1].empty(), errors[0] << " / " << errors[1]);
    HT_CHECK_EQ(dirs[0], dirs[1]);
    checkSnapshot(o.env.cacheDir, "koala/slow-a", dirs[0]);
    // Each large blob crossed the network once: the other download waited on its lock and found it done.
    HT_CHECK_EQ(countCdnGets(serverLog()), 4);
}

HT_TEST(a_small_file_with_the_wrong_git_blob_id_is_refused) {
    auto o = options("corrupt-small");
    HT_CHECK_THROWS(hub::download("koala/corrupt-small", o), ErrorKind::Checksum, "unet/config.json: git blob id");
    const fs::path repo = fs::path(o.env.cacheDir) / "models--koala--corrupt-small";
    const std::string id = hub::detail::gitBlobSha1(ht::readFile(kFixture + "/unet/config.json"));
    HT_CHECK(!fs::exists(repo / "blobs" / id));
    HT_CHECK(!fs::exists(repo / "blobs" / (id + ".incomplete")));
    HT_CHECK(!hub::cachedSnapshot(o.env.cacheDir, "koala/corrupt-small"));
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(repo / "snapshots", ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
        HT_CHECK_MSG(it->path().filename() != "model_index.json", "a snapshot that looks complete");
    // The other files of the repo verify: the check is not refusing everything.
    for (auto& e : fs::directory_iterator(repo / "blobs"))
        if (e.path().extension() != ".incomplete" && hub::detail::isCommitHash(e.path().filename().string()))
            HT_CHECK_EQ(hub::detail::gitBlobSha1(ht::readFile(e.path().string())), e.path().filename().string());
}

HT_TEST(plan_gives_the_exact_size_of_what_download_fetches) {
    auto o = options("plan");
    serverLog();
    const auto plan = hub::planDownload("koala/tiny", o);
    // Only the listing (with blobs=true) and model_index.json were asked for; nothing was written.
    auto log = serverLog();
    HT_CHECK_EQ(log.size(), 2u);
    HT_CHECK(logHas(log, "/api/models/koala/tiny/revision/main"));
    HT_CHECK(logHas(log, "/resolve/" + plan.commit + "/model_index.json", "GET"));
    HT_CHECK(!fs::exists(fs::path(o.env.cacheDir) / "models--koala--tiny"));
    // The same files as a download takes (fp16 variant, no .bin/ONNX/README), each with its size and blob id.
    std::uint64_t expectedBytes = 0, snapshotBytes = 0;  // a blob two paths share (the tokenizers') counts once
    std::set<std::string> blobs;
    std::vector<std::string> expectedPaths;
    for (const auto& [rel, repoPath] : expectedFiles()) {
        const std::string data = ht::readFile(kFixture + "/" + rel);
        snapshotBytes += data.size();
        if (blobs.insert(sha256Of(data)).second) expectedBytes += data.size();
        expectedPaths.push_back(repoPath);
        bool found = false;
        for (const auto& f : plan.files)
            if (f.path == repoPath) {
                found = true;
                HT_CHECK_EQ(f.size, data.size());
                HT_CHECK_EQ(f.etag, f.lfs ? sha256Of(data) : hub::detail::gitBlobSha1(data));
                HT_CHECK(!f.cached && f.partialBytes == 0);
            }
        HT_CHECK_MSG(found, repoPath << " not planned");
    }
    HT_CHECK_EQ(plan.files.size(), expectedPaths.size());
    HT_CHECK_EQ(plan.bytesTotal, expectedBytes);
    HT_CHECK_EQ(plan.bytesLeft(), expectedBytes);
    HT_CHECK(plan.bytesCached == 0 && plan.bytesPartial == 0);
    HT_CHECK(hub::detail::isCommitHash(plan.commit));
    // The download fetches exactly that much, and afterwards all of it is cached.
    const auto r = hub::download("koala/tiny", o);
    HT_CHECK_EQ(r.bytesTotal, snapshotBytes);
    HT_CHECK_EQ(r.bytesDownloaded, plan.bytesTotal);
    HT_CHECK(expectedBytes < snapshotBytes);
    HT_CHECK_EQ(r.commit, plan.commit);
    serverLog();
    const auto after = hub::planDownload("koala/tiny", o);
    HT_CHECK(after.bytesCached == after.bytesTotal && after.bytesLeft() == 0);
    HT_CHECK_EQ(serverLog().size(), 1u);  // model_index.json came from the cache
    // Another variant choice, another set: plain weights where fp16 exist.
    o.variant = "plain";
    const auto plain = hub::planDownload("koala/tiny", o);
    HT_CHECK(std::any_of(plain.files.begin(), plain.files.end(), [](const hub::PlannedFile& f) {
        return f.path == "unet/diffusion_pytorch_model.safetensors";
    }));
    HT_CHECK(std::none_of(plain.files.begin(), plain.files.end(),
                          [](const hub::PlannedFile& f) { return f.path.find(".fp16.") != std::string::npos; }));
    // Errors as download()'s; offline it does not ask.
    o.variant = "auto";
    HT_CHECK_THROWS(hub::planDownload("koala/missing", o), ErrorKind::NotFound, "koala/missing");
    HT_CHECK_THROWS(hub::planDownload("koala/private", o), ErrorKind::Unauthorized, "HF_TOKEN");
    o.env.offline = true;
    HT_CHECK_THROWS(hub::planDownload("koala/tiny", o), ErrorKind::Offline, "HF_HUB_OFFLINE");
    o.env.offline = false;
    o.env.endpoint = "http://127.0.0.1:9";
    HT_CHECK_THROWS(hub::planDownload("koala/tiny", o), ErrorKind::Network, "cannot reach");
}

HT_TEST(parallel_files_with_one_combined_progress) {
    for (const int parallel : {1, 3}) {
        auto o = options("parallel" + std::to_string(parallel));
        o.parallelFiles = parallel;
        std::mutex m;
        int maxActive = 0, readyFiles = -1;
        std::uint64_t last = 0, readyTotal = 0;
        bool monotonic = true, withinTotal = true;
        o.progress = [&](const hub::DownloadProgress& p) {
            std::lock_guard<std::mutex> guard(m);  // the calls come one at a time; the test checks that too
            if (p.phase == hub::DownloadProgress::Phase::Ready) {
                readyFiles = p.fileCount;
                readyTotal = p.bytesTotal;
                last = p.bytesDone;
            }
            if (readyFiles < 0) return;
            maxActive = std::max(maxActive, p.filesActive);
            monotonic &= p.bytesDone >= last;
            withinTotal &= p.bytesDone <= p.bytesTotal && p.bytesTotal == readyTotal;
            last = p.bytesDone;
        };
        const auto r = hub::download("koala/slow-par" + std::to_string(parallel), o);
        checkSnapshot(o.env.cacheDir, "koala/slow-par" + std::to_string(parallel), r.snapshotDir);
        std::set<std::string> blobs;  // all but model_index.json, a blob two paths share once
        for (const auto& [rel, repoPath] : expectedFiles())
            if (repoPath != "model_index.json") blobs.insert(sha256Of(ht::readFile(kFixture + "/" + rel)));
        HT_CHECK_EQ(readyFiles, int(blobs.size()));
        HT_CHECK(monotonic && withinTotal);
        HT_CHECK_EQ(last, readyTotal);
        if (parallel == 1)
            HT_CHECK_EQ(maxActive, 1);
        else
            HT_CHECK_MSG(maxActive >= 2 && maxActive <= parallel, maxActive << " files at once");
    }
}

HT_TEST(offline_mode_and_an_unreachable_hub_use_the_cache) {
    auto o = options("offline");
    const auto r = hub::download("koala/tiny", o);
    o.env.endpoint = "http://127.0.0.1:9";  // nothing listens there
    o.env.offline = true;
    auto off = hub::download("koala/tiny", o);
    HT_CHECK(off.fromCache);
    HT_CHECK_EQ(off.snapshotDir, r.snapshotDir);
    HT_CHECK_THROWS(hub::download("koala/other", o), ErrorKind::Offline, "HF_HUB_OFFLINE");
    o.revision = "v2";
    HT_CHECK_THROWS(hub::download("koala/tiny", o), ErrorKind::Offline, "revision v2");
    o.revision = "main";
    o.env.offline = false;
    auto unreachable = hub::download("koala/tiny", o);
    HT_CHECK(unreachable.fromCache && unreachable.snapshotDir == r.snapshotDir);
    HT_CHECK_THROWS(hub::download("koala/other", o), ErrorKind::Network, "cannot reach");
}

HT_TEST(cancel_keeps_the_partial_file_for_a_resume) {
    auto o = options("cancel");
    hub::CancelToken cancel;
    o.cancel = &cancel;
    o.progress = [&](const hub::DownloadProgress& p) {
        if (p.phase == hub::DownloadProgress::Phase::Downloading && p.fileBytes > 500'000) cancel.cancel();
    };
    HT_CHECK_THROWS(hub::download("koala/slow-b", o), ErrorKind::Cancelled, "cancelled");
    auto st = hub::repoStatus(o.env.cacheDir, "koala/slow-b");
    HT_CHECK(st && !st->installed() && st->incompleteFiles >= 1 && !st->downloading);
    cancel.reset();
    o.progress = nullptr;
    const auto r = hub::download("koala/slow-b", o);
    checkSnapshot(o.env.cacheDir, "koala/slow-b", r.snapshotDir);
}

HT_TEST(cli_download_then_a_reference_run_of_the_downloaded_pipeline) {
    if (!hub::downloadBuiltIn()) ht::skip("built without libcurl");
    const std::string cache = ht::tempRoot() + "/cli";
    const std::string env = "HF_ENDPOINT=" + shellQuote(server().endpoint()) + " HF_HUB_CACHE=" + shellQuote(cache) +
                            " HF_TOKEN= HF_HUB_OFFLINE=";
    auto r = runCli("--download koala/tiny", env, "dl");
    HT_CHECK_MSG(r.rc == 0, r.err);
    const std::string snap = r.out.substr(0, r.out.find('\n'));
    HT_CHECK_EQ(r.out, snap + "\n");  // only the snapshot folder on stdout
    checkSnapshot(cache, "koala/tiny", snap);
    HT_CHECK_MSG(r.err.find("[1/") != std::string::npos && r.err.find("B/s") != std::string::npos &&
                     r.err.find(" left") != std::string::npos,
                 r.err);
    // The total comes first: "N files, X MB to download", before the first file's progress.
    const auto total = r.err.find(" MB to download\n");
    HT_CHECK_MSG(total != std::string::npos && total < r.err.find("[1/"), r.err);
    auto again = runCli("--download koala/tiny --parallel 2", env, "dl2");
    HT_CHECK_MSG(again.rc == 0 && again.out == r.out, again.err);
    HT_CHECK_MSG(again.err.find("nothing to download") != std::string::npos, again.err);
    HT_CHECK_EQ(runCli("--download koala/tiny --parallel 0", env, "u4").rc, 2);
    // Usage errors exit 2, runtime errors 1, as koala-cli's others.
    HT_CHECK_EQ(runCli("--download", env, "u1").rc, 2);
    HT_CHECK_EQ(runCli("--download koala/tiny --revision", env, "u2").rc, 2);
    HT_CHECK_EQ(runCli("--download 'no/such/id'", env, "u3").rc, 2);
    auto nf = runCli("--download koala/missing", env, "nf");
    HT_CHECK_EQ(nf.rc, 1);
    HT_CHECK_MSG(nf.err.find("koala-cli: error: repository koala/missing not found") != std::string::npos, nf.err);
    auto un = runCli("--download koala/private", env, "un");
    HT_CHECK(un.rc == 1 && un.err.find("HF_TOKEN") != std::string::npos);
    auto off = runCli("--download koala/other", env + " HF_HUB_OFFLINE=1", "off");
    HT_CHECK(off.rc == 1 && off.err.find("HF_HUB_OFFLINE") != std::string::npos);
    auto offOk = runCli("--download koala/tiny", env + " HF_HUB_OFFLINE=1", "offok");
    HT_CHECK(offOk.rc == 0 && offOk.out == snap + "\n");

    // Two koala-cli processes at once into one cache.
    const std::string cache2 = ht::tempRoot() + "/cli-two";
    const std::string env2 = "HF_ENDPOINT=" + shellQuote(server().endpoint()) + " HF_HUB_CACHE=" + shellQuote(cache2);
    CliRun two[2];
    std::thread th[2];
    for (int i = 0; i < 2; ++i)
        th[i] = std::thread([&, i] { two[i] = runCli("--download koala/slow-c", env2, "two" + std::to_string(i)); });
    for (auto& t : th) t.join();
    HT_CHECK_MSG(two[0].rc == 0 && two[1].rc == 0, two[0].err << two[1].err);
    HT_CHECK(two[0].out == two[1].out && !two[0].out.empty());
    if (!two[0].out.empty()) checkSnapshot(cache2, "koala/slow-c", two[0].out.substr(0, two[0].out.size() - 1));

    // The downloaded folder reproduces diffusers' reference run (tests/data/fixtures/tiny-koala-700m).
    auto ref = nlohmann::json::parse(ht::readFile(kFixture + "/reference.json"));
    const auto& run = ref["runs"][0];
    const std::string id = run["id"];
    const std::string lat = ht::tempRoot() + "/cli-latents.safetensors";
    std::string args =
        "--model " + shellQuote(snap) + " --variant auto --prompt " + shellQuote(run["prompt"].get<std::string>()) +
        " --seed " + std::to_string(run["seed"].get<long long>()) + " --steps " +
        std::to_string(run["steps"].get<int>()) + " --guidance " + std::to_string(run["guidance"].get<double>()) +
        " --scheduler " + run["sched"].get<std::string>() + " --width " + std::to_string(run["w"].get<int>()) +
        " --height " + std::to_string(run["h"].get<int>()) + " --device cpu --dtype fp32 --out " +
        shellQuote(ht::tempRoot() + "/cli.png") + " --save-latents " + shellQuote(lat);
    if (!run["neg"].is_null()) args += " --negative " + shellQuote(run["neg"].get<std::string>());
    auto gen = runCli(args, "", "gen");
    HT_CHECK_MSG(gen.rc == 0, gen.err);
    const std::string refFile = kFixture + "/reference.safetensors";
    auto noise = readF32(lat, "initial_noise"), noiseRef = readF32(refFile, "run." + id + ".initial_noise");
    HT_CHECK(!noise.empty() && noise == noiseRef);
    auto latents = readF32(lat, "latents"), latentsRef = readF32(refFile, "run." + id + ".final_latents");
    HT_CHECK(!latents.empty() && latents.size() == latentsRef.size());
    double maxDiff = 0, maxRef = 0;
    for (std::size_t i = 0; i < std::min(latents.size(), latentsRef.size()); ++i) {
        maxDiff = std::max(maxDiff, double(std::fabs(latents[i] - latentsRef[i])));
        maxRef = std::max(maxRef, double(std::fabs(latentsRef[i])));
    }
    HT_CHECK_MSG(maxRef > 0 && maxDiff / maxRef < 1e-3, "relative error " << maxDiff / maxRef);
}

int main() {
    if (!hub::downloadBuiltIn()) {
        std::fprintf(stderr, "koala_hub was built without libcurl: nothing to test here\n");
        return 77;
    }
    return ht::runAll();
}
