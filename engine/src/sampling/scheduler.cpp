// Schedulers reproducing diffusers' set_timesteps / scale_model_input / step bit for bit where the fixtures can
// tell. diffusers mixes three arithmetics and we mirror each one deliberately:
//   - torch float32 for the training schedule (betas, alphas_cumprod, σ_train) and for the per-step scalars
//     (sigmas are a float32 tensor; `sigma**2 + 1` etc. are float32 0-dim tensor ops) → C++ `float`;
//   - numpy float64 for the inference schedule (linspace/arange/interp/Karras/_sigma_to_t on float32 inputs) → `double`,
//     then cast to float32 as diffusers does with `.astype(np.float32)`;
//   - tensor ops with a float32 scalar for the updates → ATen ops with a double Scalar holding that float32 value
//     (a wrapped scalar does not promote the tensor, exactly like diffusers' 0-dim float32 CPU tensors).
#include "sampling/scheduler.h"

#include "core/common.h"
#include "io/model_folder.h"
#include "sampling/noise.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace koala::sampling {

namespace {

// ---- numpy emulation ----------------------------------------------------------------------------------------------

// np.linspace(start, stop, num) in float64: y[i] = i·step + start, last element forced to stop.
std::vector<double> npLinspace(double start, double stop, int num) {
    std::vector<double> y(static_cast<size_t>(std::max(num, 0)));
    const int div = num - 1;
    const double delta = stop - start;
    for (int i = 0; i < num; ++i) {
        if (div > 0) {
            const double step = delta / div;
            y[i] = (step == 0 ? (i / static_cast<double>(div)) * delta : i * step) + start;
        } else {
            y[i] = i * delta + start;
        }
    }
    if (num > 1) y[num - 1] = stop;
    return y;
}

// np.arange(start, stop, step) for floats: length ceil((stop−start)/step); numpy fills element i ≥ 2 as
// start + i·((start+step) − start), which is not always start + i·step.
std::vector<double> npArange(double start, double stop, double step) {
    const double len = std::ceil((stop - start) / step);
    std::vector<double> y;
    if (!(len > 0)) return y;
    y.resize(static_cast<size_t>(len));
    y[0] = start;
    if (y.size() > 1) y[1] = start + step;
    const double delta = (start + step) - start;
    for (size_t i = 2; i < y.size(); ++i) y[i] = start + static_cast<double>(i) * delta;
    return y;
}

// np.round: half to even (the default rounding mode).
double npRound(double v) { return std::nearbyint(v); }

// np.interp(x, arange(len(fp)), fp) with fp promoted to float64.
double npInterp(double x, const std::vector<float>& fp) {
    const size_t n = fp.size();
    if (std::isnan(x)) return x;
    if (x <= 0) return fp[0];                               // left = fp[0] (x == 0 included)
    if (x >= static_cast<double>(n - 1)) return fp[n - 1];  // right = fp[-1]
    const size_t j = static_cast<size_t>(std::floor(x));    // xp[j] <= x < xp[j+1]
    if (x == static_cast<double>(j)) return fp[j];
    const double slope = (static_cast<double>(fp[j + 1]) - fp[j]) / 1.0;
    double r = slope * (x - static_cast<double>(j)) + fp[j];
    if (std::isnan(r)) r = slope * (x - static_cast<double>(j + 1)) + fp[j + 1];
    return r;
}

// ---- training schedule (torch float32) ----------------------------------------------------------------------------

struct TrainSchedule {
    std::vector<float> alphasCumprod;
    std::vector<float> sigmas;     // ((1 − ᾱ)/ᾱ) ** 0.5 in float32
    std::vector<float> logSigmas;  // np.log of the float32 sigmas (float32)
};

// np.log on a float32 array as numpy computes it on x86 (AVX2/AVX512F kernel in loops_exponent_log.dispatch.c.src):
// mantissa/exponent split, a P5/Q5 rational approximation and FMAs. It is off by up to ~4 ulp from the correctly
// rounded log, and _sigma_to_t divides by differences of neighbouring log σ, so Karras timesteps only come out
// identical to diffusers with exactly this arithmetic.
float npLogF32(float v) {
    if (!(v > 0) || std::isinf(v)) return std::log(v);
    std::uint32_t bits;
    std::memcpy(&bits, &v, 4);
    float exponentBias = 0;
    if (v < std::numeric_limits<float>::min()) {  // denormal: pre-scale by 2^100 like the kernel
        v *= 0x1p100f;
        std::memcpy(&bits, &v, 4);
        exponentBias = 100;
    }
    float e = static_cast<float>(static_cast<int>(bits >> 23) - 126) - exponentBias;
    const std::uint32_t mbits = (bits & 0x7fffffu) | (126u << 23);
    float m;
    std::memcpy(&m, &mbits, 4);
    auto fromBits = [](std::uint32_t b) {
        float f;
        std::memcpy(&f, &b, 4);
        return f;
    };
    if (m <= fromBits(0x3F3504F3u)) {  // NPY_SQRT1_2f
        m = m + m;
        e -= 1;
    }
    const float x = m - 1.0f;
    static const std::uint32_t P[6] = {0x0u, 0x3F800000u, 0x4007361Cu, 0x3FBD70A9u, 0x3EC30333u, 0x3CD42BCDu};
    static const std::uint32_t Q[6] = {0x3F800000u, 0x4027361Cu, 0x401CFE0Du, 0x3F7C8AE4u, 0x3E1E5BF3u, 0x3BC083DFu};
    float num = std::fma(fromBits(P[5]), x, fromBits(P[4]));
    float den = std::fma(fromBits(Q[5]), x, fromBits(Q[4]));
    for (int k = 3; k >= 0; --k) {
        num = std::fma(num, x, fromBits(P[k]));
        den = std::fma(den, x, fromBits(Q[k]));
    }
    return std::fma(e, fromBits(0x3F317218u), num / den);  // + exponent·ln 2 (NPY_LOGE2f)
}

// torch.linspace(start, end, n, dtype=float32) as torch 2.x's CPU kernel computes it: start + step·i for the first
// half, end − step·(n−1−i) for the second, and, because the kernel is built with FMA enabled (AVX2/AVX512
// dispatch), each product-and-add rounds once. The plain-arithmetic version differs by an ulp at a few indices,
// which moves Karras timesteps by several float32 ulps; emulating it here also keeps us independent of the
// LibTorch version we link (1.13 computes it differently).
std::vector<float> torchLinspaceF32(double startD, double endD, int n) {
    const float start = static_cast<float>(startD), end = static_cast<float>(endD);
    std::vector<float> y(static_cast<size_t>(n));
    if (n == 1) {
        y[0] = start;
        return y;
    }
    const float step = (end - start) / static_cast<float>(n - 1);
    const int halfway = n / 2;
    for (int i = 0; i < n; ++i)
        y[i] = i < halfway ? std::fma(step, static_cast<float>(i), start)
                           : std::fma(-step, static_cast<float>(n - i - 1), end);
    return y;
}

// `zeroSnrFloor`: with rescale_betas_zero_snr, Euler, Euler a and DPM++ set alphas_cumprod[-1] = 2**-24 (so that
// σ_max is finite, 4096); DDIM and PNDM keep the exact 0.
TrainSchedule makeTrainSchedule(const SchedulerConfig& cfg, bool zeroSnrFloor = false) {
    const int n = cfg.numTrainTimesteps;
    std::vector<float> betas;
    if (cfg.betaSchedule == "linear") {
        betas = torchLinspaceF32(cfg.betaStart, cfg.betaEnd, n);
    } else if (cfg.betaSchedule == "scaled_linear") {
        betas = torchLinspaceF32(std::pow(cfg.betaStart, 0.5), std::pow(cfg.betaEnd, 0.5), n);
        for (auto& b : betas) b = b * b;  // `** 2` is x·x in float32
    } else if (cfg.betaSchedule == "squaredcos_cap_v2") {
        // betas_for_alpha_bar (cosine) in Python floats, then torch.tensor(float32).
        auto alphaBar = [](double t) {
            double c = std::cos((t + 0.008) / 1.008 * M_PI / 2);
            return c * c;
        };
        betas.resize(static_cast<size_t>(n));
        for (int i = 0; i < n; ++i) {
            double t1 = static_cast<double>(i) / n, t2 = static_cast<double>(i + 1) / n;
            betas[i] = static_cast<float>(std::min(1 - alphaBar(t2) / alphaBar(t1), 0.999));
        }
    } else {
        fail(ErrorKind::ModelFormat, "scheduler_config.json: unsupported beta_schedule '" + cfg.betaSchedule + "'");
    }
    // torch's CPU cumprod accumulates float32 in double.
    auto cumprod = [](const std::vector<float>& b) {
        std::vector<float> out(b.size());
        double cum = 1.0;
        for (size_t i = 0; i < b.size(); ++i) {
            cum *= static_cast<double>(1.0f - b[i]);
            out[i] = static_cast<float>(cum);
        }
        return out;
    };
    if (cfg.rescaleBetasZeroSnr && !betas.empty()) {
        // rescale_zero_terminal_snr, all float32, in diffusers' order of operations.
        std::vector<float> sq = cumprod(betas);
        for (auto& v : sq) v = std::sqrt(v);
        const float s0 = sq.front(), sT = sq.back();
        const float scale = s0 / (s0 - sT);
        for (auto& v : sq) v = (v - sT) * scale;
        std::vector<float> bar(sq.size());
        for (size_t i = 0; i < sq.size(); ++i) bar[i] = sq[i] * sq[i];
        betas[0] = 1.0f - bar[0];
        for (size_t i = 1; i < bar.size(); ++i) betas[i] = 1.0f - bar[i] / bar[i - 1];
    }
    TrainSchedule s;
    s.alphasCumprod = cumprod(betas);
    if (cfg.rescaleBetasZeroSnr && zeroSnrFloor) s.alphasCumprod.back() = 0x1p-24f;
    s.sigmas.resize(betas.size());
    s.logSigmas.resize(betas.size());
    for (size_t i = 0; i < betas.size(); ++i) {
        const float ac = s.alphasCumprod[i];
        s.sigmas[i] = std::sqrt((1.0f - ac) / ac);
        s.logSigmas[i] = npLogF32(s.sigmas[i]);
    }
    return s;
}

// _convert_to_karras (ρ = 7) in float64; sigma_min/max are the config's when set, else the ends of the input sigmas.
std::vector<double> karrasSigmas(const SchedulerConfig& cfg, double sigmaMin, double sigmaMax, int num) {
    const double rho = 7.0;
    sigmaMin = cfg.sigmaMin.value_or(sigmaMin);
    sigmaMax = cfg.sigmaMax.value_or(sigmaMax);
    const auto ramp = npLinspace(0, 1, num);
    const double minInvRho = std::pow(sigmaMin, 1 / rho);
    const double maxInvRho = std::pow(sigmaMax, 1 / rho);
    std::vector<double> out(ramp.size());
    for (size_t i = 0; i < ramp.size(); ++i) out[i] = std::pow(maxInvRho + ramp[i] * (minInvRho - maxInvRho), rho);
    return out;
}

// _sigma_to_t: fractional training timestep of a sigma by linear interpolation in log σ. numpy promotes
// `log_sigmas[low] − log σ` to float64 but computes `log_sigmas[low] − log_sigmas[high]` in float32.
double sigmaToT(double sigma, const std::vector<float>& logSigmas) {
    const double logSigma = std::log(std::max(sigma, 1e-10));
    const int n = static_cast<int>(logSigmas.size());
    int low = 0;  // argmax of cumsum(dists >= 0): the last index with dists >= 0, or 0 when there is none
    for (int i = 0; i < n; ++i)
        if (logSigma - static_cast<double>(logSigmas[i]) >= 0) low = i;
    low = std::min(low, n - 2);
    const int high = low + 1;
    const float lo = logSigmas[low], hi = logSigmas[high];
    const float den = lo - hi;
    double w = (static_cast<double>(lo) - logSigma) / static_cast<double>(den);
    w = std::clamp(w, 0.0, 1.0);
    return (1 - w) * low + w * high;
}

// Timesteps for Euler-family and DDIM spacing (N values, float64 holding what diffusers produces before its cast).
std::vector<double> spacedTimesteps(const std::string& spacing, int numTrain, int n, int stepsOffset) {
    std::vector<double> ts;
    if (spacing == "linspace") {
        ts = npLinspace(0, numTrain - 1, n);
        std::reverse(ts.begin(), ts.end());
    } else if (spacing == "leading") {
        const int ratio = numTrain / n;
        for (int i = n - 1; i >= 0; --i) ts.push_back(static_cast<double>(i) * ratio + stepsOffset);
    } else if (spacing == "trailing") {
        const double ratio = static_cast<double>(numTrain) / n;
        ts = npArange(numTrain, 0, -ratio);
        for (auto& t : ts) t = npRound(t) - 1;
    } else {
        fail(ErrorKind::InvalidArgument, "unknown timestep_spacing '" + spacing + "'");
    }
    return ts;
}

float sqrtF(float v) { return std::sqrt(v); }

std::string classDefaultSpacing(const std::string& cls) {
    return cls == "DDIMScheduler" || cls == "PNDMScheduler" ? "leading" : "linspace";
}

// Resolved values of the keys whose defaults depend on the class (from_config semantics).
struct Resolved {
    std::string spacing;
    int stepsOffset;
    std::string finalSigmasType;
};

Resolved resolve(const SchedulerConfig& cfg, const std::string& cls, TimestepSpacing spacing) {
    Resolved r;
    r.spacing = cfg.timestepSpacingInFile ? cfg.timestepSpacing : classDefaultSpacing(cls);
    if (spacing != TimestepSpacing::Default) r.spacing = toString(spacing);
    r.stepsOffset = cfg.stepsOffsetInFile ? cfg.stepsOffset : 0;
    r.finalSigmasType = cfg.finalSigmasTypeInFile ? cfg.finalSigmasType : "zero";
    return r;
}

TimestepSpacing spacingFromName(const std::string& s) {
    if (s == "leading") return TimestepSpacing::Leading;
    if (s == "trailing") return TimestepSpacing::Trailing;
    return TimestepSpacing::Linspace;
}

void checkStepIndex(int stepIndex, size_t numTimesteps) {
    if (stepIndex < 0 || static_cast<size_t>(stepIndex) >= numTimesteps)
        fail(ErrorKind::InvalidArgument, "scheduler step index " + std::to_string(stepIndex) + " out of range (" +
                                             std::to_string(numTimesteps) + " timesteps; call setTimesteps first)");
}

// ---- Euler / Euler ancestral --------------------------------------------------------------------------------------

class EulerScheduler : public Scheduler {
public:
    EulerScheduler(const SchedulerConfig& cfg, bool ancestral, bool karras, TimestepSpacing spacing)
        : m_cfg(cfg), m_ancestral(ancestral), m_karras(karras), m_train(makeTrainSchedule(cfg, true)) {
        const std::string cls = ancestral ? "EulerAncestralDiscreteScheduler" : "EulerDiscreteScheduler";
        m_res = resolve(cfg, cls, spacing);
        m_alphasCumprod = m_train.alphasCumprod;
        m_kind = ancestral ? SchedulerKind::EulerAncestral : karras ? SchedulerKind::EulerKarras : SchedulerKind::Euler;
        m_spacing = spacingFromName(m_res.spacing);
        if (!ancestral && cfg.predictionType == "v_prediction" && cfg.timestepType == "continuous")
            fail(ErrorKind::ModelFormat,
                 "scheduler_config.json: unsupported timestep_type 'continuous' with v_prediction");
    }

    void setTimesteps(int numSteps) override {
        if (numSteps < 1) fail(ErrorKind::InvalidArgument, "steps must be at least 1");
        std::vector<double> ts = spacedTimesteps(m_res.spacing, m_cfg.numTrainTimesteps, numSteps, m_res.stepsOffset);
        // diffusers casts the spaced timesteps to float32 before interpolating.
        for (auto& t : ts) t = static_cast<float>(t);
        std::vector<double> sig(ts.size());
        for (size_t i = 0; i < ts.size(); ++i) sig[i] = npInterp(ts[i], m_train.sigmas);
        if (m_karras && !ts.empty()) {
            sig = karrasSigmas(m_cfg, sig.back(), sig.front(), static_cast<int>(ts.size()));
            for (size_t i = 0; i < sig.size(); ++i) ts[i] = sigmaToT(sig[i], m_train.logSigmas);
        }
        double last = 0.0;
        if (!m_ancestral && m_res.finalSigmasType == "sigma_min") last = m_train.sigmas.front();
        m_timesteps.clear();
        m_sigmas.clear();
        for (double t : ts) m_timesteps.push_back(static_cast<float>(t));
        for (double s : sig) m_sigmas.push_back(static_cast<float>(s));
        m_sigmas.push_back(static_cast<float>(last));
        // init_noise_sigma: max σ (float32 tensor) for linspace/trailing, else (max² + 1) ** 0.5 in float32.
        float maxSigma = 0;
        for (double s : m_sigmas) maxSigma = std::max(maxSigma, static_cast<float>(s));
        if (m_res.spacing == "linspace" || m_res.spacing == "trailing")
            m_initNoiseSigma = maxSigma;
        else
            m_initNoiseSigma = sqrtF(maxSigma * maxSigma + 1.0f);
    }

    at::Tensor scaleModelInput(const at::Tensor& sample, int stepIndex) const override {
        checkStepIndex(stepIndex, m_timesteps.size());
        const float s = sigma(stepIndex);
        return sample / static_cast<double>(sqrtF(s * s + 1.0f));
    }

    at::Tensor step(const at::Tensor& eps, int stepIndex, const at::Tensor& sampleIn,
                    at::Generator* generator) override {
        checkStepIndex(stepIndex, m_timesteps.size());
        const at::Tensor sample = sampleIn.to(at::kFloat);  // diffusers upcasts the sample only
        const float s = sigma(stepIndex);
        const float sNext = sigma(stepIndex + 1);
        at::Tensor x0;
        if (m_cfg.predictionType == "v_prediction") {
            const float s2p1 = s * s + 1.0f;
            x0 = eps * static_cast<double>(-s / sqrtF(s2p1)) + sample / static_cast<double>(s2p1);
        } else {
            x0 = sample - eps * static_cast<double>(s);
        }
        const at::Tensor derivative = (sample - x0) / static_cast<double>(s);
        at::Tensor prev;
        if (!m_ancestral) {
            const float dt = sNext - s;  // s_churn = 0: σ̂ = σ
            prev = sample + derivative * static_cast<double>(dt);
        } else {
            const float up = sqrtF(sNext * sNext * (s * s - sNext * sNext) / (s * s));
            const float down = sqrtF(sNext * sNext - up * up);
            const float dt = down - s;
            prev = sample + derivative * static_cast<double>(dt);
            if (!generator) fail(ErrorKind::Internal, "EulerAncestral step needs the generator of the initial noise");
            // Drawn on every step (also the last one, where σ_up = 0) so the generator stream advances as in diffusers.
            // On the CPU in the model output's dtype, as diffusers draws it (noiseDType(); float32 for fp32 runs).
            const at::Tensor noise = randnCpu(*generator, eps.sizes(), eps.device(), m_noiseDType);
            prev = prev + noise * static_cast<double>(up);
        }
        return prev.to(eps.scalar_type());
    }

    // ---- img2img / inpainting: original_samples + noise * sigmas[index]
    at::Tensor addNoise(const at::Tensor& x0, const at::Tensor& noise, int index) const override {
        checkStepIndex(index, m_timesteps.size());
        return x0 + noise * static_cast<double>(sigma(index));
    }

private:
    float sigma(int i) const { return static_cast<float>(m_sigmas[static_cast<size_t>(i)]); }

    SchedulerConfig m_cfg;
    bool m_ancestral;
    bool m_karras;
    TrainSchedule m_train;
    Resolved m_res;
};

// ---- DPM-Solver++ 2M (multistep, midpoint) ------------------------------------------------------------------------

class DpmSolverScheduler : public Scheduler {
public:
    DpmSolverScheduler(const SchedulerConfig& cfg, bool karras, TimestepSpacing spacing)
        : m_cfg(cfg), m_karras(karras), m_train(makeTrainSchedule(cfg, true)) {
        m_res = resolve(cfg, "DPMSolverMultistepScheduler", spacing);
        m_alphasCumprod = m_train.alphasCumprod;
        m_kind = karras ? SchedulerKind::DpmPP2MKarras : SchedulerKind::DpmPP2M;
        m_spacing = spacingFromName(m_res.spacing);
        m_initNoiseSigma = 1.0;
    }

    void setTimesteps(int numSteps) override {
        if (numSteps < 1) fail(ErrorKind::InvalidArgument, "steps must be at least 1");
        const int numTrain = m_cfg.numTrainTimesteps;
        const int lastTimestep = numTrain;  // lambda_min_clipped = -inf clips nothing
        std::vector<double> ts;
        if (m_res.spacing == "linspace") {
            auto v = npLinspace(0, lastTimestep - 1, numSteps + 1);
            for (int i = numSteps; i >= 1; --i) ts.push_back(npRound(v[i]));
        } else if (m_res.spacing == "leading") {
            const int ratio = lastTimestep / (numSteps + 1);
            for (int i = numSteps; i >= 1; --i) ts.push_back(static_cast<double>(i) * ratio + m_res.stepsOffset);
        } else {
            const double ratio = static_cast<double>(numTrain) / numSteps;
            ts = npArange(lastTimestep, 0, -ratio);
            for (auto& t : ts) t = npRound(t) - 1;
        }
        std::vector<double> sig;
        double last = 0.0;
        if (m_karras) {
            // Karras over the whole training range (flip(σ_train): σ_min = σ_train[0], σ_max = σ_train[-1]).
            sig = karrasSigmas(m_cfg, m_train.sigmas.front(), m_train.sigmas.back(), numSteps);
            ts.resize(sig.size());
            for (size_t i = 0; i < sig.size(); ++i) ts[i] = npRound(sigmaToT(sig[i], m_train.logSigmas));
            if (m_res.finalSigmasType == "sigma_min") last = sig.back();
        } else {
            for (double t : ts) sig.push_back(npInterp(t, m_train.sigmas));
            if (m_res.finalSigmasType == "sigma_min") last = m_train.sigmas.front();
        }
        m_timesteps.assign(ts.begin(), ts.end());  // int64 in diffusers
        m_sigmas.clear();
        for (double s : sig) m_sigmas.push_back(static_cast<float>(s));
        m_sigmas.push_back(static_cast<float>(last));
        m_m0 = at::Tensor();
        m_m1 = at::Tensor();
        m_lowerOrderNums = 0;
    }

    at::Tensor scaleModelInput(const at::Tensor& sample, int stepIndex) const override {
        checkStepIndex(stepIndex, m_timesteps.size());
        return sample;
    }

    at::Tensor step(const at::Tensor& eps, int stepIndex, const at::Tensor& sampleIn, at::Generator*) override {
        checkStepIndex(stepIndex, m_timesteps.size());
        const size_t n = m_timesteps.size();
        const bool last = static_cast<size_t>(stepIndex) == n - 1;
        const bool lowerOrderFinal =
            last && (m_cfg.eulerAtFinal || (m_cfg.lowerOrderFinal && n < 15) || m_res.finalSigmasType == "zero");

        // convert_model_output, in the sample's own dtype (before the upcast).
        const AlphaSigma cur = alphaSigma(sigma(stepIndex));
        at::Tensor x0;
        if (m_cfg.predictionType == "v_prediction")
            x0 = sampleIn * static_cast<double>(cur.alpha) - eps * static_cast<double>(cur.sigma);
        else
            x0 = (sampleIn - eps * static_cast<double>(cur.sigma)) / static_cast<double>(cur.alpha);
        m_m1 = m_m0;
        m_m0 = x0;

        const at::Tensor sample = sampleIn.to(at::kFloat);
        const AlphaSigma t = alphaSigma(sigma(stepIndex + 1));
        const AlphaSigma s0 = cur;
        const float lambdaT = std::log(t.alpha) - std::log(t.sigma);
        const float lambdaS0 = std::log(s0.alpha) - std::log(s0.sigma);
        const float h = lambdaT - lambdaS0;
        const float coef = t.alpha * (std::exp(-h) - 1.0f);
        at::Tensor prev;
        if (m_lowerOrderNums < 1 || lowerOrderFinal || !m_m1.defined()) {
            prev = sample * static_cast<double>(t.sigma / s0.sigma) - m_m0 * static_cast<double>(coef);
        } else {
            const AlphaSigma s1 = alphaSigma(sigma(stepIndex - 1));
            const float lambdaS1 = std::log(s1.alpha) - std::log(s1.sigma);
            const float h0 = lambdaS0 - lambdaS1;
            const float r0 = h0 / h;
            const at::Tensor d1 = (m_m0 - m_m1) * static_cast<double>(1.0f / r0);
            prev = sample * static_cast<double>(t.sigma / s0.sigma) - m_m0 * static_cast<double>(coef) -
                   d1 * static_cast<double>(0.5f * coef);
        }
        if (m_lowerOrderNums < 2) ++m_lowerOrderNums;
        return prev.to(eps.scalar_type());
    }

    // ---- img2img / inpainting: alpha_t * original_samples + sigma_t * noise at sigmas[index]
    at::Tensor addNoise(const at::Tensor& x0, const at::Tensor& noise, int index) const override {
        checkStepIndex(index, m_timesteps.size());
        const AlphaSigma as = alphaSigma(sigma(index));
        return x0 * static_cast<double>(as.alpha) + noise * static_cast<double>(as.sigma);
    }

private:
    struct AlphaSigma {
        float alpha;
        float sigma;
    };
    // _sigma_to_alpha_sigma_t in float32: α = 1/√(σ²+1), σ̃ = σ·α.
    static AlphaSigma alphaSigma(float s) {
        const float a = 1.0f / sqrtF(s * s + 1.0f);
        return {a, s * a};
    }
    float sigma(int i) const { return static_cast<float>(m_sigmas[static_cast<size_t>(i)]); }

    SchedulerConfig m_cfg;
    bool m_karras;
    TrainSchedule m_train;
    Resolved m_res;
    at::Tensor m_m0, m_m1;  // the last two x0 predictions (model_outputs[-1], [-2])
    int m_lowerOrderNums = 0;
};

// ---- DDIM (eta = 0) -----------------------------------------------------------------------------------------------

class DdimScheduler : public Scheduler {
public:
    DdimScheduler(const SchedulerConfig& cfg, TimestepSpacing spacing) : m_cfg(cfg), m_train(makeTrainSchedule(cfg)) {
        m_res = resolve(cfg, "DDIMScheduler", spacing);
        m_alphasCumprod = m_train.alphasCumprod;
        m_kind = SchedulerKind::Ddim;
        m_spacing = spacingFromName(m_res.spacing);
        m_initNoiseSigma = 1.0;
        m_clipSample = cfg.clipSampleInFile ? cfg.clipSample : true;  // DDIM's class default
        const bool alphaToOne = cfg.setAlphaToOneInFile ? cfg.setAlphaToOne : true;
        m_finalAlphaCumprod = alphaToOne ? 1.0f : m_train.alphasCumprod.front();
    }

    void setTimesteps(int numSteps) override {
        if (numSteps < 1 || numSteps > m_cfg.numTrainTimesteps)
            fail(ErrorKind::InvalidArgument, "DDIM steps must be between 1 and num_train_timesteps");
        std::vector<double> ts;
        if (m_res.spacing == "linspace") {
            ts = npLinspace(0, m_cfg.numTrainTimesteps - 1, numSteps);
            std::reverse(ts.begin(), ts.end());
            for (auto& t : ts) t = npRound(t);
        } else {
            ts = spacedTimesteps(m_res.spacing, m_cfg.numTrainTimesteps, numSteps, m_res.stepsOffset);
        }
        m_numInferenceSteps = numSteps;
        m_timesteps.assign(ts.begin(), ts.end());  // int64 in diffusers
        m_sigmas.clear();
    }

    at::Tensor scaleModelInput(const at::Tensor& sample, int stepIndex) const override {
        checkStepIndex(stepIndex, m_timesteps.size());
        return sample;
    }

    at::Tensor step(const at::Tensor& eps, int stepIndex, const at::Tensor& sample, at::Generator*) override {
        checkStepIndex(stepIndex, m_timesteps.size());
        const long long t = static_cast<long long>(m_timesteps[static_cast<size_t>(stepIndex)]);
        // DDIM's previous timestep is t − num_train // N, not the next entry of timesteps (matters for trailing).
        const long long prevT = t - m_cfg.numTrainTimesteps / m_numInferenceSteps;
        const float alphaProdT = alphaAt(t);
        const float alphaProdPrev = prevT >= 0 ? alphaAt(prevT) : m_finalAlphaCumprod;
        const float betaProdT = 1.0f - alphaProdT;
        at::Tensor x0, predEps;
        if (m_cfg.predictionType == "v_prediction") {
            x0 = sample * static_cast<double>(sqrtF(alphaProdT)) - eps * static_cast<double>(sqrtF(betaProdT));
            predEps = eps * static_cast<double>(sqrtF(alphaProdT)) + sample * static_cast<double>(sqrtF(betaProdT));
        } else {
            x0 = (sample - eps * static_cast<double>(sqrtF(betaProdT))) / static_cast<double>(sqrtF(alphaProdT));
            predEps = eps;
        }
        if (m_clipSample) x0 = x0.clamp(-m_cfg.clipSampleRange, m_cfg.clipSampleRange);
        // eta = 0: std_dev_t = 0, so the direction coefficient is (1 − ᾱ_prev − 0) ** 0.5.
        const float dirCoef = sqrtF((1.0f - alphaProdPrev) - 0.0f);
        const at::Tensor direction = predEps * static_cast<double>(dirCoef);
        const at::Tensor prev = x0 * static_cast<double>(sqrtF(alphaProdPrev)) + direction;
        return prev.to(eps.scalar_type());  // diffusers keeps the promoted dtype; same whenever sample and eps agree
    }

    // ---- img2img / inpainting: sqrt(alphas_cumprod[t]) * original_samples + sqrt(1 - alphas_cumprod[t]) * noise
    at::Tensor addNoise(const at::Tensor& x0, const at::Tensor& noise, int index) const override {
        checkStepIndex(index, m_timesteps.size());
        const float ac = alphaAt(static_cast<long long>(m_timesteps[static_cast<size_t>(index)]));
        return x0 * static_cast<double>(sqrtF(ac)) + noise * static_cast<double>(sqrtF(1.0f - ac));
    }

private:
    float alphaAt(long long t) const {
        if (t < 0 || t >= static_cast<long long>(m_train.alphasCumprod.size()))
            fail(ErrorKind::InvalidArgument, "DDIM timestep " + std::to_string(t) + " out of range");
        return m_train.alphasCumprod[static_cast<size_t>(t)];
    }

    SchedulerConfig m_cfg;
    TrainSchedule m_train;
    Resolved m_res;
    bool m_clipSample = true;
    float m_finalAlphaCumprod = 1.0f;
    int m_numInferenceSteps = 1;
};

// ---- PNDM (PLMS; Runge-Kutta warm-up unless skip_prk_steps) ---------------------------------------------------------

class PndmScheduler : public Scheduler {
public:
    PndmScheduler(const SchedulerConfig& cfg, TimestepSpacing spacing) : m_cfg(cfg), m_train(makeTrainSchedule(cfg)) {
        m_res = resolve(cfg, "PNDMScheduler", spacing);
        m_alphasCumprod = m_train.alphasCumprod;
        m_kind = SchedulerKind::Pndm;
        m_spacing = spacingFromName(m_res.spacing);
        m_initNoiseSigma = 1.0;
        const bool alphaToOne = cfg.setAlphaToOneInFile ? cfg.setAlphaToOne : false;  // PNDM's class default
        m_finalAlphaCumprod = alphaToOne ? 1.0f : m_train.alphasCumprod.front();
    }

    void setTimesteps(int numSteps) override {
        const int numTrain = m_cfg.numTrainTimesteps;
        if (numSteps < 1 || numSteps > numTrain)
            fail(ErrorKind::InvalidArgument, "PNDM steps must be between 1 and num_train_timesteps");
        std::vector<double> base;  // _timesteps, ascending
        if (m_res.spacing == "linspace") {
            base = npLinspace(0, numTrain - 1, numSteps);
            for (auto& t : base) t = npRound(t);
        } else if (m_res.spacing == "leading") {
            const int ratio = numTrain / numSteps;
            for (int i = 0; i < numSteps; ++i) base.push_back(static_cast<double>(i) * ratio + m_res.stepsOffset);
        } else {
            const double ratio = static_cast<double>(numTrain) / numSteps;
            base = npArange(numTrain, 0, -ratio);
            std::reverse(base.begin(), base.end());
            for (auto& t : base) t = npRound(t) - 1;
        }
        m_numInferenceSteps = numSteps;
        m_prk.clear();
        std::vector<double> plms;
        if (m_cfg.skipPrkSteps) {
            // reverse(concat(_ts[:-1], _ts[-2:-1], _ts[-1:])): the second-largest timestep is run twice.
            std::vector<double> c(base.begin(), base.end() - 1);
            if (base.size() >= 2) c.push_back(base[base.size() - 2]);
            c.push_back(base.back());
            plms.assign(c.rbegin(), c.rend());
        } else {
            if (base.size() < 4) fail(ErrorKind::InvalidArgument, "PNDM without skip_prk_steps needs at least 4 steps");
            const int half = numTrain / numSteps / 2;
            std::vector<double> prk;  // _ts[-4:].repeat(2) + tile([0, half], 4)
            for (size_t i = base.size() - 4; i < base.size(); ++i) {
                prk.push_back(base[i]);
                prk.push_back(base[i] + half);
            }
            std::vector<double> rep;  // prk[:-1].repeat(2)[1:-1], reversed
            for (size_t i = 0; i + 1 < prk.size(); ++i) {
                rep.push_back(prk[i]);
                rep.push_back(prk[i]);
            }
            m_prk.assign(rep.rbegin() + 1, rep.rend() - 1);
            plms.assign(base.rbegin() + 3, base.rend());  // _ts[:-3][::-1]
        }
        m_timesteps = m_prk;
        m_timesteps.insert(m_timesteps.end(), plms.begin(), plms.end());
        m_sigmas.clear();
        m_ets.clear();
        m_counter = 0;
        m_curModelOutput = at::Tensor();
        m_curSample = at::Tensor();
    }

    at::Tensor scaleModelInput(const at::Tensor& sample, int stepIndex) const override {
        checkStepIndex(stepIndex, m_timesteps.size());
        return sample;
    }

    at::Tensor step(const at::Tensor& eps, int stepIndex, const at::Tensor& sample, at::Generator*) override {
        checkStepIndex(stepIndex, m_timesteps.size());
        const long long t = static_cast<long long>(m_timesteps[static_cast<size_t>(stepIndex)]);
        at::Tensor prev =
            static_cast<size_t>(m_counter) < m_prk.size() ? stepPrk(eps, t, sample) : stepPlms(eps, t, sample);
        return prev.to(eps.scalar_type());
    }

    // ---- img2img / inpainting: as DDPM, sqrt(ᾱ_t)·x0 + sqrt(1 − ᾱ_t)·noise
    at::Tensor addNoise(const at::Tensor& x0, const at::Tensor& noise, int index) const override {
        checkStepIndex(index, m_timesteps.size());
        const float ac = alphaAt(static_cast<long long>(m_timesteps[static_cast<size_t>(index)]));
        return x0 * static_cast<double>(sqrtF(ac)) + noise * static_cast<double>(sqrtF(1.0f - ac));
    }

private:
    at::Tensor stepPrk(const at::Tensor& e, long long t, const at::Tensor& sample) {
        const long long diff = m_counter % 2 ? 0 : m_cfg.numTrainTimesteps / m_numInferenceSteps / 2;
        const long long prevT = t - diff;
        const long long tt = static_cast<long long>(m_prk[static_cast<size_t>(m_counter / 4 * 4)]);
        at::Tensor out = e;
        const double sixth = 1.0 / 6, third = 1.0 / 3;
        if (m_counter % 4 == 0) {
            m_curModelOutput = m_curModelOutput.defined() ? m_curModelOutput + e * sixth : e * sixth;
            m_ets.push_back(e);
            m_curSample = sample;
        } else if ((m_counter - 1) % 4 == 0 || (m_counter - 2) % 4 == 0) {
            m_curModelOutput = m_curModelOutput + e * third;
        } else {
            out = m_curModelOutput + e * sixth;
            m_curModelOutput = at::Tensor();
        }
        const at::Tensor cur = m_curSample.defined() ? m_curSample : sample;
        at::Tensor prev = prevSample(cur, tt, prevT, out);
        ++m_counter;
        return prev;
    }

    at::Tensor stepPlms(const at::Tensor& e, long long t, const at::Tensor& sampleIn) {
        const long long ratio = m_cfg.numTrainTimesteps / m_numInferenceSteps;
        long long prevT = t - ratio;
        if (m_counter != 1) {
            if (m_ets.size() > 3) m_ets.erase(m_ets.begin(), m_ets.end() - 3);
            m_ets.push_back(e);
        } else {
            prevT = t;
            t = t + ratio;
        }
        at::Tensor out;
        at::Tensor sample = sampleIn;
        const size_t n = m_ets.size();
        if (n == 1 && m_counter == 0) {
            out = e;
            m_curSample = sampleIn;
        } else if (n == 1 && m_counter == 1) {
            out = (e + m_ets[n - 1]) / 2;
            sample = m_curSample;
            m_curSample = at::Tensor();
        } else if (n == 2) {
            out = (m_ets[n - 1] * 3 - m_ets[n - 2]) / 2;
        } else if (n == 3) {
            out = (m_ets[n - 1] * 23 - m_ets[n - 2] * 16 + m_ets[n - 3] * 5) / 12;
        } else {
            out = (m_ets[n - 1] * 55 - m_ets[n - 2] * 59 + m_ets[n - 3] * 37 - m_ets[n - 4] * 9) * (1.0 / 24);
        }
        at::Tensor prev = prevSample(sample, t, prevT, out);
        ++m_counter;
        return prev;
    }

    // _get_prev_sample, formula (9) of the PNDM paper, with float32 scalars as diffusers' 0-dim tensors.
    at::Tensor prevSample(const at::Tensor& sample, long long t, long long prevT, at::Tensor e) const {
        const float a = alphaAt(t);
        const float ap = prevT >= 0 ? alphaAt(prevT) : m_finalAlphaCumprod;
        const float b = 1.0f - a;
        const float bp = 1.0f - ap;
        if (m_cfg.predictionType == "v_prediction")
            e = e * static_cast<double>(sqrtF(a)) + sample * static_cast<double>(sqrtF(b));
        const float sampleCoeff = sqrtF(ap / a);
        const float denom = a * sqrtF(bp) + sqrtF(a * b * ap);
        return sample * static_cast<double>(sampleCoeff) - e * static_cast<double>(ap - a) / static_cast<double>(denom);
    }

    float alphaAt(long long t) const {
        if (t < 0 || t >= static_cast<long long>(m_train.alphasCumprod.size()))
            fail(ErrorKind::InvalidArgument, "PNDM timestep " + std::to_string(t) + " out of range");
        return m_train.alphasCumprod[static_cast<size_t>(t)];
    }

    SchedulerConfig m_cfg;
    TrainSchedule m_train;
    Resolved m_res;
    float m_finalAlphaCumprod = 1.0f;
    int m_numInferenceSteps = 1;
    std::vector<double> m_prk;      // prk_timesteps (empty with skip_prk_steps)
    std::vector<at::Tensor> m_ets;  // past model outputs
    int m_counter = 0;
    at::Tensor m_curModelOutput;
    at::Tensor m_curSample;
};

}  // namespace

// ---- config -------------------------------------------------------------------------------------------------------

SchedulerConfig SchedulerConfig::fromConfig(const io::Config& cfg) {
    SchedulerConfig c;
    // Absent keys take diffusers' defaults, which all supported classes share for these keys.
    c.className = cfg.getString("_class_name", "EulerDiscreteScheduler");
    c.numTrainTimesteps = static_cast<int>(cfg.getInt("num_train_timesteps", 1000));
    if (c.numTrainTimesteps < 2) cfg.unsupported("num_train_timesteps", "must be at least 2");
    c.betaStart = cfg.getDouble("beta_start", 0.0001);
    c.betaEnd = cfg.getDouble("beta_end", 0.02);
    c.betaSchedule = cfg.getString("beta_schedule", "linear");
    if (c.betaSchedule != "linear" && c.betaSchedule != "scaled_linear" && c.betaSchedule != "squaredcos_cap_v2")
        cfg.unsupported("beta_schedule", "supported: linear, scaled_linear, squaredcos_cap_v2");
    if (cfg.has("trained_betas")) cfg.unsupported("trained_betas", "explicit betas are not supported");
    c.predictionType = cfg.getString("prediction_type", "epsilon");
    if (c.predictionType != "epsilon" && c.predictionType != "v_prediction")
        cfg.unsupported("prediction_type", "supported: epsilon, v_prediction");

    c.timestepSpacingInFile = cfg.has("timestep_spacing");
    if (c.timestepSpacingInFile) {
        c.timestepSpacing = cfg.getString("timestep_spacing");
        if (c.timestepSpacing != "leading" && c.timestepSpacing != "trailing" && c.timestepSpacing != "linspace")
            cfg.unsupported("timestep_spacing", "supported: leading, trailing, linspace");
    }
    c.stepsOffsetInFile = cfg.has("steps_offset");
    if (c.stepsOffsetInFile) c.stepsOffset = static_cast<int>(cfg.getInt("steps_offset"));
    c.useKarrasSigmas = cfg.getBool("use_karras_sigmas", false);
    c.rescaleBetasZeroSnr = cfg.getBool("rescale_betas_zero_snr", false);
    c.skipPrkSteps = cfg.getBool("skip_prk_steps", false);
    c.finalSigmasTypeInFile = cfg.has("final_sigmas_type");
    if (c.finalSigmasTypeInFile) {
        c.finalSigmasType = cfg.getString("final_sigmas_type");
        if (c.finalSigmasType != "zero" && c.finalSigmasType != "sigma_min")
            cfg.unsupported("final_sigmas_type", "supported: zero, sigma_min");
    }
    c.interpolationType = cfg.getString("interpolation_type", "linear");
    if (c.interpolationType != "linear") cfg.unsupported("interpolation_type", "only linear is supported");
    c.timestepType = cfg.getString("timestep_type", "discrete");
    c.clipSampleInFile = cfg.has("clip_sample");
    if (c.clipSampleInFile) c.clipSample = cfg.getBool("clip_sample");
    c.clipSampleRange = cfg.getDouble("clip_sample_range", 1.0);
    c.setAlphaToOneInFile = cfg.has("set_alpha_to_one");
    if (c.setAlphaToOneInFile) c.setAlphaToOne = cfg.getBool("set_alpha_to_one");
    c.lowerOrderFinal = cfg.getBool("lower_order_final", true);
    c.eulerAtFinal = cfg.getBool("euler_at_final", false);
    // Sigma schedules and options we do not implement: refuse rather than silently sample differently.
    for (const char* key : {"use_exponential_sigmas", "use_beta_sigmas", "use_lu_lambdas", "thresholding"})
        if (cfg.getBool(key, false)) cfg.unsupported(key, "not supported");
    if (cfg.has("sigma_min")) c.sigmaMin = cfg.getDouble("sigma_min");
    if (cfg.has("sigma_max")) c.sigmaMax = cfg.getDouble("sigma_max");
    return c;
}

SchedulerKind SchedulerConfig::defaultKind() const {
    if (className == "EulerAncestralDiscreteScheduler") return SchedulerKind::EulerAncestral;
    if (className == "DPMSolverMultistepScheduler")
        return useKarrasSigmas ? SchedulerKind::DpmPP2MKarras : SchedulerKind::DpmPP2M;
    if (className == "DDIMScheduler") return SchedulerKind::Ddim;
    if (className == "PNDMScheduler") return SchedulerKind::Pndm;
    // EulerDiscreteScheduler and any class we do not implement: SDXL-family repos ship Euler.
    return useKarrasSigmas ? SchedulerKind::EulerKarras : SchedulerKind::Euler;
}

TimestepSpacing SchedulerConfig::defaultSpacing() const {
    const std::string s = timestepSpacingInFile ? timestepSpacing : classDefaultSpacing(className);
    return spacingFromName(s);
}

std::unique_ptr<Scheduler> Scheduler::create(SchedulerKind kind, TimestepSpacing spacing, const SchedulerConfig& cfg) {
    if (kind == SchedulerKind::Default) kind = cfg.defaultKind();
    switch (kind) {
    case SchedulerKind::Euler: return std::make_unique<EulerScheduler>(cfg, false, false, spacing);
    case SchedulerKind::EulerKarras: return std::make_unique<EulerScheduler>(cfg, false, true, spacing);
    case SchedulerKind::EulerAncestral: return std::make_unique<EulerScheduler>(cfg, true, false, spacing);
    case SchedulerKind::DpmPP2M: return std::make_unique<DpmSolverScheduler>(cfg, false, spacing);
    case SchedulerKind::DpmPP2MKarras: return std::make_unique<DpmSolverScheduler>(cfg, true, spacing);
    case SchedulerKind::Ddim: return std::make_unique<DdimScheduler>(cfg, spacing);
    case SchedulerKind::Pndm: return std::make_unique<PndmScheduler>(cfg, spacing);
    case SchedulerKind::Default: break;
    }
    fail(ErrorKind::Internal, "unknown scheduler kind");
}

// ---- guidance -----------------------------------------------------------------------------------------------------

at::Tensor applyGuidance(const at::Tensor& epsUncond, const at::Tensor& epsCond, double scale, double rescale) {
    // noise_pred_uncond + guidance_scale * (noise_pred_text - noise_pred_uncond)
    at::Tensor eps = epsUncond + (epsCond - epsUncond) * scale;
    if (rescale > 0.0) {
        std::vector<int64_t> dims;
        for (int64_t d = 1; d < eps.dim(); ++d) dims.push_back(d);
        const at::IntArrayRef d(dims);
        const at::Tensor stdCond = at::std(epsCond, d, /*unbiased=*/true, /*keepdim=*/true);
        const at::Tensor stdCfg = at::std(eps, d, /*unbiased=*/true, /*keepdim=*/true);
        const at::Tensor rescaled = eps * (stdCond / stdCfg);
        eps = rescaled * rescale + eps * (1.0 - rescale);
    }
    return eps;
}

}  // namespace koala::sampling
