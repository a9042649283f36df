// koala_hub: a Hugging Face hub client (libcurl) that downloads what an SDXL-family diffusers pipeline needs into the
// Hugging Face cache layout, and reads, checks and cleans that cache. No LibTorch, no Qt: koala-cli and the studio
// share it. Thread-safe as long as each download() call has its own options; several downloads of one repo, in one
// process or several, coordinate through flock(2) lock files under {cache}/.locks/, as huggingface_hub's do.
//
// Cache layout (exactly huggingface_hub's, so its tools and the engine's loader read it):
//   {cache}/models--{org}--{name}/blobs/{etag}                 file contents (sha256 for LFS files, git sha1 else)
//   {cache}/models--{org}--{name}/blobs/{etag}.incomplete      a partial download, resumed with an HTTP Range request
//   {cache}/models--{org}--{name}/snapshots/{commit}/{path}    relative symlinks into blobs/
//   {cache}/models--{org}--{name}/refs/{revision}              the commit a branch or tag pointed to
//   {cache}/.locks/models--{org}--{name}/{etag}.lock           per-blob locks (the same files huggingface_hub locks)
// A snapshot's symlinks are created only after every blob is in place and verified, model_index.json last, so a
// snapshot that has model_index.json is complete (the loader's test, engine/src/io/model_folder.cpp).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace koala::hub {

enum class ErrorKind {
    Usage,         // a malformed repo id, revision or option
    NotBuiltIn,    // this build has no libcurl: downloads are not available (the cache functions still are)
    Network,       // could not connect, the connection dropped more often than the retries allow, a timeout
    NotFound,      // 404: no such repo, revision or file
    Unauthorized,  // 401: a token is needed, or the one given was refused
    Forbidden,     // 403: a gated repo whose terms the token's account has not accepted, or no access
    Checksum,      // a file's sha256 or size differs from what the hub announced (the data was discarded)
    DiskFull,      // not enough free space (checked before starting), or a write failed for lack of space
    Offline,       // HF_HUB_OFFLINE is set and the cache has no complete snapshot of the revision
    Cancelled,     // CancelToken::cancel(); partial files are kept and a later download resumes them
    Busy,          // remove*() while a download of that repo is running
    Io,            // another file system error
    Protocol,      // the server answered something the client does not understand
};
const char* toString(ErrorKind kind);  // "usage", "not-built-in", "network", ...

class Error : public std::runtime_error {
public:
    Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), m_kind(kind) {}
    ErrorKind kind() const { return m_kind; }

private:
    ErrorKind m_kind;
};

// Whether this build can download (it was configured with libcurl).
bool downloadBuiltIn();

// Where and how to reach the hub, as huggingface_hub reads it from the environment.
struct Environment {
    std::string endpoint;  // HF_ENDPOINT, default https://huggingface.co (no trailing slash)
    std::string cacheDir;  // HF_HUB_CACHE, else HF_HOME/hub, else ${XDG_CACHE_HOME:-~/.cache}/huggingface/hub
    std::string token;     // HF_TOKEN, else the file HF_TOKEN_PATH or HF_HOME/token (huggingface-cli login)
    bool offline = false;  // HF_HUB_OFFLINE (1, ON, YES, TRUE; any case)
};
Environment environmentFromEnv();

// "org/name" -> "models--org--name"; throws Error(Usage) for an id that is not one or two plain path parts.
std::string repoFolderName(const std::string& repoId);
void validateRepoId(const std::string& repoId);

// ---- downloading ------------------------------------------------------------------------------------------------

// Cancel or pause: cancel() from any thread stops a running download() within a fraction of a second with
// Error(Cancelled). Partial data stays in blobs/{etag}.incomplete, so "pause" is cancel() and "resume" is another
// download() of the same repo and revision.
class CancelToken {
public:
    void cancel() { m_cancelled.store(true); }
    void reset() { m_cancelled.store(false); }
    bool cancelled() const { return m_cancelled.load(); }

private:
    std::atomic<bool> m_cancelled{false};
};

struct DownloadProgress {
    // Ready: the files to fetch are known (fileCount, bytesTotal, and bytesDone = the partial files kept from an
    // earlier run), reported once before the first of them is fetched. Several files are fetched at once
    // (DownloadOptions::parallelFiles): each report names one of them (the one whose transfer moved).
    enum class Phase { Listing, Checking, Downloading, Verifying, Linking, Done, Ready };
    Phase phase = Phase::Listing;
    std::string file;              // the repo path being worked on (Downloading, Verifying)
    int fileIndex = 0;             // 1-based among the files that need fetching; 0 before the first
    int fileCount = 0;             // files that need fetching (already cached ones are not counted)
    int filesDone = 0;             // of those, the ones in place
    int filesActive = 0;           // being fetched now
    std::uint64_t fileBytes = 0;   // bytes of this file on disk (resumed bytes included)
    std::uint64_t fileTotal = 0;   // its size
    std::uint64_t bytesDone = 0;   // over the whole download: bytes on disk of the files being fetched
    std::uint64_t bytesTotal = 0;  // their total size
    double bytesPerSecond = 0;     // recent transfer rate (0 until known)
    double secondsLeft = -1;       // estimate; -1 when unknown
};

struct DownloadOptions {
    std::string revision = "main";  // branch, tag or full commit hash
    // Which weights: "auto" (default) the fp16 variant files in each component folder that has them, else the plain
    // ones; "plain" the plain files, fp16 only where a component has nothing else; "all" both.
    std::string variant = "auto";
    Environment env = environmentFromEnv();
    // Called on one of the download's threads (one call at a time), at most about 10 times a second and at each
    // phase change.
    std::function<void(const DownloadProgress&)> progress;
    const CancelToken* cancel = nullptr;
    // Files fetched at once (1..16), each on its own connection; also read from KOALA_HUB_PARALLEL when left at 0.
    // The default 0 means 4.
    int parallelFiles = 0;
    int retries = 5;        // reconnections per file after a dropped or stalled connection (each resumes)
    int stallSeconds = 30;  // a connection that moves no byte for this long counts as dropped
    std::string userAgent;  // default "koala-hub/<version>"
    // Test hooks (also read from the environment when left at -1): fail writes with ENOSPC once this many bytes were
    // written by this call (KOALA_HUB_FAIL_WRITES_AFTER), and pretend the disk has this many bytes free
    // (KOALA_HUB_ASSUME_FREE_BYTES).
    long long failWritesAfterBytes = -1;
    long long assumeFreeBytes = -1;
};

struct DownloadResult {
    std::string repoId;
    std::string revision;
    std::string commit;                 // the full commit hash the revision resolved to
    std::string repoDir;                // {cache}/models--org--name
    std::string snapshotDir;            // {cache}/models--org--name/snapshots/{commit}: pass it to Model::load
    std::vector<std::string> files;     // the repo paths the snapshot holds (those the pipeline needs)
    std::uint64_t bytesDownloaded = 0;  // over the network by this call
    std::uint64_t bytesTotal = 0;       // size of the snapshot's files
    bool fromCache = false;             // nothing was asked of the network (offline, or the hub unreachable)
    std::string note;                   // e.g. why the cache was used
};

// Downloads the pipeline files of repoId (see selectPipelineFiles) at options.revision into options.env.cacheDir
// and returns the complete snapshot. Throws Error. Offline (env.offline), or when the hub cannot be reached at all,
// it returns the cached complete snapshot of that revision if there is one.
DownloadResult download(const std::string& repoId, const DownloadOptions& options = {});

// What download() would fetch, and how much of it the cache already holds, from the hub's listing with file sizes
// (GET {endpoint}/api/models/{repo}/revision/{revision}?blobs=true) and model_index.json (from the cache when its
// blob is there). Nothing is written. Throws Error as download() does; Offline when env.offline (the caller shows an
// estimate then). options.cancel stops it.
struct PlannedFile {
    std::string path;
    std::uint64_t size = 0;
    std::string etag;  // the blob name: the sha256 of an LFS file, the git blob id of a small one
    bool lfs = false;
    bool cached = false;             // its blob is in the cache
    std::uint64_t partialBytes = 0;  // in blobs/{etag}.incomplete, kept from an earlier download
};
struct DownloadPlan {
    std::string repoId;
    std::string revision;
    std::string commit;
    std::vector<PlannedFile> files;  // the pipeline files (selectPipelineFiles), repo order
    std::uint64_t bytesTotal = 0;    // all of them; a blob two paths share counts once
    std::uint64_t bytesCached = 0;   // of which complete in the cache
    std::uint64_t bytesPartial = 0;  // of which in partial files
    std::uint64_t bytesLeft() const { return bytesTotal - bytesCached - bytesPartial; }  // to transfer
};
DownloadPlan planDownload(const std::string& repoId, const DownloadOptions& options = {});

// Which of a repo's files a diffusers pipeline needs: model_index.json and, in each component folder it names, the
// configs and tokenizer files (*.json, *.txt, *.model) and the .safetensors weights (and their shard indexes) of
// the chosen variant (see DownloadOptions::variant). Never .bin/.onnx/.msgpack/.h5/.ckpt weights, ONNX export
// folders or anything outside the component folders (README images, single-file checkpoints).
std::vector<std::string> selectPipelineFiles(const std::vector<std::string>& repoFiles,
                                             const std::string& modelIndexJson, const std::string& variant = "auto");

// ---- the cache: status and removal (no network; available without libcurl) ------------------------------------

struct SnapshotStatus {
    std::string commit;
    std::string path;                  // the snapshot folder
    std::vector<std::string> refs;     // revisions (branches, tags) that point at it
    bool complete = false;             // has model_index.json and every symlink resolves to a blob
    std::vector<std::string> missing;  // when not complete: what is missing or dangling (repo paths)
    std::uint64_t bytes = 0;           // sum of its files' sizes (blobs shared between snapshots count in each)
    int files = 0;
    long long lastModified = 0;  // seconds since the epoch
};

struct RepoStatus {
    std::string repoId;                     // "org/name"
    std::string path;                       // {cache}/models--org--name
    std::vector<SnapshotStatus> snapshots;  // newest first
    std::uint64_t blobBytes = 0;            // on disk, all complete blobs
    std::uint64_t incompleteBytes = 0;      // on disk, all *.incomplete partial downloads
    int incompleteFiles = 0;
    bool downloading = false;  // a download() of this repo is running now (in any process)
    // Convenience for a model list: whether some snapshot is complete, and the one the loader would take.
    bool installed() const;
    std::string loadablePath() const;  // "" when none is complete
};

// Every model repo in the cache (models--*), sorted by repo id. A missing cache folder gives an empty list.
std::vector<RepoStatus> scanCache(const std::string& cacheDir);
// One repo; std::nullopt when it has no folder in the cache.
std::optional<RepoStatus> repoStatus(const std::string& cacheDir, const std::string& repoId);
// The complete snapshot a revision (branch, tag or commit) resolves to in the cache, as offline mode uses it.
std::optional<std::string> cachedSnapshot(const std::string& cacheDir, const std::string& repoId,
                                          const std::string& revision = "main");

// Removes one snapshot (by commit, or by a ref that points at it), the refs pointing at it, and the blobs that no
// other snapshot of the repo links to (blobs are per repo; shared ones stay). Returns the bytes freed. Throws
// Error(Busy) while a download of the repo runs, Error(NotFound) for an unknown revision.
std::uint64_t removeRevision(const std::string& cacheDir, const std::string& repoId, const std::string& revision);
// Removes the repo's whole folder and its lock folder. Returns the bytes freed. Error(Busy) while downloading.
std::uint64_t removeRepo(const std::string& cacheDir, const std::string& repoId);
// Removes the partial downloads (blobs/*.incomplete) of a repo. Returns the bytes freed. Error(Busy) while downloading.
std::uint64_t removeIncomplete(const std::string& cacheDir, const std::string& repoId);

}  // namespace koala::hub
