// Memory-mapped safetensors reader (internal). Validates the header completely on open: dtype names, shapes,
// offsets inside the data area, no overlaps, total byte counts.
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
    const std::uint8_t* data = nullptr;  // inside the mapping
    std::size_t nbytes = 0;
    std::int64_t numel() const;
};

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
