// A minimal test harness for koala_hub's tests (no LibTorch, no Qt): HT_TEST(name) { HT_CHECK(cond); }.
// Each executable runs its tests in order; a test calls ht::skip("why"); all skipped -> exit 77 (CTest skip).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

namespace ht {

struct Test {
    const char* name;
    std::function<void()> fn;
};
inline std::vector<Test>& registry() {
    static std::vector<Test> tests;
    return tests;
}
struct Register {
    Register(const char* name, std::function<void()> fn) { registry().push_back({name, std::move(fn)}); }
};
struct Skip {
    std::string why;
};
[[noreturn]] inline void skip(const std::string& why) { throw Skip{why}; }
inline int& failures() {
    static int n = 0;
    return n;
}
inline void fail(const char* file, int line, const std::string& what) {
    ++failures();
    std::fprintf(stderr, "  FAIL %s:%d: %s\n", file, line, what.c_str());
}

// A fresh folder per test under the system temp folder, removed at exit unless KOALA_KEEP_TMP is set.
inline std::string tempRoot() {
    static std::string root = [] {
        std::string tmpl = (std::filesystem::temp_directory_path() / "koala-hub-test-XXXXXX").string();
        std::vector<char> buf(tmpl.begin(), tmpl.end());
        buf.push_back('\0');
        if (!::mkdtemp(buf.data())) std::abort();
        return std::string(buf.data());
    }();
    return root;
}

inline std::string readFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

inline int runAll() {
    int ran = 0, skipped = 0;
    for (auto& t : registry()) {
        std::fprintf(stderr, "[ RUN  ] %s\n", t.name);
        const int before = failures();
        try {
            t.fn();
            ++ran;
        } catch (const Skip& s) {
            ++skipped;
            std::fprintf(stderr, "[ SKIP ] %s: %s\n", t.name, s.why.c_str());
            continue;
        } catch (const std::exception& e) {
            fail(__FILE__, __LINE__, std::string("unexpected exception: ") + e.what());
        }
        std::fprintf(stderr, "[ %s ] %s\n", failures() == before ? " OK " : "FAIL", t.name);
    }
    if (!std::getenv("KOALA_KEEP_TMP")) {
        std::error_code ec;
        std::filesystem::remove_all(tempRoot(), ec);
    }
    std::fprintf(stderr, "%d ran, %d skipped, %d failures\n", ran, skipped, failures());
    if (failures()) return 1;
    return ran == 0 && skipped > 0 ? 77 : 0;
}

}  // namespace ht

#define HT_CAT2(a, b) a##b
#define HT_CAT(a, b) HT_CAT2(a, b)
#define HT_TEST(name)                                          \
    static void name();                                        \
    static ::ht::Register HT_CAT(ht_reg_, name)(#name, &name); \
    static void name()
#define HT_CHECK(cond)                                      \
    do {                                                    \
        if (!(cond)) ::ht::fail(__FILE__, __LINE__, #cond); \
    } while (0)
#define HT_CHECK_MSG(cond, msg)                          \
    do {                                                 \
        if (!(cond)) {                                   \
            std::ostringstream ht_os;                    \
            ht_os << #cond << ": " << msg;               \
            ::ht::fail(__FILE__, __LINE__, ht_os.str()); \
        }                                                \
    } while (0)
#define HT_CHECK_EQ(a, b) HT_CHECK_MSG((a) == (b), "'" << (a) << "' != '" << (b) << "'")
// The statement throws koala::hub::Error of the kind, whose message contains substr.
#define HT_CHECK_THROWS(stmt, errkind, substr)                                                   \
    do {                                                                                         \
        bool ht_thrown = false;                                                                  \
        try {                                                                                    \
            stmt;                                                                                \
        } catch (const ::koala::hub::Error& ht_e) {                                              \
            ht_thrown = true;                                                                    \
            HT_CHECK_MSG(ht_e.kind() == (errkind),                                               \
                         "kind " << ::koala::hub::toString(ht_e.kind()) << ": " << ht_e.what()); \
            HT_CHECK_MSG(std::string(ht_e.what()).find(substr) != std::string::npos,             \
                         "message '" << ht_e.what() << "' lacks '" << (substr) << "'");          \
        }                                                                                        \
        HT_CHECK_MSG(ht_thrown, #stmt " did not throw");                                         \
    } while (0)
