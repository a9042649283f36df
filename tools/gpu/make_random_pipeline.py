#!/usr/bin/env python3
"""Write a random-weight SDXL-family pipeline in the diffusers layout, for the engine and diffusers to load alike.

    make_random_pipeline.py ARCH OUT_DIR [--dtype fp16|bf16|fp32] [--seed N] [--device cuda|cpu]
                            [--share-from DIR] [--fixture DIR]

ARCH: koala-700m | koala-1b | sdxl-base (the full-size architectures: the UNet configs of
engine/src/pipeline/random_model.cpp's randomUnetConfigJson, i.e. SDXL-base's with the KOALA keys of
docs/sdxl-pipeline.md section 9; CLIP ViT-L/14 and OpenCLIP ViT-bigG/14 text towers; the SDXL VAE), or `tiny` (the
configs of tests/data/fixtures/tiny-koala-700m, for checking this tool and the comparison on the CPU).

Weights are drawn like the engine's io::WeightStore::random: biases zero, 1-D norm weights one, everything else
normal(0, 0.02) drawn in float32 (then cast to --dtype), one generator per tensor seeded from (component seed, tensor
name), so a tensor does not depend on the order the models list them in. The engine's own --random-config weights
differ (another RNG stream); what matters here is that the engine and diffusers both load THESE files.

The tokenizer folders, the scheduler config and model_index.json are copied from the fixture (the real CLIP
vocabulary, the shipped EulerDiscreteScheduler config). Models are built on torch's meta device (no init, no
memory), the tensors drawn on --device (default: cuda when available) and saved with safetensors as one file per
component. --share-from DIR symlinks text_encoder, text_encoder_2 and vae from a pipeline written before with the
same --seed and --dtype (those components do not depend on ARCH), which saves writing about 1.9 GB again.
"""
import argparse
import json
import os
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DEFAULT_FIXTURE = os.path.join(ROOT, "tests", "data", "fixtures", "tiny-koala-700m")

ARCHS = ("koala-700m", "koala-1b", "sdxl-base", "tiny")

# docs/sdxl-pipeline.md section 9 (and random_model.cpp's archTable): the keys that differ from SDXL-base, and the
# model cards' UNet parameter counts.
ARCH_KEYS = {
    "koala-700m": dict(layers_per_block=1, transformer_layers_per_block=[1, 2, 5], mid_block=False,
                       card=782822724),
    "koala-1b": dict(layers_per_block=1, transformer_layers_per_block=[1, 2, 6], mid_block=True, card=1161184324),
    "sdxl-base": dict(layers_per_block=2, transformer_layers_per_block=[1, 2, 10], mid_block=True, card=2567463684),
}

DTYPES = {"fp16": "float16", "bf16": "bfloat16", "fp32": "float32"}


def unet_config(arch):
    """randomUnetConfigJson(arch) of engine/src/pipeline/random_model.cpp, key for key."""
    a = ARCH_KEYS[arch]
    return {
        "act_fn": "silu",
        "addition_embed_type": "text_time",
        "addition_time_embed_dim": 256,
        "attention_head_dim": [5, 10, 20],
        "block_out_channels": [320, 640, 1280],
        "center_input_sample": False,
        "class_embed_type": None,
        "conv_in_kernel": 3,
        "conv_out_kernel": 3,
        "cross_attention_dim": 2048,
        "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
        "downsample_padding": 1,
        "flip_sin_to_cos": True,
        "freq_shift": 0,
        "in_channels": 4,
        "layers_per_block": a["layers_per_block"],
        "mid_block_scale_factor": 1,
        "mid_block_type": "UNetMidBlock2DCrossAttn" if a["mid_block"] else None,
        "norm_eps": 1e-5,
        "norm_num_groups": 32,
        "num_attention_heads": None,
        "out_channels": 4,
        "projection_class_embeddings_input_dim": 2816,
        "resnet_time_scale_shift": "default",
        "sample_size": 128,
        "time_cond_proj_dim": None,
        "time_embedding_type": "positional",
        "transformer_layers_per_block": a["transformer_layers_per_block"],
        "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
        "upcast_attention": None,
        "use_linear_projection": True,
    }


def clip_config(which):
    """random_model.cpp's clipLConfig / clipBigGConfig, as transformers' CLIPTextConfig keys."""
    common = dict(vocab_size=49408, max_position_embeddings=77, layer_norm_eps=1e-5, bos_token_id=0, eos_token_id=2,
                  pad_token_id=1, attention_dropout=0.0, initializer_range=0.02, initializer_factor=1.0)
    if which == "L":  # CLIP ViT-L/14 text tower (SDXL text_encoder)
        return dict(common, hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                    projection_dim=768, hidden_act="quick_gelu")
    # OpenCLIP ViT-bigG/14 text tower with projection (SDXL text_encoder_2)
    return dict(common, hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=20,
                projection_dim=1280, hidden_act="gelu")


def vae_config():
    """random_model.cpp's sdxlVaeConfig: the SDXL VAE (force_upcast: diffusers decodes it in fp32)."""
    return {
        "act_fn": "silu",
        "block_out_channels": [128, 256, 512, 512],
        "down_block_types": ["DownEncoderBlock2D"] * 4,
        "force_upcast": True,
        "in_channels": 3,
        "latent_channels": 4,
        "layers_per_block": 2,
        "mid_block_add_attention": True,
        "norm_num_groups": 32,
        "out_channels": 3,
        "sample_size": 1024,
        "scaling_factor": 0.13025,
        "up_block_types": ["UpDecoderBlock2D"] * 4,
        "use_post_quant_conv": True,
        "use_quant_conv": True,
    }


def read_json(path):
    with open(path) as fh:
        return json.load(fh)


def strip_meta(cfg):
    return {k: v for k, v in cfg.items() if not k.startswith("_")}


def fnv1a(name):
    """The engine's nameHash (FNV-1a, 64 bit)."""
    h = 1469598103934665603
    for c in name.encode():
        h ^= c
        h = (h * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h


def random_state_dict(module, seed, dtype, device):
    """The engine's WeightStore::random rule over a meta-device module's parameters, drawn on `device`."""
    import torch
    out = {}
    count = 0
    for name, p in module.state_dict().items():
        shape = tuple(p.shape)
        count += p.numel()
        if name.endswith("bias") or len(shape) == 0:
            t = torch.zeros(shape, dtype=dtype, device=device)
        elif len(shape) == 1 and "norm" in name:
            t = torch.ones(shape, dtype=dtype, device=device)
        else:
            g = torch.Generator(device=device)
            g.manual_seed((seed ^ fnv1a(name)) & 0x7FFFFFFFFFFFFFFF)
            t = torch.empty(shape, dtype=torch.float32, device=device).normal_(0.0, 0.02, generator=g).to(dtype)
        out[name] = t.to("cpu", non_blocking=False).contiguous()
    return out, count


def save_component(tensors, path):
    from safetensors.torch import save_file
    save_file(tensors, path, metadata={"format": "pt"})


def write_pipeline(arch, out_dir, dtype="fp16", seed=0, device=None, share_from=None, fixture=DEFAULT_FIXTURE,
                   log=print):
    """Writes the pipeline; returns {component: parameters, "seconds": ..., "bytes": ...}."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    if arch not in ARCHS:
        raise SystemExit("make_random_pipeline: unknown ARCH %r (use %s)" % (arch, ", ".join(ARCHS)))
    if dtype not in DTYPES:
        raise SystemExit("make_random_pipeline: --dtype: use fp16, bf16 or fp32")
    tdtype = getattr(torch, DTYPES[dtype])
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    for sub in ("tokenizer", "tokenizer_2", "scheduler"):
        if not os.path.isdir(os.path.join(fixture, sub)):
            raise SystemExit("make_random_pipeline: %s has no %s/ (pass --fixture)" % (fixture, sub))
    t0 = time.time()
    os.makedirs(out_dir, exist_ok=True)
    info = {"arch": arch, "dtype": dtype, "seed": seed, "device": device}

    # Configs. tiny: the fixture's own; full size: the real architectures'.
    if arch == "tiny":
        ucfg = strip_meta(read_json(os.path.join(fixture, "unet", "config.json")))
        vcfg = strip_meta(read_json(os.path.join(fixture, "vae", "config.json")))
        c1 = {k: v for k, v in read_json(os.path.join(fixture, "text_encoder", "config.json")).items()
              if k not in ("architectures", "dtype", "torch_dtype", "transformers_version", "model_type")}
        c2 = {k: v for k, v in read_json(os.path.join(fixture, "text_encoder_2", "config.json")).items()
              if k not in ("architectures", "dtype", "torch_dtype", "transformers_version", "model_type")}
    else:
        ucfg, vcfg, c1, c2 = unet_config(arch), vae_config(), clip_config("L"), clip_config("G")

    # Component seeds as the engine's buildRandomModel: unet seed*16+1, encoders +2/+3, vae +4.
    comps = [
        ("unet", "diffusion_pytorch_model.safetensors", seed * 16 + 1),
        ("text_encoder", "model.safetensors", seed * 16 + 2),
        ("text_encoder_2", "model.safetensors", seed * 16 + 3),
        ("vae", "diffusion_pytorch_model.safetensors", seed * 16 + 4),
    ]
    total_bytes = 0
    for comp, fname, cseed in comps:
        cdir = os.path.join(out_dir, comp)
        if share_from and comp != "unet":
            src = os.path.abspath(os.path.join(share_from, comp))
            if not os.path.isfile(os.path.join(src, fname)):
                raise SystemExit("make_random_pipeline: --share-from %s has no %s/%s" % (share_from, comp, fname))
            if os.path.islink(cdir) or os.path.isfile(cdir):
                os.remove(cdir)
            elif os.path.isdir(cdir):
                shutil.rmtree(cdir)
            os.symlink(src, cdir)
            info[comp] = "shared from " + src
            continue
        os.makedirs(cdir, exist_ok=True)
        tc = time.time()
        with torch.device("meta"):
            if comp == "unet":
                model = UNet2DConditionModel.from_config(ucfg)
            elif comp == "vae":
                model = AutoencoderKL.from_config(vcfg)
            else:
                tcfg = CLIPTextConfig(**(c1 if comp == "text_encoder" else c2))
                model = (CLIPTextModel if comp == "text_encoder" else CLIPTextModelWithProjection)(tcfg)
        tensors, n = random_state_dict(model, cseed, tdtype, device)
        if comp in ("unet", "vae"):
            model.save_config(cdir)
        else:
            cfg = model.config
            cfg.architectures = [type(model).__name__]
            cfg.dtype = DTYPES[dtype]
            cfg.save_pretrained(cdir)
        path = os.path.join(cdir, fname)
        save_component(tensors, path)
        size = os.path.getsize(path)
        total_bytes += size
        info[comp] = n
        log("make_random_pipeline: %s/%s: %s parameters, %.2f GB, %.1f s" % (
            os.path.basename(out_dir.rstrip("/")), comp, format(n, ","), size / 1e9, time.time() - tc))
        del tensors, model

    for sub in ("tokenizer", "tokenizer_2", "scheduler"):
        dst = os.path.join(out_dir, sub)
        if os.path.islink(dst):
            os.remove(dst)
        shutil.copytree(os.path.join(fixture, sub), dst, dirs_exist_ok=True)
    shutil.copy(os.path.join(fixture, "model_index.json"), os.path.join(out_dir, "model_index.json"))
    card = ARCH_KEYS.get(arch, {}).get("card")
    if card and info["unet"] != card:
        raise SystemExit("make_random_pipeline: %s UNet has %d parameters, the model card says %d" % (
            arch, info["unet"], card))
    info["unet_card_match"] = bool(card) and info["unet"] == card
    info["seconds"] = time.time() - t0
    info["bytes"] = total_bytes
    with open(os.path.join(out_dir, "random_pipeline.json"), "w") as fh:
        json.dump(info, fh, indent=2)
    log("make_random_pipeline: %s %s written to %s in %.1f s (%.2f GB new)" % (
        arch, dtype, out_dir, info["seconds"], total_bytes / 1e9))
    return info


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("arch", choices=ARCHS)
    ap.add_argument("out_dir")
    ap.add_argument("--dtype", default="fp16", choices=sorted(DTYPES))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default=None, help="where the weights are drawn (default: cuda when available)")
    ap.add_argument("--share-from", default=None, help="symlink text encoders and VAE from this pipeline folder")
    ap.add_argument("--fixture", default=DEFAULT_FIXTURE, help="tokenizers, scheduler and model_index.json source")
    a = ap.parse_args(argv)
    write_pipeline(a.arch, a.out_dir, a.dtype, a.seed, a.device, a.share_from, a.fixture)
    return 0


if __name__ == "__main__":
    sys.exit(main())
