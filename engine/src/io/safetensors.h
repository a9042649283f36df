// Memory-mapped safetensors reader (internal). Validates the header completely on open: dtype names, shapes,
// offsets inside the data area, no overlaps, total byte counts.
//
// The file can change under the mapping: another program may truncate or rewrite it in place while it is mapped.
// Reading a mapped page past the file's new end raises SIGBUS, so nothing reads the mapping directly: the header and
// every tensor are copied out with TensorView::copyTo(), which catches that SIGBUS and throws koala::Error(Io)
// naming the file (see docs/hardening.md). No tensor handed to a model points into the mapping.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace koala::io {

enum class StDType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL };
const char* stDTypeName(StDType t);  // "F32", ...
std::size_t stDTypeSize(StDType t);

struct TensorView {
    std::string name;
    StDType dtype = StDType::F32;
    std::vector<std::int64_t> shape;
    const std::uint8_t* data = nullptr;  // inside the mapping: read it only through copyTo()
    std::size_t nbytes = 0;
    const std::string* file = nullptr;  // the file's path (owned by its SafetensorsFile), for messages
    std::int64_t numel() const;
    // Copies the nbytes bytes into dst. Throws koala::Error(Io) naming the file when the file was truncated since it
    // was mapped (the SIGBUS of reading past its end is caught), instead of crashing.
    void copyTo(void* dst) const;
};

// memcpy from a file mapping that turns the SIGBUS of a page past the file's end into `false` (dst is then partly
// written). Thread-safe; any other SIGBUS goes to the handler installed before (by default: the process ends).
bool copyFromMapping(void* dst, const void* src, std::size_t n);

// One open .safetensors file. The mapping stays alive as long as any shared_ptr to it does.
class SafetensorsFile {
public:
    // Throws koala::Error(ModelFormat or Io) with the file name and what is wrong.
    static std::shared_ptr<SafetensorsFile> open(const std::string& path);
    ~SafetensorsFile();
    SafetensorsFile(const SafetensorsFile&) = delete;
    SafetensorsFile& operator=(const SafetensorsFile&) = delete;

    const std::string& path() const { return m_path; }
    const TensorView* find(const std::string& name) const;  // nullptr when absent
    const std::vector<TensorView>& tensors() const { return m_tensors; }
    const std::map<std::string, std::string>& metadata() const { return m_metadata; }

private:
    SafetensorsFile() = default;
    std::string m_path;
    void* m_map = nullptr;
    std::size_t m_size = 0;
    std::vector<TensorView> m_tensors;
    std::map<std::string, std::size_t> m_index;
    std::map<std::string, std::string> m_metadata;
};

}  // namespace koala::io
