// The engine's boundary (internal): every public entry point runs its work through guarded(), which turns LibTorch
// and standard exceptions into one koala::Error with a message a person can act on. Nothing above the engine
// catches LibTorch exceptions itself.
#pragma once

#include "core/common.h"
#include "koala/engine.h"

#include <c10/util/Exception.h>

#include <new>
#include <string>

namespace koala {

template <typename F>
inline auto guarded(const char* what, F&& f) -> decltype(f()) {
    try {
        return f();
    } catch (const Error&) {
        throw;
    } catch (const c10::Error& e) {
        std::string msg = e.what_without_backtrace();
        if (auto nl = msg.find('\n'); nl != std::string::npos) msg = msg.substr(0, nl);
        if (msg.find("out of memory") != std::string::npos)
            fail(ErrorKind::OutOfMemory, std::string(what) + ": the GPU ran out of memory (" + msg +
                                             "); try a smaller size, fewer images, or memory mode 'low'");
        fail(ErrorKind::Internal, std::string(what) + ": " + msg);
    } catch (const std::bad_alloc&) {
        fail(ErrorKind::OutOfMemory, std::string(what) + ": out of host memory");
    } catch (const std::exception& e) {
        fail(ErrorKind::Internal, std::string(what) + ": " + e.what());
    }
}

}  // namespace koala
