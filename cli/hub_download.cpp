// koala-cli --download REPO [--revision REV] [--variant auto|plain|all] [--parallel N] [--quiet]: fetches a pipeline
// from the Hugging Face hub into the HF cache (koala_hub), N files at once (default 4), with the total to download
// and then progress on stderr, and prints the snapshot folder on stdout.
// Exit codes as koala-cli's others: 0 done, 1 runtime error, 2 usage.
#include "koala/hub.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <set>
#include <string>

namespace {

std::string humanBytes(double b) {
    const char* units[] = {"B", "kB", "MB", "GB", "TB"};
    int u = 0;
    while (b >= 1000 && u < 4) b /= 1000, ++u;
    char buf[32];
    std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", b, units[u]);
    return buf;
}

std::string clock(double seconds) {
    if (seconds < 0) return "--:--";
    long s = long(seconds + 0.5);
    char buf[32];
    if (s >= 3600)
        std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
    else
        std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
    return buf;
}

[[noreturn]] void downloadUsage(const std::string& msg) {
    std::fprintf(stderr,
                 "koala-cli: %s\nusage: koala-cli --download REPO [--revision REV] [--variant auto|plain|all] "
                 "[--parallel N] [--quiet]\n",
                 msg.c_str());
    std::exit(2);
}

}  // namespace

// argv[i] is "--download".
int runHubDownload(int argc, char** argv, int i) {
    namespace hub = koala::hub;
    if (i + 1 >= argc || std::strncmp(argv[i + 1], "--", 2) == 0) downloadUsage("missing repo id for --download");
    const std::string repo = argv[++i];
    hub::DownloadOptions o;
    bool quiet = false;
    for (++i; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--quiet") {
            quiet = true;
            continue;
        }
        if (a != "--revision" && a != "--variant" && a != "--parallel")
            downloadUsage("unexpected argument after --download: '" + a + "'");
        if (i + 1 >= argc) downloadUsage("missing value for " + a);
        if (a == "--parallel") {
            char* end = nullptr;
            const long n = std::strtol(argv[++i], &end, 10);
            if (!end || *end || n < 1 || n > 16) downloadUsage("--parallel wants a number of files from 1 to 16");
            o.parallelFiles = int(n);
            continue;
        }
        (a == "--revision" ? o.revision : o.variant) = argv[++i];
    }
    if (o.variant != "auto" && o.variant != "plain" && o.variant != "all" && o.variant != "fp16")
        downloadUsage("unknown --variant '" + o.variant + "' for --download (auto, plain or all)");
    try {
        hub::validateRepoId(repo);
    } catch (const hub::Error& e) {
        downloadUsage(e.what());
    }

    const bool tty = ::isatty(2);
    auto last = std::chrono::steady_clock::now() - std::chrono::hours(1);
    std::set<int> seenFiles;
    bool openLine = false;
    if (!quiet)
        o.progress = [&](const hub::DownloadProgress& p) {
            using Phase = hub::DownloadProgress::Phase;
            const auto now = std::chrono::steady_clock::now();
            std::string line;
            if (p.phase == Phase::Listing) {
                line = "listing " + repo + " at " + o.revision;
            } else if (p.phase == Phase::Checking) {
                if (now - last < std::chrono::milliseconds(tty ? 100 : 2000)) return;
                line = "checking " + p.file;
            } else if (p.phase == Phase::Ready) {
                // The total, before the first byte of the weights.
                if (p.fileCount == 0) {
                    line = "nothing to download: every file is in the cache";
                } else {
                    line = std::to_string(p.fileCount) + (p.fileCount == 1 ? " file, " : " files, ") +
                           humanBytes(double(p.bytesTotal - p.bytesDone)) + " to download";
                    if (p.bytesDone > 0)
                        line += " (" + humanBytes(double(p.bytesDone)) + " of " + humanBytes(double(p.bytesTotal)) +
                                " kept from an earlier download)";
                }
                if (openLine) std::fputc('\n', stderr);
                std::fprintf(stderr, "%s\n", line.c_str());
                openLine = false;
                return;
            } else if (p.phase == Phase::Downloading && p.fileIndex == 0) {
                line = "fetching " + p.file;
            } else if (p.phase == Phase::Downloading) {
                const bool newFile = seenFiles.insert(p.fileIndex).second;
                if (!newFile && now - last < std::chrono::milliseconds(tty ? 200 : 2000)) return;
                line = "[" + std::to_string(p.fileIndex) + "/" + std::to_string(p.fileCount) + "] " + p.file + "  " +
                       humanBytes(double(p.fileBytes)) + " / " + humanBytes(double(p.fileTotal)) + "  total " +
                       humanBytes(double(p.bytesDone)) + " / " + humanBytes(double(p.bytesTotal)) + "  " +
                       (p.bytesPerSecond > 0 ? humanBytes(p.bytesPerSecond) + "/s" : "-- B/s") + "  " +
                       clock(p.secondsLeft) + " left" +
                       (p.filesActive > 1 ? "  (" + std::to_string(p.filesActive) + " files at once)" : "");
            } else if (p.phase == Phase::Verifying) {
                if (!tty && now - last < std::chrono::milliseconds(2000)) return;
                line = "verifying " + p.file;
            } else if (p.phase == Phase::Linking) {
                line = "linking the snapshot";
            } else {
                if (openLine) std::fputc('\n', stderr);
                openLine = false;
                return;
            }
            last = now;
            if (tty) {
                std::fprintf(stderr, "\r\033[K%s", line.c_str());
                openLine = true;
            } else {
                std::fprintf(stderr, "%s\n", line.c_str());
            }
            std::fflush(stderr);
        };
    const auto t0 = std::chrono::steady_clock::now();
    try {
        const hub::DownloadResult r = hub::download(repo, o);
        if (openLine) std::fputc('\n', stderr);
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (!quiet) {
            if (r.fromCache)
                std::fprintf(stderr, "%s\n", r.note.c_str());
            else
                std::fprintf(stderr, "%s at %s (commit %s): %zu files, %s, %s downloaded in %.1f s\n", repo.c_str(),
                             o.revision.c_str(), r.commit.c_str(), r.files.size(),
                             humanBytes(double(r.bytesTotal)).c_str(), humanBytes(double(r.bytesDownloaded)).c_str(),
                             secs);
        }
        bool fp16 = false;
        for (const auto& f : r.files)
            fp16 |= f.find(".fp16.") != std::string::npos || f.find(".fp16-") != std::string::npos;
        if (!quiet && fp16)
            std::fprintf(stderr, "fp16 variant weights: load it with --variant auto (or --variant fp16)\n");
        std::printf("%s\n", r.snapshotDir.c_str());
        return 0;
    } catch (const hub::Error& e) {
        if (openLine) std::fputc('\n', stderr);
        if (e.kind() == hub::ErrorKind::Usage) downloadUsage(e.what());
        std::fprintf(stderr, "koala-cli: error: %s\n", e.what());
        return 1;
    } catch (const std::exception& e) {
        if (openLine) std::fputc('\n', stderr);
        std::fprintf(stderr, "koala-cli: error: %s\n", e.what());
        return 1;
    }
}
