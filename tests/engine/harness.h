// A minimal test harness for the engine tests (they must build where Qt is absent, e.g. the GPU machine).
//   KT_TEST(name) { KT_CHECK(cond); KT_CHECK_REL(a, b, tol); KT_CHECK_THROWS(stmt, koala::ErrorKind::X, "substr"); }
// Each test file is its own executable; main() is in harness_main.cpp. A test calls kt::skip("why") to skip; an
// executable whose tests all skipped exits 77 (CTest SKIP_RETURN_CODE).
#pragma once

#include "koala/engine.h"

#include <ATen/ATen.h>

#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace kt {

struct TestCase {
    const char* name;
    std::function<void()> fn;
};
std::vector<TestCase>& registry();
struct Registrar {
    Registrar(const char* name, std::function<void()> fn) { registry().push_back({name, std::move(fn)}); }
};
struct SkipException {
    std::string why;
};
[[noreturn]] inline void skip(const std::string& why) { throw SkipException{why}; }
void reportFailure(const char* file, int line, const std::string& what);

// Paths into tests/data (KOALA_TEST_DATA is set by CMake).
std::string dataPath(const std::string& rel);
std::string fixturePath(const std::string& rel);  // tests/data/fixtures/<rel>
// A scratch folder unique to this test executable (created, emptied at start).
std::string tempDir();

// ‖a−b‖/‖b‖ in float64 (both moved to CPU float64).
double relErr(const at::Tensor& a, const at::Tensor& b);
// Load a tensor from a safetensors file (copied to an owned CPU tensor of the stored dtype).
at::Tensor loadTensor(const std::string& file, const std::string& name);
std::vector<std::string> tensorNames(const std::string& file);

}  // namespace kt

#define KT_CONCAT2(a, b) a##b
#define KT_CONCAT(a, b) KT_CONCAT2(a, b)
#define KT_TEST(name)                                             \
    static void name();                                           \
    static ::kt::Registrar KT_CONCAT(kt_reg_, name)(#name, name); \
    static void name()

#define KT_CHECK(cond)                                                                \
    do {                                                                              \
        if (!(cond)) ::kt::reportFailure(__FILE__, __LINE__, "CHECK failed: " #cond); \
    } while (0)

#define KT_CHECK_MSG(cond, msg)                                   \
    do {                                                          \
        if (!(cond)) {                                            \
            std::ostringstream kt_os;                             \
            kt_os << "CHECK failed: " #cond " -- " << msg;        \
            ::kt::reportFailure(__FILE__, __LINE__, kt_os.str()); \
        }                                                         \
    } while (0)

#define KT_CHECK_EQ(a, b)                                                                    \
    do {                                                                                     \
        auto kt_a = (a);                                                                     \
        auto kt_b = (b);                                                                     \
        if (!(kt_a == kt_b)) {                                                               \
            std::ostringstream kt_os;                                                        \
            kt_os << "CHECK_EQ failed: " #a " == " #b " (" << kt_a << " vs " << kt_b << ")"; \
            ::kt::reportFailure(__FILE__, __LINE__, kt_os.str());                            \
        }                                                                                    \
    } while (0)

// Relative error of tensors below tol; prints the error either way for the log.
#define KT_CHECK_REL(a, b, tol)                                                                          \
    do {                                                                                                 \
        double kt_e = ::kt::relErr((a), (b));                                                            \
        if (!(kt_e < (tol))) {                                                                           \
            std::ostringstream kt_os;                                                                    \
            kt_os << "relative error of " #a " vs " #b " is " << kt_e << " (tolerance " << (tol) << ")"; \
            ::kt::reportFailure(__FILE__, __LINE__, kt_os.str());                                        \
        }                                                                                                \
    } while (0)

// The statement throws koala::Error of the given kind whose message contains `substr`.
#define KT_CHECK_THROWS(stmt, errkind, substr)                                                                   \
    do {                                                                                                         \
        bool kt_thrown = false;                                                                                  \
        try {                                                                                                    \
            stmt;                                                                                                \
        } catch (const koala::Error& kt_e) {                                                                     \
            kt_thrown = true;                                                                                    \
            std::string kt_m = kt_e.what();                                                                      \
            if (kt_e.kind() != (errkind) || kt_m.find(substr) == std::string::npos)                              \
                ::kt::reportFailure(__FILE__, __LINE__,                                                          \
                                    std::string("wrong error: [") + koala::toString(kt_e.kind()) + "] " + kt_m); \
        } catch (const std::exception& kt_e) {                                                                   \
            kt_thrown = true;                                                                                    \
            ::kt::reportFailure(__FILE__, __LINE__, std::string("non-koala exception: ") + kt_e.what());         \
        }                                                                                                        \
        if (!kt_thrown) ::kt::reportFailure(__FILE__, __LINE__, "expected an exception from " #stmt);            \
    } while (0)
