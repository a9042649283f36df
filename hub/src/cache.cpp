// The Hugging Face cache side of koala_hub: environment, names, file selection, locks, status and removal.
// Nothing here touches the network, so it builds and works without libcurl.
#include "internal.h"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

namespace koala::hub {

namespace detail {

void fail(ErrorKind kind, const std::string& message) { throw Error(kind, message); }

namespace {
bool isLowerHex(const std::string& s, std::size_t n) {
    return s.size() == n &&
           std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}
std::string trim(std::string s) {
    while (!s.empty() && std::isspace((unsigned char)s.back())) s.pop_back();
    std::size_t i = 0;
    while (i < s.size() && std::isspace((unsigned char)s[i])) ++i;
    return s.substr(i);
}
std::string readSmallFile(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    if (!in) return {};
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}
std::string uniqueSuffix() {
    static std::atomic<unsigned> counter{0};
    return std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" +
           std::to_string(std::chrono::steady_clock::now().time_since_epoch().count() & 0xffffff);
}
}  // namespace

bool isCommitHash(const std::string& s) { return isLowerHex(s, 40); }
bool isSha256(const std::string& s) { return isLowerHex(s, 64); }

std::string normalizeEtag(const std::string& etag) {
    std::string e = trim(etag);
    if (e.rfind("W/", 0) == 0) e = e.substr(2);
    while (!e.empty() && e.front() == '"') e.erase(e.begin());
    while (!e.empty() && e.back() == '"') e.pop_back();
    return e;
}

bool safeRepoPath(const std::string& path) {
    if (path.empty() || path.front() == '/' || path.find('\\') != std::string::npos ||
        path.find('\0') != std::string::npos)
        return false;
    std::size_t start = 0;
    while (true) {
        std::size_t slash = path.find('/', start);
        std::string part = path.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
        if (part.empty() || part == "." || part == "..") return false;
        if (slash == std::string::npos) return true;
        start = slash + 1;
    }
}

void validateRevision(const std::string& revision) {
    if (revision.empty() || !safeRepoPath(revision) || revision.size() > 255)
        fail(ErrorKind::Usage, "invalid revision '" + revision + "' (a branch, tag or commit hash)");
    for (char c : revision)
        if (std::iscntrl((unsigned char)c) || c == ' ')
            fail(ErrorKind::Usage, "invalid revision '" + revision + "' (a branch, tag or commit hash)");
}

std::string blobLinkTarget(const std::string& repoPath, const std::string& etag) {
    std::string up = "../../";
    for (char c : repoPath)
        if (c == '/') up += "../";
    return up + "blobs/" + etag;
}

void writeFileAtomic(const fs::path& path, const std::string& text) {
    std::error_code ec;
    fs::create_directories(path.parent_path(), ec);
    const fs::path tmp = path.parent_path() / (path.filename().string() + "." + uniqueSuffix() + ".tmp");
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        out << text;
        out.flush();
        if (!out) {
            fs::remove(tmp, ec);
            fail(ErrorKind::Io, "cannot write " + tmp.string() + ": " + std::strerror(errno));
        }
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        int err = errno;
        fs::remove(tmp, ec);
        fail(ErrorKind::Io, "cannot write " + path.string() + ": " + std::strerror(err));
    }
}

void replaceSymlink(const fs::path& link, const std::string& target) {
    std::error_code ec;
    fs::create_directories(link.parent_path(), ec);
    const fs::path tmp = link.parent_path() / ("." + link.filename().string() + "." + uniqueSuffix() + ".tmp");
    if (::symlink(target.c_str(), tmp.c_str()) != 0)
        fail(ErrorKind::Io, "cannot create the symlink " + link.string() + ": " + std::strerror(errno));
    if (std::rename(tmp.c_str(), link.c_str()) != 0) {
        int err = errno;
        fs::remove(tmp, ec);
        fail(ErrorKind::Io, "cannot create the symlink " + link.string() + ": " + std::strerror(err));
    }
}

FileLock::~FileLock() {
    if (m_fd >= 0) ::close(m_fd);  // closing releases the flock
}

namespace {
int openLockFile(const fs::path& path) {
    std::error_code ec;
    fs::create_directories(path.parent_path(), ec);
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0664);
    if (fd < 0) fail(ErrorKind::Io, "cannot open the lock file " + path.string() + ": " + std::strerror(errno));
    return fd;
}
}  // namespace

bool FileLock::tryLock(const fs::path& path, Mode mode) {
    int fd = openLockFile(path);
    if (::flock(fd, (mode == Mode::Shared ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0) {
        ::close(fd);
        return false;
    }
    if (m_fd >= 0) ::close(m_fd);
    m_fd = fd;
    return true;
}

void FileLock::lock(const fs::path& path, Mode mode, const CancelToken* cancel) {
    int fd = openLockFile(path);
    const int op = mode == Mode::Shared ? LOCK_SH : LOCK_EX;
    while (::flock(fd, op | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK && errno != EINTR) {
            int err = errno;
            ::close(fd);
            fail(ErrorKind::Io, "cannot lock " + path.string() + ": " + std::strerror(err));
        }
        if (cancel && cancel->cancelled()) {
            ::close(fd);
            fail(ErrorKind::Cancelled, "download cancelled");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (m_fd >= 0) ::close(m_fd);
    m_fd = fd;
}

fs::path repoLockPath(const std::string& cacheDir, const std::string& repoId) {
    return fs::path(cacheDir) / ".locks" / repoFolderName(repoId) / "koala-download.lock";
}

fs::path blobLockPath(const std::string& cacheDir, const std::string& repoId, const std::string& etag) {
    return fs::path(cacheDir) / ".locks" / repoFolderName(repoId) / (etag + ".lock");
}

}  // namespace detail

using namespace detail;

const char* toString(ErrorKind kind) {
    switch (kind) {
    case ErrorKind::Usage: return "usage";
    case ErrorKind::NotBuiltIn: return "not-built-in";
    case ErrorKind::Network: return "network";
    case ErrorKind::NotFound: return "not-found";
    case ErrorKind::Unauthorized: return "unauthorized";
    case ErrorKind::Forbidden: return "forbidden";
    case ErrorKind::Checksum: return "checksum";
    case ErrorKind::DiskFull: return "disk-full";
    case ErrorKind::Offline: return "offline";
    case ErrorKind::Cancelled: return "cancelled";
    case ErrorKind::Busy: return "busy";
    case ErrorKind::Io: return "io";
    case ErrorKind::Protocol: return "protocol";
    }
    return "unknown";
}

// ---- environment -------------------------------------------------------------------------------------------------

namespace {
std::string getenvStr(const char* name) {
    const char* v = std::getenv(name);
    return v ? std::string(v) : std::string();
}
std::string expandUser(const std::string& p) {
    if (p.empty() || p[0] != '~' || (p.size() > 1 && p[1] != '/')) return p;
    return getenvStr("HOME") + p.substr(1);
}
bool envTrue(const std::string& v) {
    std::string u;
    for (char c : v) u += char(std::toupper((unsigned char)c));
    return u == "1" || u == "ON" || u == "YES" || u == "TRUE";
}
}  // namespace

Environment environmentFromEnv() {
    Environment e;
    e.endpoint = getenvStr("HF_ENDPOINT");
    if (e.endpoint.empty()) e.endpoint = "https://huggingface.co";
    while (!e.endpoint.empty() && e.endpoint.back() == '/') e.endpoint.pop_back();
    std::string home = expandUser(getenvStr("HF_HOME"));
    if (home.empty()) {
        std::string xdg = expandUser(getenvStr("XDG_CACHE_HOME"));
        if (xdg.empty()) xdg = expandUser("~/.cache");
        home = (fs::path(xdg) / "huggingface").string();
    }
    e.cacheDir = expandUser(getenvStr("HF_HUB_CACHE"));
    if (e.cacheDir.empty()) e.cacheDir = expandUser(getenvStr("HUGGINGFACE_HUB_CACHE"));  // the older name
    if (e.cacheDir.empty()) e.cacheDir = (fs::path(home) / "hub").string();
    e.token = trim(getenvStr("HF_TOKEN"));
    if (e.token.empty()) {
        std::string tokenPath = expandUser(getenvStr("HF_TOKEN_PATH"));
        if (tokenPath.empty()) tokenPath = (fs::path(home) / "token").string();
        e.token = trim(readSmallFile(tokenPath));
    }
    e.offline = envTrue(getenvStr("HF_HUB_OFFLINE")) || envTrue(getenvStr("TRANSFORMERS_OFFLINE"));
    return e;
}

void validateRepoId(const std::string& repoId) {
    auto bad = [&](const std::string& why) {
        fail(ErrorKind::Usage, "invalid repo id '" + repoId + "': " + why + " (expected ORG/NAME, e.g. " +
                                   "etri-vilab/koala-700m-llava-cap)");
    };
    if (repoId.empty()) bad("empty");
    if (repoId.size() > 96) bad("too long");
    const auto slash = repoId.find('/');
    if (slash != std::string::npos && repoId.find('/', slash + 1) != std::string::npos) bad("more than one '/'");
    std::size_t start = 0;
    while (true) {
        const auto end = repoId.find('/', start);
        const std::string part = repoId.substr(start, end == std::string::npos ? std::string::npos : end - start);
        if (part.empty() || part == "." || part == "..") bad("an empty or dot part");
        for (char c : part)
            if (!std::isalnum((unsigned char)c) && c != '-' && c != '_' && c != '.')
                bad("character '" + std::string(1, c) + "'");
        if (part.find("--") != std::string::npos || part.find("..") != std::string::npos) bad("'--' or '..'");
        if (part.front() == '-' || part.front() == '.' || part.back() == '-' || part.back() == '.')
            bad("a part starts or ends with '-' or '.'");
        if (end == std::string::npos) break;
        start = end + 1;
    }
}

std::string repoFolderName(const std::string& repoId) {
    validateRepoId(repoId);
    std::string out = "models--";
    for (char c : repoId) {
        if (c == '/')
            out += "--";
        else
            out += c;
    }
    return out;
}

// ---- which files a pipeline needs --------------------------------------------------------------------------------

namespace {

bool endsWith(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A shard suffix "-00001-of-00002".
bool stripShard(std::string& stem) {
    auto dash = stem.rfind("-of-");
    if (dash == std::string::npos) return false;
    auto first = stem.rfind('-', dash - 1);
    if (first == std::string::npos) return false;
    auto digits = [](const std::string& s) {
        return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return std::isdigit((unsigned char)c); });
    };
    if (!digits(stem.substr(first + 1, dash - first - 1)) || !digits(stem.substr(dash + 4))) return false;
    stem = stem.substr(0, first);
    return true;
}

// For a safetensors weight or shard index name: true, and its variant ("" plain). The spellings diffusers and
// transformers write: X.safetensors, X-00001-of-00002.safetensors, X.V.safetensors, X.V-00001-of-00002.safetensors,
// X.safetensors.index.json, X.V.safetensors.index.json, X.safetensors.index.V.json, X.safetensors.V.index.json.
bool weightVariant(const std::string& name, std::string& variant) {
    std::string stem;
    variant.clear();
    if (endsWith(name, ".safetensors")) {
        stem = name.substr(0, name.size() - 12);
    } else if (endsWith(name, ".safetensors.index.json")) {
        stem = name.substr(0, name.size() - 23);
    } else {
        const auto p = name.find(".safetensors.");
        if (p == std::string::npos || !endsWith(name, ".json")) return false;
        const std::string rest = name.substr(p + 13, name.size() - p - 13 - 5);  // between ".safetensors." and ".json"
        stem = name.substr(0, p);
        if (rest.rfind("index.", 0) == 0)
            variant = rest.substr(6);
        else if (endsWith(rest, ".index"))
            variant = rest.substr(0, rest.size() - 6);
        else
            return false;
        return !variant.empty() && variant.find('.') == std::string::npos;
    }
    stripShard(stem);
    const auto dot = stem.rfind('.');
    if (dot != std::string::npos) {
        variant = stem.substr(dot + 1);
        stripShard(variant);
    }
    return true;
}

}  // namespace

std::vector<std::string> selectPipelineFiles(const std::vector<std::string>& repoFiles,
                                             const std::string& modelIndexJson, const std::string& variant) {
    if (variant != "auto" && variant != "fp16" && variant != "plain" && variant != "all")
        fail(ErrorKind::Usage, "unknown variant choice '" + variant + "' (auto, fp16, plain or all)");
    nlohmann::json index;
    try {
        index = nlohmann::json::parse(modelIndexJson);
    } catch (const nlohmann::json::exception&) {
        fail(ErrorKind::Protocol, "model_index.json is not valid JSON");
    }
    if (!index.is_object()) fail(ErrorKind::Protocol, "model_index.json is not a JSON object");
    std::set<std::string> components;
    for (auto it = index.begin(); it != index.end(); ++it) {
        if (it.key().empty() || it.key()[0] == '_') continue;
        const auto& v = it.value();
        if (v.is_array() && v.size() == 2 && v[0].is_string() && v[1].is_string()) components.insert(it.key());
    }
    struct Candidate {
        std::string path, variant;
        bool weight;
    };
    std::map<std::string, std::vector<Candidate>> byComponent;
    std::vector<std::string> out;
    for (const auto& f : repoFiles) {
        if (f == "model_index.json") {
            out.push_back(f);
            continue;
        }
        const auto slash = f.find('/');
        if (slash == std::string::npos || f.find('/', slash + 1) != std::string::npos) continue;
        const std::string comp = f.substr(0, slash), name = f.substr(slash + 1);
        if (!components.count(comp) || !safeRepoPath(f)) continue;
        std::string v;
        if (weightVariant(name, v)) {
            byComponent[comp].push_back({f, v, true});
        } else if (endsWith(name, ".json") || endsWith(name, ".txt") || endsWith(name, ".model")) {
            byComponent[comp].push_back({f, "", false});
        }
        // Anything else (.bin, .onnx, .onnx_data, .msgpack, .h5, .ckpt, .pt, images, READMEs) is not needed.
    }
    for (const auto& [comp, files] : byComponent) {
        bool hasPlain = false, hasFp16 = false;
        for (const auto& c : files) {
            if (!c.weight) continue;
            hasPlain |= c.variant.empty();
            hasFp16 |= c.variant == "fp16";
        }
        bool takeFp16 = false, takePlain = false;
        if (variant == "all") {
            takeFp16 = takePlain = true;
        } else if (variant == "plain") {
            takePlain = hasPlain;
            takeFp16 = !hasPlain;
        } else {
            takeFp16 = hasFp16;
            takePlain = !hasFp16;
        }
        for (const auto& c : files) {
            if (!c.weight || (c.variant.empty() && takePlain) || (c.variant == "fp16" && takeFp16))
                out.push_back(c.path);
        }
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

// ---- status ------------------------------------------------------------------------------------------------------

namespace {

long long mtimeSeconds(const fs::path& p) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) return 0;
    return (long long)st.st_mtime;
}

std::string repoIdFromFolder(const std::string& folder) {
    // models--org--name -> org/name
    std::string rest = folder.substr(8);
    std::string out;
    for (std::size_t i = 0; i < rest.size(); ++i) {
        if (rest.compare(i, 2, "--") == 0) {
            out += '/';
            ++i;
        } else {
            out += rest[i];
        }
    }
    return out;
}

std::map<std::string, std::vector<std::string>> readRefs(const fs::path& repo) {
    std::map<std::string, std::vector<std::string>> byCommit;  // commit -> revisions
    std::error_code ec;
    const fs::path refs = repo / "refs";
    for (auto it = fs::recursive_directory_iterator(refs, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
        if (!it->is_regular_file(ec)) continue;
        const std::string name = it->path().filename().string();
        if (endsWith(name, ".tmp")) continue;
        std::string commit = trim(readSmallFile(it->path()));
        if (!commit.empty()) byCommit[commit].push_back(fs::relative(it->path(), refs, ec).generic_string());
    }
    return byCommit;
}

SnapshotStatus snapshotStatus(const fs::path& snap) {
    SnapshotStatus s;
    std::error_code ec;
    s.commit = snap.filename().string();
    s.path = snap.string();
    s.lastModified = mtimeSeconds(snap);
    for (auto it = fs::recursive_directory_iterator(snap, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
        const fs::path p = it->path();
        if (it->is_directory(ec)) continue;
        const std::string rel = fs::relative(p, snap, ec).generic_string();
        if (p.filename().string().front() == '.' && endsWith(p.filename().string(), ".tmp")) continue;
        if (!fs::exists(p, ec)) {  // a dangling symlink: its blob is gone
            s.missing.push_back(rel);
            continue;
        }
        ++s.files;
        s.bytes += fs::file_size(p, ec);
    }
    bool hasIndex = fs::is_regular_file(snap / "model_index.json", ec);
    if (!hasIndex) {
        s.missing.push_back("model_index.json");
    } else {
        // Each component model_index.json names needs its folder (a snapshot another tool left half-done).
        try {
            auto index = nlohmann::json::parse(readSmallFile(snap / "model_index.json"));
            for (auto it = index.begin(); index.is_object() && it != index.end(); ++it) {
                const auto& v = it.value();
                if (it.key().empty() || it.key()[0] == '_' || !v.is_array() || v.size() != 2 || !v[0].is_string())
                    continue;
                if (fs::is_empty(snap / it.key(), ec) || ec) s.missing.push_back(it.key() + "/");
            }
        } catch (const nlohmann::json::exception&) {
            s.missing.push_back("model_index.json (not valid JSON)");
        }
    }
    std::sort(s.missing.begin(), s.missing.end());
    s.complete = s.missing.empty();
    return s;
}

RepoStatus scanRepo(const std::string& cacheDir, const fs::path& repo) {
    RepoStatus r;
    std::error_code ec;
    r.path = repo.string();
    r.repoId = repoIdFromFolder(repo.filename().string());
    auto refs = readRefs(repo);
    for (auto it = fs::directory_iterator(repo / "snapshots", ec); !ec && it != fs::directory_iterator();
         it.increment(ec)) {
        if (!it->is_directory(ec)) continue;
        SnapshotStatus s = snapshotStatus(it->path());
        auto rf = refs.find(s.commit);
        if (rf != refs.end()) s.refs = rf->second;
        r.snapshots.push_back(std::move(s));
    }
    std::sort(r.snapshots.begin(), r.snapshots.end(), [](const SnapshotStatus& a, const SnapshotStatus& b) {
        return a.lastModified != b.lastModified ? a.lastModified > b.lastModified : a.commit < b.commit;
    });
    for (auto it = fs::directory_iterator(repo / "blobs", ec); !ec && it != fs::directory_iterator();
         it.increment(ec)) {
        if (!it->is_regular_file(ec)) continue;
        const auto size = it->file_size(ec);
        if (endsWith(it->path().filename().string(), ".incomplete")) {
            r.incompleteBytes += size;
            ++r.incompleteFiles;
        } else {
            r.blobBytes += size;
        }
    }
    // Downloading: someone holds the repo lock (shared). Probe it without creating anything.
    const fs::path lockPath = repoLockPath(cacheDir, r.repoId);
    int fd = ::open(lockPath.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (::flock(fd, LOCK_EX | LOCK_NB) != 0) r.downloading = true;
        ::close(fd);
    }
    return r;
}

bool isRepoFolder(const fs::path& p) {
    const std::string n = p.filename().string();
    return n.rfind("models--", 0) == 0 && n.size() > 8;
}

}  // namespace

bool RepoStatus::installed() const { return !loadablePath().empty(); }

std::string RepoStatus::loadablePath() const {
    // As the engine's loader: the snapshot refs/main names, else the newest complete one.
    for (const auto& s : snapshots)
        if (s.complete && std::find(s.refs.begin(), s.refs.end(), "main") != s.refs.end()) return s.path;
    for (const auto& s : snapshots)
        if (s.complete) return s.path;
    return "";
}

std::vector<RepoStatus> scanCache(const std::string& cacheDir) {
    std::vector<RepoStatus> out;
    std::error_code ec;
    for (auto it = fs::directory_iterator(cacheDir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
        if (!it->is_directory(ec) || !isRepoFolder(it->path())) continue;
        try {
            out.push_back(scanRepo(cacheDir, it->path()));
        } catch (const Error&) {
            // a folder whose name is not a valid repo id: not ours to list
        }
    }
    std::sort(out.begin(), out.end(), [](const RepoStatus& a, const RepoStatus& b) { return a.repoId < b.repoId; });
    return out;
}

std::optional<RepoStatus> repoStatus(const std::string& cacheDir, const std::string& repoId) {
    const fs::path repo = fs::path(cacheDir) / repoFolderName(repoId);
    std::error_code ec;
    if (!fs::is_directory(repo, ec)) return std::nullopt;
    return scanRepo(cacheDir, repo);
}

namespace {
std::string resolveCachedCommit(const fs::path& repo, const std::string& revision) {
    if (isCommitHash(revision)) return revision;
    validateRevision(revision);
    return trim(readSmallFile(repo / "refs" / revision));
}
}  // namespace

std::optional<std::string> cachedSnapshot(const std::string& cacheDir, const std::string& repoId,
                                          const std::string& revision) {
    const fs::path repo = fs::path(cacheDir) / repoFolderName(repoId);
    const std::string commit = resolveCachedCommit(repo, revision);
    if (commit.empty() || !safeRepoPath(commit)) return std::nullopt;
    std::error_code ec;
    const fs::path snap = repo / "snapshots" / commit;
    if (!fs::is_directory(snap, ec)) return std::nullopt;
    if (!snapshotStatus(snap).complete) return std::nullopt;
    return snap.string();
}

// ---- removal -----------------------------------------------------------------------------------------------------

namespace {

FileLock lockForRemoval(const std::string& cacheDir, const std::string& repoId) {
    FileLock lock;
    if (!lock.tryLock(repoLockPath(cacheDir, repoId), FileLock::Mode::Exclusive))
        fail(ErrorKind::Busy, "a download of " + repoId + " is running; cancel it before removing");
    return lock;
}

std::uint64_t treeBytes(const fs::path& p) {
    std::uint64_t total = 0;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(p, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec))
        if (it->is_regular_file(ec) && !it->is_symlink(ec)) total += it->file_size(ec);
    return total;
}

std::set<std::string> blobsLinkedFrom(const fs::path& snap) {
    std::set<std::string> out;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(snap, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
        if (!it->is_symlink(ec)) continue;
        const fs::path target = fs::read_symlink(it->path(), ec);
        if (!ec && target.parent_path().filename() == "blobs") out.insert(target.filename().string());
    }
    return out;
}

void removeTree(const fs::path& p) {
    std::error_code ec;
    fs::remove_all(p, ec);
    if (ec) fail(ErrorKind::Io, "cannot remove " + p.string() + ": " + ec.message());
}

}  // namespace

std::uint64_t removeRepo(const std::string& cacheDir, const std::string& repoId) {
    const fs::path repo = fs::path(cacheDir) / repoFolderName(repoId);
    std::error_code ec;
    if (!fs::is_directory(repo, ec)) fail(ErrorKind::NotFound, repoId + " is not in the cache " + cacheDir);
    FileLock lock = lockForRemoval(cacheDir, repoId);
    const std::uint64_t bytes = treeBytes(repo);
    removeTree(repo);
    removeTree(repoLockPath(cacheDir, repoId).parent_path());
    return bytes;
}

std::uint64_t removeRevision(const std::string& cacheDir, const std::string& repoId, const std::string& revision) {
    const fs::path repo = fs::path(cacheDir) / repoFolderName(repoId);
    std::error_code ec;
    if (!fs::is_directory(repo, ec)) fail(ErrorKind::NotFound, repoId + " is not in the cache " + cacheDir);
    FileLock lock = lockForRemoval(cacheDir, repoId);
    const std::string commit = resolveCachedCommit(repo, revision);
    const fs::path snap = repo / "snapshots" / commit;
    if (commit.empty() || !safeRepoPath(commit) || !fs::is_directory(snap, ec))
        fail(ErrorKind::NotFound, "revision " + revision + " of " + repoId + " is not in the cache");
    // Blobs still linked from another snapshot stay.
    std::set<std::string> keep;
    std::size_t others = 0;
    for (auto it = fs::directory_iterator(repo / "snapshots", ec); !ec && it != fs::directory_iterator();
         it.increment(ec)) {
        if (!it->is_directory(ec) || it->path().filename() == commit) continue;
        ++others;
        auto b = blobsLinkedFrom(it->path());
        keep.insert(b.begin(), b.end());
    }
    if (others == 0) {
        // The last snapshot: the repo goes entirely, as huggingface_hub's delete_revisions does.
        const std::uint64_t bytes = treeBytes(repo);
        removeTree(repo);
        return bytes;
    }
    std::uint64_t freed = 0;
    for (const auto& blob : blobsLinkedFrom(snap)) {
        if (keep.count(blob)) continue;
        const fs::path p = repo / "blobs" / blob;
        const auto size = fs::file_size(p, ec);
        if (!ec && fs::remove(p, ec)) freed += size;
    }
    removeTree(snap);
    for (const auto& [c, revs] : readRefs(repo))
        if (c == commit)
            for (const auto& r : revs) fs::remove(repo / "refs" / r, ec);
    return freed;
}

std::uint64_t removeIncomplete(const std::string& cacheDir, const std::string& repoId) {
    const fs::path repo = fs::path(cacheDir) / repoFolderName(repoId);
    std::error_code ec;
    if (!fs::is_directory(repo, ec)) return 0;
    FileLock lock = lockForRemoval(cacheDir, repoId);
    std::uint64_t freed = 0;
    for (auto it = fs::directory_iterator(repo / "blobs", ec); !ec && it != fs::directory_iterator();
         it.increment(ec)) {
        if (!endsWith(it->path().filename().string(), ".incomplete")) continue;
        std::error_code e2;
        const auto size = it->file_size(e2);
        if (fs::remove(it->path(), e2)) freed += size;
    }
    return freed;
}

}  // namespace koala::hub
