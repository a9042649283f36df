// The downloading side of koala_hub (libcurl): list a revision's files, fetch the pipeline's blobs with resume and
// verification, then link the snapshot. Built only when CMake finds libcurl (download_stub.cpp otherwise).
#include "internal.h"

#include <curl/curl.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>

namespace koala::hub {

using namespace detail;

bool downloadBuiltIn() { return true; }

namespace {

using Clock = std::chrono::steady_clock;

void globalInit() {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string lower(std::string s) {
    for (auto& c : s) c = char(std::tolower((unsigned char)c));
    return s;
}

std::string trimmed(const std::string& s) {
    std::size_t a = 0, b = s.size();
    while (a < b && std::isspace((unsigned char)s[a])) ++a;
    while (b > a && std::isspace((unsigned char)s[b - 1])) --b;
    return s.substr(a, b - a);
}

// Percent-encoding as huggingface_hub's quote(): unreserved characters stay, and '/' where `keepSlash`.
std::string quote(const std::string& s, bool keepSlash) {
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keepSlash && c == '/'))
            out += char(c);
        else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

std::string humanBytes(double b) {
    const char* units[] = {"B", "kB", "MB", "GB", "TB"};
    int u = 0;
    while (b >= 1000 && u < 4) b /= 1000, ++u;
    char buf[32];
    std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", b, units[u]);
    return buf;
}

bool retryableCurlError(CURLcode c) {
    switch (c) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_PARTIAL_FILE:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM: return true;
    default: return false;
    }
}

struct Response {
    long status = 0;
    std::map<std::string, std::string> headers;  // lower-case names; of the last response of a redirect chain
    std::string body;
    CURLcode code = CURLE_OK;
    std::string curlError;
    std::string header(const std::string& name) const {
        auto it = headers.find(name);
        return it == headers.end() ? std::string() : it->second;
    }
};

struct FileMeta {
    std::string path;
    std::string etag;
    long long size = -1;  // -1 unknown
    std::string url;      // where to GET it (the CDN location for LFS files)
    bool cached = false;  // its blob is already there
    bool lfs = false;     // the hub answered with X-Linked-Etag (a sha256); else the ETag is the git blob id
};

// One connection: a libcurl handle and the file it is fetching. Lane 0 also does the listing and the HEAD requests.
struct Lane {
    CURL* curl = nullptr;
    std::atomic<std::uint64_t> fileBytes{0};  // on disk for its current file; 0 when idle
    bool rangeChecked = false;
    std::string file;  // guarded by the progress mutex
    int index = 0;
    std::uint64_t fileTotal = 0;
    Lane() {
        curl = curl_easy_init();
        if (!curl) fail(ErrorKind::Io, "cannot start libcurl");
    }
    ~Lane() {
        if (curl) curl_easy_cleanup(curl);
    }
    Lane(const Lane&) = delete;
    Lane& operator=(const Lane&) = delete;
};

class Client {
public:
    Client(const std::string& repoId, const DownloadOptions& o) : m_repo(repoId), m_o(o) {
        globalInit();
        if (const char* v = std::getenv("KOALA_HUB_FAIL_WRITES_AFTER"); v && m_o.failWritesAfterBytes < 0)
            m_o.failWritesAfterBytes = std::atoll(v);
        if (const char* v = std::getenv("KOALA_HUB_ASSUME_FREE_BYTES"); v && m_o.assumeFreeBytes < 0)
            m_o.assumeFreeBytes = std::atoll(v);
        if (const char* v = std::getenv("KOALA_HUB_PARALLEL"); v && m_o.parallelFiles <= 0)
            m_o.parallelFiles = std::atoi(v);
        if (m_o.parallelFiles <= 0) m_o.parallelFiles = 4;
        m_o.parallelFiles = std::min(16, m_o.parallelFiles);
        m_cache = fs::path(m_o.env.cacheDir);
        m_repoDir = m_cache / repoFolderName(repoId);
        m_lanes.push_back(std::make_unique<Lane>());
    }
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    DownloadResult run();
    DownloadPlan plan();

private:
    // ---- HTTP ----
    struct Transfer {
        Client* self = nullptr;
        Lane* lane = nullptr;
        Response* resp = nullptr;
        std::FILE* file = nullptr;  // body goes here on a 2xx answer, else into resp->body
        Sha256* hasher = nullptr;
        long long startOffset = 0;  // bytes already in the file when the request was made
        bool truncated = false;     // the server ignored Range: the file was emptied
        bool writeFailed = false;
        int writeErrno = 0;
        bool injected = false;
        bool cancelled = false;
        std::string protocolError;
    };

    // The user's cancel, or another file's failure: every connection stops (partial files stay).
    bool stopped() const { return m_stop.cancelled() || (m_o.cancel && m_o.cancel->cancelled()); }

    void setCommon(Lane& lane, const std::string& url, curl_slist*& hdrs, bool follow) {
        CURL* c = lane.curl;
        curl_easy_reset(c);
        curl_easy_setopt(c, CURLOPT_URL, url.c_str());
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, long(std::max(1, m_o.stallSeconds)));
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, follow ? 1L : 0L);
        curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
#if LIBCURL_VERSION_NUM >= 0x075500
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#endif
        const std::string ua = m_o.userAgent.empty() ? "koala-hub/0.1 (KOALA Studio)" : m_o.userAgent;
        curl_easy_setopt(c, CURLOPT_USERAGENT, ua.c_str());
        hdrs = curl_slist_append(hdrs, "Accept-Encoding: identity");
        // libcurl drops a custom Authorization header when a redirect leaves the host (the CDN needs none).
        if (!m_o.env.token.empty()) hdrs = curl_slist_append(hdrs, ("Authorization: Bearer " + m_o.env.token).c_str());
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, &Client::onHeader);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &Client::onBody);
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, &Client::onXfer);
    }

    static std::size_t onHeader(char* data, std::size_t size, std::size_t n, void* user) {
        auto* t = static_cast<Transfer*>(user);
        parseHeaderLine(std::string(data, size * n), t->resp->headers, t->resp->status);
        return size * n;
    }

    static std::size_t onBody(char* data, std::size_t size, std::size_t n, void* user) {
        auto* t = static_cast<Transfer*>(user);
        const std::size_t len = size * n;
        if (!t->file || t->resp->status < 200 || t->resp->status >= 300) {
            if (t->resp->body.size() < (1u << 20)) t->resp->body.append(data, len);
            return len;
        }
        return t->self->writeChunk(*t, data, len);
    }

    static int onXfer(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
        auto* t = static_cast<Transfer*>(user);
        if (t->self->stopped()) {
            t->cancelled = true;
            return 1;
        }
        t->self->reportProgress(t->lane, false);
        return 0;
    }

    std::size_t writeChunk(Transfer& t, const char* data, std::size_t len) {
        Lane& lane = *t.lane;
        if (!t.truncated && !lane.rangeChecked) {
            lane.rangeChecked = true;
            if (t.startOffset > 0 && t.resp->status == 200) {
                // The server ignored the Range request and sends the whole file: start the file over.
                std::fflush(t.file);
                if (::ftruncate(::fileno(t.file), 0) != 0 || std::fseek(t.file, 0, SEEK_SET) != 0) {
                    t.writeFailed = true;
                    t.writeErrno = errno;
                    return 0;
                }
                *t.hasher = Sha256();
                lane.fileBytes = 0;
                t.truncated = true;
            } else if (t.startOffset > 0 && t.resp->status == 206) {
                const std::string cr = t.resp->header("content-range");  // bytes START-END/TOTAL
                long long start = -1;
                if (cr.rfind("bytes ", 0) == 0) start = std::atoll(cr.c_str() + 6);
                if (start != t.startOffset) {
                    t.protocolError = "the server answered a resume request from byte " +
                                      std::to_string(t.startOffset) + " with '" + cr + "'";
                    return 0;
                }
            }
        }
        if (stopped()) {
            t.cancelled = true;
            return 0;
        }
        std::size_t allowed = len;
        if (m_o.failWritesAfterBytes >= 0) {
            const long long room = std::max(0LL, m_o.failWritesAfterBytes - m_writtenThisCall.load());
            if ((long long)len > room) {
                allowed = std::size_t(room);
                t.injected = true;
            }
        }
        if (allowed > 0 && std::fwrite(data, 1, allowed, t.file) != allowed) {
            t.writeFailed = true;
            t.writeErrno = errno;
            return 0;
        }
        t.hasher->update(data, allowed);
        m_writtenThisCall += (long long)allowed;
        lane.fileBytes += allowed;
        m_netBytes += allowed;
        if (t.injected) {
            std::fflush(t.file);
            t.writeFailed = true;
            t.writeErrno = ENOSPC;
            return 0;
        }
        return len;
    }

    Response request(Lane& lane, const std::string& url, bool head, bool follow) {
        Response r;
        Transfer t;
        t.self = this;
        t.lane = &lane;
        t.resp = &r;
        curl_slist* hdrs = nullptr;
        setCommon(lane, url, hdrs, follow);
        if (head) curl_easy_setopt(lane.curl, CURLOPT_NOBODY, 1L);
        curl_easy_setopt(lane.curl, CURLOPT_HEADERDATA, &t);
        curl_easy_setopt(lane.curl, CURLOPT_WRITEDATA, &t);
        curl_easy_setopt(lane.curl, CURLOPT_XFERINFODATA, &t);
        char err[CURL_ERROR_SIZE] = {0};
        curl_easy_setopt(lane.curl, CURLOPT_ERRORBUFFER, err);
        r.code = curl_easy_perform(lane.curl);
        curl_slist_free_all(hdrs);
        if (t.cancelled) fail(ErrorKind::Cancelled, "download of " + m_repo + " cancelled");
        r.curlError = err[0] ? err : curl_easy_strerror(r.code);
        return r;
    }

    [[noreturn]] void networkError(const Response& r, const std::string& what) {
        fail(ErrorKind::Network, "cannot reach " + m_o.env.endpoint + " (" + what + "): " + r.curlError);
    }

    // The hub's answers: 401 (no or a bad token; also a missing repo to an anonymous client), 403 (gated), 404.
    [[noreturn]] void httpError(const Response& r, const std::string& path) {
        const std::string code = r.header("x-error-code");
        std::string msg = r.header("x-error-message");
        const std::string where = m_o.env.endpoint + "/" + m_repo;
        const std::string tokenHelp = "set HF_TOKEN to an access token (" + m_o.env.endpoint + "/settings/tokens)";
        if (r.status == 401) {
            if (m_o.env.token.empty())
                fail(ErrorKind::Unauthorized, m_repo + ": the hub wants a token (401" +
                                                  (code.empty() ? "" : ", " + code) +
                                                  "): the repo is private or gated, or does not exist. If it exists, " +
                                                  tokenHelp + " of an account that can read it");
            fail(ErrorKind::Unauthorized, m_repo + ": the hub refused the token from HF_TOKEN (401" +
                                              (code.empty() ? "" : ", " + code) +
                                              "): check that it is valid and not expired, that its account can read " +
                                              where + ", and that the repo id is right");
        }
        if (r.status == 403) {
            const bool gated = code == "GatedRepo" || msg.find("gated") != std::string::npos;
            fail(ErrorKind::Forbidden,
                 m_repo + ": access is restricted (403" + (code.empty() ? "" : ", " + code) +
                     "): " + (gated ? "it is a gated repo: " : "if it is a gated repo, ") + "log in at " + where +
                     ", accept its terms, then " + tokenHelp + " of that account" +
                     (m_o.env.token.empty() ? " (no HF_TOKEN is set now)" : " (the token from HF_TOKEN was sent)"));
        }
        if (r.status == 404) {
            if (code == "RevisionNotFound")
                fail(ErrorKind::NotFound, "revision '" + m_o.revision + "' not found in " + m_repo);
            if (code == "RepoNotFound" || path.empty())
                fail(ErrorKind::NotFound, "repository " + m_repo + " not found at " + m_o.env.endpoint);
            fail(ErrorKind::NotFound, "file " + path + " not found in " + m_repo + " at revision " + m_o.revision);
        }
        if (r.status == 429 || r.status >= 500)
            fail(ErrorKind::Network, m_o.env.endpoint + " answered HTTP " + std::to_string(r.status) +
                                         (r.status == 429 ? " (too many requests)" : " (server error)") +
                                         "; try again later");
        fail(ErrorKind::Protocol, "unexpected HTTP " + std::to_string(r.status) + " from " + m_o.env.endpoint +
                                      (path.empty() ? "" : " for " + path) + (msg.empty() ? "" : ": " + msg));
    }

    // ---- steps ----
    std::string resolveUrl(const std::string& path) const {
        return m_o.env.endpoint + "/" + m_repo + "/resolve/" + quote(m_commit, false) + "/" + quote(path, true);
    }

    using Sibling = RepoSibling;
    void listRevision(std::vector<Sibling>& files, bool blobs);
    FileMeta headFile(const std::string& path);
    void fetchBlob(Lane& lane, const FileMeta& f, int index, int count);
    void downloadToIncomplete(Lane& lane, const FileMeta& f, const fs::path& incomplete);
    void startFile(Lane& lane, const FileMeta& f, std::uint64_t have);
    void fetchAll(const std::vector<FileMeta>& toFetch);
    void checkFreeSpace(std::uint64_t needed);
    void linkSnapshot(const std::vector<FileMeta>& files);
    void phase(Lane* lane, DownloadProgress::Phase p, const std::string& file = {});
    void reportProgress(Lane* lane, bool force);
    void reportLocked(Lane* lane, bool force);

    std::string m_repo;
    DownloadOptions m_o;
    std::vector<std::unique_ptr<Lane>> m_lanes;
    fs::path m_cache, m_repoDir;
    std::string m_commit;
    CancelToken m_stop;

    // progress (m_pm guards what is not atomic)
    std::mutex m_pm;
    DownloadProgress m_p;
    std::uint64_t m_doneBefore = 0;                    // finished files among those fetched
    std::uint64_t m_pendingPartial = 0;                // partial files kept from before, of files not started yet
    std::map<std::string, std::uint64_t> m_partialAt;  // etag -> those partial bytes
    int m_filesDone = 0;
    std::atomic<std::uint64_t> m_netBytes{0};  // over the network by this call
    std::atomic<long long> m_writtenThisCall{0};
    Clock::time_point m_lastReport{};
    Clock::time_point m_rateT0{};
    std::uint64_t m_rateBytes0 = 0;
    double m_rate = 0;
};

}  // namespace

namespace detail {

// Resolves a Location header against the URL it came from.
std::string resolveLocation(const std::string& base, const std::string& location) {
    if (location.find("://") != std::string::npos) return location;
    const auto scheme = base.find("://");
    const auto hostEnd = base.find('/', scheme == std::string::npos ? 0 : scheme + 3);
    const std::string origin = hostEnd == std::string::npos ? base : base.substr(0, hostEnd);
    if (!location.empty() && location[0] == '/') return origin + location;
    const auto lastSlash = base.rfind('/');
    return (lastSlash == std::string::npos || lastSlash < hostEnd ? origin + "/" : base.substr(0, lastSlash + 1)) +
           location;
}

void parseHeaderLine(const std::string& line, std::map<std::string, std::string>& headers, long& status) {
    if (line.rfind("HTTP/", 0) == 0) {  // a new response (after a redirect): start over
        headers.clear();
        std::istringstream is(line);
        std::string proto;
        is >> proto >> status;
        return;
    }
    const auto colon = line.find(':');
    if (colon != std::string::npos) headers[lower(trimmed(line.substr(0, colon)))] = trimmed(line.substr(colon + 1));
}

std::string parseRevisionListing(const std::string& body, const std::string& url, std::vector<RepoSibling>& files) {
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(body);
    } catch (const nlohmann::json::exception&) {
        fail(ErrorKind::Protocol, url + " did not answer JSON");
    }
    if (!j.is_object() || !j.contains("sha") || !j["sha"].is_string() || !j.contains("siblings") ||
        !j["siblings"].is_array())
        fail(ErrorKind::Protocol, url + ": no 'sha' and 'siblings' in the answer");
    const std::string commit = j["sha"].get<std::string>();
    if (!isCommitHash(commit)) fail(ErrorKind::Protocol, url + ": '" + commit + "' is not a commit hash");
    // With blobs=true each sibling is {"rfilename", "size", "blobId", "lfs": {"sha256", "size", "pointerSize"}}
    // (huggingface_hub's RepoSibling); "size" is the file's own size, LFS files included.
    const auto number = [](const nlohmann::json& o, const char* key) -> long long {
        return o.contains(key) && o[key].is_number_integer() && o[key].get<long long>() >= 0 ? o[key].get<long long>()
                                                                                             : -1;
    };
    const auto text = [](const nlohmann::json& o, const char* key) -> std::string {
        return o.contains(key) && o[key].is_string() ? o[key].get<std::string>() : std::string();
    };
    for (const auto& s : j["siblings"]) {
        if (!s.is_object() || !s.contains("rfilename") || !s["rfilename"].is_string()) continue;
        RepoSibling sib;
        sib.path = s["rfilename"].get<std::string>();
        sib.size = number(s, "size");
        sib.blobId = lower(text(s, "blobId"));
        if (s.contains("lfs") && s["lfs"].is_object()) {
            sib.sha256 = lower(text(s["lfs"], "sha256"));
            sib.lfsSize = number(s["lfs"], "size");
        }
        files.push_back(std::move(sib));
    }
    return commit;
}

}  // namespace detail

namespace {

void Client::phase(Lane* lane, DownloadProgress::Phase p, const std::string& file) {
    std::lock_guard<std::mutex> guard(m_pm);
    m_p.phase = p;
    if (lane)
        lane->file = file;
    else
        m_p.file = file;
    reportLocked(lane, true);
}

void Client::reportProgress(Lane* lane, bool force) {
    std::lock_guard<std::mutex> guard(m_pm);
    reportLocked(lane, force);
}

void Client::reportLocked(Lane* lane, bool force) {
    const auto now = Clock::now();
    const std::uint64_t net = m_netBytes.load();
    if (m_rateT0 == Clock::time_point{}) {
        m_rateT0 = now;
        m_rateBytes0 = net;
    }
    const double dt = std::chrono::duration<double>(now - m_rateT0).count();
    if (dt >= 1.0) {  // a rate over the last second or so, smoothed
        const double inst = double(net - m_rateBytes0) / dt;
        m_rate = m_rate == 0 ? inst : 0.7 * m_rate + 0.3 * inst;
        m_rateT0 = now;
        m_rateBytes0 = net;
    }
    if (!m_o.progress) return;
    if (!force && now - m_lastReport < std::chrono::milliseconds(100)) return;
    m_lastReport = now;
    DownloadProgress p = m_p;
    std::uint64_t active = 0;
    int busy = 0;
    for (const auto& l : m_lanes) {
        const std::uint64_t b = l->fileBytes.load();
        active += b;
        busy += l->index > 0 ? 1 : 0;
    }
    if (lane && lane->index > 0) {
        p.file = lane->file;
        p.fileIndex = lane->index;
        p.fileTotal = lane->fileTotal;
        p.fileBytes = lane->fileBytes.load();
    } else if (lane && p.file.empty()) {
        p.file = lane->file;
    }
    p.filesDone = m_filesDone;
    p.filesActive = busy;
    p.bytesDone = m_doneBefore + m_pendingPartial + active;
    if (p.bytesTotal > 0) p.bytesDone = std::min(p.bytesDone, p.bytesTotal);
    p.bytesPerSecond = m_rate;
    p.secondsLeft = m_rate > 0 && p.bytesTotal >= p.bytesDone
                        ? double(p.bytesTotal - p.bytesDone) / m_rate
                        : (p.bytesTotal > 0 && p.bytesDone >= p.bytesTotal ? 0.0 : -1.0);
    m_o.progress(p);
}

void Client::listRevision(std::vector<Sibling>& files, bool blobs) {
    const std::string url = m_o.env.endpoint + "/api/models/" + m_repo + "/revision/" + quote(m_o.revision, false) +
                            (blobs ? "?blobs=true" : "");
    Response r = request(*m_lanes[0], url, false, true);
    if (r.code != CURLE_OK) networkError(r, "listing " + m_repo);
    if (r.status != 200) httpError(r, "");
    m_commit = parseRevisionListing(r.body, url, files);
}

FileMeta Client::headFile(const std::string& path) {
    FileMeta f;
    f.path = path;
    std::string url = resolveUrl(path);
    for (int hop = 0; hop < 5; ++hop) {
        Response r = request(*m_lanes[0], url, true, false);
        if (r.code != CURLE_OK) networkError(r, "asking for " + path);
        const bool redirect = r.status >= 300 && r.status < 400;
        const std::string linkedEtag = r.header("x-linked-etag");
        if (redirect && linkedEtag.empty()) {
            // A relative redirect (a renamed repo): follow it for the metadata, as huggingface_hub does.
            const std::string loc = r.header("location");
            if (loc.empty()) fail(ErrorKind::Protocol, "redirect without Location for " + path);
            url = resolveLocation(url, loc);
            continue;
        }
        if (!redirect && r.status != 200) httpError(r, path);
        const std::string commit = r.header("x-repo-commit");
        if (!commit.empty() && commit != m_commit)
            fail(ErrorKind::Protocol, path + ": the hub answered for commit " + commit + " while listing gave " +
                                          m_commit + " (the repo changed during the download; run again)");
        f.lfs = !linkedEtag.empty();
        f.etag = normalizeEtag(f.lfs ? linkedEtag : r.header("etag"));
        if (f.etag.empty() || !safeRepoPath(f.etag) || f.etag.find('/') != std::string::npos)
            fail(ErrorKind::Protocol, "the hub gave no usable ETag for " + path);
        const std::string size = !r.header("x-linked-size").empty() ? r.header("x-linked-size")
                                                                    : (redirect ? "" : r.header("content-length"));
        if (!size.empty()) f.size = std::atoll(size.c_str());
        f.url = redirect ? resolveLocation(url, r.header("location")) : url;
        std::error_code ec;
        f.cached = fs::is_regular_file(m_repoDir / "blobs" / f.etag, ec);
        return f;
    }
    fail(ErrorKind::Protocol, "too many redirects for " + path);
}

void Client::checkFreeSpace(std::uint64_t needed) {
    if (needed == 0) return;
    std::uint64_t freeBytes = 0;
    const fs::path dir = m_repoDir / "blobs";
    if (m_o.assumeFreeBytes >= 0) {
        freeBytes = std::uint64_t(m_o.assumeFreeBytes);
    } else {
        struct statvfs st {};
        if (::statvfs(dir.c_str(), &st) != 0) return;  // cannot tell: let the writes say
        freeBytes = std::uint64_t(st.f_bavail) * std::uint64_t(st.f_frsize);
    }
    if (needed > freeBytes)
        fail(ErrorKind::DiskFull, "not enough disk space for " + m_repo + ": it needs " + humanBytes(double(needed)) +
                                      " more in " + dir.string() + " but only " + humanBytes(double(freeBytes)) +
                                      " are free (set HF_HUB_CACHE to a larger disk, or free some space)");
}

// A file starts on a lane: its partial bytes (if any were counted as pending) now count as the lane's.
void Client::startFile(Lane& lane, const FileMeta& f, std::uint64_t have) {
    std::lock_guard<std::mutex> guard(m_pm);
    auto it = m_partialAt.find(f.etag);
    if (it != m_partialAt.end()) {
        m_pendingPartial -= std::min(m_pendingPartial, it->second);
        m_partialAt.erase(it);
    }
    lane.fileBytes = have;
}

void Client::downloadToIncomplete(Lane& lane, const FileMeta& f, const fs::path& incomplete) {
    const bool checkSha = isSha256(f.etag);
    Sha256 hasher;
    std::error_code ec;
    // Hash what a previous run left, so the check covers the whole file.
    long long have = fs::exists(incomplete, ec) ? (long long)fs::file_size(incomplete, ec) : 0;
    if (f.size >= 0 && have > f.size) {
        fs::remove(incomplete, ec);
        have = 0;
    }
    if (have > 0) {
        std::ifstream in(incomplete, std::ios::binary);
        std::vector<char> buf(1 << 20);
        long long left = have;
        while (left > 0 && in) {
            in.read(buf.data(), std::streamsize(std::min<long long>(left, (long long)buf.size())));
            hasher.update(buf.data(), std::size_t(in.gcount()));
            left -= in.gcount();
        }
    }
    startFile(lane, f, std::uint64_t(have));
    int failures = 0;
    bool restarted416 = false;
    while (f.size < 0 || have < f.size) {
        std::FILE* out = std::fopen(incomplete.c_str(), "ab");
        if (!out) fail(ErrorKind::Io, "cannot write " + incomplete.string() + ": " + std::strerror(errno));
        Response r;
        Transfer t;
        t.self = this;
        t.lane = &lane;
        t.resp = &r;
        t.file = out;
        t.hasher = &hasher;
        t.startOffset = have;
        lane.rangeChecked = false;
        curl_slist* hdrs = nullptr;
        setCommon(lane, f.url, hdrs, true);
        if (have > 0) hdrs = curl_slist_append(hdrs, ("Range: bytes=" + std::to_string(have) + "-").c_str());
        curl_easy_setopt(lane.curl, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(lane.curl, CURLOPT_HEADERDATA, &t);
        curl_easy_setopt(lane.curl, CURLOPT_WRITEDATA, &t);
        curl_easy_setopt(lane.curl, CURLOPT_XFERINFODATA, &t);
        char err[CURL_ERROR_SIZE] = {0};
        curl_easy_setopt(lane.curl, CURLOPT_ERRORBUFFER, err);
        r.code = curl_easy_perform(lane.curl);
        curl_slist_free_all(hdrs);
        r.curlError = err[0] ? err : curl_easy_strerror(r.code);
        const bool flushFailed = std::fflush(out) != 0 || ::fsync(::fileno(out)) != 0;
        const int flushErrno = errno;
        std::fclose(out);
        have = (long long)fs::file_size(incomplete, ec);
        lane.fileBytes = std::uint64_t(have);
        if (t.cancelled)
            fail(ErrorKind::Cancelled, "download of " + m_repo + " cancelled (" + f.path + ": " +
                                           humanBytes(double(have)) + " kept for a later resume)");
        if (t.writeFailed || flushFailed) {
            const int e = t.writeFailed ? t.writeErrno : flushErrno;
            const std::string kept =
                "; " + humanBytes(double(have)) + " of " + f.path + " are kept and the next download resumes there";
            if (e == ENOSPC || e == EDQUOT)
                fail(ErrorKind::DiskFull, "no space left on the disk of " + m_cache.string() + " while writing " +
                                              f.path +
                                              (t.injected ? " (injected by KOALA_HUB_FAIL_WRITES_AFTER)" : "") + kept);
            fail(ErrorKind::Io, "cannot write " + incomplete.string() + ": " + std::strerror(e) + kept);
        }
        if (!t.protocolError.empty()) {
            fs::remove(incomplete, ec);
            fail(ErrorKind::Protocol, f.path + ": " + t.protocolError);
        }
        if (r.code == CURLE_OK && r.status == 416 && !restarted416) {
            // The partial file does not fit the server's file: start it over once.
            fs::remove(incomplete, ec);
            hasher = Sha256();
            have = 0;
            lane.fileBytes = 0;
            restarted416 = true;
            continue;
        }
        if (r.code == CURLE_OK && (r.status < 200 || r.status >= 300) && r.status < 500 && r.status != 429)
            httpError(r, f.path);
        const bool retryable = (r.code != CURLE_OK && retryableCurlError(r.code)) ||
                               (r.code == CURLE_OK && (r.status >= 500 || r.status == 429)) ||
                               (r.code == CURLE_OK && f.size >= 0 && have < f.size);
        if (r.code != CURLE_OK && !retryable) networkError(r, "downloading " + f.path);
        if (r.code == CURLE_OK && f.size < 0 && r.status >= 200 && r.status < 300) break;  // size unknown: done
        if (!retryable) continue;
        if (++failures > m_o.retries)
            fail(ErrorKind::Network,
                 "the connection dropped " + std::to_string(failures) + " times while downloading " + f.path + " (" +
                     (r.code != CURLE_OK ? r.curlError : "HTTP " + std::to_string(r.status)) + "); " +
                     humanBytes(double(have)) + " are kept: run the download again to resume");
        // Back off a little (more each time), then resume from what is on disk.
        const auto wait = std::chrono::milliseconds(std::min(5000, 250 * failures));
        for (auto until = Clock::now() + wait; Clock::now() < until;) {
            if (stopped()) fail(ErrorKind::Cancelled, "download of " + m_repo + " cancelled");
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    }
    if (f.size >= 0 && have != f.size) {
        fs::remove(incomplete, ec);
        fail(ErrorKind::Checksum, f.path + ": received " + std::to_string(have) + " bytes where the hub announced " +
                                      std::to_string(f.size) + "; the data was discarded, run the download again");
    }
    if (checkSha) {
        phase(&lane, DownloadProgress::Phase::Verifying, f.path);
        const std::string got = hasher.hexDigest();
        if (got != f.etag) {
            fs::remove(incomplete, ec);
            fail(ErrorKind::Checksum, f.path + ": sha256 " + got + " does not match the hub's " + f.etag +
                                          "; the data was discarded (run the download again; if it repeats, a proxy "
                                          "or the server is damaging the file)");
        }
    } else if (!f.lfs && isCommitHash(f.etag)) {
        // A small (non-LFS) file: the hub's ETag is its git blob id, sha1("blob {size}\0" + content).
        phase(&lane, DownloadProgress::Phase::Verifying, f.path);
        const std::string got = gitBlobSha1OfFile(incomplete);
        if (got != f.etag) {
            fs::remove(incomplete, ec);
            fail(ErrorKind::Checksum, f.path + ": git blob id " + (got.empty() ? "(unreadable)" : got) +
                                          " does not match the hub's ETag " + f.etag +
                                          "; the data was discarded (run the download again; if it repeats, a proxy "
                                          "or the server is damaging the file)");
        }
    }
}

void Client::fetchBlob(Lane& lane, const FileMeta& f, int index, int count) {
    const fs::path blob = m_repoDir / "blobs" / f.etag;
    const fs::path incomplete = m_repoDir / "blobs" / (f.etag + ".incomplete");
    std::error_code ec;
    fs::create_directories(blob.parent_path(), ec);
    if (ec) fail(ErrorKind::Io, "cannot create " + blob.parent_path().string() + ": " + ec.message());
    // One writer per blob, here and in huggingface_hub (the same lock file); others wait, then find it done.
    FileLock lock;
    lock.lock(blobLockPath(m_o.env.cacheDir, m_repo, f.etag), FileLock::Mode::Exclusive, &m_stop);
    {
        std::lock_guard<std::mutex> guard(m_pm);
        lane.index = index;
        lane.fileTotal = f.size >= 0 ? std::uint64_t(f.size) : 0;
        lane.fileBytes = 0;
        m_p.fileCount = count;
    }
    if (!fs::is_regular_file(blob, ec)) {
        phase(&lane, DownloadProgress::Phase::Downloading, f.path);
        downloadToIncomplete(lane, f, incomplete);
        if (std::rename(incomplete.c_str(), blob.c_str()) != 0)
            fail(ErrorKind::Io, "cannot move " + incomplete.string() + " into place: " + std::strerror(errno));
    } else {
        startFile(lane, f, 0);  // another download put it there meanwhile
    }
    std::lock_guard<std::mutex> guard(m_pm);
    lane.fileBytes = 0;
    lane.index = 0;
    m_doneBefore += f.size >= 0 ? std::uint64_t(f.size) : 0;
    ++m_filesDone;
}

// Fetches the files on up to parallelFiles connections. The first failure stops the others (their partial files
// stay, as on a cancel) and is what the download throws; a cancel reaches every connection within 50 ms.
void Client::fetchAll(const std::vector<FileMeta>& toFetch) {
    if (toFetch.empty()) return;
    const std::size_t lanes = std::min<std::size_t>(std::size_t(m_o.parallelFiles), toFetch.size());
    while (m_lanes.size() < lanes) m_lanes.push_back(std::make_unique<Lane>());
    std::atomic<std::size_t> next{0};
    std::atomic<int> running{int(lanes)};
    std::mutex errorMutex;
    std::exception_ptr firstError;
    const int count = int(toFetch.size());
    const auto work = [&](Lane& lane) {
        for (;;) {
            const std::size_t i = next++;
            if (i >= toFetch.size() || m_stop.cancelled()) break;
            try {
                fetchBlob(lane, toFetch[i], int(i + 1), count);
            } catch (...) {
                {
                    std::lock_guard<std::mutex> guard(errorMutex);
                    if (!firstError) firstError = std::current_exception();
                }
                m_stop.cancel();
                break;
            }
        }
        --running;
    };
    std::vector<std::thread> threads;
    threads.reserve(lanes);
    for (std::size_t l = 0; l < lanes; ++l) {
        Lane* lane = m_lanes[l].get();
        threads.emplace_back([&work, lane] { work(*lane); });
    }
    while (running.load() > 0) {
        if (m_o.cancel && m_o.cancel->cancelled()) m_stop.cancel();
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    for (auto& t : threads) t.join();
    if (firstError) std::rethrow_exception(firstError);
    if (m_o.cancel && m_o.cancel->cancelled()) fail(ErrorKind::Cancelled, "download of " + m_repo + " cancelled");
}

void Client::linkSnapshot(const std::vector<FileMeta>& files) {
    phase(nullptr, DownloadProgress::Phase::Linking);
    const fs::path snap = m_repoDir / "snapshots" / m_commit;
    std::error_code ec;
    // model_index.json last: a snapshot that has it is complete.
    std::vector<const FileMeta*> order;
    for (const auto& f : files)
        if (f.path != "model_index.json") order.push_back(&f);
    for (const auto& f : files)
        if (f.path == "model_index.json") order.push_back(&f);
    for (const FileMeta* f : order) {
        const fs::path link = snap / f->path;
        const std::string target = blobLinkTarget(f->path, f->etag);
        if (fs::is_symlink(link, ec) && fs::read_symlink(link, ec).string() == target) continue;
        if (fs::is_directory(link, ec) && !fs::is_symlink(link, ec))
            fail(ErrorKind::Io, link.string() + " is a folder; expected a link to a blob");
        replaceSymlink(link, target);
    }
    if (m_o.revision != m_commit) writeFileAtomic(m_repoDir / "refs" / m_o.revision, m_commit);
    const fs::path tag = m_cache / "CACHEDIR.TAG";
    if (!fs::exists(tag, ec)) {
        try {
            writeFileAtomic(tag,
                            "Signature: 8a477f597d28d172789f06886806bc55\n"
                            "# This file is a cache directory tag (https://bford.info/cachedir/): the Hugging Face "
                            "hub cache, written by KOALA Studio's hub client.\n");
        } catch (const Error&) {}
    }
}

DownloadResult Client::run() {
    DownloadResult res;
    res.repoId = m_repo;
    res.revision = m_o.revision;
    res.repoDir = m_repoDir.string();
    std::error_code ec;

    phase(nullptr, DownloadProgress::Phase::Listing);
    std::vector<Sibling> siblings;
    try {
        listRevision(siblings, false);
    } catch (const Error& e) {
        if (e.kind() != ErrorKind::Network) throw;
        // The hub is unreachable: a complete cached snapshot still answers, as huggingface_hub does.
        if (auto snap = cachedSnapshot(m_o.env.cacheDir, m_repo, m_o.revision)) {
            res.snapshotDir = *snap;
            res.commit = fs::path(*snap).filename().string();
            res.fromCache = true;
            res.note = std::string(e.what()) + "; using the cached snapshot";
            phase(nullptr, DownloadProgress::Phase::Done);
            return res;
        }
        throw;
    }
    std::vector<std::string> repoFiles;
    for (const auto& s : siblings) repoFiles.push_back(s.path);
    res.commit = m_commit;
    // One shared lock per repo while downloading: remove*() refuses (Busy) instead of pulling files from under it.
    FileLock repoLock;
    repoLock.lock(repoLockPath(m_o.env.cacheDir, m_repo), FileLock::Mode::Shared, m_o.cancel);
    // The folders huggingface_hub makes before downloading (its scan_cache_dir() flags a repo without snapshots/).
    fs::create_directories(m_repoDir / "blobs", ec);
    fs::create_directories(m_repoDir / "snapshots", ec);
    if (ec) fail(ErrorKind::Io, "cannot create " + m_repoDir.string() + ": " + ec.message());
    if (std::find(repoFiles.begin(), repoFiles.end(), "model_index.json") == repoFiles.end())
        fail(ErrorKind::NotFound, m_repo + " has no model_index.json at " + m_o.revision +
                                      ": it is not a diffusers pipeline (KOALA Studio loads SDXL-family pipelines)");

    phase(nullptr, DownloadProgress::Phase::Checking, "model_index.json");
    const fs::path snap = m_repoDir / "snapshots" / m_commit;
    std::vector<FileMeta> metas;
    FileMeta index = headFile("model_index.json");
    if (!index.cached) {
        checkFreeSpace(index.size > 0 ? std::uint64_t(index.size) : 0);
        fetchBlob(*m_lanes[0], index, 0, 0);
    }
    {
        std::lock_guard<std::mutex> guard(m_pm);
        m_doneBefore = 0;
        m_filesDone = 0;
    }
    std::string indexText;
    {
        std::ifstream in(m_repoDir / "blobs" / index.etag, std::ios::binary);
        std::ostringstream ss;
        ss << in.rdbuf();
        indexText = ss.str();
    }
    const auto wanted = selectPipelineFiles(repoFiles, indexText, m_o.variant);
    std::vector<FileMeta> toFetch;
    std::uint64_t needed = 0;
    for (const auto& path : wanted) {
        if (!safeRepoPath(path)) fail(ErrorKind::Protocol, "the hub listed an unsafe file name '" + path + "'");
        if (path == "model_index.json") {
            metas.push_back(index);
            continue;
        }
        phase(nullptr, DownloadProgress::Phase::Checking, path);
        FileMeta f = headFile(path);
        metas.push_back(f);
        res.bytesTotal += f.size > 0 ? std::uint64_t(f.size) : 0;
        if (f.cached) continue;
        toFetch.push_back(f);
    }
    res.bytesTotal += index.size > 0 ? std::uint64_t(index.size) : 0;
    // Two entries for one blob (identical files): fetch it once.
    std::sort(toFetch.begin(), toFetch.end(), [](const FileMeta& a, const FileMeta& b) { return a.etag < b.etag; });
    toFetch.erase(std::unique(toFetch.begin(), toFetch.end(),
                              [](const FileMeta& a, const FileMeta& b) { return a.etag == b.etag; }),
                  toFetch.end());
    // Largest first, so the parallel connections finish together; then by path.
    std::sort(toFetch.begin(), toFetch.end(), [](const FileMeta& a, const FileMeta& b) {
        return a.size != b.size ? a.size > b.size : a.path < b.path;
    });
    std::uint64_t partial = 0;
    for (const auto& f : toFetch) {  // what is left to fetch, partial downloads counted
        const auto bytes = fs::file_size(m_repoDir / "blobs" / (f.etag + ".incomplete"), ec);
        std::uint64_t have = ec ? 0 : bytes;
        if (f.size >= 0 && have > std::uint64_t(f.size)) have = 0;  // restarted by the download
        if (have > 0) m_partialAt[f.etag] = have;
        partial += have;
        if (f.size > 0 && std::uint64_t(f.size) > have) needed += std::uint64_t(f.size) - have;
    }
    checkFreeSpace(needed);

    {
        std::lock_guard<std::mutex> guard(m_pm);
        m_p.bytesTotal = 0;
        for (const auto& f : toFetch) m_p.bytesTotal += f.size > 0 ? std::uint64_t(f.size) : 0;
        m_p.fileCount = int(toFetch.size());
        m_pendingPartial = partial;
    }
    phase(nullptr, DownloadProgress::Phase::Ready);
    fetchAll(toFetch);

    linkSnapshot(metas);
    res.snapshotDir = snap.string();
    for (const auto& f : metas) res.files.push_back(f.path);
    res.bytesDownloaded = m_netBytes.load();
    phase(nullptr, DownloadProgress::Phase::Done);
    return res;
}

DownloadPlan Client::plan() {
    DownloadPlan plan;
    plan.repoId = m_repo;
    plan.revision = m_o.revision;
    std::vector<Sibling> siblings;
    listRevision(siblings, true);
    plan.commit = m_commit;
    const Sibling* index = nullptr;
    std::vector<std::string> repoFiles;
    for (const auto& s : siblings) {
        repoFiles.push_back(s.path);
        if (s.path == "model_index.json") index = &s;
    }
    if (!index)
        fail(ErrorKind::NotFound, m_repo + " has no model_index.json at " + m_o.revision +
                                      ": it is not a diffusers pipeline (KOALA Studio loads SDXL-family pipelines)");
    // model_index.json names the components: from the cache when its blob is there, else a small GET (not kept).
    std::string indexText;
    std::error_code ec;
    const fs::path cachedIndex = m_repoDir / "blobs" / index->blobId;
    if (isCommitHash(index->blobId) && fs::is_regular_file(cachedIndex, ec)) {
        std::ifstream in(cachedIndex, std::ios::binary);
        std::ostringstream ss;
        ss << in.rdbuf();
        indexText = ss.str();
    } else {
        Response r = request(*m_lanes[0], resolveUrl("model_index.json"), false, true);
        if (r.code != CURLE_OK) networkError(r, "reading model_index.json of " + m_repo);
        if (r.status != 200) httpError(r, "model_index.json");
        indexText = r.body;
        if (isCommitHash(index->blobId) && gitBlobSha1(indexText) != index->blobId)
            fail(ErrorKind::Checksum,
                 "model_index.json of " + m_repo + " does not match its git blob id " + index->blobId);
    }
    std::map<std::string, const Sibling*> byPath;
    for (const auto& s : siblings) byPath[s.path] = &s;
    std::map<std::string, bool> counted;  // etag -> counted once
    for (const auto& path : selectPipelineFiles(repoFiles, indexText, m_o.variant)) {
        const Sibling& s = *byPath[path];
        PlannedFile f;
        f.path = path;
        f.lfs = !s.sha256.empty();
        f.etag = f.lfs ? s.sha256 : s.blobId;
        const long long size = f.lfs && s.lfsSize >= 0 ? s.lfsSize : s.size;
        if (size < 0 || f.etag.empty())
            fail(ErrorKind::Protocol,
                 m_o.env.endpoint + " listed " + path + " of " + m_repo + " without its size or blob id (blobs=true)");
        if (!safeRepoPath(f.etag) || f.etag.find('/') != std::string::npos)
            fail(ErrorKind::Protocol, "the hub listed an unusable blob id for " + path);
        f.size = std::uint64_t(size);
        f.cached = fs::is_regular_file(m_repoDir / "blobs" / f.etag, ec);
        if (!f.cached) {
            const auto bytes = fs::file_size(m_repoDir / "blobs" / (f.etag + ".incomplete"), ec);
            f.partialBytes = ec || bytes > f.size ? 0 : bytes;
        }
        if (!counted[f.etag]) {
            counted[f.etag] = true;
            plan.bytesTotal += f.size;
            plan.bytesCached += f.cached ? f.size : 0;
            plan.bytesPartial += f.partialBytes;
        }
        plan.files.push_back(std::move(f));
    }
    return plan;
}

}  // namespace

namespace {

// What planDownload and download both refuse before asking the hub: a bad repo id, revision or variant choice.
void checkRequest(const std::string& repoId, const DownloadOptions& options) {
    validateRepoId(repoId);
    if (options.revision.empty()) fail(ErrorKind::Usage, "empty revision");
    validateRevision(options.revision);
    if (options.variant != "auto" && options.variant != "fp16" && options.variant != "plain" &&
        options.variant != "all")
        fail(ErrorKind::Usage, "unknown variant choice '" + options.variant + "' (auto, fp16, plain or all)");
}

}  // namespace

DownloadPlan planDownload(const std::string& repoId, const DownloadOptions& options) {
    checkRequest(repoId, options);
    if (options.env.offline)
        fail(ErrorKind::Offline, "HF_HUB_OFFLINE is set: the hub is not asked for the size of " + repoId);
    Client c(repoId, options);
    return c.plan();
}

DownloadResult download(const std::string& repoId, const DownloadOptions& options) {
    checkRequest(repoId, options);
    if (options.env.cacheDir.empty()) fail(ErrorKind::Usage, "no cache folder (HF_HUB_CACHE)");
    if (options.env.offline) {
        if (auto snap = cachedSnapshot(options.env.cacheDir, repoId, options.revision)) {
            DownloadResult res;
            res.repoId = repoId;
            res.revision = options.revision;
            res.repoDir = (fs::path(options.env.cacheDir) / repoFolderName(repoId)).string();
            res.snapshotDir = *snap;
            res.commit = fs::path(*snap).filename().string();
            res.fromCache = true;
            res.note = "HF_HUB_OFFLINE is set; using the cached snapshot";
            return res;
        }
        fail(ErrorKind::Offline, "HF_HUB_OFFLINE is set and " + repoId + " (revision " + options.revision +
                                     ") is not completely in the cache " + options.env.cacheDir +
                                     "; unset HF_HUB_OFFLINE to download it");
    }
    Client c(repoId, options);
    return c.run();
}

}  // namespace koala::hub
