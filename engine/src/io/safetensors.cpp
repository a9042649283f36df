#include "io/safetensors.h"

#include "core/common.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <limits>
#include <mutex>
#include <sstream>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <csetjmp>
#include <csignal>

namespace koala::io {

namespace {

// The safetensors reference implementation refuses headers above 100 MB; a larger value means a corrupt file
// (or not a safetensors file at all), and we must not try to allocate or parse it.
constexpr std::uint64_t kMaxHeaderBytes = 100ull * 1024 * 1024;

[[noreturn]] void formatError(const std::string& path, const std::string& what) {
    fail(ErrorKind::ModelFormat, path + ": " + what);
}

bool parseDType(const std::string& s, StDType& out) {
    static const std::pair<const char*, StDType> table[] = {
        {"F64", StDType::F64}, {"F32", StDType::F32},  {"F16", StDType::F16}, {"BF16", StDType::BF16},
        {"I64", StDType::I64}, {"I32", StDType::I32},  {"I16", StDType::I16}, {"I8", StDType::I8},
        {"U8", StDType::U8},   {"BOOL", StDType::BOOL}};
    for (const auto& e : table)
        if (s == e.first) {
            out = e.second;
            return true;
        }
    return false;
}

// An unsigned JSON integer (nlohmann stores non-negative literals as unsigned; accept non-negative signed too).
bool asIndex(const nlohmann::json& v, std::uint64_t& out) {
    if (v.is_number_unsigned()) {
        out = v.get<std::uint64_t>();
        return true;
    }
    if (v.is_number_integer() && v.get<std::int64_t>() >= 0) {
        out = static_cast<std::uint64_t>(v.get<std::int64_t>());
        return true;
    }
    return false;
}

// ---- SIGBUS guard for copies out of a mapping ----
// A thread copying from a mapping registers the source range here; the handler jumps back to the copy only for a
// fault inside that range on that thread. Everything else goes to the previous handler.
struct CopyGuard {
    sigjmp_buf env;
    std::uintptr_t begin = 0;
    std::uintptr_t end = 0;
};
// volatile: memcpy is a builtin the compiler knows does not read this, so it could otherwise drop the store before
// the copy (it is overwritten right after).
thread_local CopyGuard* volatile t_copyGuard = nullptr;
struct sigaction g_previousSigbus {};
std::once_flag g_sigbusInstalled;

void onSigbus(int sig, siginfo_t* info, void* context) {
    CopyGuard* guard = t_copyGuard;
    const auto addr = reinterpret_cast<std::uintptr_t>(info ? info->si_addr : nullptr);
    if (guard && addr >= guard->begin && addr < guard->end) {
        t_copyGuard = nullptr;
        siglongjmp(guard->env, 1);
    }
    // Not a guarded copy: behave as if this handler were not there.
    if ((g_previousSigbus.sa_flags & SA_SIGINFO) && g_previousSigbus.sa_sigaction) {
        g_previousSigbus.sa_sigaction(sig, info, context);
        return;
    }
    if (!(g_previousSigbus.sa_flags & SA_SIGINFO) && g_previousSigbus.sa_handler != SIG_DFL &&
        g_previousSigbus.sa_handler != SIG_IGN) {
        g_previousSigbus.sa_handler(sig);
        return;
    }
    // Default action: restore it; the faulting access runs again on return and ends the process with SIGBUS.
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    ::sigaction(SIGBUS, &dfl, nullptr);
}

void installSigbusHandler() {
    struct sigaction sa {};
    sa.sa_sigaction = &onSigbus;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGBUS, &sa, &g_previousSigbus);
}

[[noreturn]] void changedWhileReading(const std::string& path) {
    fail(ErrorKind::Io, path +
                            ": the file changed while it was being read (it is shorter than when it was opened: "
                            "truncated or rewritten in place by another program?); load it again once it is complete");
}

std::string shapeString(const std::vector<std::int64_t>& shape) {
    std::string s = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
    return s + "]";
}

}  // namespace

const char* stDTypeName(StDType t) {
    switch (t) {
    case StDType::F64: return "F64";
    case StDType::F32: return "F32";
    case StDType::F16: return "F16";
    case StDType::BF16: return "BF16";
    case StDType::I64: return "I64";
    case StDType::I32: return "I32";
    case StDType::I16: return "I16";
    case StDType::I8: return "I8";
    case StDType::U8: return "U8";
    case StDType::BOOL: return "BOOL";
    }
    return "?";
}

std::size_t stDTypeSize(StDType t) {
    switch (t) {
    case StDType::F64:
    case StDType::I64: return 8;
    case StDType::F32:
    case StDType::I32: return 4;
    case StDType::F16:
    case StDType::BF16:
    case StDType::I16: return 2;
    case StDType::I8:
    case StDType::U8:
    case StDType::BOOL: return 1;
    }
    return 1;
}

bool copyFromMapping(void* dst, const void* src, std::size_t n) {
    if (n == 0) return true;
    std::call_once(g_sigbusInstalled, installSigbusHandler);
    CopyGuard guard;
    // Whole pages: the fault address is wherever the first missing page starts.
    const std::uintptr_t page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
    guard.begin = reinterpret_cast<std::uintptr_t>(src) & ~(page - 1);
    guard.end = reinterpret_cast<std::uintptr_t>(src) + n;
    if (sigsetjmp(guard.env, 1) != 0) return false;  // back from the handler: t_copyGuard is already cleared
    t_copyGuard = &guard;
    std::atomic_signal_fence(std::memory_order_seq_cst);
    std::memcpy(dst, src, n);
    std::atomic_signal_fence(std::memory_order_seq_cst);
    t_copyGuard = nullptr;
    return true;
}

void TensorView::copyTo(void* dst) const {
    if (!copyFromMapping(dst, data, nbytes)) changedWhileReading(file ? *file : std::string("a safetensors file"));
}

std::int64_t TensorView::numel() const {
    std::int64_t n = 1;
    for (auto d : shape) n *= d;
    return n;
}

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
    // open() follows symlinks, which is what Hugging Face cache snapshots (links into blobs/) need.
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail(ErrorKind::Io, "cannot open " + path + ": " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        int e = errno;
        ::close(fd);
        fail(ErrorKind::Io, "cannot stat " + path + ": " + std::strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        fail(ErrorKind::Io, path + " is not a regular file");
    }
    const auto fileSize = static_cast<std::uint64_t>(st.st_size);
    if (fileSize < 8) {
        ::close(fd);
        formatError(path, "not a safetensors file: " + std::to_string(fileSize) +
                              " bytes, shorter than the 8-byte header length");
    }
    // MAP_PRIVATE + PROT_WRITE: at::from_blob wants a non-const pointer, and a private mapping makes any accidental
    // write copy-on-write instead of corrupting the file. We never write.
    void* map = ::mmap(nullptr, fileSize, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    int mapErr = errno;
    ::close(fd);  // the mapping keeps the file referenced
    if (map == MAP_FAILED) fail(ErrorKind::Io, "cannot map " + path + ": " + std::strerror(mapErr));

    std::shared_ptr<SafetensorsFile> f(new SafetensorsFile());
    f->m_path = path;
    f->m_map = map;
    f->m_size = fileSize;
    const auto* bytes = static_cast<const std::uint8_t*>(map);

    // Even the header is read through the guard: the file may have been cut short since fstat().
    std::uint8_t lenBytes[8];
    if (!copyFromMapping(lenBytes, bytes, 8)) changedWhileReading(path);
    std::uint64_t headerLen = 0;
    for (int i = 7; i >= 0; --i) headerLen = (headerLen << 8) | lenBytes[i];  // little-endian on any host
    if (headerLen > kMaxHeaderBytes)
        formatError(path, "header length " + std::to_string(headerLen) + " is not plausible (corrupt file?)");
    if (headerLen > fileSize - 8)
        formatError(path, "truncated: header length " + std::to_string(headerLen) + " runs past the end of the file (" +
                              std::to_string(fileSize) + " bytes)");

    std::string headerText(static_cast<std::size_t>(headerLen), '\0');
    if (!copyFromMapping(headerText.data(), bytes + 8, headerText.size())) changedWhileReading(path);
    nlohmann::json header;
    try {
        header = nlohmann::json::parse(headerText);
    } catch (const nlohmann::json::parse_error& e) {
        formatError(path, "malformed JSON header (byte " + std::to_string(e.byte) + " of the header)");
    } catch (const nlohmann::json::exception& e) {
        // A number JSON allows but a double cannot hold (1e999) is out_of_range 406, not a parse_error (fuzzing).
        formatError(path, std::string("malformed JSON header (") + e.what() + ")");
    }
    if (!header.is_object()) formatError(path, "the JSON header is not an object");

    const std::uint64_t dataStart = 8 + headerLen;
    const std::uint64_t dataSize = fileSize - dataStart;
    std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;  // [begin,end) per tensor, for the overlap check
    std::vector<std::size_t> rangeOwner;

    for (auto it = header.begin(); it != header.end(); ++it) {
        const std::string& name = it.key();
        const auto& e = it.value();
        if (name == "__metadata__") {
            if (!e.is_object()) formatError(path, "__metadata__ is not a string map");
            for (auto m = e.begin(); m != e.end(); ++m) {
                if (!m.value().is_string()) formatError(path, "__metadata__ value '" + m.key() + "' is not a string");
                f->m_metadata[m.key()] = m.value().get<std::string>();
            }
            continue;
        }
        const std::string where = "tensor " + name;
        if (!e.is_object()) formatError(path, where + ": entry is not an object");
        auto dt = e.find("dtype");
        auto sh = e.find("shape");
        auto off = e.find("data_offsets");
        if (dt == e.end() || !dt->is_string()) formatError(path, where + ": missing or non-string 'dtype'");
        if (sh == e.end() || !sh->is_array()) formatError(path, where + ": missing or non-array 'shape'");
        if (off == e.end() || !off->is_array() || off->size() != 2)
            formatError(path, where + ": 'data_offsets' must be an array of two integers");

        TensorView v;
        v.name = name;
        if (!parseDType(dt->get<std::string>(), v.dtype))
            formatError(path, where + " has unsupported dtype " + dt->get<std::string>());

        // numel with overflow checks: a hostile header must not make us wrap around and accept a bogus size.
        std::uint64_t numel = 1;
        bool overflow = false;
        for (const auto& d : *sh) {
            std::uint64_t n = 0;
            if (!asIndex(d, n) || n > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
                formatError(path, where + ": shape entries must be non-negative integers");
            v.shape.push_back(static_cast<std::int64_t>(n));
            if (n != 0 && numel > std::numeric_limits<std::uint64_t>::max() / n) overflow = true;
            numel *= n;
        }
        const std::uint64_t item = stDTypeSize(v.dtype);
        if (overflow || numel > std::numeric_limits<std::uint64_t>::max() / item)
            formatError(path, where + ": shape " + shapeString(v.shape) + " is too large");
        std::uint64_t begin = 0, end = 0;
        if (!asIndex((*off)[0], begin) || !asIndex((*off)[1], end))
            formatError(path, where + ": 'data_offsets' must be non-negative integers");
        if (end < begin)
            formatError(path, where + ": data_offsets [" + std::to_string(begin) + "," + std::to_string(end) +
                                  "] end before they begin");
        if (end - begin != numel * item)
            formatError(path, where + ": " + std::to_string(end - begin) + " bytes stored but shape " +
                                  shapeString(v.shape) + " of " + stDTypeName(v.dtype) + " needs " +
                                  std::to_string(numel * item));
        if (end > dataSize)
            formatError(path, "truncated: tensor " + name + " ends at byte " + std::to_string(dataStart + end) +
                                  " but the file has " + std::to_string(fileSize));
        v.data = bytes + dataStart + begin;
        v.nbytes = static_cast<std::size_t>(end - begin);
        v.file = &f->m_path;
        if (end > begin) {
            ranges.emplace_back(begin, end);
            rangeOwner.push_back(f->m_tensors.size());
        }
        f->m_index[name] = f->m_tensors.size();
        f->m_tensors.push_back(std::move(v));
    }

    // Overlapping tensors would alias each other's data; empty tensors occupy no bytes and are exempt.
    std::vector<std::size_t> order(ranges.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return ranges[a] < ranges[b]; });
    for (std::size_t i = 1; i < order.size(); ++i) {
        const auto& prev = ranges[order[i - 1]];
        const auto& cur = ranges[order[i]];
        if (cur.first < prev.second)
            formatError(path, "tensors " + f->m_tensors[rangeOwner[order[i - 1]]].name + " and " +
                                  f->m_tensors[rangeOwner[order[i]]].name + " overlap (bytes " +
                                  std::to_string(cur.first) + ".." + std::to_string(prev.second) +
                                  " of the data area)");
    }
    return f;
}

SafetensorsFile::~SafetensorsFile() {
    if (m_map) ::munmap(m_map, m_size);
}

const TensorView* SafetensorsFile::find(const std::string& name) const {
    auto it = m_index.find(name);
    return it == m_index.end() ? nullptr : &m_tensors[it->second];
}

}  // namespace koala::io
