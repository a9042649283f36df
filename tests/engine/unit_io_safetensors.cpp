// SafetensorsFile: header validation and raw data access, on files written by hand.
#include "harness.h"
#include "unit_io_helpers.h"

#include "io/safetensors.h"

#include <filesystem>

using koala::ErrorKind;
using koala::io::SafetensorsFile;
using koala::io::StDType;

namespace {

std::string tmp(const std::string& name) { return kt::tempDir() + "/" + name; }

at::Tensor viewAsTensor(const koala::io::TensorView& v, at::ScalarType t) {
    return at::from_blob(const_cast<std::uint8_t*>(v.data), v.shape, at::TensorOptions().dtype(t)).clone();
}

// A valid two-tensor file whose raw bytes the tests then damage.
std::string validFile(const std::string& name) {
    std::string p = tmp(name);
    iotest::writeSt(p, {{"a", at::arange(4, at::kFloat)}, {"b", at::arange(6, at::kFloat).reshape({2, 3})}});
    return p;
}

}  // namespace

KT_TEST(roundTripF32F16BF16) {
    const std::string p = tmp("roundtrip.safetensors");
    auto f32 = at::randn({3, 5});
    auto f16 = at::randn({2, 2, 3}).to(at::kHalf);
    auto bf16 = at::randn({7}).to(at::kBFloat16);
    auto i64 = at::arange(77, at::kLong).reshape({1, 77});
    iotest::writeSt(p, {{"w32", f32}, {"w16", f16}, {"wbf", bf16}, {"position_ids", i64}}, {{"format", "pt"}});

    auto f = SafetensorsFile::open(p);
    KT_CHECK_EQ(f->path(), p);
    KT_CHECK_EQ(f->tensors().size(), std::size_t(4));
    KT_CHECK(f->metadata().count("format") == 1 && f->metadata().at("format") == "pt");
    KT_CHECK(f->find("nope") == nullptr);

    const auto* a = f->find("w32");
    KT_CHECK(a && a->dtype == StDType::F32 && a->shape == std::vector<std::int64_t>({3, 5}));
    KT_CHECK(a && a->numel() == 15 && a->nbytes == 60);
    KT_CHECK(a && viewAsTensor(*a, at::kFloat).equal(f32));

    const auto* b = f->find("w16");
    KT_CHECK(b && b->dtype == StDType::F16 && b->nbytes == 24);
    KT_CHECK(b && viewAsTensor(*b, at::kHalf).equal(f16));

    const auto* c = f->find("wbf");
    KT_CHECK(c && c->dtype == StDType::BF16 && c->shape == std::vector<std::int64_t>({7}));
    KT_CHECK(c && viewAsTensor(*c, at::kBFloat16).equal(bf16));

    const auto* d = f->find("position_ids");
    KT_CHECK(d && d->dtype == StDType::I64 && viewAsTensor(*d, at::kLong).equal(i64));

    KT_CHECK_EQ(std::string(koala::io::stDTypeName(StDType::BF16)), std::string("BF16"));
    KT_CHECK_EQ(koala::io::stDTypeSize(StDType::F64), std::size_t(8));
    KT_CHECK_EQ(koala::io::stDTypeSize(StDType::BOOL), std::size_t(1));
}

KT_TEST(mappingOutlivesOtherHandles) {
    // The view's bytes stay valid while the shared_ptr lives, even after the file is deleted from disk.
    const std::string p = tmp("unlinked.safetensors");
    auto w = at::randn({4, 4});
    iotest::writeSt(p, {{"w", w}});
    auto f = SafetensorsFile::open(p);
    std::filesystem::remove(p);
    KT_CHECK(viewAsTensor(*f->find("w"), at::kFloat).equal(w));
}

KT_TEST(fixtureFilesOpen) {
    auto f = SafetensorsFile::open(kt::fixturePath("tiny-koala-700m/unet/diffusion_pytorch_model.safetensors"));
    const auto names = kt::tensorNames(f->path());
    KT_CHECK_EQ(f->tensors().size(), names.size());
    const auto* v = f->find("conv_in.weight");
    KT_CHECK(v != nullptr);
    if (v) KT_CHECK(viewAsTensor(*v, at::kFloat).equal(kt::loadTensor(f->path(), "conv_in.weight")));
    auto te = SafetensorsFile::open(kt::fixturePath("tiny-koala-700m/text_encoder/model.safetensors"));
    KT_CHECK(!te->tensors().empty() && te->tensors().front().dtype == StDType::F16);
}

KT_TEST(missingFileIsIoError) {
    KT_CHECK_THROWS(SafetensorsFile::open(tmp("does-not-exist.safetensors")), ErrorKind::Io, "does-not-exist");
}

KT_TEST(tooShortFile) {
    const std::string p = tmp("short.safetensors");
    { std::ofstream(p, std::ios::binary) << "abc"; }
    KT_CHECK_THROWS(SafetensorsFile::open(p), ErrorKind::ModelFormat, p + ": not a safetensors file: 3 bytes");
}

KT_TEST(truncatedFile) {
    const std::string p = validFile("truncated.safetensors");
    std::string bytes = iotest::readAll(p);
    const std::size_t full = bytes.size();
    bytes.resize(full - 5);
    { std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes; }
    KT_CHECK_THROWS(SafetensorsFile::open(p), ErrorKind::ModelFormat,
                    p + ": truncated: tensor b ends at byte " + std::to_string(full) + " but the file has " +
                        std::to_string(full - 5));
}

KT_TEST(headerLengthPastEof) {
    const std::string p = tmp("hlen.safetensors");
    std::string h = "{}";
    iotest::writeRaw(p, h, "");
    std::string bytes = iotest::readAll(p);
    bytes[0] = static_cast<char>(200);  // claims a 200-byte header in a 10-byte file
    { std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes; }
    KT_CHECK_THROWS(SafetensorsFile::open(p), ErrorKind::ModelFormat, "header length 200 runs past the end");
    bytes[7] = static_cast<char>(0x7f);  // absurd length
    { std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes; }
    KT_CHECK_THROWS(SafetensorsFile::open(p), ErrorKind::ModelFormat, "is not plausible");
}

KT_TEST(offsetsPastTheEnd) {
    const std::string p = tmp("offsets.safetensors");
    iotest::writeRaw(p, R"({"x":{"dtype":"F32","shape":[4],"data_offsets":[100,116]}})", std::string(16, '\0'));
    KT_CHECK_THROWS(SafetensorsFile::open(p), ErrorKind::ModelFormat, "truncated: tensor x ends at byte");
    iotest::writeRaw(p, R"({"x":{"dtype":"F32","shape":[0],"data_offsets":[16,8]}})", std::string(16, '\0'));
    KT_CHECK_THROWS(SafetensorsFile::open(p), ErrorKind::ModelFormat, "end before they begin");
}

KT_TEST(overlappingTensors) {
    const std::string p = tmp("overlap.safetensors");
    iotest::writeRaw(p,
                     R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                     R"("b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})",
                     std::string(24, '\0'));
    KT_CHECK_THROWS(SafetensorsFile::open(p), ErrorKind::ModelFormat, "tensors a and b overlap");
    // Adjacent is fine, and empty tensors may sit anywhere.
    iotest::writeRaw(p,
                     R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                     R"("b":{"dtype":"F32","shape":[2],"data_offsets":[16,24]},)"
                     R"("e":{"dtype":"F32","shape":[0,3],"data_offsets":[8,8]}})",
                     std::string(24, '\0'));
    auto f = SafetensorsFile::open(p);
    KT_CHECK_EQ(f->tensors().size(), std::size_t(3));
}

KT_TEST(unknownDType) {
    const std::string p = tmp("dtype.safetensors");
    iotest::writeRaw(p, R"({"weird.weight":{"dtype":"F8_E9","shape":[4],"data_offsets":[0,4]}})", std::string(4, '\0'));
    KT_CHECK_THROWS(SafetensorsFile::open(p), ErrorKind::ModelFormat,
                    p + ": tensor weird.weight has unsupported dtype F8_E9");
}

KT_TEST(byteCountNotMatchingShape) {
    const std::string p = tmp("count.safetensors");
    iotest::writeRaw(p, R"({"x":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}})", std::string(16, '\0'));
    KT_CHECK_THROWS(SafetensorsFile::open(p), ErrorKind::ModelFormat,
                    "tensor x: 16 bytes stored but shape [3] of F32 needs 12");
    iotest::writeRaw(p, R"({"x":{"dtype":"BF16","shape":[2,2],"data_offsets":[0,4]}})", std::string(16, '\0'));
    KT_CHECK_THROWS(SafetensorsFile::open(p), ErrorKind::ModelFormat, "needs 8");
}

KT_TEST(malformedJson) {
    const std::string p = tmp("json.safetensors");
    iotest::writeRaw(p, R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]})", std::string(4, '\0'));
    KT_CHECK_THROWS(SafetensorsFile::open(p), ErrorKind::ModelFormat, p + ": malformed JSON header");
    iotest::writeRaw(p, R"([1,2,3])", "");
    KT_CHECK_THROWS(SafetensorsFile::open(p), ErrorKind::ModelFormat, "not an object");
}

KT_TEST(badEntryTypes) {
    const std::string p = tmp("entries.safetensors");
    const std::string data(16, '\0');
    iotest::writeRaw(p, R"({"x":{"shape":[1],"data_offsets":[0,4]}})", data);
    KT_CHECK_THROWS(SafetensorsFile::open(p), ErrorKind::ModelFormat, "tensor x: missing or non-string 'dtype'");
    iotest::writeRaw(p, R"({"x":{"dtype":"F32","shape":"1","data_offsets":[0,4]}})", data);
    KT_CHECK_THROWS(SafetensorsFile::open(p), ErrorKind::ModelFormat, "non-array 'shape'");
    iotest::writeRaw(p, R"({"x":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", data);
    KT_CHECK_THROWS(SafetensorsFile::open(p), ErrorKind::ModelFormat, "shape entries must be non-negative");
    iotest::writeRaw(p, R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", data);
    KT_CHECK_THROWS(SafetensorsFile::open(p), ErrorKind::ModelFormat, "'data_offsets' must be an array of two");
    iotest::writeRaw(p, R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,"4"]}})", data);
    KT_CHECK_THROWS(SafetensorsFile::open(p), ErrorKind::ModelFormat, "'data_offsets' must be non-negative");
    iotest::writeRaw(p, R"({"x":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,4]}})", data);
    KT_CHECK_THROWS(SafetensorsFile::open(p), ErrorKind::ModelFormat, "too large");
}

KT_TEST(metadataMustBeStrings) {
    const std::string p = tmp("meta.safetensors");
    iotest::writeRaw(p, R"({"__metadata__":{"format":"pt","n":3}})", "");
    KT_CHECK_THROWS(SafetensorsFile::open(p), ErrorKind::ModelFormat, "__metadata__ value 'n' is not a string");
    iotest::writeRaw(p, R"({"__metadata__":["pt"]})", "");
    KT_CHECK_THROWS(SafetensorsFile::open(p), ErrorKind::ModelFormat, "__metadata__ is not a string map");
    iotest::writeRaw(p, R"({"__metadata__":{"format":"pt"}})", "");
    auto f = SafetensorsFile::open(p);
    KT_CHECK(f->tensors().empty() && f->metadata().at("format") == "pt");
}

KT_TEST(symlinkIsFollowed) {
    const std::string target = validFile("blob-target");
    const std::string link = tmp("link.safetensors");
    std::filesystem::create_symlink(target, link);
    auto f = SafetensorsFile::open(link);
    KT_CHECK(f->find("b") != nullptr);
}

// ---- files changed while mapped (docs/hardening.md) ----

// A file cut short after it was opened and mapped: reading the tensors past the new end would raise SIGBUS; copyTo
// catches it and throws an Io error naming the file, and the process carries on. The tensor is large enough to span
// several pages, so the truncation leaves whole pages past the end of the file.
KT_TEST(truncatedWhileMappedIsAnErrorNotACrash) {
    const std::string p = tmp("truncated-while-mapped.safetensors");
    const at::Tensor big = at::arange(64 * 1024, at::kFloat);  // 256 KiB
    iotest::writeSt(p, {{"small", at::arange(4, at::kFloat)}, {"big", big}});
    auto f = SafetensorsFile::open(p);
    const auto* small = f->find("small");
    const auto* bigView = f->find("big");
    KT_CHECK(small && bigView);
    if (!small || !bigView) return;

    std::filesystem::resize_file(p, 4096);  // what `cp other.safetensors p` or an interrupted download in place does
    // The first page is still there: the small tensor copies fine.
    at::Tensor a = at::empty({4}, at::kFloat);
    small->copyTo(a.data_ptr());
    KT_CHECK(a.equal(at::arange(4, at::kFloat)));
    // The big one runs past the new end: an error naming the file, not a SIGBUS.
    at::Tensor b = at::empty({64 * 1024}, at::kFloat);
    KT_CHECK_THROWS(bigView->copyTo(b.data_ptr()), ErrorKind::Io, p + ": the file changed while it was being read");
    // And again: the guard is re-armed for every copy.
    KT_CHECK_THROWS(bigView->copyTo(b.data_ptr()), ErrorKind::Io, "shorter than when it was opened");
    // A fault outside any guarded copy still behaves as before (not tested here: it ends the process).
}

// Replacing a file by rename (how downloads and `mv` do it) leaves the mapping on the old file: it reads the old data
// in full.
KT_TEST(replacedByRenameWhileMappedKeepsOldData) {
    const std::string p = tmp("replaced.safetensors");
    const std::string other = tmp("replacement.safetensors");
    iotest::writeSt(p, {{"w", at::arange(1024, at::kFloat)}});
    iotest::writeSt(other, {{"w", at::zeros({2}, at::kFloat)}});
    auto f = SafetensorsFile::open(p);
    std::filesystem::rename(other, p);
    at::Tensor w = at::empty({1024}, at::kFloat);
    f->find("w")->copyTo(w.data_ptr());
    KT_CHECK(w.equal(at::arange(1024, at::kFloat)));
}

KT_TEST(copyFromMappingCopiesPlainMemoryToo) {
    const char src[] = "koala";
    char dst[sizeof src] = {};
    KT_CHECK(koala::io::copyFromMapping(dst, src, sizeof src));
    KT_CHECK(std::string(dst) == "koala");
    KT_CHECK(koala::io::copyFromMapping(dst, nullptr, 0));
}
