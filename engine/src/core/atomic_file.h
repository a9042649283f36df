// Atomic file writes (internal): write a temporary file beside the target, fsync, rename over the target.
#pragma once

#include <string>

namespace koala {

// Throws koala::Error(Io) naming the path and the system error.
void writeFileAtomically(const std::string& path, const std::string& bytes);

}  // namespace koala
