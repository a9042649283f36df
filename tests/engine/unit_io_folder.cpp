// Model folders: plain diffusers folders, a fake Hugging Face cache (snapshots are symlinks into blobs/), and
// typed config access.
#include "harness.h"
#include "unit_io_helpers.h"

#include "io/model_folder.h"
#include "io/weights.h"

#include <chrono>
#include <filesystem>

using koala::ErrorKind;
using koala::io::Config;
using koala::io::WeightStore;
namespace fs = std::filesystem;

namespace {

const char* kRev = "0123456789abcdef0123456789abcdef01234567";

std::string freshDir(const std::string& name) {
    std::string d = kt::tempDir() + "/" + name;
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
}

// Mirror `src` into <repo>/snapshots/<rev>/ the way huggingface_hub does: every file is a blob named by a hash in
// <repo>/blobs/, and the snapshot holds relative symlinks to them.
void makeSnapshot(const fs::path& repo, const std::string& rev, const fs::path& src) {
    fs::create_directories(repo / "blobs");
    int n = 0;
    for (auto it = fs::recursive_directory_iterator(src); it != fs::recursive_directory_iterator(); ++it) {
        if (!it->is_regular_file()) continue;
        const fs::path rel = fs::relative(it->path(), src);
        if (rel.filename().string().rfind("reference", 0) == 0) continue;  // test data, not part of a model
        char sha[65];
        ++n;
        std::snprintf(sha, sizeof sha, "%08x%056d", n * 2654435761u + static_cast<unsigned>(rev.size()), n);
        const std::string blob = rev.substr(0, 8) + sha;
        fs::copy_file(it->path(), repo / "blobs" / blob, fs::copy_options::overwrite_existing);
        fs::permissions(repo / "blobs" / blob, fs::perms::owner_read | fs::perms::owner_write);
        const fs::path link = repo / "snapshots" / rev / rel;
        fs::create_directories(link.parent_path());
        // snapshots/<rev>/<dir...>/file → ../../(..)/blobs/<sha>
        fs::path up;
        for (int i = 0; i < static_cast<int>(std::distance(rel.begin(), rel.end())) + 1; ++i) up /= "..";
        fs::create_symlink(up / "blobs" / blob, link);
    }
}

fs::path fakeCache() {
    static fs::path repo;
    if (repo.empty()) {
        repo = fs::path(freshDir("hub")) / "models--etri-vilab--koala-700m-llava-cap";
        makeSnapshot(repo, kRev, kt::fixturePath("tiny-koala-700m"));
        fs::create_directories(repo / "refs");
        std::ofstream(repo / "refs" / "main") << kRev;  // no newline, as the hub client writes it
    }
    return repo;
}

}  // namespace

KT_TEST(plainFolderResolvesToItself) {
    const std::string root = kt::fixturePath("tiny-koala-700m");
    const std::string expect = fs::absolute(root).lexically_normal().string();
    KT_CHECK_EQ(koala::io::resolveModelFolder(root), expect);
    KT_CHECK_EQ(koala::io::resolveModelFolder(root + "/"), expect);
    KT_CHECK_EQ(koala::io::resolveModelFolder(root + "/unet/.."), expect);
}

KT_TEST(huggingFaceCacheFromRepoAndSnapshot) {
    const fs::path repo = fakeCache();
    const std::string snap = (repo / "snapshots" / kRev).string();
    KT_CHECK(fs::is_symlink(snap + "/unet/diffusion_pytorch_model.safetensors"));
    KT_CHECK_EQ(koala::io::resolveModelFolder(repo.string()), snap);
    KT_CHECK_EQ(koala::io::resolveModelFolder(repo.string() + "/"), snap);
    KT_CHECK_EQ(koala::io::resolveModelFolder(snap), snap);
    KT_CHECK_EQ(fs::path(koala::io::resolveModelFolder(repo.string())).parent_path().parent_path().filename().string(),
                std::string("models--etri-vilab--koala-700m-llava-cap"));

    // Weights and configs load through the symlinks.
    const std::string folder = koala::io::resolveModelFolder(repo.string());
    const Config unetCfg = Config::load(koala::io::joinPath(folder, "unet/config.json"));
    KT_CHECK(unetCfg.getIntList("block_out_channels") == std::vector<long long>({32, 32, 64}));
    WeightStore unet = WeightStore::openComponent(folder + "/unet", "diffusion_pytorch_model", "", "unet");
    const std::string fixture = kt::fixturePath("tiny-koala-700m/unet/diffusion_pytorch_model.safetensors");
    for (const auto& name : {"conv_in.weight", "conv_out.bias"}) {
        const auto* v = unet.view(name);
        KT_CHECK(v != nullptr);
        if (v) KT_CHECK(unet.take(name, v->shape).equal(kt::loadTensor(fixture, name)));
    }
    unet.finish();
    WeightStore te = WeightStore::openComponent(folder + "/text_encoder_2", "model", "", "text_encoder_2");
    KT_CHECK(te.dominantDType() == koala::io::StDType::F16 && te.parameterCount() > 0);
    KT_CHECK(koala::io::fileExists(folder + "/tokenizer/vocab.json"));  // a symlink counts as a file
}

KT_TEST(refsMainWinsThenNewestSnapshot) {
    const fs::path repo = fs::path(freshDir("hub2")) / "models--org--model";
    const std::string older = "1111111111111111111111111111111111111111";
    const std::string newer = "2222222222222222222222222222222222222222";
    makeSnapshot(repo, older, kt::fixturePath("tiny-koala-700m"));
    makeSnapshot(repo, newer, kt::fixturePath("tiny-koala-1b"));
    const auto now = fs::file_time_type::clock::now();
    fs::last_write_time(repo / "snapshots" / older, now - std::chrono::hours(48));
    fs::last_write_time(repo / "snapshots" / newer, now - std::chrono::hours(1));
    // An incomplete download: the newest folder, but without model_index.json.
    fs::create_directories(repo / "snapshots" / "3333333333333333333333333333333333333333" / "unet");

    fs::create_directories(repo / "refs");
    std::ofstream(repo / "refs" / "main") << older << "\n";
    KT_CHECK_EQ(koala::io::resolveModelFolder(repo.string()), (repo / "snapshots" / older).string());
    fs::remove(repo / "refs" / "main");
    KT_CHECK_EQ(koala::io::resolveModelFolder(repo.string()), (repo / "snapshots" / newer).string());
    // refs/main pointing at a revision that is not there: fall back to the newest complete snapshot.
    std::ofstream(repo / "refs" / "main") << "ffffffffffffffffffffffffffffffffffffffff";
    KT_CHECK_EQ(koala::io::resolveModelFolder(repo.string()), (repo / "snapshots" / newer).string());

    const fs::path empty = fs::path(freshDir("hub3")) / "models--org--empty";
    fs::create_directories(empty / "snapshots" / "abc");
    KT_CHECK_THROWS(koala::io::resolveModelFolder(empty.string()), ErrorKind::ModelFormat,
                    "is a Hugging Face cache folder but none of its snapshots");
}

KT_TEST(notAModelFolder) {
    const std::string d = freshDir("notamodel");
    iotest::writeSt(d + "/model.safetensors", {{"w", at::zeros({1})}});
    KT_CHECK_THROWS(koala::io::resolveModelFolder(d), ErrorKind::ModelFormat,
                    d + " is not a diffusers model folder: no model_index.json");
    KT_CHECK_THROWS(koala::io::resolveModelFolder(d + "/missing"), ErrorKind::ModelFormat, "does not exist");
    KT_CHECK_THROWS(koala::io::resolveModelFolder(d + "/model.safetensors"), ErrorKind::ModelFormat, "is not a folder");
    KT_CHECK_THROWS(koala::io::resolveModelFolder(""), ErrorKind::ModelFormat, "no model folder given");
}

KT_TEST(configKeysAndErrors) {
    const std::string d = freshDir("config");
    const std::string file = d + "/config.json";
    {
        std::ofstream(file) << R"({"in_channels": 4, "scale": 0.13025, "four": 4.0, "name": "unet", "flag": true,
                                   "sizes": [32, 64], "types": ["A", "B"], "nothing": null, "half": 2.5,
                                   "huge": 18446744073709551615, "mixed": [1, "x"]})";
    }
    const Config c = Config::load(file);
    KT_CHECK_EQ(c.file(), file);
    KT_CHECK_EQ(c.getInt("in_channels"), 4LL);
    KT_CHECK_EQ(c.getInt("four"), 4LL);
    KT_CHECK_EQ(c.getDouble("scale"), 0.13025);
    KT_CHECK_EQ(c.getDouble("in_channels"), 4.0);
    KT_CHECK_EQ(c.getString("name"), std::string("unet"));
    KT_CHECK(c.getBool("flag"));
    KT_CHECK(c.getIntList("sizes") == std::vector<long long>({32, 64}));
    KT_CHECK(c.getStringList("types") == std::vector<std::string>({"A", "B"}));
    KT_CHECK(c.has("in_channels") && !c.has("nothing") && !c.has("absent"));
    // Optional keys: absent and null both give the default.
    KT_CHECK_EQ(c.getInt("absent", 7), 7LL);
    KT_CHECK_EQ(c.getInt("nothing", 8), 8LL);
    KT_CHECK_EQ(c.getString("nothing", "dflt"), std::string("dflt"));
    KT_CHECK_EQ(c.getDouble("absent", 1.5), 1.5);
    KT_CHECK(!c.getBool("absent", false));
    KT_CHECK_EQ(c.getInt("in_channels", 9), 4LL);

    KT_CHECK_THROWS(c.getInt("out_channels"), ErrorKind::ModelFormat, file + ": missing config key 'out_channels'");
    KT_CHECK_THROWS(c.getInt("nothing"), ErrorKind::ModelFormat, "missing config key 'nothing'");
    KT_CHECK_THROWS(c.getInt("name"), ErrorKind::ModelFormat, file + ": config key 'name' must be an integer");
    KT_CHECK_THROWS(c.getInt("half"), ErrorKind::ModelFormat, "'half' must be an integer");
    KT_CHECK_THROWS(c.getInt("huge"), ErrorKind::ModelFormat, "'huge' must be an integer");
    KT_CHECK_THROWS(c.getInt("name", 3), ErrorKind::ModelFormat, "'name' must be an integer");  // present but wrong
    KT_CHECK_THROWS(c.getString("in_channels"), ErrorKind::ModelFormat, "'in_channels' must be a string");
    KT_CHECK_THROWS(c.getBool("name"), ErrorKind::ModelFormat, "'name' must be true or false");
    KT_CHECK_THROWS(c.getIntList("mixed"), ErrorKind::ModelFormat, "'mixed' must be a list of integers");
    KT_CHECK_THROWS(c.getStringList("sizes"), ErrorKind::ModelFormat, "'sizes' must be a list of strings");
    KT_CHECK_THROWS(c.unsupported("name", "only unet is known"), ErrorKind::ModelFormat,
                    file + ": unsupported value for 'name': \"unet\" (only unet is known)");

    // The real fixture config: a required key that is there, and one that is not.
    const Config unet = Config::load(kt::fixturePath("tiny-koala-700m/unet/config.json"));
    KT_CHECK_EQ(unet.getInt("layers_per_block"), 1LL);
    KT_CHECK(!unet.has("mid_block_type"));
    KT_CHECK_THROWS(unet.getString("mid_block_type"), ErrorKind::ModelFormat, "missing config key 'mid_block_type'");
}

KT_TEST(readJsonErrors) {
    const std::string d = freshDir("json");
    KT_CHECK_THROWS(koala::io::readJson(d + "/absent.json"), ErrorKind::ModelFormat,
                    "missing file " + d + "/absent.json");
    { std::ofstream(d + "/bad.json") << "{\"a\": [1, 2"; }
    KT_CHECK_THROWS(koala::io::readJson(d + "/bad.json"), ErrorKind::ModelFormat, d + "/bad.json is not valid JSON");
    KT_CHECK_THROWS(koala::io::readJson(d), ErrorKind::ModelFormat, "is a folder");
    KT_CHECK_EQ(koala::io::joinPath("a/b", "c.json"), std::string("a/b/c.json"));
    KT_CHECK(koala::io::dirExists(d) && !koala::io::dirExists(d + "/bad.json") &&
             koala::io::fileExists(d + "/bad.json"));
}
