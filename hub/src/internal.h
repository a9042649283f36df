// Private helpers of koala_hub shared by the cache code and the downloader.
#pragma once

#include "koala/hub.h"

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace koala::hub::detail {

namespace fs = std::filesystem;

[[noreturn]] void fail(ErrorKind kind, const std::string& message);

bool isCommitHash(const std::string& s);  // 40 lowercase hex digits
bool isSha256(const std::string& s);      // 64 lowercase hex digits
// W/"abc" and "abc" -> abc, as huggingface_hub's _normalize_etag.
std::string normalizeEtag(const std::string& etag);
// A repo path that stays inside the snapshot: relative, no "." or ".." parts, no empty parts, no backslashes.
bool safeRepoPath(const std::string& path);
void validateRevision(const std::string& revision);

// The relative symlink target from snapshots/{commit}/{path} to blobs/{etag}: "../../" plus one "../" per folder.
std::string blobLinkTarget(const std::string& repoPath, const std::string& etag);

// The hub's answers as download.cpp reads them (functions of their own so that tests/fuzz/fuzz_hub.cpp reaches them).
// A repo file as the revision listing (GET /api/models/{repo}/revision/{rev}?blobs=true) describes it: huggingface_hub's
// RepoSibling.
struct RepoSibling {
    std::string path;
    long long size = -1;
    std::string blobId;  // git blob id (of the LFS pointer for an LFS file)
    std::string sha256;  // LFS files
    long long lfsSize = -1;
};
// The listing's files appended to `files`; returns its commit. Error(Protocol) naming `url` when `body` is not one.
std::string parseRevisionListing(const std::string& body, const std::string& url, std::vector<RepoSibling>& files);
// One header line of a response: "HTTP/1.1 302 Found" starts a new response (clears `headers`, sets `status`);
// "Name: value" is stored under the lower-case name, both trimmed.
void parseHeaderLine(const std::string& line, std::map<std::string, std::string>& headers, long& status);
// A Location header resolved against the URL it came from.
std::string resolveLocation(const std::string& base, const std::string& location);

// Writes `text` to `path` atomically (a temporary file in the same folder, then rename).
void writeFileAtomic(const fs::path& path, const std::string& text);
// Creates (or replaces) the symlink `link` -> `target` atomically.
void replaceSymlink(const fs::path& link, const std::string& target);

// flock(2) on a lock file (created when missing). Released by the destructor.
class FileLock {
public:
    enum class Mode { Shared, Exclusive };
    FileLock() = default;
    FileLock(const FileLock&) = delete;
    FileLock& operator=(const FileLock&) = delete;
    FileLock(FileLock&& o) noexcept : m_fd(o.m_fd) { o.m_fd = -1; }
    ~FileLock();
    // Non-blocking: true when taken.
    bool tryLock(const fs::path& path, Mode mode);
    // Blocks, polling `cancel` (if any) every 100 ms; Error(Cancelled) when cancelled.
    void lock(const fs::path& path, Mode mode, const CancelToken* cancel);
    bool held() const { return m_fd >= 0; }

private:
    int m_fd = -1;
};

// The per-repo lock that download() holds shared and remove*() take exclusively.
fs::path repoLockPath(const std::string& cacheDir, const std::string& repoId);
fs::path blobLockPath(const std::string& cacheDir, const std::string& repoId, const std::string& etag);

// The Merkle-Damgard frame SHA-1 and SHA-256 share (64-byte blocks, 0x80 padding, the message length in bits as a
// big-endian uint64, the state words written big-endian as hex): buffering, padding and the digest; Derived supplies
// the compression function block(const uint8_t* p) over the state m_h. Instantiated for Sha256 and Sha1 only.
template <class Derived, std::size_t Words>
class BlockHash {
public:
    void update(const void* data, std::size_t n);
    std::string hexDigest();  // finishes; call once

protected:
    explicit BlockHash(const std::array<std::uint32_t, Words>& init) : m_h(init) {}
    std::array<std::uint32_t, Words> m_h;

private:
    std::uint8_t m_buf[64]{};
    std::size_t m_bufLen = 0;
    std::uint64_t m_total = 0;
};

// SHA-256, incremental.
class Sha256 : public BlockHash<Sha256, 8> {
public:
    Sha256();

private:
    friend class BlockHash<Sha256, 8>;
    void block(const std::uint8_t* p);
};

// SHA-1, incremental: git's object ids. The hub's ETag of a small (non-LFS) file is its git blob id,
// sha1("blob {size}\0" + content).
class Sha1 : public BlockHash<Sha1, 5> {
public:
    Sha1();

private:
    friend class BlockHash<Sha1, 5>;
    void block(const std::uint8_t* p);
};
std::string gitBlobSha1(const std::string& content);
// The git blob id of a file's contents; "" when it cannot be read.
std::string gitBlobSha1OfFile(const fs::path& file);

}  // namespace koala::hub::detail
