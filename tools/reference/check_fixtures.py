#!/usr/bin/env python
"""Recomputes the committed reference fixtures with the installed diffusers and compares.

    tools/reference/setup.sh
    ~/.cache/koala-studio/torch-2.11/bin/python tools/reference/check_fixtures.py [--pipeline tiny-koala-700m]
        [--pipeline tiny-koala-1b] [--all]

For each pipeline it loads tests/data/fixtures/<pipeline> with StableDiffusionXLPipeline.from_pretrained(...,
torch_dtype=torch.float32) on the CPU and recomputes, against <pipeline>/reference.safetensors:
  - the text encoders (te1.*, te2.*) and encode_prompt (encode.*, encode_empty_negative.*),
  - the UNet on the committed unet.* inputs at t = 999, 500, 1,
  - the VAE decode (vae.*),
  - the scheduler timesteps and sigmas (sched.*),
  - every full run in reference.json "runs": initial noise, latents after each step, final latents, image.
It prints one line per comparison (relative error ||a-b||/||b|| unless said otherwise) and exits 1 if any is beyond
the tolerances of tests/data/fixtures/README.md. Nothing here is loosened: a failure is a finding to investigate.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tiny_pipeline import (FIXTURES, load_pipeline, make_scheduler, max_abs, quiet_libraries, rel_err,  # noqa: E402
                           versions)

TOL_MODEL = 1e-4      # text encoders, UNet, VAE: relative error
TOL_FINAL = 1e-3      # full runs: final latents relative error
TOL_SIGMA = 1e-6      # sigmas, init_noise_sigma: relative error
SCHED_NAMES = ["euler", "euler_trailing", "euler_karras", "euler_a", "dpmpp_2m", "dpmpp_2m_karras", "ddim"]


class Report:
    def __init__(self):
        self.failures = []
        self.platform = []  # identical once torch's misrounded float32 sqrt is replaced (see check_schedulers)

    def line(self, name, value, tol, kind="rel_err", ok=None, info=False):
        ok = (value <= tol if kind == "max_abs" or kind == "levels" else value < tol) if ok is None else ok
        tag = (info if isinstance(info, str) else "info") if info else ("ok" if ok else "FAIL")
        print(f"  {name:<44} {kind:>8} = {value:.3e}   tol {tol:.0e}   {tag}", flush=True)
        if not ok and not info:
            self.failures.append(name)


def check_text(pipe, ref, prompts, rep):
    neg = prompts[1]
    texts = [prompts[0], neg, ""]
    for k, text in enumerate(texts):
        for enc, tok, pre in ((pipe.text_encoder, pipe.tokenizer, "te1"), (pipe.text_encoder_2, pipe.tokenizer_2, "te2")):
            ids = tok(text, padding="max_length", max_length=tok.model_max_length, truncation=True,
                      return_tensors="pt").input_ids
            want_ids = ref[f"{pre}.{k}.input_ids"].to(torch.int64)
            same = torch.equal(ids, want_ids)
            rep.line(f"{pre}.{k}.input_ids", float((ids != want_ids).sum()), 0, "mismatch", ok=same)
            with torch.no_grad():
                out = enc(ids, output_hidden_states=True)
            rep.line(f"{pre}.{k}.penultimate", rel_err(out.hidden_states[-2], ref[f"{pre}.{k}.penultimate"]), TOL_MODEL)
            if pre == "te1":
                rep.line(f"{pre}.{k}.last_hidden_state",
                         rel_err(out.last_hidden_state, ref[f"{pre}.{k}.last_hidden_state"]), TOL_MODEL)
                rep.line(f"{pre}.{k}.pooler_output", rel_err(out.pooler_output, ref[f"{pre}.{k}.pooler_output"]),
                         TOL_MODEL)
            else:
                rep.line(f"{pre}.{k}.text_embeds", rel_err(out.text_embeds, ref[f"{pre}.{k}.text_embeds"]), TOL_MODEL)

    names = ["prompt_embeds", "negative_prompt_embeds", "pooled_prompt_embeds", "negative_pooled_prompt_embeds"]
    with torch.no_grad():
        got = pipe.encode_prompt(prompts[0], device="cpu", num_images_per_prompt=1,
                                 do_classifier_free_guidance=True, negative_prompt=neg)
        got_empty = pipe.encode_prompt(prompts[0], device="cpu", num_images_per_prompt=1,
                                       do_classifier_free_guidance=True, negative_prompt=None)
    for n, t in zip(names, got):
        rep.line(f"encode.{n}", rel_err(t, ref[f"encode.{n}"]), TOL_MODEL)
    for n, t in zip(names, got_empty):
        key = f"encode_empty_negative.{n}"
        if key in ref:  # the reference is all zeros: compare absolutely
            rep.line(key, max_abs(t, ref[key]), 0, "max_abs")


def check_unet(pipe, ref, rep):
    sample = ref["unet.sample"]
    cond = {"text_embeds": ref["unet.text_embeds"], "time_ids": ref["unet.time_ids"]}
    for t in (999, 500, 1):
        with torch.no_grad():
            out = pipe.unet(sample, torch.tensor(t), encoder_hidden_states=ref["unet.encoder_hidden_states"],
                            added_cond_kwargs=cond, return_dict=False)[0]
        rep.line(f"unet.t{t}.out", rel_err(out, ref[f"unet.t{t}.out"]), TOL_MODEL)


def check_vae(pipe, ref, rep):
    with torch.no_grad():
        dec = pipe.vae.decode(ref["vae.latent"] / pipe.vae.config.scaling_factor, return_dict=False)[0]
    rep.line("vae.decoded", rel_err(dec, ref["vae.decoded"]), TOL_MODEL)


def torch_sqrt_f32_misrounded(n: int = 100000) -> float:
    """Fraction of float32 inputs for which torch's CPU sqrt (what `tensor ** 0.5` runs) differs from the correctly
    rounded square root (numpy's np.sqrt, IEEE sqrt in float64 then rounded, and the engine's std::sqrt all give the
    latter). 0 where torch's kernel is exact."""
    x = torch.rand(n, generator=torch.Generator("cpu").manual_seed(0), dtype=torch.float32) * 10 + 1e-3
    exact = torch.sqrt(x.to(torch.float64)).to(torch.float32)
    return (torch.sqrt(x) != exact).float().mean().item()


class correctly_rounded_sqrt:
    """Within the block, float32 `tensor ** 0.5` is the correctly rounded sqrt (computed in float64, rounded once).
    diffusers' Euler schedulers compute their training sigmas as ((1 - alphas_cumprod) / alphas_cumprod) ** 0.5."""

    def __enter__(self):
        self.orig = torch.Tensor.__pow__
        orig = self.orig

        def pow_cr(t, e):
            if isinstance(e, float) and e == 0.5 and t.dtype == torch.float32:
                return t.to(torch.float64).sqrt().to(torch.float32)
            return orig(t, e)

        torch.Tensor.__pow__ = pow_cr
        return self

    def __exit__(self, *exc):
        torch.Tensor.__pow__ = self.orig


def _timesteps(name, config, n, exact_sqrt=False):
    if exact_sqrt:
        with correctly_rounded_sqrt():
            s = make_scheduler(name, config)
            s.set_timesteps(n, device="cpu")
    else:
        s = make_scheduler(name, config)
        s.set_timesteps(n, device="cpu")
    return s


def check_schedulers(pipe, ref, rep, strict, sqrt_misrounded):
    for name in SCHED_NAMES:
        for n in (1, 4, 25, 30):
            key = f"sched.{name}.{n}"
            if f"{key}.timesteps" not in ref:
                continue
            s = _timesteps(name, pipe.scheduler.config, n)
            want = ref[f"{key}.timesteps"].to(torch.float64)
            ts = s.timesteps.to(torch.float64)
            same = ts.shape == want.shape and torch.equal(ts, want)
            diff = max_abs(ts, want) if ts.shape == want.shape else float("inf")
            if same or strict or sqrt_misrounded == 0:
                rep.line(f"{key}.timesteps", diff, 0, "max_abs", ok=same)
            else:
                # Karras timesteps interpolate in log sigma between neighbouring training sigmas, so a 1-ulp change
                # of a float32 training sigma moves them by several float32 ulps. Where torch's float32 sqrt is not
                # correctly rounded on this machine, recompute with a correctly rounded one and require identity.
                ts2 = _timesteps(name, pipe.scheduler.config, n, exact_sqrt=True).timesteps.to(torch.float64)
                same2 = ts2.shape == want.shape and torch.equal(ts2, want)
                ndiff = int((ts != want).sum()) if ts.shape == want.shape else -1
                rep.line(f"{key}.timesteps", diff, 0, "max_abs", ok=same2, info="platform" if same2 else False)
                print(f"  {'':<46} ({ndiff} of {want.numel()} differ; with a correctly rounded float32 sqrt: "
                      f"{'identical' if same2 else 'STILL DIFFERENT'})", flush=True)
                if same2:
                    rep.platform.append(f"{rep.pipeline}:{key}")
                else:
                    rep.line(f"{key}.timesteps (exact sqrt)", max_abs(ts2, want), 0, "max_abs", ok=False)
            if f"{key}.sigmas" in ref:
                rep.line(f"{key}.sigmas", rel_err(s.sigmas, ref[f"{key}.sigmas"]), TOL_SIGMA)
            if f"{key}.init_noise_sigma" in ref:
                got = torch.as_tensor(float(s.init_noise_sigma), dtype=torch.float64)
                rep.line(f"{key}.init_noise_sigma", rel_err(got.reshape(ref[f"{key}.init_noise_sigma"].shape),
                                                            ref[f"{key}.init_noise_sigma"]), TOL_SIGMA)


def check_run(pipe, ref, run, rep, base_scheduler_config):
    rid = run["id"]
    pipe.scheduler = make_scheduler(run["sched"], base_scheduler_config)
    h, w = run["h"], run["w"]
    shape = (1, pipe.unet.config.in_channels, h // pipe.vae_scale_factor, w // pipe.vae_scale_factor)
    noise = torch.randn(shape, generator=torch.Generator("cpu").manual_seed(run["seed"]), dtype=torch.float32)
    rep.line(f"run.{rid}.initial_noise", max_abs(noise, ref[f"run.{rid}.initial_noise"]), 0, "max_abs")

    steps = []

    def on_step(p, i, t, kw):
        steps.append(kw["latents"].detach().clone())
        return kw

    with torch.no_grad():
        image = pipe(prompt=run["prompt"], negative_prompt=run["neg"], num_inference_steps=run["steps"],
                     guidance_scale=run["guidance"], height=h, width=w,
                     generator=torch.Generator("cpu").manual_seed(run["seed"]), output_type="pt",
                     callback_on_step_end=on_step, callback_on_step_end_tensor_inputs=["latents"]).images
    for i, lat in enumerate(steps):
        key = f"run.{rid}.step{i}.latents"
        if key in ref:
            rep.line(key, rel_err(lat, ref[key]), TOL_FINAL, info=True)
    n_ref = sum(1 for k in ref if k.startswith(f"run.{rid}.step") and k.endswith(".latents"))
    if len(steps) != n_ref:
        rep.line(f"run.{rid}.step count {len(steps)} vs {n_ref}", float("inf"), 0, "count", ok=False)
    rep.line(f"run.{rid}.final_latents", rel_err(steps[-1], ref[f"run.{rid}.final_latents"]), TOL_FINAL)
    want = ref[f"run.{rid}.image"]
    levels = max_abs(torch.round(image.clamp(0, 1) * 255), torch.round(want.clamp(0, 1) * 255))
    rep.line(f"run.{rid}.image (8-bit levels)", levels, 1, "levels")
    rep.line(f"run.{rid}.image", rel_err(image, want), TOL_FINAL, info=True)


def check_pipeline(name, rep, only_runs, strict, sqrt_misrounded):
    from safetensors.torch import load_file

    folder = FIXTURES / name
    rep.pipeline = name
    meta = json.loads((folder / "reference.json").read_text())
    ref = load_file(str(folder / "reference.safetensors"))
    print(f"== {name}  (references: diffusers {meta.get('diffusers')}, transformers {meta.get('transformers')}, "
          f"torch {meta.get('torch')})", flush=True)
    t0 = time.time()
    pipe = load_pipeline(folder)
    base_cfg = dict(pipe.scheduler.config)
    with torch.no_grad():
        if not only_runs:
            check_text(pipe, ref, meta["prompts"], rep)
            check_vae(pipe, ref, rep)
            check_schedulers(pipe, ref, rep, strict, sqrt_misrounded)
        check_unet(pipe, ref, rep)
        for run in meta["runs"]:
            print(f"  -- run {run['id']}: {run['sched']}, {run['steps']} steps, guidance {run['guidance']}, "
                  f"seed {run['seed']}, {run['w']}x{run['h']}, negative {run['neg']!r}", flush=True)
            check_run(pipe, ref, run, rep, base_cfg)
    print(f"  ({time.time() - t0:.1f} s)", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pipeline", action="append", help="fixture folder under tests/data/fixtures "
                    "(repeatable; default tiny-koala-700m)")
    ap.add_argument("--all", action="store_true", help="every pipeline fixture (tiny-koala-700m and tiny-koala-1b)")
    ap.add_argument("--runs-only", action="store_true", help="only the UNet calls and the full runs")
    ap.add_argument("--strict", action="store_true", help="count scheduler timesteps that differ only because "
                    "torch's float32 sqrt is misrounded on this machine as failures too")
    args = ap.parse_args()
    names = (sorted(p.parent.name for p in FIXTURES.glob("*/reference.json")) if args.all
             else args.pipeline or ["tiny-koala-700m"])

    quiet_libraries()
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    v = versions()
    print("installed: " + ", ".join(f"{k} {v[k]}" for k in ("torch", "diffusers", "transformers", "safetensors",
                                                            "peft", "python") if k in v)
          + f"; threads {torch.get_num_threads()}; {v['platform']}", flush=True)
    misrounded = torch_sqrt_f32_misrounded()
    print(f"torch float32 sqrt on this machine: {misrounded:.1%} of random inputs differ from the correctly rounded "
          f"sqrt (torch CPU capability {torch.backends.cpu.get_cpu_capability()})", flush=True)
    rep = Report()
    for n in names:
        check_pipeline(n, rep, args.runs_only, args.strict, misrounded)
    if rep.platform:
        print(f"platform: {len(rep.platform)} scheduler table(s) differ by float32 ulps only because torch's float32 "
              f"sqrt is not correctly rounded here, and are identical with a correctly rounded one: "
              + ", ".join(rep.platform) + " (--strict counts them as failures)")
    if rep.failures:
        print(f"FAILED: {len(rep.failures)} comparison(s) beyond tolerance: " + ", ".join(rep.failures))
        return 1
    print("all comparisons within the fixture tolerances")
    return 0


if __name__ == "__main__":
    sys.exit(main())
