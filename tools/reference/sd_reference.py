#!/usr/bin/env python
"""Tiny SD 1.5 / SD 2.x pipelines (StableDiffusionPipeline layout) and reference data computed by diffusers itself.

    ~/.cache/koala-studio/torch-2.11/bin/python tools/reference/sd_reference.py           # (re)generate both folders
    ~/.cache/koala-studio/torch-2.11/bin/python tools/reference/sd_reference.py --check   # regenerate in /tmp, compare

Writes tests/data/fixtures/tiny-sd15/ and tests/data/fixtures/tiny-sd2/: a complete pipeline in the diffusers folder
layout of the real repos (model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/,
feature_extractor/preprocessor_config.json; no safety_checker weights), seeded random weights, the real 49,408-token
CLIP vocabulary (tokenizer folders copied byte for byte from tiny-koala-700m), then reloads that folder with
StableDiffusionPipeline.from_pretrained(..., torch_dtype=torch.float32) on the CPU and records, in
reference.safetensors (float32) + reference.json:
  te.<k>.*                text encoder for k = 0 prompt, 1 negative, 2 empty string
  encode*.*               pipe.encode_prompt (negative given / None, clip_skip 1 and 2)
  unet.*                  one UNet call on fixed inputs at t = 999, 500, 1
  vae.*                   vae.decode(latent / scaling_factor)
  sched.<name>.<N>.*      scheduler tables, N in 1, 4, 25 (+ sched.<name>.alphas_cumprod)
  run.<id>.*              full pipeline runs (initial noise, latents after each step, final latents, image in [0,1])
Every value is what diffusers computed; see tools/reference/README.md ("SD 1.5 / SD 2.x references") for the keys and
the semantics, PROVENANCE.md in each folder for how they were made.

--check regenerates both folders into a temporary directory, compares every file byte for byte (PROVENANCE.md
excepted: it is written by hand) and, for reference.safetensors, every key against the fixture tolerances (ids, noise,
timesteps identical; latents 1e-3; other tensors 1e-4; images 1 level); exit 1 on any failure.
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tiny_pipeline import (FIXTURES, _perturb_, make_scheduler, max_abs, quiet_libraries, rel_err,  # noqa: E402
                           versions)

PROMPT = "a photo of a koala astronaut, highly detailed"
NEG = "blurry, low quality"
TOKENIZER_SOURCE = FIXTURES / "tiny-koala-700m"
SCHED_STEPS = (1, 4, 25)
UNET_T = (999, 500, 1)
PERTURB_STD = 0.02
COMMAND = "~/.cache/koala-studio/torch-2.11/bin/python tools/reference/sd_reference.py"

# --- component configs ------------------------------------------------------------------------------------------------

# CLIPTextModel. bos/eos/pad ids as the real SD repos' text_encoder/config.json have them (0/2/1; unused by the
# forward pass that matters here: last_hidden_state and hidden_states do not depend on them).
TE_SD15 = {
    "attention_dropout": 0.0, "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1,
    "hidden_act": "quick_gelu",  # CLIP ViT-L/14 (SD 1.x)
    "hidden_size": 16, "intermediate_size": 64, "num_attention_heads": 2, "num_hidden_layers": 4,
    "initializer_factor": 1.0, "initializer_range": 0.02, "layer_norm_eps": 1e-05,
    "max_position_embeddings": 77, "projection_dim": 16, "vocab_size": 49408,
}
TE_SD2 = dict(TE_SD15, hidden_act="gelu", num_hidden_layers=3)  # OpenCLIP ViT-H/14 (SD 2.x): exact gelu

UNET_COMMON = {
    "act_fn": "silu",
    "block_out_channels": [16, 16, 32],
    "center_input_sample": False,
    "cross_attention_dim": 16,  # = text encoder width
    # SD order: attention in the high-resolution levels, none in the lowest one (SDXL/KOALA is the other way round)
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    "mid_block_type": "UNetMidBlock2DCrossAttn",
    "downsample_padding": 1,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 4,
    "out_channels": 4,
    "layers_per_block": 2,  # as SD: 2 resnets per down level, 3 per up level
    "mid_block_scale_factor": 1,
    "norm_eps": 1e-05,
    "norm_num_groups": 8,  # SD uses 32; 8 lets the channels stay tiny (GroupNorm is the same computation)
}
UNET_SD15 = dict(UNET_COMMON, attention_head_dim=8, use_linear_projection=False, upcast_attention=False,
                 sample_size=8)
# SD 2.x: attention_head_dim is a per-level list of head COUNTS ([5, 10, 20, 20] in SD 2; head size 64 there, 8 here)
UNET_SD2 = dict(UNET_COMMON, attention_head_dim=[2, 2, 4], use_linear_projection=True, upcast_attention=True,
                sample_size=12)

VAE = {
    "act_fn": "silu",
    "block_out_channels": [8, 16, 16, 16],  # 4 levels: scale factor 8 (SD: 128, 256, 512, 512)
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 4,
    "layers_per_block": 2,
    "norm_num_groups": 8,
    "sample_size": 64,
    "scaling_factor": 0.18215,
}

# scheduler/scheduler_config.json: exactly the keys the real repos ship (missing keys take each class's defaults,
# which matters for Scheduler.from_config(pipe.scheduler.config): diffusers drops keys listed in _use_default_values).
SCHED_SD15 = {  # runwayml / stable-diffusion-v1-5
    "_class_name": "PNDMScheduler",
    "_diffusers_version": "0.6.0",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
    "clip_sample": False,
}
SCHED_SD2 = {  # stabilityai / stable-diffusion-2 (768 px, v-prediction)
    "_class_name": "DDIMScheduler",
    "_diffusers_version": "0.8.0",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "num_train_timesteps": 1000,
    "prediction_type": "v_prediction",
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
}

PREPROCESSOR = {  # feature_extractor/preprocessor_config.json as the SD repos ship it (for the safety checker)
    "crop_size": 224,
    "do_center_crop": True,
    "do_convert_rgb": True,
    "do_normalize": True,
    "do_resize": True,
    "feature_extractor_type": "CLIPFeatureExtractor",
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711],
    "resample": 3,
    "size": 224,
}

MODEL_INDEX_COMMON = {
    "_class_name": "StableDiffusionPipeline",
    "feature_extractor": ["transformers", "CLIPImageProcessor"],
    "text_encoder": ["transformers", "CLIPTextModel"],
    "tokenizer": ["transformers", "CLIPTokenizer"],
    "unet": ["diffusers", "UNet2DConditionModel"],
    "vae": ["diffusers", "AutoencoderKL"],
}
MODEL_INDEX_SD15 = dict(MODEL_INDEX_COMMON, _diffusers_version="0.6.0",
                        safety_checker=["stable_diffusion", "StableDiffusionSafetyChecker"],
                        scheduler=["diffusers", "PNDMScheduler"])
MODEL_INDEX_SD2 = dict(MODEL_INDEX_COMMON, _diffusers_version="0.8.0", requires_safety_checker=False,
                       safety_checker=[None, None], scheduler=["diffusers", "DDIMScheduler"])

# (id, scheduler name, steps, guidance, guidance_rescale, seed, negative prompt)
RUNS_SD15 = [
    ("pndm_cfg", "pndm", 5, 7.5, 0.0, 42, NEG),
    ("euler_cfg", "euler", 4, 7.5, 0.0, 43, NEG),
    ("pndm_noneg", "pndm", 4, 7.5, 0.0, 7, None),
]
RUNS_SD2 = [
    ("ddim_v", "ddim", 4, 7.5, 0.0, 42, NEG),
    ("euler_v", "euler", 4, 7.5, 0.0, 43, NEG),
    ("ddim_zsnr_trailing_rescale07", "ddim_zsnr_trailing", 4, 7.5, 0.7, 44, NEG),
    ("dpmpp_2m_karras_v", "dpmpp_2m_karras", 4, 7.5, 0.0, 45, NEG),
]

PIPELINES = {
    "tiny-sd15": {"seed": 1500, "te": TE_SD15, "unet": UNET_SD15, "vae": VAE, "tokenizer": "tokenizer",
                  "scheduler": SCHED_SD15, "model_index": MODEL_INDEX_SD15, "runs": RUNS_SD15,
                  "sched_names": ["pndm", "ddim", "euler", "euler_a", "dpmpp_2m_karras"]},
    "tiny-sd2": {"seed": 2000, "te": TE_SD2, "unet": UNET_SD2, "vae": VAE, "tokenizer": "tokenizer_2",
                 "scheduler": SCHED_SD2, "model_index": MODEL_INDEX_SD2, "runs": RUNS_SD2,
                 "sched_names": ["ddim", "euler", "euler_a", "dpmpp_2m_karras", "ddim_zsnr_trailing",
                                 "euler_zsnr_trailing", "dpmpp_2m_zsnr_trailing"]},
}

# --- schedulers by name -----------------------------------------------------------------------------------------------

ZSNR_TRAILING = {"rescale_betas_zero_snr": True, "timestep_spacing": "trailing"}


def make_sd_scheduler(name: str, config):
    """tiny_pipeline.make_scheduler plus the names only these fixtures use. Always Scheduler.from_config(config, ...)
    with config = the loaded pipeline's scheduler.config (keys its file lacks: the new class's defaults)."""
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler, PNDMScheduler

    extra = {
        "pndm": (PNDMScheduler, {}),
        "ddim_zsnr_trailing": (DDIMScheduler, ZSNR_TRAILING),
        "euler_zsnr_trailing": (EulerDiscreteScheduler, ZSNR_TRAILING),
        "dpmpp_2m_zsnr_trailing": (DPMSolverMultistepScheduler,
                                   dict(ZSNR_TRAILING, algorithm_type="dpmsolver++", solver_order=2)),
    }
    if name in extra:
        cls, kw = extra[name]
        return cls.from_config(config, **kw)
    return make_scheduler(name, config)


# --- building and saving ----------------------------------------------------------------------------------------------

def build_and_save(name: str, out: Path) -> dict:
    """Seeded random components saved in the real repos' layout. Returns notes for reference.json."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from safetensors.torch import save_file
    from transformers import CLIPTextConfig, CLIPTextModel

    spec = PIPELINES[name]
    seed = spec["seed"]

    def seeded(i, make):
        torch.manual_seed(seed + i)
        m = make().to(torch.float32).eval()
        _perturb_(m, PERTURB_STD, torch.Generator("cpu").manual_seed(seed + 1000 + i))
        return m

    unet = seeded(0, lambda: UNet2DConditionModel(**spec["unet"]))
    vae = seeded(1, lambda: AutoencoderKL(**spec["vae"]))
    te = seeded(2, lambda: CLIPTextModel(CLIPTextConfig(**spec["te"])))

    out.mkdir(parents=True, exist_ok=True)
    for p in out.iterdir():  # everything this script writes; PROVENANCE.md (written by hand) stays
        if p.name != "PROVENANCE.md":
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    # UNet and text encoder float16 on disk (size), VAE float32; references use the float32 upcast of these.
    unet.to(torch.float16).save_pretrained(out / "unet", safe_serialization=True)
    vae.save_pretrained(out / "vae", safe_serialization=True)
    te16 = copy.deepcopy(te).to(torch.float16)
    te16.save_pretrained(out / "text_encoder", safe_serialization=True)
    # transformers 5 writes CLIPTextModel keys without the `text_model.` level; the real SD repos (transformers 4)
    # have `text_model.embeddings...`. Rewrite the file with the real spelling (transformers 5 loads both).
    sd = {f"text_model.{k}": v.contiguous() for k, v in sorted(te16.state_dict().items())}
    (out / "text_encoder" / "model.safetensors").unlink()
    save_file(sd, str(out / "text_encoder" / "model.safetensors"), metadata={"format": "pt"})
    shutil.copytree(TOKENIZER_SOURCE / spec["tokenizer"], out / "tokenizer")
    (out / "scheduler").mkdir()
    (out / "scheduler" / "scheduler_config.json").write_text(json.dumps(spec["scheduler"], indent=2) + "\n")
    (out / "feature_extractor").mkdir()
    (out / "feature_extractor" / "preprocessor_config.json").write_text(json.dumps(PREPROCESSOR, indent=2) + "\n")
    (out / "model_index.json").write_text(json.dumps(spec["model_index"], indent=2) + "\n")
    return {"text_encoder_keys": "text_model.* (as the real SD repos), float16 on disk",
            "unet_dtype_on_disk": "float16", "vae_dtype_on_disk": "float32", "perturb_std": PERTURB_STD,
            "seeds": {"unet": seed, "vae": seed + 1, "text_encoder": seed + 2,
                      "perturb": [seed + 1000, seed + 1001, seed + 1002]}}


def load(name: str, folder: Path):
    """Loads the folder as the references are computed. Returns (pipe, how) with `how` for reference.json."""
    from diffusers import StableDiffusionPipeline

    how = {}
    try:  # the plain call first: does diffusers load the folder as the real repo's layout describes it?
        pipe = StableDiffusionPipeline.from_pretrained(str(folder), torch_dtype=torch.float32)
        how["call"] = "StableDiffusionPipeline.from_pretrained(folder, torch_dtype=torch.float32)"
    except Exception as e:  # noqa: BLE001 - recorded
        msg = str(e).replace(str(folder.resolve()), "<folder>").replace(str(folder), "<folder>")
        how["plain_call_error"] = f"{type(e).__name__}: {msg.splitlines()[0][:300]}"
        pipe = StableDiffusionPipeline.from_pretrained(str(folder), torch_dtype=torch.float32, safety_checker=None,
                                                       requires_safety_checker=False)
        how["call"] = ("StableDiffusionPipeline.from_pretrained(folder, torch_dtype=torch.float32, "
                       "safety_checker=None, requires_safety_checker=False)")
    pipe.to("cpu")
    pipe.set_progress_bar_config(disable=True)
    how["safety_checker"] = None if pipe.safety_checker is None else type(pipe.safety_checker).__name__
    how["feature_extractor"] = None if pipe.feature_extractor is None else type(pipe.feature_extractor).__name__
    how["scheduler"] = type(pipe.scheduler).__name__
    return pipe, how


# --- reference computation --------------------------------------------------------------------------------------------

def _f32(t):
    return torch.as_tensor(t).detach().to(torch.float32).contiguous()


def _encode(pipe, negative_prompt, clip_skip=None):
    with torch.no_grad():
        return pipe.encode_prompt(PROMPT, device="cpu", num_images_per_prompt=1, do_classifier_free_guidance=True,
                                  negative_prompt=negative_prompt, clip_skip=clip_skip)


def compute_text(pipe, T, notes):
    te, tok = pipe.text_encoder, pipe.tokenizer
    fln = te.final_layer_norm
    for k, text in enumerate([PROMPT, NEG, ""]):
        ids = tok(text, padding="max_length", max_length=tok.model_max_length, truncation=True,
                  return_tensors="pt").input_ids
        with torch.no_grad():
            out = te(ids, output_hidden_states=True)
            T[f"te.{k}.input_ids"] = _f32(ids)
            T[f"te.{k}.last_hidden_state"] = _f32(out.last_hidden_state)
            T[f"te.{k}.penultimate"] = _f32(out.hidden_states[-2])
            T[f"te.{k}.hidden_states_penultimate_normed"] = _f32(fln(out.hidden_states[-2]))  # diffusers clip_skip=1
            T[f"te.{k}.hidden_states_m3_normed"] = _f32(fln(out.hidden_states[-3]))  # diffusers clip_skip=2
        assert torch.equal(fln(out.hidden_states[-1]), out.last_hidden_state)
    notes["num_hidden_states"] = len(out.hidden_states)

    for key, neg in (("encode", NEG), ("encode_empty_negative", None)):
        pe, ne = _encode(pipe, neg)
        T[f"{key}.prompt_embeds"], T[f"{key}.negative_prompt_embeds"] = _f32(pe), _f32(ne)

    # clip_skip: diffusers' encode_prompt reads self.text_encoder.text_model.final_layer_norm, which transformers 5's
    # CLIPTextModel no longer has (no `text_model` level). Record the failure, then run diffusers' own code with
    # `text_model` aliased to the model itself (same final_layer_norm module), not a re-implementation.
    try:
        _encode(pipe, NEG, clip_skip=1)
        notes["clip_skip_plain"] = "works"
    except Exception as e:  # noqa: BLE001 - recorded
        notes["clip_skip_plain"] = f"{type(e).__name__}: {e}"
    object.__setattr__(pipe.text_encoder, "text_model", pipe.text_encoder)  # not registered as a submodule
    try:
        for cs in (1, 2):
            pe, ne = _encode(pipe, NEG, clip_skip=cs)
            T[f"encode_clipskip{cs}.prompt_embeds"], T[f"encode_clipskip{cs}.negative_prompt_embeds"] = _f32(pe), _f32(ne)
    finally:
        object.__delattr__(pipe.text_encoder, "text_model")
    notes["clip_skip_shim"] = "object.__setattr__(pipe.text_encoder, 'text_model', pipe.text_encoder)"
    notes["clip_skip_checks"] = {
        "clipskip1_prompt_eq_te.0.hidden_states_penultimate_normed":
            torch.equal(T["encode_clipskip1.prompt_embeds"], T["te.0.hidden_states_penultimate_normed"]),
        "clipskip2_prompt_eq_te.0.hidden_states_m3_normed":
            torch.equal(T["encode_clipskip2.prompt_embeds"], T["te.0.hidden_states_m3_normed"]),
        "clipskip_negative_eq_te.1.last_hidden_state (negative ignores clip_skip)":
            torch.equal(T["encode_clipskip2.negative_prompt_embeds"], T["te.1.last_hidden_state"]),
        "encode_empty_negative_eq_te.2.last_hidden_state":
            torch.equal(T["encode_empty_negative.negative_prompt_embeds"], T["te.2.last_hidden_state"]),
    }


def compute_unet(pipe, T, notes, seed):
    s = pipe.unet.config.sample_size
    g = torch.Generator("cpu").manual_seed(seed + 10)
    sample = torch.randn((2, 4, s, s), generator=g, dtype=torch.float32)
    ehs = torch.cat([T["encode.negative_prompt_embeds"], T["encode.prompt_embeds"]])  # CFG order: uncond, cond
    T["unet.sample"], T["unet.encoder_hidden_states"] = sample, ehs
    procs = {type(p).__name__ for p in pipe.unet.attn_processors.values()}
    notes["attn_processors"] = sorted(procs)
    for t in UNET_T:
        with torch.no_grad():
            T[f"unet.t{t}.out"] = _f32(pipe.unet(sample, torch.tensor(t), encoder_hidden_states=ehs,
                                                 return_dict=False)[0])
    # What upcast_attention changes in float32: run t=500 with every Attention's flag flipped, with SDPA
    # (AttnProcessor2_0, the default) and with the classic AttnProcessor (the only one that reads the flag).
    from diffusers.models.attention_processor import Attention, AttnProcessor

    attns = [m for m in pipe.unet.modules() if isinstance(m, Attention)]
    orig = [a.upcast_attention for a in attns]
    res = {}
    with torch.no_grad():
        for label, flag in (("flag_as_config", None), ("flag_flipped", True)):
            for a, o in zip(attns, orig):
                a.upcast_attention = (not o) if flag else o
            res[f"sdpa_{label}"] = pipe.unet(sample, torch.tensor(500), encoder_hidden_states=ehs, return_dict=False)[0]
        saved = pipe.unet.attn_processors
        pipe.unet.set_attn_processor(AttnProcessor())
        for label, flag in (("flag_as_config", None), ("flag_flipped", True)):
            for a, o in zip(attns, orig):
                a.upcast_attention = (not o) if flag else o
            res[f"classic_{label}"] = pipe.unet(sample, torch.tensor(500), encoder_hidden_states=ehs,
                                                return_dict=False)[0]
        pipe.unet.set_attn_processor(saved)
        for a, o in zip(attns, orig):
            a.upcast_attention = o
    ref = T["unet.t500.out"]
    notes["upcast_attention_probe_t500"] = {
        "config_upcast_attention": pipe.unet.config.upcast_attention,
        "sdpa_flag_flipped_max_abs_vs_reference": max_abs(res["sdpa_flag_flipped"], ref),
        "sdpa_flag_as_config_max_abs_vs_reference": max_abs(res["sdpa_flag_as_config"], ref),
        "classic_flag_as_config_max_abs_vs_classic_flipped": max_abs(res["classic_flag_as_config"],
                                                                     res["classic_flag_flipped"]),
        "classic_vs_sdpa_rel_err": rel_err(res["classic_flag_as_config"], ref),
    }


def compute_vae(pipe, T, seed):
    s = pipe.unet.config.sample_size
    lat = torch.randn((1, 4, s, s), generator=torch.Generator("cpu").manual_seed(seed + 20), dtype=torch.float32)
    T["vae.latent"] = lat
    with torch.no_grad():
        T["vae.decoded"] = _f32(pipe.vae.decode(lat / pipe.vae.config.scaling_factor, return_dict=False)[0])


def compute_schedulers(pipe, T, names, notes):
    base = dict(pipe.scheduler.config)
    cfgs = {}
    for name in names:
        s0 = make_sd_scheduler(name, base)
        T[f"sched.{name}.alphas_cumprod"] = _f32(s0.alphas_cumprod)
        c = dict(s0.config)
        cfgs[name] = {"class": type(s0).__name__, **{k: c[k] for k in sorted(c) if not k.startswith("_")}}
        for n in SCHED_STEPS:
            s = make_sd_scheduler(name, base)
            s.set_timesteps(n, device="cpu")
            T[f"sched.{name}.{n}.timesteps"] = _f32(s.timesteps)
            if hasattr(s, "sigmas"):
                T[f"sched.{name}.{n}.sigmas"] = _f32(s.sigmas)
            T[f"sched.{name}.{n}.init_noise_sigma"] = _f32(torch.tensor([float(s.init_noise_sigma)]))
    notes["scheduler_configs"] = cfgs  # the effective config of each name (what from_config produced)


def compute_runs(pipe, T, runs_spec):
    base = dict(pipe.scheduler.config)
    runs = []
    for rid, sname, steps, guidance, rescale, seed, neg in runs_spec:
        pipe.scheduler = make_sd_scheduler(sname, base)
        captured = {}
        orig_prepare = pipe.prepare_latents

        def prepare(*a, **kw):
            out = orig_prepare(*a, **kw)
            captured["initial_latents"] = out.detach().clone()
            return out

        pipe.prepare_latents = prepare
        steps_lat, ts = [], []

        def on_step(p, i, t, kw):
            steps_lat.append(kw["latents"].detach().clone())
            ts.append(float(t))
            return kw

        try:
            with torch.no_grad():
                image = pipe(prompt=PROMPT, negative_prompt=neg, num_inference_steps=steps, guidance_scale=guidance,
                             guidance_rescale=rescale, generator=torch.Generator("cpu").manual_seed(seed),
                             output_type="pt", callback_on_step_end=on_step,
                             callback_on_step_end_tensor_inputs=["latents"]).images
        finally:
            del pipe.prepare_latents
        h, w = image.shape[-2:]
        shape = (1, 4, h // pipe.vae_scale_factor, w // pipe.vae_scale_factor)
        noise = torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed), dtype=torch.float32)
        sigma0 = float(pipe.scheduler.init_noise_sigma)
        assert torch.equal(captured["initial_latents"], noise * pipe.scheduler.init_noise_sigma), rid
        T[f"run.{rid}.initial_noise"] = noise
        T[f"run.{rid}.initial_latents"] = _f32(captured["initial_latents"])
        T[f"run.{rid}.timesteps"] = _f32(torch.tensor(ts, dtype=torch.float64))
        for i, lat in enumerate(steps_lat):
            T[f"run.{rid}.step{i}.latents"] = _f32(lat)
        T[f"run.{rid}.final_latents"] = _f32(steps_lat[-1]).clone()
        T[f"run.{rid}.image"] = _f32(image)
        runs.append({"id": rid, "sched": sname, "scheduler_class": type(pipe.scheduler).__name__, "steps": steps,
                     "unet_calls": len(steps_lat), "timesteps": ts, "init_noise_sigma": sigma0,
                     "guidance": guidance, "guidance_rescale": rescale, "seed": seed, "neg": neg, "h": int(h),
                     "w": int(w), "size": "default (height=width=None: unet.sample_size * vae_scale_factor)",
                     "prompt": PROMPT, "eta": 0.0})
    return runs


def compute(name: str, folder: Path) -> tuple[dict, dict]:
    spec = PIPELINES[name]
    notes = {"pipeline": name}
    notes["build"] = build_and_save(name, folder)
    pipe, how = load(name, folder)
    notes["loading"] = how
    T: dict = {}
    compute_text(pipe, T, notes)
    compute_unet(pipe, T, notes, spec["seed"])
    compute_vae(pipe, T, spec["seed"])
    compute_schedulers(pipe, T, spec["sched_names"], notes)
    notes["runs"] = compute_runs(pipe, T, spec["runs"])
    notes["prompts"] = [PROMPT, NEG, ""]
    notes["vae_scale_factor"] = pipe.vae_scale_factor
    notes["command"] = COMMAND
    return T, notes


def write(name: str, folder: Path) -> None:
    from tiny_pipeline import save_reference

    t0 = time.time()
    T, notes = compute(name, folder)
    st, js = save_reference(folder, T, notes)
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    print(f"{name}: {len(T)} tensors in {time.time() - t0:.1f} s; {st.stat().st_size} bytes reference; folder "
          f"{size / 1e6:.2f} MB", flush=True)


# --- check ------------------------------------------------------------------------------------------------------------

def tolerance(key: str):
    """(kind, tol) for a reference key, the tolerances of tests/data/fixtures/README.md."""
    if key.endswith("input_ids") or key.endswith("initial_noise") or key.endswith("timesteps"):
        return "max_abs", 0.0
    if key.endswith(".image"):
        return "levels", 1.0
    if key.startswith("run."):
        return "rel_err", 1e-3
    if key.startswith("sched."):
        return "rel_err", 1e-6
    return "rel_err", 1e-4


def check() -> int:
    from safetensors.torch import load_file

    failures = []
    with tempfile.TemporaryDirectory(prefix="sd_reference_") as tmp:
        for name in PIPELINES:
            new, old = Path(tmp) / name, FIXTURES / name
            write(name, new)
            files = sorted({p.relative_to(d) for d in (new, old) for p in d.rglob("*") if p.is_file()}
                           - {Path("PROVENANCE.md")})
            same = 0
            for rel in files:
                a, b = new / rel, old / rel
                if not a.exists() or not b.exists():
                    print(f"  {name}/{rel}: only in {'new' if a.exists() else 'committed'}")
                    failures.append(f"{name}/{rel}")
                elif a.read_bytes() == b.read_bytes():
                    same += 1
                else:
                    print(f"  {name}/{rel}: bytes differ")
                    if rel.name != "reference.safetensors":
                        failures.append(f"{name}/{rel}")
            print(f"{name}: {same} of {len(files)} files byte-identical", flush=True)
            A, B = load_file(str(new / "reference.safetensors")), load_file(str(old / "reference.safetensors"))
            worst = 0.0
            for k in sorted(set(A) | set(B)):
                if k not in A or k not in B:
                    print(f"  {k}: missing in {'new' if k not in A else 'committed'}")
                    failures.append(f"{name}:{k}")
                    continue
                kind, tol = tolerance(k)
                if A[k].shape != B[k].shape:
                    print(f"  {k}: shape {tuple(A[k].shape)} vs {tuple(B[k].shape)}")
                    failures.append(f"{name}:{k}")
                    continue
                if kind == "levels":
                    v = max_abs(torch.round(A[k].clamp(0, 1) * 255), torch.round(B[k].clamp(0, 1) * 255))
                    ok = v <= tol
                elif kind == "max_abs":
                    v = max_abs(A[k], B[k])
                    ok = v <= tol
                else:
                    v = rel_err(A[k], B[k])
                    ok = v < tol
                    worst = max(worst, v)
                if not ok:
                    print(f"  {k}: {kind} {v:.3e} > {tol:.0e}  FAIL")
                    failures.append(f"{name}:{k}")
            print(f"{name}: {len(A)} keys compared, max relative error {worst:.3e}", flush=True)
    if failures:
        print(f"FAILED: {len(failures)}: " + ", ".join(failures))
        return 1
    print("all files identical or within the fixture tolerances")
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="regenerate in a temporary folder and compare")
    ap.add_argument("--pipeline", choices=sorted(PIPELINES), action="append", help="only this one (default: both)")
    args = ap.parse_args(argv)
    quiet_libraries()
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    v = versions()
    print("installed: " + ", ".join(f"{k} {v[k]}" for k in ("torch", "diffusers", "transformers", "safetensors",
                                                            "numpy", "python") if k in v)
          + f"; threads {torch.get_num_threads()}", flush=True)
    if args.check:
        return check()
    for name in args.pipeline or PIPELINES:
        write(name, FIXTURES / name)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        sys.exit(2)
