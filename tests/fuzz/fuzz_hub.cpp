// Fuzz target: what the hub client reads from the hub (hub/src/download.cpp, cache.cpp): the revision listing
// (detail::parseRevisionListing), response header lines and Location headers (detail::parseHeaderLine,
// detail::resolveLocation), a repo's model_index.json and file list through koala::hub::selectPipelineFiles (every
// variant choice), and the names it takes from answers and users: repo ids, revisions, ETags and repo paths
// (validateRepoId / repoFolderName, validateRevision, normalizeEtag, safeRepoPath, blobLinkTarget). The input is
// "model_index.json\n--\nfile list, one per line\n--\nnames, one per line\n--\nlisting JSON\n--\nheader lines".
// Every part is also read as each of the others. Only koala::hub::Error may come out, and every selected file must
// come from the repo's list.
#include "fuzz_util.h"

#include "internal.h"
#include "koala/hub.h"

#include <algorithm>
#include <map>
#include <sstream>

namespace {

std::vector<std::string> lines(const std::string& s) {
    std::vector<std::string> out;
    std::istringstream in(s);
    std::string l;
    while (std::getline(in, l)) out.push_back(l);
    return out;
}

template <class F>
void guarded(F&& f) {
    fuzz::guarded<koala::hub::Error>("hub", std::forward<F>(f));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    namespace hub = koala::hub;
    auto parts = fuzz::split(data, size, "\n--\n", 5);
    const std::string index = parts[0];
    const auto files = parts.size() > 1 ? lines(parts[1]) : std::vector<std::string>{};
    const auto names = parts.size() > 2 ? lines(parts[2]) : std::vector<std::string>{};
    for (const char* variant : {"auto", "fp16", "plain", "all"})
        guarded([&] {
            for (const auto& f : hub::selectPipelineFiles(files, index, variant))
                if (std::find(files.begin(), files.end(), f) == files.end() ||
                    (f != "model_index.json" && !hub::detail::safeRepoPath(f))) {
                    std::fprintf(stderr, "selected '%s', not a safe file of the repo's list\n", f.c_str());
                    std::abort();
                }
        });
    for (const auto& body : parts)
        guarded([&] {
            std::vector<hub::detail::RepoSibling> siblings;
            const std::string commit = hub::detail::parseRevisionListing(body, "https://hub/api/models/x", siblings);
            if (!hub::detail::isCommitHash(commit)) std::abort();
        });
    std::map<std::string, std::string> headers;
    long status = 0;
    for (const auto& line : lines(parts.size() > 4 ? parts[4] : parts.back())) {
        hub::detail::parseHeaderLine(line, headers, status);
        for (const auto& kv : headers)
            for (char c : kv.first)
                if (c >= 'A' && c <= 'Z') std::abort();  // header names are stored in lower case
        (void)hub::detail::resolveLocation("https://huggingface.co/org/name/resolve/abc/unet/config.json", line);
        (void)hub::detail::resolveLocation(line, "/api/x");
        (void)hub::detail::resolveLocation(line, line);
    }
    for (const auto& n : names) {
        guarded([&] { (void)hub::repoFolderName(n); });
        guarded([&] { hub::detail::validateRevision(n); });
        guarded([&] {
            const std::string etag = hub::detail::normalizeEtag(n);
            if (hub::detail::safeRepoPath(n)) (void)hub::detail::blobLinkTarget(n, etag);
        });
        (void)hub::detail::isCommitHash(n);
        (void)hub::detail::isSha256(n);
    }
    return 0;
}
