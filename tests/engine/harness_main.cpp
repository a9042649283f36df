#include "harness.h"

#include <unistd.h>

#include <c10/util/Exception.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

namespace kt {

std::vector<TestCase>& registry() {
    static std::vector<TestCase> r;
    return r;
}

static int g_failures = 0;
static std::string g_exeName = "test";

void reportFailure(const char* file, int line, const std::string& what) {
    ++g_failures;
    std::fprintf(stderr, "  FAIL %s:%d: %s\n", file, line, what.c_str());
}

std::string dataPath(const std::string& rel) { return std::string(KOALA_TEST_DATA) + "/" + rel; }
std::string fixturePath(const std::string& rel) { return dataPath("fixtures/" + rel); }

std::string tempDir() {
    static std::string dir;
    if (dir.empty()) {
        // Per process: two runs of the suite at once (two build folders, two clones) must not share scratch files.
        auto p = std::filesystem::temp_directory_path() /
                 ("koala-test-" + g_exeName + "-" + std::to_string(static_cast<long long>(::getpid())));
        std::filesystem::remove_all(p);
        std::filesystem::create_directories(p);
        dir = p.string();
        std::atexit([] {
            std::error_code ec;
            std::filesystem::remove_all(dir, ec);
        });
    }
    return dir;
}

double relErr(const at::Tensor& a, const at::Tensor& b) {
    auto x = a.detach().to(at::kCPU).to(at::kDouble);
    auto y = b.detach().to(at::kCPU).to(at::kDouble);
    if (x.sizes() != y.sizes()) return INFINITY;
    double den = y.norm().item<double>();
    double num = (x - y).norm().item<double>();
    if (den == 0) return num == 0 ? 0 : INFINITY;
    return num / den;
}

static nlohmann::json readHeader(const std::string& file, std::uint64_t& headerLen) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw std::runtime_error("cannot open " + file);
    in.read(reinterpret_cast<char*>(&headerLen), 8);
    std::string h(headerLen, '\0');
    in.read(h.data(), static_cast<std::streamsize>(headerLen));
    return nlohmann::json::parse(h);
}

std::vector<std::string> tensorNames(const std::string& file) {
    std::uint64_t n = 0;
    auto j = readHeader(file, n);
    std::vector<std::string> out;
    for (auto it = j.begin(); it != j.end(); ++it)
        if (it.key() != "__metadata__") out.push_back(it.key());
    return out;
}

at::Tensor loadTensor(const std::string& file, const std::string& name) {
    std::uint64_t n = 0;
    auto j = readHeader(file, n);
    if (!j.contains(name)) throw std::runtime_error("no tensor " + name + " in " + file);
    auto& e = j[name];
    std::string dt = e["dtype"];
    at::ScalarType st = dt == "F32"    ? at::kFloat
                        : dt == "F64"  ? at::kDouble
                        : dt == "F16"  ? at::kHalf
                        : dt == "BF16" ? at::kBFloat16
                        : dt == "I64"  ? at::kLong
                        : dt == "I32"  ? at::kInt
                                       : at::kByte;
    std::vector<int64_t> shape = e["shape"].get<std::vector<int64_t>>();
    std::uint64_t b = e["data_offsets"][0], end = e["data_offsets"][1];
    std::ifstream in(file, std::ios::binary);
    in.seekg(static_cast<std::streamoff>(8 + n + b));
    auto t = at::empty(shape, at::TensorOptions().dtype(st));
    in.read(reinterpret_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(end - b));
    return t;
}

}  // namespace kt

int main(int argc, char** argv) {
    kt::g_exeName = std::filesystem::path(argv[0]).filename().string();
    const char* only = argc > 1 ? argv[1] : nullptr;
    int ran = 0, skipped = 0, failedTests = 0;
    for (auto& tc : kt::registry()) {
        if (only && !std::strstr(tc.name, only)) continue;
        int before = kt::g_failures;
        std::fprintf(stderr, "[ RUN  ] %s\n", tc.name);
        try {
            tc.fn();
        } catch (const kt::SkipException& s) {
            ++skipped;
            std::fprintf(stderr, "[ SKIP ] %s: %s\n", tc.name, s.why.c_str());
            continue;
        } catch (const koala::Error& e) {
            kt::reportFailure(tc.name, 0, std::string("koala::Error [") + koala::toString(e.kind()) + "] " + e.what());
        } catch (const c10::Error& e) {
            kt::reportFailure(tc.name, 0, std::string("c10::Error ") + e.what_without_backtrace());
        } catch (const std::exception& e) {
            kt::reportFailure(tc.name, 0, std::string("exception ") + e.what());
        }
        ++ran;
        bool ok = kt::g_failures == before;
        if (!ok) ++failedTests;
        std::fprintf(stderr, "[ %s ] %s\n", ok ? " OK " : "FAIL", tc.name);
    }
    std::fprintf(stderr, "%d passed, %d failed, %d skipped\n", ran - failedTests, failedTests, skipped);
    if (failedTests) return 1;
    if (ran == 0 && skipped > 0) return 77;
    return 0;
}
