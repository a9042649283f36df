// Schedulers exactly as diffusers builds them with `Scheduler.from_config(scheduler_config.json, ...)` (internal).
#pragma once

#include "koala/engine.h"

#include <ATen/ATen.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace koala::io {
class Config;
}

namespace koala::sampling {

// The keys of scheduler_config.json that matter, with diffusers' class defaults for absent keys filled in by
// create() depending on the class actually used.
struct SchedulerConfig {
    std::string className = "EulerDiscreteScheduler";
    int numTrainTimesteps = 1000;
    double betaStart = 0.00085;
    double betaEnd = 0.012;
    std::string betaSchedule = "scaled_linear";
    std::string predictionType = "epsilon";
    std::string timestepSpacing = "leading";  // as written in the file (or the class default)
    bool timestepSpacingInFile = false;
    int stepsOffset = 1;
    bool stepsOffsetInFile = false;
    bool useKarrasSigmas = false;
    bool rescaleBetasZeroSnr = false;
    std::string finalSigmasType = "zero";
    bool finalSigmasTypeInFile = false;
    std::string interpolationType = "linear";
    bool clipSample = false;
    bool setAlphaToOne = true;
    // Added: keys whose class defaults differ from the values above, or that only some classes have.
    bool clipSampleInFile = false;     // DDIM's default is clip_sample = true
    bool setAlphaToOneInFile = false;  // DDIM's default is set_alpha_to_one = true
    double clipSampleRange = 1.0;
    bool lowerOrderFinal = true;  // DPMSolverMultistep keys (class defaults)
    bool eulerAtFinal = false;
    bool skipPrkSteps = false;  // PNDMScheduler (class default false: Runge-Kutta warm-up steps)
    std::string timestepType = "discrete";
    std::optional<double> sigmaMin;  // Karras range overrides (null in shipped files)
    std::optional<double> sigmaMax;
    // Parse scheduler_config.json. Unsupported values (beta_schedule, prediction_type) throw koala::Error naming
    // the key.
    static SchedulerConfig fromConfig(const io::Config& cfg);
    // The scheduler kind / spacing the file selects (for SchedulerKind::Default / TimestepSpacing::Default).
    SchedulerKind defaultKind() const;
    TimestepSpacing defaultSpacing() const;
};

class Scheduler {
public:
    virtual ~Scheduler() = default;
    // kind Default / spacing Default resolve to the file's values. Each kind keeps the file's keys and takes the
    // class defaults for the keys the file lacks, as from_config does.
    static std::unique_ptr<Scheduler> create(SchedulerKind kind, TimestepSpacing spacing, const SchedulerConfig& cfg);

    virtual void setTimesteps(int numSteps) = 0;
    // The timesteps passed to the UNet (float32 or int64 in diffusers; stored as double holding that value).
    const std::vector<double>& timesteps() const { return m_timesteps; }
    // Sigmas including the final one (empty for DDIM).
    const std::vector<double>& sigmas() const { return m_sigmas; }
    double initNoiseSigma() const { return m_initNoiseSigma; }
    // The scheduler's alphas_cumprod (float32, 2**-24 at the end for Euler/DPM++ with rescale_betas_zero_snr).
    const std::vector<float>& alphasCumprod() const { return m_alphasCumprod; }

    // scale_model_input for step `stepIndex` (0-based).
    virtual at::Tensor scaleModelInput(const at::Tensor& sample, int stepIndex) const = 0;
    // One update. PNDM (PLMS) keeps a history and must be called once for every entry of timesteps(), in order.
    // `generator` is the CPU generator that drew the initial noise (EulerAncestral draws noise of noiseDType()
    // from it every step, then moves it to the sample's device). Returns the new sample in eps' dtype.
    virtual at::Tensor step(const at::Tensor& eps, int stepIndex, const at::Tensor& sample,
                            at::Generator* generator) = 0;

    // ---- img2img / inpainting
    // scheduler.add_noise(x0, noise, timesteps[index]) in float32, as diffusers computes it for the timestep at
    // `index` of timesteps() (the sigma schedulers take the begin index / current step index, DDIM the timestep):
    // Euler, Euler a: x0 + σ·ε; DPM++ 2M: α·x0 + σ_t·ε (α = 1/√(σ²+1), σ_t = σ·α); DDIM, PNDM: √ᾱ_t·x0 + √(1−ᾱ_t)·ε.
    virtual at::Tensor addNoise(const at::Tensor& x0, const at::Tensor& noise, int index) const = 0;

    SchedulerKind kind() const { return m_kind; }
    TimestepSpacing spacing() const { return m_spacing; }

    // The dtype of the noise a stochastic step draws: diffusers draws it in the model output's dtype (the UNet's
    // compute dtype), and torch's CPU stream for float16/bfloat16 is not the float32 one (sampling/noise.h).
    void setNoiseDType(at::ScalarType t) { m_noiseDType = t; }
    at::ScalarType noiseDType() const { return m_noiseDType; }

protected:
    std::vector<double> m_timesteps;
    std::vector<double> m_sigmas;
    double m_initNoiseSigma = 1.0;
    std::vector<float> m_alphasCumprod;
    SchedulerKind m_kind = SchedulerKind::Euler;
    TimestepSpacing m_spacing = TimestepSpacing::Leading;
    at::ScalarType m_noiseDType = at::kFloat;
};

// Classifier-free guidance as the SDXL pipeline does it: `eps = u + scale·(c − u)`; with rescale φ > 0,
// rescale_noise_cfg: `eps = φ·eps·(std(c)/std(eps)) + (1−φ)·eps`, stds unbiased over all dims but the batch
// (keepdim). Computed in the inputs' dtype, like diffusers.
at::Tensor applyGuidance(const at::Tensor& epsUncond, const at::Tensor& epsCond, double scale, double rescale);

}  // namespace koala::sampling
