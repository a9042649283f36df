#pragma once

#include <QString>

#include "koala/engine.h"

// What the studio tells the user about where images are computed: the status bar's "CUDA · NVIDIA H200 · fp16" or
// "CPU · LibTorch 1.13 · fp32", and the About box's lines (LibTorch, CUDA compiled in or not, the device).
namespace ComputeSummary {

// One short line for the status bar, for the given load options on this machine (the engine's resolution rules).
QString statusLine(const koala::LoadOptions& options);
// Same, with the device description passed in (for tests: a machine with a GPU is not needed to check the text).
QString statusLine(const koala::LoadOptions& options, const koala::DeviceInfo& device, const koala::BuildInfo& build);

// Rich text for the About box: build, device, and what the options resolve to.
QString aboutHtml(const koala::LoadOptions& options);

}  // namespace ComputeSummary
