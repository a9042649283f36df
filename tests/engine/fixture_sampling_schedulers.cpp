// Every scheduler table of the reference fixtures (`sched.<name>.<N>.*`): timesteps identical, sigmas and
// init_noise_sigma within 1e-6 relative error, for both tiny pipelines' scheduler_config.json.
#include "harness.h"

#include "io/model_folder.h"
#include "sampling/scheduler.h"

#include <cmath>
#include <map>
#include <set>

using namespace koala;
using namespace koala::sampling;

namespace {

struct Variant {
    SchedulerKind kind;
    TimestepSpacing spacing;
};

// How the fixtures were made: Scheduler.from_config(file, **overrides) for each name.
const std::map<std::string, Variant>& variants() {
    static const std::map<std::string, Variant> v = {
        {"euler", {SchedulerKind::Default, TimestepSpacing::Default}},
        {"euler_trailing", {SchedulerKind::Euler, TimestepSpacing::Trailing}},
        {"euler_karras", {SchedulerKind::EulerKarras, TimestepSpacing::Default}},
        {"euler_a", {SchedulerKind::EulerAncestral, TimestepSpacing::Default}},
        {"dpmpp_2m", {SchedulerKind::DpmPP2M, TimestepSpacing::Default}},
        {"dpmpp_2m_karras", {SchedulerKind::DpmPP2MKarras, TimestepSpacing::Default}},
        {"ddim", {SchedulerKind::Ddim, TimestepSpacing::Default}},
    };
    return v;
}

std::vector<double> toVector(const at::Tensor& t) {
    at::Tensor d = t.to(at::kDouble).contiguous();
    return std::vector<double>(d.data_ptr<double>(), d.data_ptr<double>() + d.numel());
}

double relDiff(double a, double b) {
    if (a == b) return 0;
    return std::fabs(a - b) / std::max(std::fabs(b), 1e-30);
}

void checkPipeline(const std::string& pipe) {
    const std::string ref = kt::fixturePath(pipe + "/reference.safetensors");
    const auto cfg =
        SchedulerConfig::fromConfig(io::Config::load(kt::fixturePath(pipe + "/scheduler/scheduler_config.json")));
    KT_CHECK(cfg.defaultKind() == SchedulerKind::Euler);
    KT_CHECK(cfg.defaultSpacing() == TimestepSpacing::Leading);

    // Collect (name, N) from the keys so that a table we do not know about fails instead of being skipped.
    std::set<std::pair<std::string, int>> tables;
    for (const auto& key : kt::tensorNames(ref)) {
        if (key.rfind("sched.", 0) != 0) continue;
        const auto a = key.find('.', 6);
        const auto b = key.find('.', a + 1);
        tables.insert({key.substr(6, a - 6), std::stoi(key.substr(a + 1, b - a - 1))});
    }
    KT_CHECK_EQ(tables.size(), variants().size() * 4);

    int compared = 0;
    for (const auto& [name, n] : tables) {
        auto it = variants().find(name);
        KT_CHECK_MSG(it != variants().end(), "unknown scheduler table " << name);
        if (it == variants().end()) continue;
        auto sched = Scheduler::create(it->second.kind, it->second.spacing, cfg);
        sched->setTimesteps(n);
        const std::string prefix = "sched." + name + "." + std::to_string(n) + ".";

        const auto ts = toVector(kt::loadTensor(ref, prefix + "timesteps"));
        KT_CHECK_EQ(sched->timesteps().size(), ts.size());
        if (sched->timesteps().size() == ts.size())
            for (size_t i = 0; i < ts.size(); ++i)
                KT_CHECK_MSG(static_cast<float>(sched->timesteps()[i]) == static_cast<float>(ts[i]),
                             pipe << " " << prefix << "timesteps[" << i << "] = " << sched->timesteps()[i]
                                  << ", expected " << ts[i]);

        if (name != "ddim") {
            const auto sig = toVector(kt::loadTensor(ref, prefix + "sigmas"));
            KT_CHECK_EQ(sched->sigmas().size(), sig.size());
            if (sched->sigmas().size() == sig.size())
                for (size_t i = 0; i < sig.size(); ++i)
                    KT_CHECK_MSG(relDiff(sched->sigmas()[i], sig[i]) < 1e-6, pipe << " " << prefix << "sigmas[" << i
                                                                                  << "] = " << sched->sigmas()[i]
                                                                                  << ", expected " << sig[i]);
        } else {
            KT_CHECK(sched->sigmas().empty());
        }
        const double init = toVector(kt::loadTensor(ref, prefix + "init_noise_sigma")).at(0);
        KT_CHECK_MSG(
            relDiff(sched->initNoiseSigma(), init) < 1e-6,
            pipe << " " << prefix << "init_noise_sigma = " << sched->initNoiseSigma() << ", expected " << init);
        ++compared;
    }
    KT_CHECK_EQ(compared, 28);
}

}  // namespace

KT_TEST(schedulerTables700m) { checkPipeline("tiny-koala-700m"); }
KT_TEST(schedulerTables1b) { checkPipeline("tiny-koala-1b"); }
