// Helpers for the fuzz entry functions (tests/fuzz/fuzz_<name>.cpp): a scratch folder per process (on /dev/shm when
// there is one, removed at exit), writing the input to a file there, and the rule every target applies to the
// exceptions of the code under test.
#pragma once

#include <unistd.h>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace fuzz {

// A folder of this process's own, created on first use and removed at exit.
inline const std::string& scratchDir() {
    static const std::string dir = [] {
        namespace fs = std::filesystem;
        std::error_code ec;
        fs::path base = fs::is_directory("/dev/shm", ec) ? fs::path("/dev/shm") : fs::temp_directory_path();
        fs::path d = base / ("koala-fuzz-" + std::to_string(::getpid()));
        fs::remove_all(d, ec);
        fs::create_directories(d);
        static const std::string keep = d.string();
        std::atexit([] {
            std::error_code e;
            std::filesystem::remove_all(keep, e);
        });
        return d.string();
    }();
    return dir;
}

inline std::string writeFile(const std::string& path, const void* data, std::size_t size) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
    out.close();
    if (!out) {
        std::fprintf(stderr, "fuzz: cannot write %s\n", path.c_str());
        std::abort();
    }
    return path;
}

inline std::string writeFile(const std::string& path, const std::string& text) {
    return writeFile(path, text.data(), text.size());
}

// An exception of a kind the code under test must not let out (it promises koala::Error with a message for bad
// input): report it and abort, so that libFuzzer keeps the input as a crash.
[[noreturn]] inline void unexpected(const char* target, const std::exception& e) {
    std::fprintf(stderr, "fuzz %s: unexpected exception (bad input must give the documented error): %s\n", target,
                 e.what());
    std::abort();
}

// Runs `f`; an exception of type `Expected` (the parser's documented error for bad input) is the expected outcome,
// any other std::exception aborts through unexpected().
template <class Expected, class F>
void guarded(const char* target, F&& f) {
    try {
        f();
    } catch (const Expected&) {
    } catch (const std::exception& e) {
        unexpected(target, e);
    }
}

// Splits `data` at each occurrence of `sep` (at most `maxParts` parts; the last takes the rest).
inline std::vector<std::string> split(const std::uint8_t* data, std::size_t size, const std::string& sep,
                                      std::size_t maxParts) {
    std::vector<std::string> parts;
    std::string s(reinterpret_cast<const char*>(data), size);
    std::size_t pos = 0;
    while (parts.size() + 1 < maxParts) {
        std::size_t at = s.find(sep, pos);
        if (at == std::string::npos) break;
        parts.push_back(s.substr(pos, at - pos));
        pos = at + sep.size();
    }
    parts.push_back(s.substr(pos));
    return parts;
}

}  // namespace fuzz
