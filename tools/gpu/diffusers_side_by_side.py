#!/usr/bin/env python3
"""The engine and diffusers side by side, on the same card, on the very same random-weight files.

    diffusers_side_by_side.py [--archs koala-700m,koala-1b,sdxl-base] [--out DIR] [--work DIR] [--engine-bin DIR]
                              [--device cuda|cpu] [--dtype fp16|bf16|fp32] [--size 1024] [--steps 25]
                              [--guidance 5] [--runs 3] [--warmup 1] [--seed 42] [--no-previews]
                              [--budget SECONDS] [--latent-tol F]

For each architecture: writes the random pipeline once in the diffusers layout (tools/gpu/make_random_pipeline.py;
the text encoders and VAE are shared between architectures), then
  1. the engine: `koala-bench --model DIR --json` (same settings: docs/benchmarks.md) and one
     `koala-cli --model DIR --save-latents` for the seed;
  2. diffusers: StableDiffusionXLPipeline.from_pretrained(DIR, torch_dtype) (SDPA, its own fp32 upcast of the
     SDXL VAE, output_type pil), one warm-up, then the median whole image of --runs (torch.cuda.synchronize around
     each), a callback_on_step_end that computes the engine's latent preview (the same 4x3 factors, on the CPU)
     unless --no-previews, peak allocated/reserved memory over a run;
  3. the final latents of both for the seed: relative error ||engine - diffusers|| / ||diffusers||, both finite.

The initial noise. Both draw it from the seed themselves: the engine draws on the CPU in the UNet's dtype exactly as
diffusers' randn_tensor does (engine/src/sampling/noise.cpp; a float16 draw is another stream than the float32 one,
not a rounding of it), so the two start from bit-identical noise and the final latents show the whole pipeline's
agreement, seed for seed. The report also says how far the seed's float16/bfloat16 draw is from its float32 draw
(the difference a wrong dtype would make; 0 in float32).

Writes OUT/diffusers-side-by-side.json and OUT/diffusers-side-by-side.md, rewritten after every step, so a run cut
short keeps what it measured. Exit status: 0 all measured models within the latent tolerance, 1 a model failed or
was out of tolerance, 2 setup error (no diffusers, no engine binaries).

On the CPU (a check of this script and of make_random_pipeline.py, not of speed):
    tools/gpu/diffusers_side_by_side.py --archs tiny --device cpu --dtype fp32 --size 64 --steps 4 --runs 1
"""
import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the source tree (it would travel)
import make_random_pipeline as mrp  # noqa: E402

PROMPT = "a photo of a koala astronaut, highly detailed"
NEGATIVE = "blurry, low quality"
# docs/performance.md: whole image at least 2.5x (KOALA-700M) and 2.2x (KOALA-1B) faster than diffusers on the same
# card; SDXL-base: gpu-check's line (about 2x diffusers). KOALA-700M peak (reserved) memory <= 6 GiB, default mode.
SPEEDUP_TARGET = {"koala-700m": 2.5, "koala-1b": 2.2, "sdxl-base": 2.0}
MEMORY_TARGET_GIB = {"koala-700m": 6.0}
# Rough seconds one architecture takes on an H200 (pipeline written, both sides loaded, warm-ups, runs, latents);
# an architecture is skipped when less than this is left of --budget.
NEEDS_CUDA = {"tiny": 20, "koala-700m": 75, "koala-1b": 90, "sdxl-base": 150}
NEEDS_CPU = {"tiny": 20, "koala-700m": 1800, "koala-1b": 2400, "sdxl-base": 6000}
# The engine's latent preview factors (engine/src/core/image.cpp latentPreview).
PREVIEW_FACTORS = [[0.3651, 0.4232, 0.4341], [-0.2533, -0.0042, 0.1068], [0.1076, 0.1111, -0.0362],
                   [-0.3165, -0.2492, -0.2188]]
PREVIEW_BIAS = [0.1084, -0.0175, -0.0011]
GiB = float(1 << 30)


def log(*a):
    print("side-by-side:", *a, flush=True)


class Budget:
    def __init__(self, seconds):
        self.t0 = time.time()
        self.seconds = seconds

    def left(self):
        return float("inf") if not self.seconds else self.seconds - (time.time() - self.t0)

    def timeout(self):
        """For subprocess.run: what is left (at least 5 s), or None without a budget."""
        return None if not self.seconds else max(5.0, self.left())


def find_bin(dirs, name):
    for d in dirs:
        for p in (os.path.join(d, name), os.path.join(d, "cli", name)):
            if os.path.isfile(p) and os.access(p, os.X_OK):
                return p
    return None


def fmt_s(v):
    return "-" if v is None else "%.3f s" % v


def fmt_ms(v):
    return "-" if v is None else "%.1f ms" % (1e3 * v)


def fmt_gib(v):
    return "-" if v is None else "%.2f GiB" % (v / GiB)


# ---- report ---------------------------------------------------------------------------------------------------------
def write_report(out_dir, report):
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "diffusers-side-by-side.json"), "w") as fh:
        json.dump(report, fh, indent=2)
    s = report["settings"]
    v = report.get("versions", {})
    lines = [
        "# Engine vs diffusers, side by side (%s)" % report.get("device_name", s["device"]),
        "",
        "%dx%d, %d Euler steps, guidance %g, negative prompt, previews %s, seed %d; engine %s (koala-bench, median "
        "of %d after %d warm-up), diffusers %s / transformers %s / torch %s (StableDiffusionXLPipeline, %s, SDPA, "
        "VAE as diffusers decodes it), median of %d after %d warm-up. Same random-weight files on both sides." % (
            s["size"], s["size"], s["steps"], s["guidance"], "on" if s["previews"] else "off", s["seed"], s["dtype"],
            s["runs"], s["warmup"], v.get("diffusers", "?"), v.get("transformers", "?"), v.get("torch", "?"),
            s["dtype"], s["runs"], s["warmup"]),
        "",
        "| model | UNet params | engine whole image | diffusers whole image | speed-up | target | engine step | "
        "diffusers step | engine peak alloc / reserved | diffusers peak alloc / reserved | memory target | "
        "final latents rel err | target | finite (engine / diffusers) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in report["models"]:
        arch = m["arch"]
        e = m.get("engine") or {}
        d = m.get("diffusers") or {}
        lt = m.get("latents") or {}
        et, dt = e.get("total_seconds_median"), d.get("total_seconds_median")
        ratio = dt / et if (et and dt) else None
        tgt = SPEEDUP_TARGET.get(arch) if s["device"] == "cuda" and s["size"] == 1024 and s["steps"] == 25 else None
        rcell = "-" if ratio is None else "%.2fx" % ratio
        tcell = "-" if tgt is None else ("%.1fx %s" % (tgt, "-" if ratio is None else ("PASS" if ratio >= tgt
                                                                                        else "FAIL")))
        mt = MEMORY_TARGET_GIB.get(arch) if s["device"] == "cuda" and s["size"] == 1024 else None
        er = e.get("peak_reserved_bytes")
        mcell = "-" if mt is None or er is None else "%.0f GiB %s" % (mt, "PASS" if er / GiB <= mt else "FAIL")
        rel = lt.get("rel_err")
        lcell = "-" if rel is None else "%.3g" % rel
        ltcell = "%.3g %s" % (s["latent_tol"], "-" if rel is None else ("PASS" if lt.get("pass") else "FAIL"))
        fcell = "-" if not lt else "%s / %s" % (lt.get("engine_finite"), lt.get("diffusers_finite"))
        params = e.get("unet_parameters") or (m.get("pipeline") or {}).get("unet")
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s / %s | %s / %s | %s | %s | %s | %s |" % (
            arch, "-" if params is None else format(params, ","), fmt_s(et), fmt_s(dt), rcell, tcell,
            fmt_ms(e.get("step_median_seconds")), fmt_ms(d.get("step_median_seconds")),
            fmt_gib(e.get("peak_allocated_bytes")), fmt_gib(er), fmt_gib(d.get("peak_allocated_bytes")),
            fmt_gib(d.get("peak_reserved_bytes")), mcell, lcell, ltcell, fcell))
    lines.append("")
    lines.append("| model | status | pipeline written | engine load / first image | diffusers load / first image | "
                 "engine encode / decode | preview per step (engine / diffusers) | initial noise | notes |")
    lines.append("|---|---|---|---|---|---|---|---|---|")
    for m in report["models"]:
        e = m.get("engine") or {}
        d = m.get("diffusers") or {}
        p = m.get("pipeline") or {}
        lt = m.get("latents") or {}
        noise = "-"
        if "engine_noise_max_abs_diff" in lt:
            noise = "engine vs diffusers' draw %.3g (vs the fp32 draw %.3g; %s vs fp32 %.3g)" % (
                lt.get("engine_vs_diffusers_noise_max_abs_diff", float("nan")), lt["engine_noise_max_abs_diff"],
                s["dtype"], lt.get("diffusers_own_noise_max_abs_diff", float("nan")))
        lines.append("| %s | %s | %s | %s / %s | %s / %s | %s / %s | %s / %s | %s | %s |" % (
            m["arch"], m.get("status", "?"),
            "-" if not p else ("reused" if p.get("reused") else "%.1f s, %.2f GB" % (p.get("seconds", 0),
                                                                                      p.get("bytes", 0) / 1e9)),
            fmt_s(e.get("load_seconds")), fmt_s(e.get("first_image_seconds")),
            fmt_s(d.get("load_seconds")), fmt_s(d.get("first_image_seconds")),
            fmt_ms(e.get("encode_seconds")), fmt_ms(e.get("decode_seconds")),
            fmt_ms(e.get("preview_per_step_seconds")), fmt_ms(d.get("preview_per_step_seconds")), noise,
            "; ".join(m.get("errors", [])) or "-"))
    with open(os.path.join(out_dir, "diffusers-side-by-side.md"), "w") as fh:
        fh.write("\n".join(lines) + "\n")
    return "\n".join(lines)


# ---- the engine -----------------------------------------------------------------------------------------------------
def run_engine(a, bins, pipe_dir, work, arch, budget, m):
    base = ["--model", pipe_dir, "--steps", str(a.steps), "--width", str(a.size), "--height", str(a.size),
            "--guidance", str(a.guidance), "--dtype", a.dtype, "--device", a.device, "--seed", str(a.seed),
            "--prompt", a.prompt, "--negative", a.negative, "--scheduler", "euler"]
    jpath = os.path.join(work, "engine-%s.json" % arch)
    if os.path.exists(jpath):
        os.remove(jpath)
    cmd = [bins["bench"]] + base + ["--runs", str(a.runs), "--warmup", str(a.warmup), "--memory", "default",
                                    "--json", jpath] + ([] if a.previews else ["--no-previews"])
    log("+", " ".join(cmd))
    t = time.time()
    try:
        r = subprocess.run(cmd, timeout=budget.timeout(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
        print(r.stdout, end="", flush=True)
        if r.returncode != 0:
            m["errors"].append("koala-bench exit %d" % r.returncode)
    except subprocess.TimeoutExpired:
        m["errors"].append("koala-bench cut at the budget")
    if os.path.exists(jpath):
        with open(jpath) as fh:
            m["engine"] = json.load(fh)
    m["engine_bench_wall_seconds"] = time.time() - t

    lat = os.path.join(work, "engine-%s-latents.safetensors" % arch)
    if os.path.exists(lat):
        os.remove(lat)
    cmd = [bins["cli"]] + base + ["--prompt-syntax", "plain", "--out", os.path.join(work, "engine-%s.png" % arch),
                                  "--save-latents", lat]
    log("+", " ".join(cmd))
    t = time.time()
    try:
        r = subprocess.run(cmd, timeout=budget.timeout(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
        print(r.stdout, end="", flush=True)
        if r.returncode != 0:
            m["errors"].append("koala-cli exit %d" % r.returncode)
    except subprocess.TimeoutExpired:
        m["errors"].append("koala-cli cut at the budget")
    m["engine_cli_wall_seconds"] = time.time() - t
    return lat if os.path.exists(lat) else None


# ---- diffusers ------------------------------------------------------------------------------------------------------
def sync(torch, device):
    if device == "cuda":
        torch.cuda.synchronize()


OWN_NOISE = {}  # arch -> diffusers' own draw for the seed (float32 copy of it), for compare()


def run_diffusers(a, torch, pipe_dir, budget, m, noise):
    from diffusers import StableDiffusionXLPipeline
    from diffusers.utils.torch_utils import randn_tensor

    tdtype = getattr(torch, mrp.DTYPES[a.dtype])
    dev = a.device
    d = {}
    m["diffusers"] = d
    t0 = time.time()
    pipe = StableDiffusionXLPipeline.from_pretrained(pipe_dir, torch_dtype=tdtype)
    pipe.to(dev)
    pipe.set_progress_bar_config(disable=True)
    sync(torch, dev)
    d["load_seconds"] = time.time() - t0
    d["allocated_after_load_bytes"] = torch.cuda.memory_allocated() if dev == "cuda" else None
    d["unet_parameters"] = sum(p.numel() for p in pipe.unet.parameters())
    d["unet_attention_processor"] = type(next(iter(pipe.unet.attn_processors.values()))).__name__
    d["vae_force_upcast"] = bool(pipe.vae.config.force_upcast)

    # diffusers' own draw for the seed (what both use) against the float32 draw (what a wrong dtype would give).
    shape = tuple(noise.shape)
    own = randn_tensor(shape, generator=torch.Generator("cpu").manual_seed(a.seed), device=torch.device("cpu"),
                       dtype=tdtype).float()
    m.setdefault("latents", {})["diffusers_own_noise_max_abs_diff"] = float((own - noise).abs().max())
    OWN_NOISE[m["arch"]] = own

    factors = torch.tensor(PREVIEW_FACTORS, dtype=torch.float32)
    bias = torch.tensor(PREVIEW_BIAS, dtype=torch.float32)
    state = {}

    def on_step(p, i, t, kw):
        lat = kw["latents"]
        if a.previews:
            tp = time.perf_counter()
            host = lat.detach().float().cpu()  # synchronises, as the engine's copy to the host does
            rgb = torch.einsum("bkhw,kc->bhwc", host, factors) + bias
            _ = (((rgb + 1.0) * 0.5).clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)
            state["preview"] += time.perf_counter() - tp
            state["stamps"].append(time.perf_counter())
        if state["capture"] and i == a.steps - 1:
            state["final"] = lat.detach().float().cpu().clone()
        return {}

    def one(capture):
        state.update(preview=0.0, stamps=[], capture=capture)
        if dev == "cuda":
            torch.cuda.reset_peak_memory_stats()
        sync(torch, dev)
        t = time.perf_counter()
        state["stamps"].append(t)
        pipe(prompt=a.prompt, negative_prompt=a.negative, num_inference_steps=a.steps, guidance_scale=a.guidance,
             height=a.size, width=a.size, generator=torch.Generator("cpu").manual_seed(a.seed),
             callback_on_step_end=on_step, callback_on_step_end_tensor_inputs=["latents"])
        sync(torch, dev)
        total = time.perf_counter() - t
        st = state["stamps"]
        steps = [st[k + 1] - st[k] for k in range(1, len(st) - 1)]  # intervals between steps (the 1st has encoding)
        rec = {"total": total, "preview": state["preview"] / max(1, a.steps),
               "step": statistics.median(steps) if steps else None}
        if dev == "cuda":
            rec["alloc"] = torch.cuda.max_memory_allocated()
            rec["reserved"] = torch.cuda.max_memory_reserved()
        return rec

    with torch.inference_mode():
        warm = []
        for _ in range(a.warmup):
            warm.append(one(capture=False))
            log("diffusers warm-up: %.3f s" % warm[-1]["total"])
        d["first_image_seconds"] = warm[0]["total"] if warm else None
        runs = []
        for k in range(a.runs):
            last = runs[-1]["total"] if runs else (warm[-1]["total"] if warm else 0)
            if runs and budget.left() < 2 * last + 30:
                m["errors"].append("diffusers: %d of %d runs (budget)" % (len(runs), a.runs))
                break
            runs.append(one(capture=(k == 0)))
            log("diffusers run %d: %.3f s" % (k + 1, runs[-1]["total"]))
    totals = [r["total"] for r in runs]
    d["total_seconds_runs"] = totals
    d["total_seconds_median"] = statistics.median(totals) if totals else None
    stepv = [r["step"] for r in runs if r["step"] is not None]
    d["step_median_seconds"] = statistics.median(stepv) if stepv else None
    d["step_note"] = "median interval between step-end callbacks (with the preview's host copy), or none without "\
                     "previews"
    d["preview_per_step_seconds"] = statistics.median([r["preview"] for r in runs]) if (runs and a.previews) \
        else None
    if dev == "cuda" and runs:
        d["peak_allocated_bytes"] = max(r["alloc"] for r in runs)
        d["peak_reserved_bytes"] = max(r["reserved"] for r in runs)
    final = state.get("final") if runs else None
    del pipe
    gc.collect()
    if dev == "cuda":
        torch.cuda.empty_cache()
    return final


def compare(torch, m, engine_lat_path, noise, diff_final, tol):
    lt = m.setdefault("latents", {})
    from safetensors.torch import load_file
    t = load_file(engine_lat_path)
    e = t["latents"].float()
    en = t.get("initial_noise")
    if en is not None:
        lt["engine_noise_max_abs_diff"] = float((en.float() - noise).abs().max())
        own = OWN_NOISE.get(m["arch"])
        if own is not None:
            # Seed for seed: the engine's draw against the one diffusers used (0 when the dtypes' streams agree).
            lt["engine_vs_diffusers_noise_max_abs_diff"] = float((en.float() - own).abs().max())
    lt["engine_finite"] = bool(torch.isfinite(e).all())
    lt["engine_norm"] = float(e.double().norm())
    if diff_final is None:
        return
    d = diff_final.float()
    lt["diffusers_finite"] = bool(torch.isfinite(d).all())
    lt["diffusers_norm"] = float(d.double().norm())
    if tuple(e.shape) != tuple(d.shape):
        m["errors"].append("latent shapes differ: engine %s, diffusers %s" % (tuple(e.shape), tuple(d.shape)))
        return
    lt["rel_err"] = float((e.double() - d.double()).norm() / d.double().norm())
    lt["max_abs_diff"] = float((e - d).abs().max())
    lt["tolerance"] = tol
    lt["pass"] = bool(lt["engine_finite"] and lt["diffusers_finite"] and lt["rel_err"] < tol)


# ---- main -----------------------------------------------------------------------------------------------------------
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--archs", default="koala-700m,koala-1b,sdxl-base")
    ap.add_argument("--out", default=os.environ.get("OUT") or os.path.join(ROOT, "gpu-check-out"))
    ap.add_argument("--work", default="/tmp/koala-sbs", help="pipelines, engine JSON and latents (not returned)")
    ap.add_argument("--engine-bin", action="append", default=[],
                    help="folder with koala-bench and koala-cli (or its cli/); default build-gpu, build, build-pypi")
    ap.add_argument("--device", default=None, choices=["cuda", "cpu"])
    ap.add_argument("--dtype", default=None, choices=sorted(mrp.DTYPES), help="default fp16 on cuda, fp32 on cpu")
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--guidance", type=float, default=5.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--weights-seed", type=int, default=0, help="make_random_pipeline --seed")
    ap.add_argument("--weights-dtype", default=None, choices=sorted(mrp.DTYPES),
                    help="dtype of the written files (default: --dtype); both sides load them into --dtype")
    ap.add_argument("--prompt", default=PROMPT)
    ap.add_argument("--negative", default=NEGATIVE)
    ap.add_argument("--no-previews", dest="previews", action="store_false")
    ap.add_argument("--budget", type=float, default=0, help="seconds for the whole script (0: no limit)")
    ap.add_argument("--latent-tol", type=float, default=None, help="default 0.02 (fp16/bf16), 1e-3 (fp32)")
    ap.add_argument("--fixture", default=mrp.DEFAULT_FIXTURE)
    a = ap.parse_args(argv)
    budget = Budget(a.budget)

    import torch
    if a.device is None:
        a.device = "cuda" if torch.cuda.is_available() else "cpu"
    if a.dtype is None:
        a.dtype = "fp16" if a.device == "cuda" else "fp32"
    if a.weights_dtype is None:
        a.weights_dtype = a.dtype
    if a.latent_tol is None:
        a.latent_tol = 1e-3 if a.dtype == "fp32" else 0.02
    archs = [x for x in a.archs.split(",") if x]
    report = {"tool": "diffusers_side_by_side", "settings": {
        "archs": archs, "device": a.device, "dtype": a.dtype, "size": a.size, "steps": a.steps,
        "guidance": a.guidance, "runs": a.runs, "warmup": a.warmup, "seed": a.seed, "weights_seed": a.weights_seed,
        "weights_dtype": a.weights_dtype,
        "prompt": a.prompt, "negative": a.negative, "previews": a.previews, "latent_tol": a.latent_tol,
        "budget": a.budget, "scheduler": "euler (the pipeline's EulerDiscreteScheduler config)"},
        "versions": {"torch": torch.__version__, "python": sys.version.split()[0]}, "models": []}
    if a.device == "cuda":
        report["device_name"] = torch.cuda.get_device_name(0)
    dirs = a.engine_bin or [os.path.join(ROOT, b) for b in ("build-gpu", "build", "build-pypi")]
    bins = {"bench": find_bin(dirs, "koala-bench"), "cli": find_bin(dirs, "koala-cli")}
    try:
        import diffusers
        import transformers
        import warnings
        diffusers.utils.logging.disable_progress_bar()
        transformers.utils.logging.disable_progress_bar()
        transformers.utils.logging.set_verbosity_error()
        warnings.filterwarnings("ignore", message=".*torch_dtype.*", category=FutureWarning)
        report["versions"].update(diffusers=diffusers.__version__, transformers=transformers.__version__)
    except Exception as exc:  # noqa: BLE001
        report["error"] = "cannot import diffusers/transformers: %s" % exc
    if not (bins["bench"] and bins["cli"]):
        report["error"] = "no koala-bench/koala-cli in %s" % ", ".join(dirs)
    if "error" in report:
        log(report["error"])
        write_report(a.out, report)
        return 2
    report["engine_bins"] = bins
    log("engine %s, %s; diffusers %s, transformers %s, torch %s; %s %s" % (
        bins["bench"], bins["cli"], report["versions"]["diffusers"], report["versions"]["transformers"],
        torch.__version__, a.device, a.dtype))
    os.makedirs(a.work, exist_ok=True)

    # The float32 CPU draw for the seed (the initial noise of a float32 run; for half runs only a comparison).
    lat_shape = (1, 4, a.size // 8, a.size // 8)
    noise = torch.randn(lat_shape, generator=torch.Generator("cpu").manual_seed(a.seed), dtype=torch.float32)

    needs = NEEDS_CUDA if a.device == "cuda" else NEEDS_CPU
    # Text encoders and VAE do not depend on the architecture: share those of a pipeline written before (a rerun on a
    # warm machine) or of the first one written now.
    share = None
    for arch in ("koala-700m", "koala-1b", "sdxl-base"):
        cand = os.path.join(a.work, "%s-%s-w%d" % (arch, a.weights_dtype, a.weights_seed))
        if os.path.exists(os.path.join(cand, "random_pipeline.json")) and \
                not os.path.islink(os.path.join(cand, "text_encoder")):
            share = cand
            break
    rc = 0
    for arch in archs:
        m = {"arch": arch, "status": "running", "errors": []}
        report["models"].append(m)
        left = budget.left()
        if left < needs.get(arch, 60):
            m["status"] = "skipped (%.0f s of the budget left, about %d s needed)" % (left, needs.get(arch, 60))
            log(arch, m["status"])
            write_report(a.out, report)
            continue
        try:
            pdir = os.path.join(a.work, "%s-%s-w%d" % (arch, a.weights_dtype, a.weights_seed))
            info_path = os.path.join(pdir, "random_pipeline.json")
            if os.path.exists(info_path):
                with open(info_path) as fh:
                    m["pipeline"] = dict(json.load(fh), reused=True, seconds=0.0, bytes=0)
                log("reusing", pdir)
            else:
                m["pipeline"] = mrp.write_pipeline(arch, pdir, a.weights_dtype, a.weights_seed, None,
                                                   share if arch != "tiny" else None, a.fixture,
                                                   log=lambda s: log(s))
            if arch != "tiny" and share is None:
                share = pdir
            write_report(a.out, report)
            lat = run_engine(a, bins, pdir, a.work, arch, budget, m)
            write_report(a.out, report)
            final = None
            if budget.left() > 15:
                final = run_diffusers(a, torch, pdir, budget, m, noise)
            else:
                m["errors"].append("diffusers skipped (budget)")
            if lat:
                compare(torch, m, lat, noise, final, a.latent_tol)
            else:
                m["errors"].append("no engine latents")
            lt = m.get("latents", {})
            ok = lt.get("pass", False) and not m["errors"]
            m["status"] = "ok" if ok else "FAILED"
            log("%s: engine %s, diffusers %s, latents rel err %s (tol %g), finite %s/%s" % (
                arch, fmt_s((m.get("engine") or {}).get("total_seconds_median")),
                fmt_s((m.get("diffusers") or {}).get("total_seconds_median")), lt.get("rel_err"), a.latent_tol,
                lt.get("engine_finite"), lt.get("diffusers_finite")))
        except Exception as exc:  # noqa: BLE001 - one model's failure must not lose the others' numbers
            import traceback
            traceback.print_exc()
            m["errors"].append("%s: %s" % (type(exc).__name__, exc))
            m["status"] = "FAILED"
            if a.device == "cuda":
                gc.collect()
                torch.cuda.empty_cache()
        if m["status"] != "ok":
            rc = 1
        print(write_report(a.out, report), flush=True)
    log("done in %.0f s" % (time.time() - budget.t0))
    return rc


if __name__ == "__main__":
    sys.exit(main())
