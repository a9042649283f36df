// Every scheduler table of the Stable Diffusion 1.5 / 2.x reference fixtures (`sched.<name>.*` in tiny-sd15 and
// tiny-sd2): timesteps identical; alphas_cumprod, sigmas and init_noise_sigma within 1e-6 relative error, 1e-5 with
// rescale_betas_zero_snr (torch 2.11's float32 sqrt on the CPU is not correctly rounded (1 ulp off for ~18% of the
// training ᾱ), and the ratios ᾱ'_i/ᾱ'_{i−1} near the zero end amplify that to 3.8e-6); each scheduler built from
// the shipped PNDM (SD 1.5) / DDIM v-prediction (SD 2) scheduler_config.json as `Cls.from_config(config, ...)`.
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
    bool zeroSnr;
};

const std::map<std::string, Variant>& variants() {
    static const std::map<std::string, Variant> v = {
        {"pndm", {SchedulerKind::Pndm, TimestepSpacing::Default, false}},
        {"ddim", {SchedulerKind::Ddim, TimestepSpacing::Default, false}},
        {"euler", {SchedulerKind::Euler, TimestepSpacing::Default, false}},
        {"euler_a", {SchedulerKind::EulerAncestral, TimestepSpacing::Default, false}},
        {"dpmpp_2m_karras", {SchedulerKind::DpmPP2MKarras, TimestepSpacing::Default, false}},
        {"ddim_zsnr_trailing", {SchedulerKind::Ddim, TimestepSpacing::Trailing, true}},
        {"euler_zsnr_trailing", {SchedulerKind::Euler, TimestepSpacing::Trailing, true}},
        {"dpmpp_2m_zsnr_trailing", {SchedulerKind::DpmPP2M, TimestepSpacing::Trailing, true}},
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

int checkPipeline(const std::string& pipe, SchedulerKind fileKind) {
    const std::string ref = kt::fixturePath(pipe + "/reference.safetensors");
    const auto fileCfg =
        SchedulerConfig::fromConfig(io::Config::load(kt::fixturePath(pipe + "/scheduler/scheduler_config.json")));
    KT_CHECK(fileCfg.defaultKind() == fileKind);
    KT_CHECK(fileCfg.defaultSpacing() == TimestepSpacing::Leading);

    // (name, N) from the keys, so that a table we do not know about fails instead of being skipped.
    std::set<std::string> names;
    std::set<std::pair<std::string, int>> tables;
    for (const auto& key : kt::tensorNames(ref)) {
        if (key.rfind("sched.", 0) != 0) continue;
        const auto a = key.find('.', 6);
        const auto b = key.find('.', a + 1);
        const std::string name = key.substr(6, a - 6);
        names.insert(name);
        if (key.substr(a + 1) != "alphas_cumprod") tables.insert({name, std::stoi(key.substr(a + 1, b - a - 1))});
    }
    KT_CHECK_EQ(tables.size(), names.size() * 3);

    double worst = 0;
    for (const auto& name : names) {
        auto it = variants().find(name);
        KT_CHECK_MSG(it != variants().end(), "unknown scheduler table " << name);
        if (it == variants().end()) continue;
        SchedulerConfig cfg = fileCfg;
        cfg.rescaleBetasZeroSnr = it->second.zeroSnr;
        const double tol = it->second.zeroSnr ? 1e-5 : 1e-6;
        auto sched = Scheduler::create(it->second.kind, it->second.spacing, cfg);
        const auto ac = toVector(kt::loadTensor(ref, "sched." + name + ".alphas_cumprod"));
        KT_CHECK_EQ(sched->alphasCumprod().size(), ac.size());
        if (sched->alphasCumprod().size() == ac.size())
            for (size_t i = 0; i < ac.size(); ++i) {
                worst = std::max(worst, relDiff(sched->alphasCumprod()[i], ac[i]));
                KT_CHECK_MSG(relDiff(sched->alphasCumprod()[i], ac[i]) < tol,
                             pipe << " " << name << " alphas_cumprod[" << i << "] = " << sched->alphasCumprod()[i]
                                  << ", expected " << ac[i]);
            }
    }

    int compared = 0;
    for (const auto& [name, n] : tables) {
        auto it = variants().find(name);
        if (it == variants().end()) continue;
        SchedulerConfig cfg = fileCfg;
        cfg.rescaleBetasZeroSnr = it->second.zeroSnr;
        const double tol = it->second.zeroSnr ? 1e-5 : 1e-6;
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

        const auto names = kt::tensorNames(ref);
        if (std::find(names.begin(), names.end(), prefix + "sigmas") != names.end()) {
            const auto sig = toVector(kt::loadTensor(ref, prefix + "sigmas"));
            KT_CHECK_EQ(sched->sigmas().size(), sig.size());
            if (sched->sigmas().size() == sig.size())
                for (size_t i = 0; i < sig.size(); ++i) {
                    worst = std::max(worst, relDiff(sched->sigmas()[i], sig[i]));
                    KT_CHECK_MSG(relDiff(sched->sigmas()[i], sig[i]) < tol, pipe << " " << prefix << "sigmas[" << i
                                                                                 << "] = " << sched->sigmas()[i]
                                                                                 << ", expected " << sig[i]);
                }
        } else {
            KT_CHECK_MSG(sched->sigmas().empty(), pipe << " " << prefix << ": sigmas where diffusers has none");
        }
        const double init = toVector(kt::loadTensor(ref, prefix + "init_noise_sigma")).at(0);
        KT_CHECK_MSG(
            relDiff(sched->initNoiseSigma(), init) < tol,
            pipe << " " << prefix << "init_noise_sigma = " << sched->initNoiseSigma() << ", expected " << init);
        ++compared;
    }
    std::printf("%s: %d tables, worst relative error %.3g\n", pipe.c_str(), compared, worst);
    return compared;
}

}  // namespace

KT_TEST(schedulerTablesSd15) { KT_CHECK_EQ(checkPipeline("tiny-sd15", SchedulerKind::Pndm), 15); }
KT_TEST(schedulerTablesSd2) { KT_CHECK_EQ(checkPipeline("tiny-sd2", SchedulerKind::Ddim), 21); }

// PNDM's timesteps as diffusers' set_timesteps makes them (skip_prk_steps: the second-largest is run twice).
KT_TEST(pndmPlmsTimesteps) {
    auto cfg =
        SchedulerConfig::fromConfig(io::Config::load(kt::fixturePath("tiny-sd15/scheduler/scheduler_config.json")));
    auto s = Scheduler::create(SchedulerKind::Default, TimestepSpacing::Default, cfg);
    KT_CHECK(s->kind() == SchedulerKind::Pndm);
    s->setTimesteps(5);
    KT_CHECK(s->timesteps() == (std::vector<double>{801, 601, 601, 401, 201, 1}));
    s->setTimesteps(1);
    KT_CHECK(s->timesteps() == (std::vector<double>{1}));
    // Without skip_prk_steps (PNDM's class default): 12 Runge-Kutta evaluations, then PLMS.
    cfg.skipPrkSteps = false;
    auto prk = Scheduler::create(SchedulerKind::Pndm, TimestepSpacing::Default, cfg);
    prk->setTimesteps(10);
    KT_CHECK(prk->timesteps() == (std::vector<double>{901, 851, 851, 801, 801, 751, 751, 701, 701, 651, 651, 601, 601,
                                                      501, 401, 301, 201, 101, 1}));
}
