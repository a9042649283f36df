// Properties of the scheduler updates, config parsing and guidance that the fixtures (which need the UNet) cannot
// check on their own.
#include "harness.h"

#include "io/model_folder.h"
#include "sampling/noise.h"
#include "sampling/scheduler.h"

#include <cmath>

using namespace koala;
using namespace koala::sampling;

namespace {

// The shipped KOALA / SDXL EulerDiscrete config, as in the fixtures.
nlohmann::json shippedConfig() {
    return nlohmann::json{{"_class_name", "EulerDiscreteScheduler"},
                          {"beta_end", 0.012},
                          {"beta_schedule", "scaled_linear"},
                          {"beta_start", 0.00085},
                          {"final_sigmas_type", "zero"},
                          {"interpolation_type", "linear"},
                          {"num_train_timesteps", 1000},
                          {"prediction_type", "epsilon"},
                          {"sigma_max", nullptr},
                          {"sigma_min", nullptr},
                          {"steps_offset", 1},
                          {"timestep_spacing", "leading"},
                          {"use_karras_sigmas", false}};
}

SchedulerConfig parse(const nlohmann::json& j) {
    return SchedulerConfig::fromConfig(io::Config(j, "scheduler_config.json"));
}

at::Tensor randomLatents(std::uint64_t seed, at::IntArrayRef shape = {1, 4, 3, 5}) {
    at::Generator g = makeCpuGenerator(seed);
    return randnCpu(g, shape);
}

double maxAbs(const at::Tensor& a, const at::Tensor& b) {
    return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

}  // namespace

KT_TEST(configErrorsNameTheKey) {
    auto j = shippedConfig();
    j["beta_schedule"] = "sigmoid";
    KT_CHECK_THROWS(parse(j), ErrorKind::ModelFormat, "beta_schedule");
    j = shippedConfig();
    j["prediction_type"] = "sample";
    KT_CHECK_THROWS(parse(j), ErrorKind::ModelFormat, "prediction_type");
    j = shippedConfig();
    j["timestep_spacing"] = "random";
    KT_CHECK_THROWS(parse(j), ErrorKind::ModelFormat, "timestep_spacing");
    j = shippedConfig();
    j["prediction_type"] = "v_prediction";
    KT_CHECK(parse(j).predictionType == "v_prediction");
}

KT_TEST(configRecordsPresentKeys) {
    auto c = parse(shippedConfig());
    KT_CHECK(c.timestepSpacingInFile && c.stepsOffsetInFile && c.finalSigmasTypeInFile);
    KT_CHECK(!c.clipSampleInFile && !c.setAlphaToOneInFile);
    KT_CHECK(c.betaSchedule == "scaled_linear");
    KT_CHECK_EQ(c.stepsOffset, 1);

    // Without timestep_spacing / steps_offset each class takes its own defaults, as from_config does:
    // Euler linspace (timesteps from 999), DPM++ linspace, DDIM leading with offset 0.
    auto j = shippedConfig();
    j.erase("timestep_spacing");
    j.erase("steps_offset");
    c = parse(j);
    KT_CHECK(!c.timestepSpacingInFile && !c.stepsOffsetInFile);
    KT_CHECK(c.defaultSpacing() == TimestepSpacing::Linspace);
    auto euler = Scheduler::create(SchedulerKind::Euler, TimestepSpacing::Default, c);
    euler->setTimesteps(4);
    KT_CHECK(euler->spacing() == TimestepSpacing::Linspace);
    KT_CHECK_EQ(euler->timesteps().front(), 999.0);
    KT_CHECK_EQ(euler->timesteps().back(), 0.0);
    KT_CHECK_EQ(euler->initNoiseSigma(), euler->sigmas().front());  // linspace: max σ, not √(σ²+1)
    auto ddim = Scheduler::create(SchedulerKind::Ddim, TimestepSpacing::Default, c);
    ddim->setTimesteps(4);
    KT_CHECK(ddim->spacing() == TimestepSpacing::Leading);
    KT_CHECK(ddim->timesteps() == (std::vector<double>{750, 500, 250, 0}));
    auto dpm = Scheduler::create(SchedulerKind::DpmPP2M, TimestepSpacing::Leading, c);
    dpm->setTimesteps(4);
    KT_CHECK(dpm->timesteps() == (std::vector<double>{800, 600, 400, 200}));

    // Absent beta keys take diffusers' defaults (linear 0.0001..0.02), not SDXL's.
    j = shippedConfig();
    j.erase("beta_schedule");
    j.erase("beta_start");
    j.erase("beta_end");
    c = parse(j);
    KT_CHECK(c.betaSchedule == "linear" && c.betaStart == 0.0001 && c.betaEnd == 0.02);
}

KT_TEST(defaultKindFollowsTheFile) {
    auto j = shippedConfig();
    KT_CHECK(parse(j).defaultKind() == SchedulerKind::Euler);
    j["use_karras_sigmas"] = true;
    KT_CHECK(parse(j).defaultKind() == SchedulerKind::EulerKarras);
    j["_class_name"] = "DPMSolverMultistepScheduler";
    KT_CHECK(parse(j).defaultKind() == SchedulerKind::DpmPP2MKarras);
    j["_class_name"] = "EulerAncestralDiscreteScheduler";
    auto s = Scheduler::create(SchedulerKind::Default, TimestepSpacing::Default, parse(j));
    KT_CHECK(s->kind() == SchedulerKind::EulerAncestral);
    j["_class_name"] = "DDIMScheduler";
    j["timestep_spacing"] = "trailing";
    s = Scheduler::create(SchedulerKind::Default, TimestepSpacing::Default, parse(j));
    KT_CHECK(s->kind() == SchedulerKind::Ddim);
    KT_CHECK(s->spacing() == TimestepSpacing::Trailing);
}

KT_TEST(eulerScaleAndStep) {
    auto s = Scheduler::create(SchedulerKind::Euler, TimestepSpacing::Default, parse(shippedConfig()));
    s->setTimesteps(4);
    const at::Tensor x = randomLatents(1);
    const double s0 = s->sigmas()[0], s1 = s->sigmas()[1];
    // scale_model_input = x / √(σ²+1)
    KT_CHECK(maxAbs(s->scaleModelInput(x, 0), x / std::sqrt(s0 * s0 + 1)) < 1e-6);
    // eps = 0 leaves the sample unchanged.
    KT_CHECK(at::equal(s->step(at::zeros_like(x), 0, x, nullptr), x));
    // Otherwise x' = x + eps·(σ1 − σ0).
    const at::Tensor eps = randomLatents(2);
    const at::Tensor got = s->step(eps, 0, x, nullptr);
    const at::Tensor want = x.to(at::kDouble) + eps.to(at::kDouble) * (s1 - s0);
    KT_CHECK(maxAbs(got, want) < 1e-5);
    KT_CHECK(maxAbs(got, x) > 0.1);
    // The result takes eps' dtype even when the sample is float64.
    KT_CHECK(s->step(eps, 1, x.to(at::kDouble), nullptr).scalar_type() == at::kFloat);
    // Last step (σ_{N} = 0) lands on x0 = x − σ·eps.
    const double sl = s->sigmas()[3];
    KT_CHECK(maxAbs(s->step(eps, 3, x, nullptr), x.to(at::kDouble) - eps.to(at::kDouble) * sl) < 1e-6);
    KT_CHECK_THROWS(s->step(eps, 4, x, nullptr), ErrorKind::InvalidArgument, "step index");
}

KT_TEST(eulerAncestralConsumesTheGenerator) {
    const auto cfg = parse(shippedConfig());
    auto a = Scheduler::create(SchedulerKind::EulerAncestral, TimestepSpacing::Default, cfg);
    auto b = Scheduler::create(SchedulerKind::EulerAncestral, TimestepSpacing::Default, cfg);
    a->setTimesteps(5);
    b->setTimesteps(5);
    const at::Tensor eps = randomLatents(3);
    at::Generator ga = makeCpuGenerator(123), gb = makeCpuGenerator(123);
    at::Tensor xa = randnCpu(ga, {1, 4, 3, 5}) * a->initNoiseSigma();
    at::Tensor xb = randnCpu(gb, {1, 4, 3, 5}) * b->initNoiseSigma();
    at::Tensor prev = xa;
    for (int i = 0; i < 5; ++i) {
        xa = a->step(eps, i, xa, &ga);
        xb = b->step(eps, i, xb, &gb);
        KT_CHECK(at::equal(xa, xb));  // same seed, same outputs
        if (i < 4) KT_CHECK(!at::equal(xa, prev));
        prev = xa;
    }
    // Every step (the last, with σ_up = 0, included) drew one latent-sized batch: both generators are 6 draws in.
    at::Generator ref = makeCpuGenerator(123);
    for (int i = 0; i < 6; ++i) randnCpu(ref, {1, 4, 3, 5});
    KT_CHECK(at::equal(randnCpu(ga, {1, 4, 3, 5}), randnCpu(ref, {1, 4, 3, 5})));

    // First step by hand: x' = x + eps·(σ_down − σ) + noise·σ_up, noise = the draw after the initial noise.
    auto c = Scheduler::create(SchedulerKind::EulerAncestral, TimestepSpacing::Default, cfg);
    c->setTimesteps(5);
    at::Generator gc = makeCpuGenerator(7);
    const at::Tensor x = randnCpu(gc, {1, 4, 3, 5});
    at::Generator gn = makeCpuGenerator(7);
    randnCpu(gn, {1, 4, 3, 5});
    const at::Tensor noise = randnCpu(gn, {1, 4, 3, 5}).to(at::kDouble);
    const double sf = c->sigmas()[0], st = c->sigmas()[1];
    const double up = std::sqrt(st * st * (sf * sf - st * st) / (sf * sf));
    const double down = std::sqrt(st * st - up * up);
    const at::Tensor want = x.to(at::kDouble) + eps.to(at::kDouble) * (down - sf) + noise * up;
    KT_CHECK(maxAbs(c->step(eps, 0, x, &gc), want) < 1e-5);
    KT_CHECK_THROWS(c->step(eps, 1, x, nullptr), ErrorKind::Internal, "generator");
}

KT_TEST(dpmSolverSecondOrderAndFinalStep) {
    auto s = Scheduler::create(SchedulerKind::DpmPP2MKarras, TimestepSpacing::Default, parse(shippedConfig()));
    s->setTimesteps(4);
    KT_CHECK_EQ(s->initNoiseSigma(), 1.0);
    at::Tensor x = randomLatents(4) * 14.6;
    KT_CHECK(at::equal(s->scaleModelInput(x, 0), x));
    auto alpha = [](double sg) { return 1 / std::sqrt(sg * sg + 1); };
    auto lambda = [&](double sg) { return std::log(alpha(sg)) - std::log(sg * alpha(sg)); };
    at::Tensor prevX0;
    for (int i = 0; i < 4; ++i) {
        const at::Tensor eps = randomLatents(10 + i);
        const double si = s->sigmas()[i], sn = s->sigmas()[i + 1];
        const at::Tensor xd = x.to(at::kDouble), ed = eps.to(at::kDouble);
        const at::Tensor x0 = (xd - ed * (si * alpha(si))) / alpha(si);
        at::Tensor want;
        if (i == 3) {
            want = x0;  // σ = 0 at the end: the update returns the x0 prediction itself
        } else {
            const double h = lambda(sn) - lambda(si);
            const double c = alpha(sn) * (std::exp(-h) - 1);
            want = xd * (sn * alpha(sn) / (si * alpha(si))) - x0 * c;  // first order
            if (i > 0) {
                const double r0 = (lambda(si) - lambda(s->sigmas()[i - 1])) / h;
                want = want - (x0 - prevX0) * (0.5 * c / r0);  // 2M midpoint correction
            }
        }
        x = s->step(eps, i, x, nullptr);
        KT_CHECK_MSG(maxAbs(x, want) < 1e-4 * (1 + want.abs().max().item<double>()),
                     "step " << i << " diff " << maxAbs(x, want));
        prevX0 = x0;
    }
}

KT_TEST(ddimStep) {
    // The shipped file has no clip_sample / set_alpha_to_one: DDIM takes its class defaults (both true).
    auto s = Scheduler::create(SchedulerKind::Ddim, TimestepSpacing::Default, parse(shippedConfig()));
    s->setTimesteps(4);  // 751, 501, 251, 1
    KT_CHECK(s->sigmas().empty());
    KT_CHECK_EQ(s->initNoiseSigma(), 1.0);
    const at::Tensor x = randomLatents(5) * 0.5;
    // eps = 0 at the last step (prev timestep < 0, ᾱ_prev = 1): x' = x0 = x/√ᾱ_1 (clipped to [-1, 1]).
    const at::Tensor last = s->step(at::zeros_like(x), 3, x, nullptr);
    // ᾱ_1 = (1−β0)(1−β1) with scaled_linear betas.
    const double b0 = 0.00085, b1 = std::pow(std::sqrt(0.00085) + (std::sqrt(0.012) - std::sqrt(0.00085)) / 999, 2);
    const double ac1 = (1 - b0) * (1 - b1);
    KT_CHECK(maxAbs(last, (x.to(at::kDouble) / std::sqrt(ac1)).clamp(-1, 1)) < 1e-6);
    // Clipping is on: a large sample's x0 is clamped to ±1.
    const at::Tensor big = at::full({1, 4, 3, 5}, 50.0f);
    KT_CHECK(maxAbs(s->step(at::zeros_like(big), 3, big, nullptr), at::ones_like(big)) < 1e-6);
    // With clip_sample false in the file there is no clamp.
    auto j = shippedConfig();
    j["clip_sample"] = false;
    auto u = Scheduler::create(SchedulerKind::Ddim, TimestepSpacing::Default, parse(j));
    u->setTimesteps(4);
    KT_CHECK(u->step(at::zeros_like(big), 3, big, nullptr).min().item<double>() > 49.9);
    // Middle step, eps = 0: x' = √ᾱ_prev · x/√ᾱ_t with prev = t − 1000/4.
    const at::Tensor eps = randomLatents(6) * 0.1;
    const at::Tensor mid = u->step(eps, 1, x, nullptr);  // t = 501 → 251
    KT_CHECK(mid.sizes() == x.sizes());
    KT_CHECK(maxAbs(mid, x) > 1e-3);
}

KT_TEST(guidanceAndRescaleByHand) {
    // Two batch items, 2×1×2 each, so the std over dims 1..3 is over 4 numbers.
    const at::Tensor u = at::tensor({0.f, 1.f, 2.f, 3.f, 1.f, 1.f, 1.f, 2.f}).reshape({2, 2, 1, 2});
    const at::Tensor c = at::tensor({1.f, 3.f, 2.f, 7.f, 0.f, 2.f, 4.f, 2.f}).reshape({2, 2, 1, 2});
    const double g = 5.0, phi = 0.7;
    const at::Tensor cfgOnly = applyGuidance(u, c, g, 0.0);
    KT_CHECK(maxAbs(cfgOnly, u + (c - u) * g) == 0);
    const at::Tensor got = applyGuidance(u, c, g, phi);
    // By hand, in double: unbiased std of each item's 4 values.
    auto ud = u.to(at::kDouble).reshape({2, 4}), cd = c.to(at::kDouble).reshape({2, 4});
    std::vector<double> want;
    for (int b = 0; b < 2; ++b) {
        double e[4], ce[4];
        for (int k = 0; k < 4; ++k) {
            ce[k] = cd[b][k].item<double>();
            e[k] = ud[b][k].item<double>() + g * (ce[k] - ud[b][k].item<double>());
        }
        auto stdev = [](const double* v) {
            double m = (v[0] + v[1] + v[2] + v[3]) / 4, s = 0;
            for (int k = 0; k < 4; ++k) s += (v[k] - m) * (v[k] - m);
            return std::sqrt(s / 3);
        };
        const double ratio = stdev(ce) / stdev(e);
        for (int k = 0; k < 4; ++k) want.push_back(phi * e[k] * ratio + (1 - phi) * e[k]);
    }
    const at::Tensor w = at::tensor(want, at::TensorOptions().dtype(at::kDouble)).reshape({2, 2, 1, 2});
    KT_CHECK(maxAbs(got, w) < 1e-5);
    KT_CHECK(maxAbs(got, cfgOnly) > 0.1);  // the rescale did something
    KT_CHECK(got.scalar_type() == at::kFloat);
}
