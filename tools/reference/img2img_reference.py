#!/usr/bin/env python
"""Reference data for SDXL img2img and inpainting (4-channel UNet), computed by diffusers itself.

    ~/.cache/koala-studio/torch-2.11/bin/python tools/reference/img2img_reference.py           # (re)generate
    ~/.cache/koala-studio/torch-2.11/bin/python tools/reference/img2img_reference.py --check   # recompute, compare

Writes tests/data/fixtures/img2img/: init_a.png, init_b.png, mask_a.png, mask_a_blur4.png (inputs, made here with
numpy / PIL), reference.safetensors (float32 tensors, timesteps float64) and reference.json (versions, the pipeline
folder and every run's parameters). The pipeline is the committed tiny-koala-700m fixture, loaded with
StableDiffusionXLImg2ImgPipeline / StableDiffusionXLInpaintPipeline.from_pretrained(..., torch_dtype=torch.float32)
on the CPU. Schedulers are built by tiny_pipeline.make_scheduler (the names the other fixtures use).

Every intermediate value is what diffusers itself computed during the run, captured by wrapping the pipeline's own
methods (get_timesteps, prepare_latents, prepare_mask_latents, vae.encode, the posterior's sample, scheduler.add_noise,
randn_tensor in every diffusers module, a UNet forward pre-hook, callback_on_step_end); nothing is recomputed by hand.
See tools/reference/README.md ("img2img and inpainting references") for the keys and the semantics.

--check recomputes everything and compares with the committed files: it prints, per key, the relative error
||a-b||/||b|| and the max abs difference, checks the PNGs byte for byte and the run parameters, and exits 1 when a
key is beyond the fixture tolerances (ids/noise/timesteps/masks identical, latents 1e-3, others 1e-4, images 1 level).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tiny_pipeline import (FIXTURES, REPO_ROOT, make_scheduler, max_abs, quiet_libraries, rel_err,  # noqa: E402
                           versions)

OUT = FIXTURES / "img2img"
PIPELINE = FIXTURES / "tiny-koala-700m"
PROMPT = "a photo of a koala astronaut, highly detailed"
NEG = "blurry, low quality"
VAE_SAMPLE_SEEDS = (0, 1234)
MASK_BLUR = 4

# (id, sched, steps, strength, guidance, seed, init image). img2img: output size = the init image rounded down to a
# multiple of 8 (init_a 72x56 stays, init_b 101x70 -> 96x64 with a LANCZOS resize).
IMG2IMG_RUNS = [
    ("euler_s030", "euler", 10, 0.3, 5.0, 101, "init_a.png"),
    ("euler_s075", "euler", 10, 0.75, 5.0, 102, "init_a.png"),
    ("euler_s100", "euler", 10, 1.0, 5.0, 103, "init_a.png"),
    ("euler_a_s030", "euler_a", 8, 0.3, 5.0, 201, "init_a.png"),
    ("euler_a_s075", "euler_a", 8, 0.75, 5.0, 202, "init_a.png"),
    ("euler_a_s100", "euler_a", 8, 1.0, 5.0, 203, "init_a.png"),
    ("dpmpp_2m_karras_s030", "dpmpp_2m_karras", 8, 0.3, 5.0, 301, "init_a.png"),
    ("dpmpp_2m_karras_s075", "dpmpp_2m_karras", 8, 0.75, 5.0, 302, "init_a.png"),
    ("dpmpp_2m_karras_s100", "dpmpp_2m_karras", 8, 1.0, 5.0, 303, "init_a.png"),
    ("ddim_s030", "ddim", 10, 0.3, 5.0, 401, "init_a.png"),
    ("ddim_s075", "ddim", 10, 0.75, 5.0, 402, "init_a.png"),
    ("ddim_s100", "ddim", 10, 1.0, 5.0, 403, "init_a.png"),
    # init_b (101x70, not a multiple of 8): rounded down to 96x64 and LANCZOS-resized
    ("initb_euler_s075", "euler", 10, 0.75, 5.0, 501, "init_b.png"),
    ("initb_euler_a_s060", "euler_a", 8, 0.6, 5.0, 502, "init_b.png"),
    # float truncation: 50 * 0.58 = 28.999999999999996 -> int() = 28 steps, not 29
    ("euler_trunc_n50_s058", "euler", 50, 0.58, 5.0, 601, "init_a.png"),
]

# (id, sched, steps, strength, guidance, seed, init image, mask file, mask_blur). Output size given explicitly as
# 72x56 (multiples of 8, not of 16); the pipeline's default would be unet.sample_size * 8 = 64x64.
INPAINT_H, INPAINT_W = 56, 72
INPAINT_RUNS = [
    ("euler_s100", "euler", 10, 1.0, 7.5, 701, "init_a.png", "mask_a.png", None),
    ("euler_s09999", "euler", 10, 0.9999, 7.5, 702, "init_a.png", "mask_a.png", None),
    ("euler_s050", "euler", 10, 0.5, 7.5, 703, "init_a.png", "mask_a.png", None),
    ("euler_a_s100", "euler_a", 8, 1.0, 7.5, 801, "init_a.png", "mask_a.png", None),
    ("euler_a_s050", "euler_a", 8, 0.5, 7.5, 802, "init_a.png", "mask_a.png", None),
    ("dpmpp_2m_karras_s09999", "dpmpp_2m_karras", 8, 0.9999, 7.5, 901, "init_a.png", "mask_a.png", None),
    ("ddim_s075", "ddim", 10, 0.75, 7.5, 902, "init_a.png", "mask_a.png", None),
    ("euler_a_blur4_s075", "euler_a", 8, 0.75, 7.5, 1001, "init_a.png", "mask_a_blur4.png", MASK_BLUR),
]

# int(steps * strength) == 0: no denoising step at all.
EXPECT_ERROR = [
    {"kind": "img2img", "sched": "euler", "steps": 3, "strength": 0.2, "guidance": 5.0, "seed": 1101,
     "init_image": "init_a.png"},
    {"kind": "inpaint", "sched": "euler", "steps": 3, "strength": 0.2, "guidance": 7.5, "seed": 1102,
     "init_image": "init_a.png", "mask_image": "mask_a.png", "height": INPAINT_H, "width": INPAINT_W},
]


# --- input images (numpy; PNG bytes are deterministic for a given Pillow/zlib) --------------------------------------

def _u8(a):
    return np.clip(np.round(a), 0, 255).astype(np.uint8)


def make_init_a() -> np.ndarray:
    """72x56 RGB: smooth gradients, a disc, a rectangle and a soft diagonal band."""
    h, w = 56, 72
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 40 + 180 * x / (w - 1)
    g = 30 + 190 * y / (h - 1)
    b = 128 + 100 * np.cos(np.hypot(x - 50, y - 20) / 9.0)
    img = np.stack([r, g, b], -1)
    disc = np.hypot(x - 21, y - 30) < 12
    img[disc] = [235, 200, 40]
    rect = (x >= 42) & (x < 66) & (y >= 34) & (y < 50)
    img[rect] = [30, 60, 170]
    band = np.clip(1 - np.abs(x + y - 62) / 6.0, 0, 1)[..., None]
    img = img * (1 - 0.6 * band) + 0.6 * band * np.array([250, 250, 250])
    return _u8(img)


def make_init_b() -> np.ndarray:
    """101x70 RGB (neither side a multiple of 8): a plasma of sinusoids, a ring and a triangle."""
    h, w = 70, 101
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 128 + 90 * np.sin(x / 11.0) * np.cos(y / 17.0)
    g = 128 + 90 * np.sin((x + y) / 23.0)
    b = 60 + 150 * (y / (h - 1)) * (1 - x / (w - 1)) + 30 * np.cos(x / 7.0)
    img = np.stack([r, g, b], -1)
    d = np.hypot(x - 70, y - 35)
    img[(d > 12) & (d < 19)] = [20, 20, 20]
    tri = (y > 8) & (y < 40) & (np.abs(x - 25) < (y - 8) * 0.6)
    img[tri] = [210, 40, 90]
    return _u8(img)


def make_mask_a() -> np.ndarray:
    """72x56 8-bit grayscale, white = repaint: an ellipse with a soft (linear-ramp) edge, so there are intermediate
    values on both sides of the 0.5 binarization threshold."""
    h, w = 56, 72
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    d = np.sqrt(((x - 40.5) / 22.0) ** 2 + ((y - 27.0) / 16.0) ** 2)
    return _u8(255 * np.clip((1.15 - d) / 0.35, 0, 1))


def png_bytes(arr: np.ndarray, mode: str) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr, mode=mode).save(buf, format="PNG")
    return buf.getvalue()


def open_png(data: bytes):
    from PIL import Image

    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def make_inputs(mask_processor) -> dict[str, bytes]:
    """The four input PNGs. mask_processor: diffusers' VaeImageProcessor (its `blur` is a staticmethod, the same
    function as pipe.mask_processor.blur)."""
    pngs = {"init_a.png": png_bytes(make_init_a(), "RGB"), "init_b.png": png_bytes(make_init_b(), "RGB"),
            "mask_a.png": png_bytes(make_mask_a(), "L")}
    blurred = mask_processor.blur(open_png(pngs["mask_a.png"]), blur_factor=MASK_BLUR)
    buf = io.BytesIO()
    blurred.save(buf, format="PNG")
    pngs[f"mask_a_blur{MASK_BLUR}.png"] = buf.getvalue()
    return pngs


# --- capture: wrap diffusers' own functions ------------------------------------------------------------------------

class Capture:
    """Records what diffusers computes during one pipeline call (None: pass-through)."""

    active: "Capture | None" = None

    def __init__(self):
        self.draws = []        # (source, shape, tensor) for every randn_tensor call, in order
        self.encodes = []      # inputs of vae.encode
        self.samples = []      # (mean, std, z) of every posterior sample
        self.add_noise = []    # (original_samples, noise, timesteps, out)
        self.calls = {}        # method name -> list of (args, kwargs, result)
        self.time_ids = None
        self.steps = []

    def call(self, name, args, kwargs, result):
        self.calls.setdefault(name, []).append((args, kwargs, result))


def _clone(x):
    return x.detach().clone() if isinstance(x, torch.Tensor) else x


def install_global_hooks():
    """randn_tensor in every loaded diffusers module and DiagonalGaussianDistribution.sample (idempotent)."""
    from diffusers.models.autoencoders import vae as vae_mod
    from diffusers.utils import torch_utils

    if getattr(torch_utils, "_img2img_ref_hooked", False):
        return
    orig = torch_utils.randn_tensor

    def make(modname):
        def randn_tensor(shape, *args, **kwargs):
            out = orig(shape, *args, **kwargs)
            if Capture.active is not None:
                Capture.active.draws.append((modname, tuple(out.shape), out.detach().clone()))
            return out
        return randn_tensor

    for name, mod in list(sys.modules.items()):
        if name.startswith("diffusers") and getattr(mod, "randn_tensor", None) is orig:
            setattr(mod, "randn_tensor", make(name))

    dgd = vae_mod.DiagonalGaussianDistribution
    orig_sample = dgd.sample

    def sample(self, generator=None):
        z = orig_sample(self, generator)
        if Capture.active is not None:
            Capture.active.samples.append((self.mean.detach().clone(), self.std.detach().clone(), z.detach().clone()))
        return z

    dgd.sample = sample
    torch_utils._img2img_ref_hooked = True


def wrap_method(obj, name):
    orig = getattr(obj, name)

    def wrapper(*args, **kwargs):
        out = orig(*args, **kwargs)
        if Capture.active is not None:
            Capture.active.call(name, tuple(_clone(a) for a in args), {k: _clone(v) for k, v in kwargs.items()},
                                tuple(_clone(o) for o in out) if isinstance(out, tuple) else _clone(out))
        return out

    setattr(obj, name, wrapper)


def install_pipeline_hooks(pipe, methods):
    for m in methods:
        wrap_method(pipe, m)
    orig_encode = pipe.vae.encode

    def encode(x, *args, **kwargs):
        if Capture.active is not None:
            Capture.active.encodes.append(x.detach().clone())
        return orig_encode(x, *args, **kwargs)

    pipe.vae.encode = encode

    def pre_hook(module, args, kwargs):
        cap = Capture.active
        if cap is not None and cap.time_ids is None:
            cap.time_ids = kwargs["added_cond_kwargs"]["time_ids"].detach().clone()

    pipe.unet.register_forward_pre_hook(pre_hook, with_kwargs=True)


def set_scheduler(pipe, sched_name, base_config):
    s = make_scheduler(sched_name, base_config)
    orig = s.add_noise

    def add_noise(original_samples, noise, timesteps):
        out = orig(original_samples, noise, timesteps)
        if Capture.active is not None:
            Capture.active.add_noise.append((original_samples.detach().clone(), noise.detach().clone(),
                                             timesteps.detach().clone(), out.detach().clone()))
        return out

    s.add_noise = add_noise
    pipe.scheduler = s
    return s


def draw_summary(cap) -> list[str]:
    """The generator draws in order, consecutive repeats folded: e.g. 'vae posterior sample (vae.encode #1) x1'."""
    labels = []
    n_enc = 0
    for mod, shape, _ in cap.draws:
        if mod.endswith("autoencoders.vae"):
            n_enc += 1
            what = {1: "image", 2: "masked_image"}.get(n_enc, f"#{n_enc}")
            lab = f"vae posterior sample ({what}) {list(shape)}"
        elif ".schedulers." in mod:
            lab = f"scheduler step noise ({mod.rsplit('.', 1)[-1]}) {list(shape)}"
        elif ".pipelines." in mod:
            lab = f"pipeline noise (prepare_latents) {list(shape)}"
        else:
            lab = f"{mod} {list(shape)}"
        if labels and labels[-1][0] == lab:
            labels[-1][1] += 1
        else:
            labels.append([lab, 1])
    return [f"{lab} x{n}" for lab, n in labels]


def run_pipeline(pipe, cap, **kwargs):
    def on_step(p, i, t, kw):
        cap.steps.append(kw["latents"].detach().clone())
        return kw

    Capture.active = cap
    try:
        with torch.no_grad():
            out = pipe(prompt=PROMPT, negative_prompt=NEG, output_type="pt", callback_on_step_end=on_step,
                       callback_on_step_end_tensor_inputs=["latents"], **kwargs)
    finally:
        Capture.active = None
    return out.images


def _same(a, b):
    return a.shape == b.shape and torch.equal(a, b)


# --- the references ------------------------------------------------------------------------------------------------

def compute(pngs):
    """All tensors and the JSON parameters. pngs: file name -> PNG bytes (the pipelines' inputs)."""
    from diffusers import StableDiffusionXLImg2ImgPipeline, StableDiffusionXLInpaintPipeline

    tensors: dict[str, torch.Tensor] = {}
    install_global_hooks()

    i2i = StableDiffusionXLImg2ImgPipeline.from_pretrained(str(PIPELINE), torch_dtype=torch.float32,
                                                           requires_aesthetics_score=False)
    i2i.to("cpu")
    i2i.set_progress_bar_config(disable=True)
    install_pipeline_hooks(i2i, ["get_timesteps", "prepare_latents"])
    base_cfg = dict(i2i.scheduler.config)
    sf = i2i.vae.config.scaling_factor

    # VAE encoder on a fixed preprocessed image (init_a through the pipeline's own image processor)
    with torch.no_grad():
        x = i2i.image_processor.preprocess(open_png(pngs["init_a.png"]))
        dist = i2i.vae.encode(x).latent_dist
        tensors["vae_enc.image"] = x
        tensors["vae_enc.mean"] = dist.mean
        tensors["vae_enc.std"] = dist.std
        for s in VAE_SAMPLE_SEEDS:
            tensors[f"vae_enc.sample_seed{s}"] = dist.sample(torch.Generator("cpu").manual_seed(s))

    runs = []
    for rid, sched, steps, strength, guidance, seed, init in IMG2IMG_RUNS:
        t0 = time.time()
        set_scheduler(i2i, sched, base_cfg)
        cap = Capture()
        image = run_pipeline(i2i, cap, image=open_png(pngs[init]), strength=strength, num_inference_steps=steps,
                             guidance_scale=guidance, generator=torch.Generator("cpu").manual_seed(seed))
        (ts, n_run), = [c[2] for c in cap.calls["get_timesteps"]]
        (pl_args, _, noised), = cap.calls["prepare_latents"]
        (x0, noise, t_arg, after), = cap.add_noise
        (_, _, z), = cap.samples
        assert _same(x0, sf * z), "image_latents != scaling_factor * posterior sample"
        assert _same(after, noised)
        assert _same(noise, cap.draws[1][2]) and cap.draws[1][0].endswith("img2img")
        assert len(cap.steps) == len(ts) == n_run
        p = f"img2img.{rid}"
        tensors[f"{p}.image_in"] = pl_args[0]
        tensors[f"{p}.image_latents"] = x0
        tensors[f"{p}.noise"] = noise
        tensors[f"{p}.timesteps"] = ts.to(torch.float64)
        tensors[f"{p}.noised_latents"] = noised
        tensors[f"{p}.time_ids"] = cap.time_ids
        for i, lat in enumerate(cap.steps):
            tensors[f"{p}.step{i}.latents"] = lat
        tensors[f"{p}.final_latents"] = cap.steps[-1]
        tensors[f"{p}.image"] = image
        h, w = image.shape[-2:]
        sch = i2i.scheduler
        runs.append({
            "id": rid, "kind": "img2img", "sched": sched, "steps": steps, "strength": strength,
            "guidance": guidance, "seed": seed, "prompt": PROMPT, "negative": NEG, "init_image": init,
            "mask_image": None, "mask_blur": None, "width": int(w), "height": int(h),
            "timesteps_run": int(n_run), "begin_index": getattr(sch, "begin_index", None),
            "add_noise_timestep": t_arg.tolist(), "init_noise_sigma": float(sch.init_noise_sigma),
            "time_ids": cap.time_ids[1].tolist(), "generator_draws": draw_summary(cap),
        })
        print(f"  img2img {rid}: {sched} N={steps} strength={strength} -> {n_run} steps, {w}x{h}, "
              f"{time.time() - t0:.1f} s", flush=True)

    inp = StableDiffusionXLInpaintPipeline.from_pretrained(str(PIPELINE), torch_dtype=torch.float32,
                                                           requires_aesthetics_score=False)
    inp.to("cpu")
    inp.set_progress_bar_config(disable=True)
    install_pipeline_hooks(inp, ["get_timesteps", "prepare_latents", "prepare_mask_latents"])
    for rid, sched, steps, strength, guidance, seed, init, mask, blur in INPAINT_RUNS:
        t0 = time.time()
        set_scheduler(inp, sched, base_cfg)
        cap = Capture()
        image = run_pipeline(inp, cap, image=open_png(pngs[init]), mask_image=open_png(pngs[mask]),
                             height=INPAINT_H, width=INPAINT_W, strength=strength, num_inference_steps=steps,
                             guidance_scale=guidance, generator=torch.Generator("cpu").manual_seed(seed))
        (ts, n_run), = [c[2] for c in cap.calls["get_timesteps"]]
        (_, pl_kwargs, (latents0, noise, image_latents)), = cap.calls["prepare_latents"]
        (pm_args, _, (mask_lat, masked_lat)), = cap.calls["prepare_mask_latents"]
        mask_in, masked_image = pm_args[0], pm_args[1]
        image_in = pl_kwargs["image"]
        assert len(cap.samples) == 2 and len(cap.encodes) == 2
        assert _same(image_latents, sf * cap.samples[0][2]) and _same(masked_lat[:1], sf * cap.samples[1][2])
        assert _same(cap.encodes[0], image_in) and _same(cap.encodes[1], masked_image)
        assert _same(masked_image, image_in * (mask_in < 0.5))
        assert _same(noise, cap.draws[1][2]) and cap.draws[1][0].endswith("inpaint")
        assert len(cap.steps) == len(ts) == n_run
        p = f"inpaint.{rid}"
        tensors[f"{p}.image_in"] = image_in
        tensors[f"{p}.mask_in"] = mask_in
        tensors[f"{p}.mask_latent"] = mask_lat[:1]   # the pipeline holds it twice (CFG)
        tensors[f"{p}.masked_image_latents"] = masked_lat[:1]
        tensors[f"{p}.image_latents"] = image_latents
        tensors[f"{p}.noise"] = noise
        tensors[f"{p}.timesteps"] = ts.to(torch.float64)
        tensors[f"{p}.noised_latents"] = latents0
        tensors[f"{p}.time_ids"] = cap.time_ids
        for i, lat in enumerate(cap.steps):
            tensors[f"{p}.step{i}.latents"] = lat
        tensors[f"{p}.final_latents"] = cap.steps[-1]
        tensors[f"{p}.image"] = image
        sch = inp.scheduler
        runs.append({
            "id": rid, "kind": "inpaint", "sched": sched, "steps": steps, "strength": strength,
            "guidance": guidance, "seed": seed, "prompt": PROMPT, "negative": NEG, "init_image": init,
            "mask_image": mask, "mask_blur": blur, "mask_source": "mask_a.png", "width": INPAINT_W,
            "height": INPAINT_H, "timesteps_run": int(n_run), "begin_index": getattr(sch, "begin_index", None),
            "strength_is_max": strength == 1.0, "init_noise_sigma": float(sch.init_noise_sigma),
            "add_noise_timesteps": [a[2].tolist() for a in cap.add_noise],
            "time_ids": cap.time_ids[1].tolist(), "generator_draws": draw_summary(cap),
        })
        print(f"  inpaint {rid}: {sched} N={steps} strength={strength} -> {n_run} steps, mask {mask}, "
              f"{time.time() - t0:.1f} s", flush=True)

    expect = []
    for case in EXPECT_ERROR:
        pipe = i2i if case["kind"] == "img2img" else inp
        set_scheduler(pipe, case["sched"], base_cfg)
        cap = Capture()
        kw = dict(image=open_png(pngs[case["init_image"]]), strength=case["strength"],
                  num_inference_steps=case["steps"], guidance_scale=case["guidance"],
                  generator=torch.Generator("cpu").manual_seed(case["seed"]))
        if case["kind"] == "inpaint":
            kw.update(mask_image=open_png(pngs[case["mask_image"]]), height=case["height"], width=case["width"])
        try:
            img = run_pipeline(pipe, cap, **kw)
            outcome = {"raises": None, "image_shape": list(img.shape), "steps_run": len(cap.steps)}
        except Exception as e:  # noqa: BLE001 — what diffusers does is the finding
            tb = traceback.extract_tb(e.__traceback__)
            outcome = {"raises": type(e).__name__, "message": str(e), "steps_run": len(cap.steps),
                       "raised_in": [f"{Path(f.filename).name}:{f.name}" for f in tb[1:]]}
        ts_calls = cap.calls.get("get_timesteps", [])
        if ts_calls:
            ts, n = ts_calls[0][2]
            outcome.update(timesteps=ts.tolist(), num_inference_steps_after_strength=int(n))
        if cap.add_noise:
            outcome["add_noise_output_shape"] = list(cap.add_noise[0][3].shape)
        outcome["generator_draws"] = draw_summary(cap)
        expect.append(dict(case, prompt=PROMPT, negative=NEG, int_steps_times_strength=int(case["steps"] *
                                                                                           case["strength"]),
                           diffusers_outcome=outcome))
        print(f"  expect_error {case['kind']}: {outcome.get('raises')} {outcome.get('message', '')[:100]!s} "
              f"{outcome.get('image_shape', '')}", flush=True)

    params = {
        "pipeline": str(PIPELINE.relative_to(REPO_ROOT)),
        "pipeline_classes": {"img2img": "StableDiffusionXLImg2ImgPipeline",
                             "inpaint": "StableDiffusionXLInpaintPipeline"},
        "load": "from_pretrained(pipeline, torch_dtype=torch.float32, requires_aesthetics_score=False), CPU",
        "scheduler_names": "tools/reference/tiny_pipeline.py make_scheduler(name, pipeline scheduler config)",
        "generator": "torch.Generator('cpu').manual_seed(seed), one generator per run",
        "output_type": "pt",
        "vae_scaling_factor": sf,
        "images": {name: {"sha256": hashlib.sha256(data).hexdigest(), "size_wh": list(open_png(data).size),
                          "mode": open_png(data).mode} for name, data in pngs.items()},
        "mask_blur": {"file": f"mask_a_blur{MASK_BLUR}.png", "source": "mask_a.png", "blur_factor": MASK_BLUR,
                      "made_by": "pipe.mask_processor.blur(mask_pil, blur_factor) = PIL GaussianBlur(blur_factor)"},
        "vae_enc": {"image": "init_a.png through pipe.image_processor.preprocess", "sample_seeds":
                    list(VAE_SAMPLE_SEEDS)},
        "runs": runs,
        "expect_error": expect,
    }
    # own storage for every tensor (final_latents is also the last step; mask_latent is a view of the CFG pair)
    tensors = {k: v.detach().clone().contiguous() for k, v in tensors.items()}
    return tensors, params


def tolerance(key):
    """(kind, tol) for --check, after tests/data/fixtures/README.md."""
    leaf = key.rsplit(".", 1)[-1]
    if leaf in ("timesteps", "noise", "mask_in", "mask_latent", "image_in", "time_ids") or key == "vae_enc.image":
        return "max_abs", 0.0
    if leaf == "image" and not key.startswith("vae_enc"):
        return "levels", 1.0
    if leaf == "latents" or key.endswith("final_latents") or leaf == "noised_latents":
        return "rel_err", 1e-3
    return "rel_err", 1e-4


def check(tensors, params, pngs) -> int:
    from safetensors.torch import load_file

    ref = load_file(str(OUT / "reference.safetensors"))
    meta = json.loads((OUT / "reference.json").read_text())
    failures = []
    for name, data in pngs.items():
        same = (OUT / name).read_bytes() == data
        print(f"  {name:<58} {'identical bytes' if same else 'DIFFERENT BYTES'}")
        if not same:
            failures.append(name)
    for k in ("runs", "expect_error", "images", "pipeline"):
        same = json.dumps(meta.get(k), sort_keys=True) == json.dumps(json.loads(json.dumps(params[k])),
                                                                     sort_keys=True)
        print(f"  reference.json {k:<43} {'same' if same else 'DIFFERENT'}")
        if not same:
            failures.append(f"json:{k}")
    missing = sorted(set(ref) - set(tensors))
    extra = sorted(set(tensors) - set(ref))
    if missing or extra:
        print(f"  key sets differ: missing {missing} extra {extra}")
        failures.append("keys")
    worst = 0.0
    for k in sorted(set(ref) & set(tensors)):
        a, b = tensors[k].detach().cpu(), ref[k]
        if a.dtype != b.dtype and not (b.dtype == torch.float32 and a.is_floating_point()):
            a = a.to(b.dtype)
        if tuple(a.shape) != tuple(b.shape):
            print(f"  {k:<58} shape {tuple(a.shape)} != {tuple(b.shape)}  FAIL")
            failures.append(k)
            continue
        re, ma = rel_err(a, b), max_abs(a, b)
        kind, tol = tolerance(k)
        if kind == "levels":
            val = max_abs(torch.round(a.clamp(0, 1) * 255), torch.round(b.clamp(0, 1) * 255))
        else:
            val = ma if kind == "max_abs" else re
        ok = val <= tol
        worst = max(worst, re)
        print(f"  {k:<58} rel {re:.3e}  max_abs {ma:.3e}  [{kind} tol {tol:.0e}] {'ok' if ok else 'FAIL'}")
        if not ok:
            failures.append(k)
    print(f"{len(ref)} keys compared; max rel err over all keys {worst:.3e}")
    if failures:
        print(f"FAILED: {len(failures)}: " + ", ".join(failures))
        return 1
    print("all within tolerance")
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="recompute and compare with the committed files")
    args = ap.parse_args(argv)

    quiet_libraries()
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    v = versions()
    print("installed: " + ", ".join(f"{k} {v[k]}" for k in ("torch", "diffusers", "transformers", "safetensors",
                                                            "numpy", "python") if k in v)
          + f"; threads {torch.get_num_threads()}", flush=True)
    from diffusers.image_processor import VaeImageProcessor
    import PIL

    pngs = make_inputs(VaeImageProcessor)
    t0 = time.time()
    tensors, params = compute(pngs)
    params["pillow"] = PIL.__version__
    params["command"] = "~/.cache/koala-studio/torch-2.11/bin/python tools/reference/img2img_reference.py"
    print(f"computed {len(tensors)} tensors in {time.time() - t0:.1f} s", flush=True)
    if args.check:
        return check(tensors, params, pngs)

    from tiny_pipeline import save_reference

    OUT.mkdir(parents=True, exist_ok=True)
    for name, data in pngs.items():
        (OUT / name).write_bytes(data)
    st, js = save_reference(OUT, tensors, params)
    print(f"wrote {st} ({st.stat().st_size} bytes), {js}, " + ", ".join(pngs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
