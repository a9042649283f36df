// The engine's boundary (internal): every public entry point runs its work through guarded(), which turns LibTorch
// and standard exceptions into one koala::Error with a message a person can act on. Nothing above the engine
// catches LibTorch exceptions itself.
#pragma once

#include "core/common.h"
#include "koala/engine.h"

#include <c10/util/Exception.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <string>

namespace koala {

// Fault injection for tests (docs/hardening.md): KOALA_TEST_FAULT="<kind>:<stage>[:<count>]" makes the next
// <count> (default 1) entry points whose stage starts with <stage> ("generating", "loading the model", ...) throw
// what LibTorch throws when memory runs out, before doing any work:
//   oom-gpu   c10::OutOfMemoryError "CUDA out of memory. Tried to allocate ..." (the CUDA caching allocator)
//   oom-cpu   c10::Error "DefaultCPUAllocator: can't allocate memory ..." (LibTorch's CPU allocator)
//   bad-alloc std::bad_alloc (operator new)
// The count restarts whenever the variable's value changes; unset or malformed values inject nothing. Tests only.
inline void injectTestFault(const char* what) {
    const char* spec = std::getenv("KOALA_TEST_FAULT");
    static std::mutex mutex;
    static std::string current;
    static int injected = 0;
    std::string kind;
    {
        std::lock_guard<std::mutex> lock(mutex);
        const std::string s = spec ? spec : "";
        if (s != current) {
            current = s;
            injected = 0;
        }
        const auto c1 = s.find(':');
        if (c1 == std::string::npos) return;
        const auto c2 = s.find(':', c1 + 1);
        const std::string stage = s.substr(c1 + 1, c2 == std::string::npos ? std::string::npos : c2 - c1 - 1);
        const int count = c2 == std::string::npos ? 1 : std::atoi(s.c_str() + c2 + 1);
        if (stage.empty() || std::strncmp(what, stage.c_str(), stage.size()) != 0 || injected >= count) return;
        ++injected;
        kind = s.substr(0, c1);
    }
    if (kind == "oom-gpu")
        C10_THROW_ERROR(OutOfMemoryError,
                        "CUDA out of memory. Tried to allocate 20.00 GiB (injected by KOALA_TEST_FAULT)");
    if (kind == "oom-cpu")
        C10_THROW_ERROR(Error,
                        "DefaultCPUAllocator: can't allocate memory: you tried to allocate 21474836480 bytes. Error "
                        "code 12 (Cannot allocate memory) (injected by KOALA_TEST_FAULT)");
    if (kind == "bad-alloc") throw std::bad_alloc();
}

template <typename F>
inline auto guarded(const char* what, F&& f) -> decltype(f()) {
    try {
        injectTestFault(what);
        return f();
    } catch (const Error&) {
        throw;
    } catch (const c10::Error& e) {
        std::string msg = e.what_without_backtrace();
        if (auto nl = msg.find('\n'); nl != std::string::npos) msg = msg.substr(0, nl);
        if (msg.find("out of memory") != std::string::npos)
            fail(ErrorKind::OutOfMemory, std::string(what) + ": the GPU ran out of memory (" + msg +
                                             "); try a smaller size, fewer images, or memory mode 'low'");
        // LibTorch's CPU allocator says it differently: "DefaultCPUAllocator: can't allocate memory: ...".
        if (msg.find("can't allocate memory") != std::string::npos ||
            msg.find("Cannot allocate memory") != std::string::npos)
            fail(ErrorKind::OutOfMemory,
                 std::string(what) + ": out of host memory (" + msg + "); try a smaller size, fewer images, or fp16");
        fail(ErrorKind::Internal, std::string(what) + ": " + msg);
    } catch (const std::bad_alloc&) {
        fail(ErrorKind::OutOfMemory,
             std::string(what) + ": out of host memory; try a smaller size, fewer images, or fp16");
    } catch (const std::exception& e) {
        fail(ErrorKind::Internal, std::string(what) + ": " + e.what());
    }
}

}  // namespace koala
