"""Tiny KOALA-shaped SDXL pipelines with seeded random weights, and a writer for reference data.

This is the library side of the reference harness (see README.md in this folder). Everything runs on the CPU in
float32 and is deterministic for a given seed.

    from tiny_pipeline import build_tiny_pipeline, save_tiny_pipeline, save_reference

    pipe = build_tiny_pipeline("700m", seed=0)          # or "1b"; overrides: unet={"...": ...}, vae=..., ...
    save_tiny_pipeline(pipe, "out/tiny-koala-700m")     # diffusers folder layout, safetensors
    save_reference("out/tiny-koala-700m", {"unet.t999.out": out}, params={"runs": [...]})

The configs below mirror tests/data/fixtures/tiny-koala-{700m,1b}/*/config.json (diffusers 0.40.0.dev0 /
transformers 5.17.0 wrote those); the only difference between the two shapes is the UNet's mid block. Keys not
listed take the installed library's defaults, exactly as when diffusers loads a config.json that lacks them.
"""

from __future__ import annotations

import copy
import json
import os
import platform
import shutil
import sys
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = REPO_ROOT / "tests" / "data" / "fixtures"
# The real 49,408-token CLIP vocabulary in the format the released KOALA repos ship (vocab.json + merges.txt).
DEFAULT_TOKENIZER_SOURCE = FIXTURES / "tiny-koala-700m"

# --- configs (mirrors of the committed fixtures) -------------------------------------------------------------------

UNET_700M = {
    "act_fn": "silu",
    "addition_embed_type": "text_time",
    "addition_embed_type_num_heads": 64,
    "addition_time_embed_dim": 8,
    "attention_head_dim": [1, 1, 2],
    "block_out_channels": [32, 32, 64],
    "center_input_sample": False,
    "class_embed_type": None,
    "conv_in_kernel": 3,
    "conv_out_kernel": 3,
    "cross_attention_dim": 56,  # 24 (text_encoder) + 32 (text_encoder_2)
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "downsample_padding": 1,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 4,
    "layers_per_block": 1,
    "mid_block_scale_factor": 1,
    "mid_block_type": None,  # KOALA-700M: no mid block
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "only_cross_attention": False,
    "out_channels": 4,
    # 40 (pooled text_encoder_2 projection) + 6 time ids * addition_time_embed_dim 8
    "projection_class_embeddings_input_dim": 88,
    "resnet_time_scale_shift": "default",
    "sample_size": 8,
    "time_embedding_type": "positional",
    "transformer_layers_per_block": [1, 1, 2],
    "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    "upcast_attention": False,
    "use_linear_projection": True,
}

UNET_1B = dict(UNET_700M, mid_block_type="UNetMidBlock2DCrossAttn")  # KOALA-1B: a cross-attention mid block

VAE = {
    "act_fn": "silu",
    "block_out_channels": [32, 32, 64, 64],  # 4 levels: scale factor 8
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "force_upcast": True,
    "in_channels": 3,
    "latent_channels": 4,
    "latents_mean": None,
    "latents_std": None,
    "layers_per_block": 1,
    "mid_block_add_attention": True,
    "norm_num_groups": 32,
    "out_channels": 3,
    "sample_size": 64,
    "scaling_factor": 0.13025,
    "shift_factor": None,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "use_post_quant_conv": True,
    "use_quant_conv": True,
}

TEXT_ENCODER = {  # CLIPTextModel
    "attention_dropout": 0.0,
    "bos_token_id": 0,
    "eos_token_id": 2,
    "hidden_act": "quick_gelu",
    "hidden_size": 24,
    "initializer_factor": 1.0,
    "initializer_range": 0.02,
    "intermediate_size": 48,
    "layer_norm_eps": 1e-05,
    "max_position_embeddings": 77,
    "num_attention_heads": 4,
    "num_hidden_layers": 3,
    "pad_token_id": 1,
    "projection_dim": 24,
    "vocab_size": 49408,
}

TEXT_ENCODER_2 = dict(  # CLIPTextModelWithProjection
    TEXT_ENCODER, hidden_act="gelu", hidden_size=32, intermediate_size=64, projection_dim=40
)

SCHEDULER = {  # EulerDiscreteScheduler, the config the KOALA repos ship
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "final_sigmas_type": "zero",
    "interpolation_type": "linear",
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "rescale_betas_zero_snr": False,
    "sigma_max": None,
    "sigma_min": None,
    "steps_offset": 1,
    "timestep_spacing": "leading",
    "timestep_type": "discrete",
    "trained_betas": None,
    "use_beta_sigmas": False,
    "use_exponential_sigmas": False,
    "use_karras_sigmas": False,
}

SHAPES = {
    "700m": {"unet": UNET_700M, "vae": VAE, "text_encoder": TEXT_ENCODER, "text_encoder_2": TEXT_ENCODER_2,
             "scheduler": SCHEDULER},
    "1b": {"unet": UNET_1B, "vae": VAE, "text_encoder": TEXT_ENCODER, "text_encoder_2": TEXT_ENCODER_2,
           "scheduler": SCHEDULER},
}


def configs(shape: str = "700m", **overrides: dict) -> dict:
    """The component configs of a KOALA shape ("700m" or "1b"), each updated with overrides[component]."""
    out = copy.deepcopy(SHAPES[shape])
    for name, upd in overrides.items():
        if name not in out:
            raise KeyError(f"unknown component {name!r} (have {sorted(out)})")
        out[name].update(upd or {})
    return out


# --- building and saving -------------------------------------------------------------------------------------------

def _perturb_(module: torch.nn.Module, std: float, gen: torch.Generator) -> None:
    """Adds N(0, std^2) to every parameter, so that no norm is the identity and no bias or zero-initialised layer
    is trivially zero (a test against such a pipeline then exercises every weight)."""
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * std)


def build_tiny_pipeline(shape: str = "700m", seed: int = 0, tokenizer_source: str | os.PathLike | None = None,
                        perturb_std: float = 0.0, force_zeros_for_empty_prompt: bool = True, **overrides: dict):
    """A StableDiffusionXLPipeline of the given KOALA shape with seeded random weights (CPU, float32).

    Each component is initialised by its library's own init after torch.manual_seed(seed + i) (i: the component's
    index, so one component's config change leaves the others' weights alone); perturb_std > 0 then adds seeded
    Gaussian noise to every parameter. Tokenizers are loaded from tokenizer_source/tokenizer{,_2} (default: the
    committed tiny-koala-700m fixture, the real CLIP vocabulary). overrides: per-component config updates, e.g.
    unet={"layers_per_block": 2}, scheduler={"timestep_spacing": "trailing"}.
    """
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    cfg = configs(shape, **overrides)
    src = Path(tokenizer_source or DEFAULT_TOKENIZER_SOURCE)

    def seeded(i, make):
        torch.manual_seed(seed + i)
        m = make().to(torch.float32).eval()
        if perturb_std > 0:
            _perturb_(m, perturb_std, torch.Generator("cpu").manual_seed(seed + 1000 + i))
        return m

    unet = seeded(0, lambda: UNet2DConditionModel(**cfg["unet"]))
    vae = seeded(1, lambda: AutoencoderKL(**cfg["vae"]))
    te1 = seeded(2, lambda: CLIPTextModel(CLIPTextConfig(**cfg["text_encoder"])))
    te2 = seeded(3, lambda: CLIPTextModelWithProjection(CLIPTextConfig(**cfg["text_encoder_2"])))
    scheduler = EulerDiscreteScheduler.from_config(cfg["scheduler"])
    pipe = StableDiffusionXLPipeline(
        vae=vae, text_encoder=te1, text_encoder_2=te2,
        tokenizer=CLIPTokenizer.from_pretrained(src / "tokenizer"),
        tokenizer_2=CLIPTokenizer.from_pretrained(src / "tokenizer_2"),
        unet=unet, scheduler=scheduler, force_zeros_for_empty_prompt=force_zeros_for_empty_prompt,
    )
    pipe._tiny_tokenizer_source = src  # remembered for save_tiny_pipeline(copy_tokenizers=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def save_tiny_pipeline(pipe, out_dir: str | os.PathLike, text_encoders_fp16: bool = True,
                       copy_tokenizers: bool = True) -> Path:
    """Saves pipe in the diffusers folder layout (model_index.json + one folder per component, safetensors).

    text_encoders_fp16: store both text encoders as float16 (as the KOALA repos' .fp16 variants are); the UNet and
    VAE stay float32. The text encoders must then be *loaded* into float32 models (torch_dtype=torch.float32), and
    references must be computed from the reloaded pipeline, not from `pipe` (its float32 weights were rounded).
    copy_tokenizers: copy the tokenizer folders byte for byte from the source (vocab.json + merges.txt, the format
    the released KOALA repos ship) instead of what this transformers' save_pretrained writes (tokenizer.json).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(out, safe_serialization=True)
    if text_encoders_fp16:
        for name in ("text_encoder", "text_encoder_2"):
            m = copy.deepcopy(getattr(pipe, name)).to(torch.float16)
            shutil.rmtree(out / name)
            m.save_pretrained(out / name, safe_serialization=True)
    if copy_tokenizers and getattr(pipe, "_tiny_tokenizer_source", None):
        for name in ("tokenizer", "tokenizer_2"):
            shutil.rmtree(out / name)
            shutil.copytree(Path(pipe._tiny_tokenizer_source) / name, out / name)
    return out


def quiet_libraries() -> None:
    """No progress bars or info chatter from diffusers/transformers (errors still print)."""
    import warnings

    import diffusers
    import transformers

    diffusers.utils.logging.set_verbosity_error()
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    # diffusers 0.42 renames from_pretrained's torch_dtype to dtype (deprecated, still honoured); we keep the
    # spelling the references were made with, which 0.40 also understands.
    warnings.filterwarnings("ignore", message=r".*torch_dtype.*deprecated", category=FutureWarning)


def load_pipeline(path: str | os.PathLike):
    """Loads a saved (tiny) pipeline the way the references are computed: CPU, every component float32 (the fp16
    text encoder weights on disk are upcast on load)."""
    from diffusers import StableDiffusionXLPipeline

    pipe = StableDiffusionXLPipeline.from_pretrained(str(path), torch_dtype=torch.float32)
    pipe.to("cpu")
    pipe.set_progress_bar_config(disable=True)
    return pipe


# --- reference data --------------------------------------------------------------------------------------------------

def versions() -> dict:
    """The library versions that computed a reference (recorded in reference.json)."""
    import importlib.metadata as md

    out = {"python": sys.version.split()[0], "platform": platform.platform(), "torch": torch.__version__}
    for name in ("diffusers", "transformers", "safetensors", "peft", "tokenizers", "numpy"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    out["device"] = "cpu"
    out["dtype"] = "float32"
    return out


def save_reference(out_dir: str | os.PathLike, tensors: dict, params: dict | None = None,
                   name: str = "reference") -> tuple[Path, Path]:
    """Writes out_dir/<name>.safetensors (tensors, contiguous on the CPU; float64 kept, other floats float32) and
    out_dir/<name>.json (versions() plus params, e.g. {"runs": [...], "prompts": [...]})."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    flat = {}
    for k, v in tensors.items():
        t = torch.as_tensor(v).detach().cpu()
        if t.is_floating_point() and t.dtype != torch.float64:
            t = t.to(torch.float32)
        flat[k] = t.contiguous()
    st = out / f"{name}.safetensors"
    js = out / f"{name}.json"
    save_file(flat, str(st))
    meta = versions()
    meta.update(params or {})
    js.write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n")
    return st, js


# --- comparison helpers (shared with check_fixtures.py) -------------------------------------------------------------

def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """||a - b|| / ||b|| in float64 (b: the reference)."""
    a = a.detach().to(torch.float64)
    b = b.detach().to(torch.float64)
    if a.shape != b.shape:
        raise ValueError(f"shape {tuple(a.shape)} != reference {tuple(b.shape)}")
    nb = b.norm().item()
    return (a - b).norm().item() / nb if nb > 0 else (a - b).norm().item()


def max_abs(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.detach().to(torch.float64) - b.detach().to(torch.float64)).abs().max().item()


# --- schedulers by the names reference.json uses --------------------------------------------------------------------

def make_scheduler(name: str, config):
    """The scheduler the fixtures call `name`, built from a pipeline's scheduler config exactly as
    tests/data/fixtures/README.md describes (Scheduler.from_config(config, ...); missing keys: class defaults)."""
    from diffusers import (DDIMScheduler, DPMSolverMultistepScheduler, EulerAncestralDiscreteScheduler,
                           EulerDiscreteScheduler)

    table = {
        "euler": (EulerDiscreteScheduler, {}),
        "euler_trailing": (EulerDiscreteScheduler, {"timestep_spacing": "trailing"}),
        "euler_karras": (EulerDiscreteScheduler, {"use_karras_sigmas": True}),
        "euler_a": (EulerAncestralDiscreteScheduler, {}),
        "dpmpp_2m": (DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver++", "solver_order": 2}),
        "dpmpp_2m_karras": (DPMSolverMultistepScheduler,
                            {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": True}),
        "ddim": (DDIMScheduler, {}),
    }
    if name not in table:
        raise KeyError(f"unknown scheduler name {name!r} (have {sorted(table)})")
    cls, kw = table[name]
    return cls.from_config(config, **kw)


def main(argv=None):
    import argparse

    ap = argparse.ArgumentParser(description="Build a tiny KOALA-shaped pipeline with seeded random weights and save "
                                             "it in the diffusers folder layout.")
    ap.add_argument("out", help="output folder")
    ap.add_argument("--shape", choices=sorted(SHAPES), default="700m")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--perturb-std", type=float, default=0.0)
    ap.add_argument("--override", action="append", default=[], metavar="COMPONENT.KEY=JSON",
                    help='config override, e.g. unet.layers_per_block=2 or scheduler.timestep_spacing=\'"trailing"\'')
    args = ap.parse_args(argv)
    overrides: dict = {}
    for o in args.override:
        lhs, val = o.split("=", 1)
        comp, key = lhs.split(".", 1)
        overrides.setdefault(comp, {})[key] = json.loads(val)
    quiet_libraries()
    pipe = build_tiny_pipeline(args.shape, seed=args.seed, perturb_std=args.perturb_std, **overrides)
    print(save_tiny_pipeline(pipe, args.out))


if __name__ == "__main__":
    main()
