"""Half-precision reference runs: what diffusers computes when the pipeline is loaded in float16 or bfloat16.

diffusers' randn_tensor draws the initial noise (and Euler a's step noise) in the pipeline's dtype, on the CPU
generator. torch's CPU normal kernel makes a *different stream* for float16 and bfloat16 (the uniforms have 11 and 8
mantissa bits), so a half-precision run is a different image from the float32 run of the same seed. These runs pin
that down: the engine must draw the same half-precision noise (bit-identical) and land on diffusers' final latents
within half-precision tolerance.

    ~/.cache/koala-studio/torch-2.11/bin/python tools/reference/half_reference.py           # writes the fixture
    ~/.cache/koala-studio/torch-2.11/bin/python tools/reference/half_reference.py --check   # regenerate, compare

Output: tests/data/fixtures/half/reference.{safetensors,json}. Runs on the CPU (diffusers 0.42.1, torch 2.11 run the
tiny pipeline in float16/bfloat16 on the CPU), pipeline tests/data/fixtures/tiny-koala-700m.
Per run: `run.<id>.initial_noise` (the noise diffusers' prepare_latents drew, captured from randn_tensor, stored as
float32 holding the half values exactly), `run.<id>.step_noise<i>` (Euler a), `run.<id>.final_latents` (the latents
after the last step, before the VAE, float32 holding the half values).
Also `noise.<dtype>.<shape>.<seed>`: plain torch.randn(shape, generator=manual_seed(seed), dtype=...) draws of
shapes below and above torch's 16-element vectorised-fill threshold, for the noise unit test.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tiny_pipeline import FIXTURES, make_scheduler, quiet_libraries, rel_err, save_reference  # noqa: E402

PIPELINE = FIXTURES / "tiny-koala-700m"
OUT = FIXTURES / "half"
PROMPT = "a photo of a koala astronaut, highly detailed"
NEG = "blurry, low quality"
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}
# id, dtype, scheduler, steps, guidance, seed, height, width
RUNS = [
    ("fp16_euler", "fp16", "euler", 4, 5.0, 42, 64, 96),
    ("fp16_euler_a", "fp16", "euler_a", 4, 5.0, 7, 64, 64),
    ("fp16_dpmpp_2m_karras", "fp16", "dpmpp_2m_karras", 5, 6.0, 1234, 64, 64),
    ("bf16_euler_a", "bf16", "euler_a", 3, 5.0, 99, 64, 64),
]
NOISE_DRAWS = [((1, 4, 8, 12), 42), ((2, 3), 5), ((1, 4, 3, 5), 123456789)]


def compute() -> tuple[dict, dict]:
    import diffusers.pipelines.stable_diffusion_xl.pipeline_stable_diffusion_xl as sdxl_mod
    import diffusers.schedulers.scheduling_euler_ancestral_discrete as ea_mod
    from diffusers import StableDiffusionXLPipeline

    T: dict = {}
    for name, dt in DTYPES.items():
        for shape, seed in NOISE_DRAWS:
            key = f"noise.{name}.{'x'.join(map(str, shape))}.{seed}"
            T[key] = torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed), dtype=dt)

    runs = []
    pipes = {}
    for rid, dname, sched, steps, guidance, seed, h, w in RUNS:
        if dname not in pipes:
            pipes[dname] = StableDiffusionXLPipeline.from_pretrained(str(PIPELINE), torch_dtype=DTYPES[dname])
            pipes[dname].set_progress_bar_config(disable=True)
        pipe = pipes[dname]
        base = dict(pipe.scheduler.config)
        pipe.scheduler = make_scheduler(sched, base)
        draws = {"pipe": [], "sched": []}
        orig_pipe_randn, orig_ea_randn = sdxl_mod.randn_tensor, ea_mod.randn_tensor

        def hook(kind, orig):
            def randn_tensor(*a, **kw):
                out = orig(*a, **kw)
                draws[kind].append(out.detach().clone())
                return out
            return randn_tensor

        sdxl_mod.randn_tensor = hook("pipe", orig_pipe_randn)
        ea_mod.randn_tensor = hook("sched", orig_ea_randn)
        try:
            with torch.no_grad():
                lat = pipe(prompt=PROMPT, negative_prompt=NEG, num_inference_steps=steps, guidance_scale=guidance,
                           height=h, width=w, generator=torch.Generator("cpu").manual_seed(seed),
                           output_type="latent").images
        finally:
            sdxl_mod.randn_tensor, ea_mod.randn_tensor = orig_pipe_randn, orig_ea_randn
        assert len(draws["pipe"]) == 1, rid
        noise = draws["pipe"][0]
        assert noise.dtype == DTYPES[dname], (rid, noise.dtype)
        T[f"run.{rid}.initial_noise"] = noise
        for i, sn in enumerate(draws["sched"]):
            assert sn.dtype == DTYPES[dname], (rid, sn.dtype)
            T[f"run.{rid}.step_noise{i}"] = sn
        T[f"run.{rid}.final_latents"] = lat
        # How far the float32 run of the same seed is: the size of the difference the dtype's own stream makes.
        runs.append({"id": rid, "dtype": dname, "sched": sched, "scheduler_class": type(pipe.scheduler).__name__,
                     "steps": steps, "guidance": guidance, "seed": seed, "h": h, "w": w, "prompt": PROMPT,
                     "neg": NEG, "step_noise_draws": len(draws["sched"]), "latents_dtype": str(lat.dtype)})
    params = {"runs": runs, "noise_draws": [{"shape": list(s), "seed": sd} for s, sd in NOISE_DRAWS],
              "load": "StableDiffusionXLPipeline.from_pretrained(tiny-koala-700m, torch_dtype=float16|bfloat16), CPU"}
    return T, params


def check() -> int:
    from safetensors.torch import load_file

    with tempfile.TemporaryDirectory() as tmp:
        T, params = compute()
        save_reference(tmp, T, params)
        new = load_file(str(Path(tmp) / "reference.safetensors"))
        old = load_file(str(OUT / "reference.safetensors"))
        bad = 0
        for k in sorted(set(new) | set(old)):
            if k not in new or k not in old:
                print(f"MISSING {k}")
                bad += 1
                continue
            same = torch.equal(new[k], old[k])
            print(f"{'same' if same else 'DIFF'} {k} rel {rel_err(new[k], old[k]):.3g}")
            bad += 0 if same else 1
        return 1 if bad else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="regenerate in a temporary folder and compare")
    args = ap.parse_args(argv)
    quiet_libraries()
    torch.manual_seed(0)
    if args.check:
        return check()
    T, params = compute()
    st, js = save_reference(OUT, T, params)
    print(st, js)
    return 0


if __name__ == "__main__":
    sys.exit(main())
