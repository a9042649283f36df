// koala_hub without libcurl (the GPU machine's build): the cache functions work, downloads say they are not built.
#include "internal.h"

namespace koala::hub {

bool downloadBuiltIn() { return false; }

DownloadResult download(const std::string& repoId, const DownloadOptions& options) {
    validateRepoId(repoId);
    if (options.env.offline)
        if (auto snap = cachedSnapshot(options.env.cacheDir, repoId, options.revision)) {
            DownloadResult res;
            res.repoId = repoId;
            res.revision = options.revision;
            res.snapshotDir = *snap;
            res.fromCache = true;
            res.note = "HF_HUB_OFFLINE is set; using the cached snapshot";
            return res;
        }
    throw Error(ErrorKind::NotBuiltIn,
                "downloading is not built in: this build was configured without libcurl "
                "(install libcurl4-openssl-dev and configure again)");
}

DownloadPlan planDownload(const std::string& repoId, const DownloadOptions&) {
    validateRepoId(repoId);
    throw Error(ErrorKind::NotBuiltIn, "asking the hub is not built in: this build was configured without libcurl");
}

}  // namespace koala::hub
