#include "core/atomic_file.h"
#include "core/common.h"

#include <fcntl.h>
#include <unistd.h>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace koala {

void writeFileAtomically(const std::string& path, const std::string& bytes) {
    const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
    auto sysFail = [&](const char* what) {
        const std::string why = std::strerror(errno);
        std::remove(tmp.c_str());
        fail(ErrorKind::Io, std::string("cannot write ") + path + ": " + what + ": " + why);
    };
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) sysFail("open");
    std::size_t done = 0;
    while (done < bytes.size()) {
        ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            ::close(fd);
            sysFail("write");
        }
        done += std::size_t(n);
    }
    if (::fsync(fd) != 0) {
        ::close(fd);
        sysFail("fsync");
    }
    if (::close(fd) != 0) sysFail("close");
    if (std::rename(tmp.c_str(), path.c_str()) != 0) sysFail("rename");
}

}  // namespace koala
