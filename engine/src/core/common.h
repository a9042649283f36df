// Internal helpers shared by the engine's translation units.
#pragma once

#include "koala/engine.h"

#include <string>

namespace koala {

[[noreturn]] inline void fail(ErrorKind kind, const std::string& message) { throw Error(kind, message); }

}  // namespace koala
