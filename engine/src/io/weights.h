// A component's weights (internal): one safetensors file or a sharded set (*.safetensors.index.json), seen as one
// name → tensor map. Models ask for tensors by name and expected shape; every missing or mismatched tensor is
// collected and reported together by finish() before any compute runs.
#pragma once

#include "io/safetensors.h"

#include <ATen/ATen.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace koala::io {

class WeightStore {
public:
    // `files`: the shard files (one or more). `component`: a label for messages ("unet", "vae", ...).
    WeightStore(std::string component, std::vector<std::shared_ptr<SafetensorsFile>> files);

    // Open a component folder: <dir>/<stem>[.<variant>].safetensors or its sharded index
    // <dir>/<stem>[.<variant>].safetensors.index.json. With a variant that is absent, falls back to the plain files
    // only if `variantFallback` (diffusers errors out; we do the same by default). Throws koala::Error.
    static WeightStore openComponent(const std::string& dir, const std::string& stem, const std::string& variant,
                                     const std::string& component);
    // The variant to open for LoadOptions::variant: "auto" picks, per component folder, the fp16 files when they are
    // there and `halfPrecision` (else the plain files), the plain files when they are there otherwise, and whichever
    // exists when only one does; any other value is returned as it is.
    static std::string chooseVariant(const std::string& dir, const std::string& stem, const std::string& requested,
                                     bool halfPrecision);

    // A store without files, for building full-size architectures without weights (the benchmark): take() returns
    // a fresh random tensor of the requested shape in the target dtype/device and never records a problem.
    // Values: names ending in "bias" → zeros; 1-D "...norm..." weights → ones; everything else normal(0, 0.02).
    // Each tensor is seeded from `seed` and its name, so a tensor does not depend on the order of take() calls.
    // has() is true for every name (models must take their structure from the config, not from has()), view() is
    // nullptr, files() is empty, parameterCount() is the sum of numel over what was taken, dominantDType() follows
    // the target dtype.
    static WeightStore random(std::string component, std::uint64_t seed);
    bool isRandom() const { return m_random; }

    // Rename keys on the fly (legacy VAE attention names). The mapper gets the requested name and returns the
    // candidate names to look for, in order.
    void setAliases(std::function<std::vector<std::string>(const std::string&)> aliases);

    // Target dtype and device for tensors returned by take().
    void setTarget(at::ScalarType dtype, at::Device device);

    // The tensor `name` with the expected shape, converted to the target dtype/device. Always a copy: no tensor
    // points into the mapping, so a file truncated after the load cannot crash a later generation; a file truncated
    // during the load throws koala::Error(Io) naming it (TensorView::copyTo). Legacy [C,C,1,1] attention weights are squeezed when the
    // expected shape is [C,C]. On a missing tensor or a shape mismatch the problem is recorded and an undefined
    // tensor is returned; call finish() once the whole model has been requested.
    at::Tensor take(const std::string& name, const std::vector<std::int64_t>& shape);
    bool has(const std::string& name) const;
    const TensorView* view(const std::string& name) const;

    // Throws koala::Error(ModelFormat) listing every missing and mismatched tensor (at most 20, then a count).
    void finish() const;

    const std::string& component() const { return m_component; }
    std::string describe() const;            // file names, for messages
    std::vector<std::string> files() const;  // absolute paths of the shard files
    StDType dominantDType() const;           // dtype of most floating-point bytes on disk
    std::int64_t parameterCount() const;     // sum of numel over all floating-point tensors (position_ids
                                             // and other integer buffers are not parameters)

private:
    const TensorView* lookup(const std::string& name) const;
    at::Tensor takeRandom(const std::string& name, const std::vector<std::int64_t>& shape);
    std::string m_component;
    std::vector<std::shared_ptr<SafetensorsFile>> m_files;
    std::function<std::vector<std::string>(const std::string&)> m_aliases;
    at::ScalarType m_dtype = at::kFloat;
    at::Device m_device = at::kCPU;
    std::vector<std::string> m_problems;
    std::string m_source;  // what describe() names: the file or the shard index (empty: the files)
    bool m_random = false;
    std::uint64_t m_seed = 0;
    std::int64_t m_randomParams = 0;
};

}  // namespace koala::io
