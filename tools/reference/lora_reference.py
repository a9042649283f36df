#!/usr/bin/env python
"""LoRA reference data: a seeded random LoRA in diffusers/PEFT and kohya form, and what diffusers computes with it.

    ~/.cache/koala-studio/torch-2.11/bin/python tools/reference/lora_reference.py            # (re)writes the folder
    ~/.cache/koala-studio/torch-2.11/bin/python tools/reference/lora_reference.py --check    # regenerate + compare

Writes tests/data/fixtures/lora/ (see PROVENANCE.md there and reference.json for every parameter):
  peft_lora.safetensors                   diffusers/PEFT format (StableDiffusionXLPipeline.save_lora_weights), alpha
                                          in the safetensors metadata `lora_adapter_metadata` (`<component>.lora_alpha`)
  kohya_lora.safetensors                  the same LoRA through diffusers' convert_state_dict_to_kohya, `.alpha` = 2
  kohya_lora_te1_text_model.safetensors   the same kohya file with te1 keys spelled lora_te1_text_model_encoder_*
                                          (what real kohya/A1111 files use; transformers 5's CLIPTextModel has no
                                          `text_model.` level, so the converter writes lora_te1_encoder_*)
  reference.safetensors                   float32 references without LoRA (base.*) and at LoRA weight 1.0 and 0.5
  reference.json                          versions, parameters, key counts, measured effects, cross-checks
  malformed/*.safetensors                 bad inputs the engine must refuse (listed in reference.json)

Everything is CPU float32 and deterministic: a second run writes byte-identical files. --check regenerates into a
temporary folder and compares with the committed files (bytes first; reference tensors by the tolerances of
tests/data/fixtures/README.md if the bytes differ). Nothing is ever written by hand: every reference is what
diffusers computes on the tiny pipeline tests/data/fixtures/tiny-koala-700m.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
import traceback
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tiny_pipeline import (FIXTURES, REPO_ROOT, load_pipeline, make_scheduler, quiet_libraries, rel_err,  # noqa: E402
                           versions)

PIPELINE = "tiny-koala-700m"
OUT = FIXTURES / "lora"

RANK = 4
ALPHA = 2                 # alpha != rank: PEFT scale alpha/rank = 0.5
LORA_B_FACTOR = 1.0       # lora_B (up) multiplied by this after the random init (1.0: the init is strong enough)
SEEDS = {"unet": 1000, "text_encoder": 1001, "text_encoder_2": 1002}   # torch.manual_seed before each injection
UNET_TARGETS = ["to_q", "to_k", "to_v", "to_out.0", "ff.net.0.proj", "ff.net.2", "proj_in", "proj_out",
                "conv1", "conv2", "conv_shortcut"]
TE_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"]
ADAPTER = "koala_ref"
WEIGHTS = (1.0, 0.5)

PROMPT = "a photo of a koala astronaut, highly detailed"
NEGATIVE = "blurry, low quality"
RUN = {"sched": "euler", "steps": 4, "guidance": 5.0, "seed": 42, "h": 64, "w": 64, "prompt": PROMPT,
       "neg": NEGATIVE}
UNET_T = 500

# Modules whose weights after fuse_lora are stored, so the engine can check its merge math directly.
# (reference key prefix, pipeline component, module path inside the component)
MERGE_MODULES = [
    ("unet", "unet", "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k"),   # Linear [32, 56]
    ("unet", "unet", "down_blocks.0.resnets.0.conv1"),                                 # Conv2d 3x3 [32, 32, 3, 3]
    ("unet", "unet", "down_blocks.2.resnets.0.conv_shortcut"),                         # Conv2d 1x1 [64, 32, 1, 1]
    ("te1", "text_encoder", "encoder.layers.0.self_attn.q_proj"),                      # Linear [24, 24]
    ("te2", "text_encoder_2", "text_model.encoder.layers.1.mlp.fc1"),                 # Linear [64, 32]
]

TOL_MODEL = 1e-4
TOL_FINAL = 1e-3

FILES = ["peft_lora.safetensors", "kohya_lora.safetensors", "kohya_lora_te1_text_model.safetensors",
         "reference.safetensors", "reference.json"]


def wkey(w: float) -> str:
    return f"w{w:.1f}"


# --- the LoRA -------------------------------------------------------------------------------------------------------

def lora_config(targets):
    from peft import LoraConfig

    return LoraConfig(r=RANK, lora_alpha=ALPHA, init_lora_weights=False, target_modules=list(targets))


def config_metadata(cfg) -> dict:
    """LoraConfig.to_dict() as diffusers' training scripts pass it to save_lora_weights(*_lora_adapter_metadata=),
    with sets as sorted lists (save_lora_weights turns sets into lists in hash order, which would make the file
    depend on PYTHONHASHSEED)."""
    out = {}
    for k, v in cfg.to_dict().items():
        if isinstance(v, set):
            v = sorted(v)
        elif hasattr(v, "value") and isinstance(v, str):  # PeftType enum: its string value
            v = v.value
        out[k] = v
    return out


def make_lora(out: Path) -> dict:
    """Injects seeded random LoRA adapters (PEFT, init_lora_weights=False) into the three models of a freshly loaded
    pipeline, and saves them with StableDiffusionXLPipeline.save_lora_weights as out/peft_lora.safetensors."""
    from diffusers import StableDiffusionXLPipeline
    from peft import inject_adapter_in_model
    from peft.utils import get_peft_model_state_dict

    pipe = load_pipeline(FIXTURES / PIPELINE)
    sds, meta = {}, {}
    for comp, targets in (("unet", UNET_TARGETS), ("text_encoder", TE_TARGETS), ("text_encoder_2", TE_TARGETS)):
        model = getattr(pipe, comp)
        cfg = lora_config(targets)
        torch.manual_seed(SEEDS[comp])
        if comp == "unet":
            model.add_adapter(cfg, adapter_name=ADAPTER)   # diffusers' PeftAdapterMixin.add_adapter
        else:
            # transformers 5.24's PreTrainedModel.add_adapter refuses peft < 0.22 (the pin is 0.21.2); it is a thin
            # wrapper of this same PEFT call.
            inject_adapter_in_model(cfg, model, adapter_name=ADAPTER)
        sd = get_peft_model_state_dict(model, adapter_name=ADAPTER)
        sd = {k: (v * LORA_B_FACTOR if ".lora_B." in k else v).detach().to(torch.float32).contiguous()
              for k, v in sd.items()}
        sds[comp] = sd
        meta[comp] = config_metadata(cfg)
    StableDiffusionXLPipeline.save_lora_weights(
        str(out), unet_lora_layers=sds["unet"], text_encoder_lora_layers=sds["text_encoder"],
        text_encoder_2_lora_layers=sds["text_encoder_2"], weight_name="peft_lora.safetensors",
        unet_lora_adapter_metadata=meta["unet"], text_encoder_lora_adapter_metadata=meta["text_encoder"],
        text_encoder_2_lora_adapter_metadata=meta["text_encoder_2"])
    sort_header_metadata(out / "peft_lora.safetensors")
    return meta


def sort_header_metadata(path: Path) -> None:
    """safetensors 0.8.0 writes the entries of the header's __metadata__ ("format", "lora_adapter_metadata") in a
    random order (a Rust HashMap), so two runs give different bytes. Put them in sorted order, in place. Only the
    order changes (same length, same tensors); the re-encoding is first checked to reproduce the original bytes."""
    blob = path.read_bytes()
    n = int.from_bytes(blob[:8], "little")
    header = blob[8:8 + n].decode("utf-8")
    tag = '"__metadata__":'
    start = header.index(tag) + len(tag)
    pairs, end = json.JSONDecoder(object_pairs_hook=list).raw_decode(header, start)

    def enc(items):
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + json.dumps(v, ensure_ascii=False)
                              for k, v in items) + "}"

    if enc(pairs) != header[start:end]:
        raise RuntimeError(f"{path}: cannot reproduce safetensors' encoding of __metadata__; not reordering")
    new = (header[:start] + enc(sorted(pairs)) + header[end:]).encode("utf-8")
    assert len(new) == n
    path.write_bytes(blob[:8] + new + blob[8 + n:])


def make_kohya(out: Path) -> dict:
    """kohya_lora.safetensors: diffusers' convert_state_dict_to_kohya on the PEFT file's tensors. The converter
    writes `.alpha` = rank (int64, it cannot see lora_alpha, which lives in the config); those are replaced by the
    LoRA's real alpha as a float32 scalar, as kohya-ss writes it."""
    from diffusers.utils import convert_state_dict_to_kohya
    from safetensors.torch import load_file, save_file

    peft_sd = load_file(str(out / "peft_lora.safetensors"))
    raw = convert_state_dict_to_kohya(peft_sd)
    info = {"converter_alpha_values": sorted({int(v) for k, v in raw.items() if k.endswith(".alpha")}),
            "converter_alpha_dtype": str(next(v.dtype for k, v in raw.items() if k.endswith(".alpha")))}
    kohya = {k: (torch.tensor(float(ALPHA), dtype=torch.float32) if k.endswith(".alpha") else v.contiguous())
             for k, v in raw.items()}
    save_file(kohya, str(out / "kohya_lora.safetensors"))
    te1 = {(k.replace("lora_te1_encoder_", "lora_te1_text_model_encoder_", 1)
            if k.startswith("lora_te1_encoder_") else k): v for k, v in kohya.items()}
    save_file(te1, str(out / "kohya_lora_te1_text_model.safetensors"))
    return info, raw


# --- what diffusers computes ----------------------------------------------------------------------------------------

def compute(pipe, unet_in: dict, run_kwargs: dict | None = None) -> dict:
    """Text encoders, encode_prompt, one UNet call and the full run on a (LoRA-loaded) pipeline."""
    out = {}
    with torch.no_grad():
        encoders = ((pipe.text_encoder, pipe.tokenizer, "te1"), (pipe.text_encoder_2, pipe.tokenizer_2, "te2"))
        for enc, tok, pre in encoders:
            ids = tok(PROMPT, padding="max_length", max_length=tok.model_max_length, truncation=True,
                      return_tensors="pt").input_ids
            o = enc(ids, output_hidden_states=True)
            out[f"{pre}.penultimate"] = o.hidden_states[-2]
            if pre == "te1":
                out["te1.last_hidden_state"] = o.last_hidden_state   # covers te1's last layer (SDXL never uses it)
            else:
                out["te2.text_embeds"] = o.text_embeds
        names = ["prompt_embeds", "negative_prompt_embeds", "pooled_prompt_embeds", "negative_pooled_prompt_embeds"]
        got = pipe.encode_prompt(PROMPT, device="cpu", num_images_per_prompt=1, do_classifier_free_guidance=True,
                                 negative_prompt=NEGATIVE)
        for n, t in zip(names, got):
            out[f"encode.{n}"] = t
        out[f"unet.t{UNET_T}.out"] = pipe.unet(
            unet_in["unet.sample"], torch.tensor(UNET_T), encoder_hidden_states=unet_in["unet.encoder_hidden_states"],
            added_cond_kwargs={"text_embeds": unet_in["unet.text_embeds"], "time_ids": unet_in["unet.time_ids"]},
            return_dict=False)[0]
    out.update(full_run(pipe, run_kwargs))
    return {k: v.detach().to(torch.float32).contiguous().clone() for k, v in out.items()}


def full_run(pipe, extra: dict | None = None) -> dict:
    base_cfg = dict(pipe.scheduler.config)
    pipe.scheduler = make_scheduler(RUN["sched"], base_cfg)
    shape = (1, pipe.unet.config.in_channels, RUN["h"] // pipe.vae_scale_factor, RUN["w"] // pipe.vae_scale_factor)
    out = {"run.initial_noise": torch.randn(shape, generator=torch.Generator("cpu").manual_seed(RUN["seed"]),
                                            dtype=torch.float32)}
    steps = []

    def on_step(p, i, t, kw):
        steps.append(kw["latents"].detach().clone())
        return kw

    with torch.no_grad():
        image = pipe(prompt=RUN["prompt"], negative_prompt=RUN["neg"], num_inference_steps=RUN["steps"],
                     guidance_scale=RUN["guidance"], height=RUN["h"], width=RUN["w"],
                     generator=torch.Generator("cpu").manual_seed(RUN["seed"]), output_type="pt",
                     callback_on_step_end=on_step, callback_on_step_end_tensor_inputs=["latents"],
                     **(extra or {})).images
    for i, lat in enumerate(steps):
        out[f"run.step{i}.latents"] = lat
    out["run.final_latents"] = steps[-1].clone()   # its own storage (safetensors refuses shared tensors)
    out["run.image"] = image
    return out


def fresh(lora_file: Path | None = None):
    pipe = load_pipeline(FIXTURES / PIPELINE)
    if lora_file is not None:
        pipe.load_lora_weights(str(lora_file.parent), weight_name=lora_file.name, adapter_name=ADAPTER)
    return pipe


def worst(a: dict, b: dict, keys=None) -> float:
    keys = keys or [k for k in b if k != "run.initial_noise"]
    return max(rel_err(a[k], b[k]) for k in keys)


def module_weight(pipe, comp: str, path: str) -> torch.Tensor:
    m = getattr(pipe, comp).get_submodule(path)
    m = getattr(m, "base_layer", m)   # a PEFT LoraLayer after fuse_lora: the merged weight lives in base_layer
    return m.weight.detach().to(torch.float32).clone().contiguous()


def merge_by_formula(base_w: torch.Tensor, peft_sd: dict, comp: str, path: str, w: float) -> torch.Tensor:
    """W + w * (alpha / rank) * up @ down, in float64 (3x3 convolutions: up.reshape(out, r) @ down.reshape(r, -1))."""
    down = peft_sd[f"{comp}.{path}.lora_A.weight"].to(torch.float64)
    up = peft_sd[f"{comp}.{path}.lora_B.weight"].to(torch.float64)
    delta = (up.reshape(up.shape[0], -1) @ down.reshape(down.shape[0], -1)).reshape(base_w.shape)
    return (base_w.to(torch.float64) + w * (ALPHA / RANK) * delta).to(torch.float32)


# --- malformed inputs -----------------------------------------------------------------------------------------------

def make_malformed(out: Path) -> list:
    """Small bad inputs, each with the refusal the engine should give. Module names and shapes are real (the tiny
    UNet's down_blocks.1 ... attn1.to_q is Linear [32, 32]) so that only the stated defect is wrong."""
    from safetensors.torch import save_file

    mdir = out / "malformed"
    mdir.mkdir(parents=True, exist_ok=True)
    g = torch.Generator("cpu").manual_seed(7)

    def r(*shape):
        return (torch.randn(shape, generator=g, dtype=torch.float32) * 0.1).contiguous()

    mod = "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q"
    te_mod = "lora_te1_encoder_layers_0_self_attn_q_proj"    # Linear [24, 24]
    items = []

    def alpha():
        return torch.tensor(float(ALPHA), dtype=torch.float32)


    save_file({f"{mod}.hada_w1_a": r(32, 4), f"{mod}.hada_w1_b": r(4, 32), f"{mod}.hada_w2_a": r(32, 4),
               f"{mod}.hada_w2_b": r(4, 32), f"{mod}.alpha": alpha()}, str(mdir / "loha.safetensors"))
    items.append({"file": "malformed/loha.safetensors", "expect": "unsupported_lora_type", "type": "LoHa",
                  "what": "LyCORIS LoHa keys (.hada_w1_a/.hada_w1_b/.hada_w2_a/.hada_w2_b/.alpha) for one UNet "
                          "module; refuse, naming the type"})
    save_file({f"{mod}.lokr_w1": r(4, 4), f"{mod}.lokr_w2": r(8, 8), f"{mod}.alpha": alpha()},
              str(mdir / "lokr.safetensors"))
    items.append({"file": "malformed/lokr.safetensors", "expect": "unsupported_lora_type", "type": "LoKr",
                  "what": "LyCORIS LoKr keys (.lokr_w1 [4,4], .lokr_w2 [8,8]: kron = [32,32]) for one UNet module; "
                          "refuse, naming the type"})
    save_file({f"{mod}.lora_down.weight": r(4, 32), f"{mod}.lora_up.weight": r(32, 3), f"{mod}.alpha": alpha(),
               f"{te_mod}.lora_down.weight": r(4, 24), f"{te_mod}.lora_up.weight": r(24, 4),
               f"{te_mod}.alpha": alpha()},
              str(mdir / "rank_mismatch.safetensors"))
    items.append({"file": "malformed/rank_mismatch.safetensors", "expect": "shape_mismatch",
                  "what": "kohya pair whose ranks disagree: lora_down [4, 32] but lora_up [32, 3] (to_q); the te1 "
                          "pair in the same file is fine. Refuse the file (or at least that module) with a message"})
    save_file({"unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.lora_A.weight": r(4, 32),
               "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.lora_B.weight": r(32, 3)},
              str(mdir / "peft_rank_mismatch.safetensors"))
    items.append({"file": "malformed/peft_rank_mismatch.safetensors", "expect": "shape_mismatch",
                  "what": "PEFT pair whose ranks disagree: lora_A [4, 32], lora_B [32, 3]"})
    save_file({f"{mod}.lora_down.weight": r(4, 32), f"{mod}.alpha": alpha()}, str(mdir / "missing_up.safetensors"))
    items.append({"file": "malformed/missing_up.safetensors", "expect": "incomplete_pair",
                  "what": "a lora_down (and alpha) without its lora_up"})
    blob = (out / "kohya_lora.safetensors").read_bytes()
    (mdir / "truncated.safetensors").write_bytes(blob[: len(blob) // 2])
    hlen = int.from_bytes(blob[:8], "little")
    items.append({"file": "malformed/truncated.safetensors", "expect": "invalid_file",
                  "what": f"kohya_lora.safetensors cut to its first half ({len(blob) // 2} of {len(blob)} bytes): the "
                          f"header ({hlen} bytes of JSON) is intact, the tensor data ends early"})
    (mdir / "truncated_header.safetensors").write_bytes(blob[:4096])
    items.append({"file": "malformed/truncated_header.safetensors", "expect": "invalid_file",
                  "what": f"kohya_lora.safetensors cut to 4096 bytes: the header length says {hlen} bytes of JSON "
                          f"but the file ends inside it"})
    return items


def diffusers_on_malformed(out: Path, items: list) -> None:
    """What diffusers' load_lora_weights does with each malformed file (recorded, for information)."""
    import diffusers

    level = diffusers.utils.logging.get_verbosity()
    diffusers.utils.logging.set_verbosity(diffusers.utils.logging.CRITICAL)  # it also logs the errors it raises
    try:
        _diffusers_on_malformed(out, items)
    finally:
        diffusers.utils.logging.set_verbosity(level)


def _diffusers_on_malformed(out: Path, items: list) -> None:
    for it in items:
        path = out / it["file"]
        pipe = fresh()
        try:
            pipe.load_lora_weights(str(path.parent), weight_name=path.name, adapter_name=ADAPTER)
            n = sum(1 for comp in ("unet", "text_encoder", "text_encoder_2")
                    for _, m in getattr(pipe, comp).named_modules() if hasattr(m, "lora_A") and ADAPTER in m.lora_A)
            it["diffusers"] = f"loaded without error ({n} LoRA layers injected)"
        except Exception as e:  # noqa: BLE001 - the point is to record what diffusers raises
            msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
            msg = msg.replace(str(path.parent), "<dir>")[:240]
            it["diffusers"] = f"{type(e).__name__}: {msg}"


# --- what diffusers' kohya loader does with SGM/LDM names (probe, recorded in reference.json) -----------------------

SGM_PROBE = ["lora_unet_input_blocks_1_0_in_layers_2", "lora_unet_input_blocks_2_0_out_layers_3",
             "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q", "lora_unet_input_blocks_5_1_proj_in",
             "lora_unet_input_blocks_7_1_transformer_blocks_1_ff_net_2",
             "lora_unet_middle_block_1_transformer_blocks_0_attn2_to_k",
             "lora_unet_output_blocks_0_1_transformer_blocks_0_attn1_to_out_0",
             "lora_unet_output_blocks_2_1_proj_out", "lora_unet_output_blocks_3_0_skip_connection",
             "lora_unet_output_blocks_8_0_in_layers_2"]


def sgm_probe(unet_config) -> dict:
    """diffusers' own key conversion (StableDiffusionXLPipeline.lora_state_dict with unet_config, then
    convert_unet_state_dict_to_peft, as load_lora_weights does) applied to SGM-named kohya keys, for SDXL's
    layers_per_block (2) and for this KOALA config (1). Only names are converted; nothing is loaded."""
    from types import SimpleNamespace

    from diffusers import StableDiffusionXLPipeline
    from diffusers.utils import convert_unet_state_dict_to_peft

    res = {}
    for label, lpb in (("sdxl_layers_per_block_2", 2), (f"koala_layers_per_block_{unet_config.layers_per_block}",
                                                         unet_config.layers_per_block)):
        cfg = SimpleNamespace(**dict(unet_config))
        cfg.layers_per_block = lpb
        table = {}
        for k in SGM_PROBE:
            sd = {f"{k}.lora_down.weight": torch.zeros(1, 1), f"{k}.lora_up.weight": torch.zeros(1, 1),
                  f"{k}.alpha": torch.tensor(1.0)}
            try:
                conv, _ = StableDiffusionXLPipeline.lora_state_dict(sd, unet_config=cfg)
                peft = convert_unet_state_dict_to_peft({kk.removeprefix("unet."): v for kk, v in conv.items()})
                mods = sorted({kk.split(".lora_A")[0] for kk in peft if ".lora_A" in kk})
                table[k] = mods[0] if len(mods) == 1 else mods
            except Exception as e:  # noqa: BLE001
                table[k] = f"{type(e).__name__}: {str(e).strip().splitlines()[0][:160]}"
        res[label] = table
    return res


# --- the whole generation -------------------------------------------------------------------------------------------

def generate(out: Path) -> dict:
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    out.mkdir(parents=True, exist_ok=True)
    log = {}

    def say(name, value, what="max rel err"):
        log[name] = value
        print(f"  {name:<62} {what} = {value:.3e}" if isinstance(value, float) else f"  {name}: {value}", flush=True)

    meta = make_lora(out)
    kohya_info, kohya_raw = make_kohya(out)
    peft_sd = load_file(str(out / "peft_lora.safetensors"))
    kohya_sd = load_file(str(out / "kohya_lora.safetensors"))
    with safe_open(str(out / "peft_lora.safetensors"), "pt") as f:
        file_meta = f.metadata()

    base_ref = load_file(str(FIXTURES / PIPELINE / "reference.safetensors"))
    unet_in = {k: base_ref[k].to(torch.float32).contiguous()
               for k in ("unet.sample", "unet.encoder_hidden_states", "unet.text_embeds", "unet.time_ids")}
    tensors = dict(unet_in)

    print("base (no LoRA)", flush=True)
    pipe = fresh()
    base = compute(pipe, unet_in)
    for k, v in base.items():
        tensors[f"base.{k}"] = v
    for pre, comp, path in MERGE_MODULES:
        tensors[f"base.weight.{pre}.{path}"] = module_weight(pipe, comp, path)
    say("base.unet.t500.out vs tiny-koala-700m reference unet.t500.out",
        rel_err(base["unet.t500.out"], base_ref["unet.t500.out"]))
    unet_config = pipe.unet.config
    del pipe

    effects, checks, apis = {}, {}, {}
    for w in WEIGHTS:
        wk = wkey(w)
        print(f"LoRA weight {w}", flush=True)
        # stored: load_lora_weights(PEFT file) + set_adapters(adapter_weights=w)
        pipe = fresh(out / "peft_lora.safetensors")
        pipe.set_adapters([ADAPTER], adapter_weights=w)
        ref = compute(pipe, unet_in)
        del pipe
        for k, v in ref.items():
            tensors[f"lora.{wk}.{k}"] = v
        for k in ref:
            if k != "run.initial_noise" and not k.startswith("run.step"):
                effects[f"{wk}.{k}"] = rel_err(ref[k], base[k])
        say(f"{wk} effect: unet.t500.out rel change vs base", effects[f"{wk}.unet.t500.out"], "rel")
        say(f"{wk} effect: run.final_latents rel change vs base", effects[f"{wk}.run.final_latents"], "rel")

        # cross-check 1: fuse_lora(lora_scale=w) on the PEFT file; keep the merged weights
        pipe = fresh(out / "peft_lora.safetensors")
        pipe.fuse_lora(lora_scale=w)
        fused = compute(pipe, unet_in)
        checks[f"{wk}.fuse_lora_vs_set_adapters"] = worst(fused, ref)
        say(f"{wk} fuse_lora(lora_scale) vs set_adapters", checks[f"{wk}.fuse_lora_vs_set_adapters"])
        for pre, comp, path in MERGE_MODULES:
            merged = module_weight(pipe, comp, path)
            tensors[f"lora.{wk}.weight.{pre}.{path}"] = merged
            formula = merge_by_formula(tensors[f"base.weight.{pre}.{path}"], peft_sd, comp, path, w)
            checks[f"{wk}.merge_formula_vs_fuse_lora.{pre}.{path}"] = rel_err(formula, merged)
        say(f"{wk} W + w*(alpha/r)*up@down vs fuse_lora, worst of {len(MERGE_MODULES)} modules",
            max(v for k, v in checks.items() if k.startswith(f"{wk}.merge_formula")))
        del pipe

        # cross-check 2: the kohya file, same API
        for name in ("kohya_lora.safetensors", "kohya_lora_te1_text_model.safetensors"):
            pipe = fresh(out / name)
            pipe.set_adapters([ADAPTER], adapter_weights=w)
            got = compute(pipe, unet_in)
            checks[f"{wk}.{name}_vs_peft"] = worst(got, ref)
            say(f"{wk} {name} vs peft_lora.safetensors", checks[f"{wk}.{name}_vs_peft"])
            del pipe

        # cross-check 3: weight 1 adapter, the scale passed to the pipeline call (cross_attention_kwargs={"scale": w}:
        # encode_prompt scales the text-encoder LoRA layers, the UNet its own)
        pipe = fresh(out / "peft_lora.safetensors")
        got = full_run(pipe, {"cross_attention_kwargs": {"scale": w}})
        checks[f"{wk}.cross_attention_kwargs_scale_vs_set_adapters.run"] = worst(
            got, ref, [k for k in got if k != "run.initial_noise"])
        say(f"{wk} pipe(cross_attention_kwargs={{'scale': w}}) vs set_adapters (run)",
            checks[f"{wk}.cross_attention_kwargs_scale_vs_set_adapters.run"])
        del pipe

    # what happens with the converter's own alpha (= rank): scale 1 instead of 0.5, i.e. not the same LoRA
    raw_sd = {k: v.contiguous() for k, v in kohya_raw.items()}
    pipe = load_pipeline(FIXTURES / PIPELINE)
    pipe.load_lora_weights(raw_sd, adapter_name=ADAPTER)
    with torch.no_grad():
        u = pipe.unet(unet_in["unet.sample"], torch.tensor(UNET_T),
                      encoder_hidden_states=unet_in["unet.encoder_hidden_states"],
                      added_cond_kwargs={"text_embeds": unet_in["unet.text_embeds"],
                                         "time_ids": unet_in["unet.time_ids"]}, return_dict=False)[0]
    checks["w1.0.kohya_with_converter_alpha_eq_rank_vs_peft.unet.t500.out"] = rel_err(
        u, tensors["lora.w1.0.unet.t500.out"])
    say("kohya with the converter's alpha (= rank 4) vs peft, unet.t500.out",
        checks["w1.0.kohya_with_converter_alpha_eq_rank_vs_peft.unet.t500.out"])
    del pipe

    save_file(tensors, str(out / "reference.safetensors"))

    malformed = make_malformed(out)
    diffusers_on_malformed(out, malformed)

    def count(sd, pred):
        return sum(1 for k in sd if pred(k))

    lora_files = {
        "peft_lora.safetensors": {
            "keys": len(peft_sd),
            "unet_keys": count(peft_sd, lambda k: k.startswith("unet.")),
            "text_encoder_keys": count(peft_sd, lambda k: k.startswith("text_encoder.")),
            "text_encoder_2_keys": count(peft_sd, lambda k: k.startswith("text_encoder_2.")),
            "modules": len(peft_sd) // 2,
            "alpha": "safetensors metadata: __metadata__['lora_adapter_metadata'] is a JSON string of "
                     "{'<component>.<LoraConfig field>': value}, e.g. 'unet.lora_alpha': 2, 'unet.r': 4 "
                     "(component = unet, text_encoder, text_encoder_2); no alpha tensors",
            "metadata_keys": sorted(file_meta),
            "lora_alpha_in_metadata": {c: json.loads(file_meta["lora_adapter_metadata"])[f"{c}.lora_alpha"]
                                       for c in ("unet", "text_encoder", "text_encoder_2")},
            "api": "StableDiffusionXLPipeline.save_lora_weights(unet_lora_layers=, text_encoder_lora_layers=, "
                   "text_encoder_2_lora_layers=, *_lora_adapter_metadata=LoraConfig.to_dict()) of "
                   "peft.utils.get_peft_model_state_dict(model, adapter_name); then the two __metadata__ entries "
                   "put in sorted order (safetensors 0.8.0 writes them in a random order; nothing else changes)",
        },
        "kohya_lora.safetensors": {
            "keys": len(kohya_sd),
            "unet_keys": count(kohya_sd, lambda k: k.startswith("lora_unet_")),
            "te1_keys": count(kohya_sd, lambda k: k.startswith("lora_te1_")),
            "te2_keys": count(kohya_sd, lambda k: k.startswith("lora_te2_")),
            "alpha_keys": count(kohya_sd, lambda k: k.endswith(".alpha")),
            "modules": count(kohya_sd, lambda k: k.endswith(".lora_down.weight")),
            "alpha": f"one '<module>.alpha' tensor per module: float32 scalar (shape []) = {float(ALPHA)}",
            "api": "diffusers.utils.convert_state_dict_to_kohya(safetensors.torch.load_file(peft_lora.safetensors)), "
                   "then every '.alpha' replaced by torch.tensor(2.0) (the converter writes alpha = rank as an int64 "
                   "scalar: values " + str(kohya_info["converter_alpha_values"]) + ", dtype "
                   + kohya_info["converter_alpha_dtype"] + ")",
            "naming": "diffusers module paths with '.' written as '_' (lora_unet_down_blocks_1_attentions_0_"
                      "transformer_blocks_0_attn1_to_q, ..._to_out_0, ..._ff_net_0_proj, lora_unet_down_blocks_0_"
                      "resnets_0_conv1), not the SGM/LDM names (input_blocks_...) of real SDXL kohya files; te1 keys "
                      "are lora_te1_encoder_layers_* (transformers 5 CLIPTextModel has no text_model level), te2 keys "
                      "lora_te2_text_model_encoder_layers_*",
        },
        "kohya_lora_te1_text_model.safetensors": {
            "keys": len(kohya_sd),
            "what": "kohya_lora.safetensors with every 'lora_te1_encoder_' key prefix spelled "
                    "'lora_te1_text_model_encoder_' (the spelling of real kohya/A1111 SDXL files and of older "
                    "transformers); diffusers loads it to the same outputs (checks)",
        },
    }
    nbytes = {}
    for f in sorted(out.rglob("*")):
        if f.is_file() and f.name not in ("reference.json", "PROVENANCE.md"):
            nbytes[str(f.relative_to(out))] = f.stat().st_size

    params = {
        "what": "LoRA references: a seeded random PEFT LoRA on tiny-koala-700m, in diffusers/PEFT and kohya form, "
                "and diffusers' outputs without it (base.*) and at LoRA weight 1.0 / 0.5 (lora.w1.0.*, lora.w0.5.*)",
        "script": "tools/reference/lora_reference.py",
        "pipeline": f"tests/data/fixtures/{PIPELINE}",
        "pipeline_load": "StableDiffusionXLPipeline.from_pretrained(..., torch_dtype=torch.float32), CPU (text "
                         "encoders fp16 on disk, loaded into float32)",
        "lora": {
            "rank": RANK, "alpha": ALPHA, "scale_alpha_over_rank": ALPHA / RANK,
            "init": "peft LoraConfig(init_lora_weights=False): lora_A and lora_B keep torch's default "
                    "nn.Linear/nn.Conv2d init (kaiming_uniform a=sqrt(5)); lora_B for a conv is a 1x1 conv",
            "lora_B_factor": LORA_B_FACTOR,
            "lora_B_factor_note": "lora_B multiplied by this after init; 1.0 = not scaled (the raw init already "
                                  "changes the UNet output by ~60 % at weight 1, see effect)",
            "seeds": SEEDS,
            "seed_note": "torch.manual_seed(seed) right before injecting each component's adapter, in the order "
                         "unet, text_encoder, text_encoder_2, each on a freshly loaded pipeline model",
            "injection": "unet: UNet2DConditionModel.add_adapter(cfg, adapter_name); text encoders: "
                         "peft.inject_adapter_in_model(cfg, model, adapter_name) (transformers 5.24's add_adapter "
                         "requires peft >= 0.22, the pin is 0.21.2)",
            "target_modules": {"unet": UNET_TARGETS, "text_encoder": TE_TARGETS, "text_encoder_2": TE_TARGETS},
            "adapter_name": ADAPTER,
        },
        "files": lora_files,
        "bytes": nbytes,
        "prompt": PROMPT, "negative": NEGATIVE,
        "unet_call": {"timestep": UNET_T, "inputs": "unet.sample, unet.encoder_hidden_states, unet.text_embeds, "
                      "unet.time_ids (copied from tests/data/fixtures/tiny-koala-700m/reference.safetensors)"},
        "run": RUN,
        "weights": list(WEIGHTS),
        "merge_modules": [f"{pre}.{path}" for pre, _, path in MERGE_MODULES],
        "api": {
            "base.*": "no LoRA",
            "lora.w<w>.* (except .weight.*)": "pipe.load_lora_weights(peft_lora.safetensors, adapter_name="
                                              f"'{ADAPTER}'); pipe.set_adapters(['{ADAPTER}'], adapter_weights=w) "
                                              "(a scalar weight applies to unet, text_encoder and text_encoder_2)",
            "lora.w<w>.weight.<pre>.<module>": "pipe.load_lora_weights(peft_lora.safetensors); "
                                               "pipe.fuse_lora(lora_scale=w); the module's base_layer.weight",
            "base.weight.<pre>.<module>": "the loaded pipeline's weight (te: fp16 on disk, float32 here)",
            "te*": "text_encoder / text_encoder_2 (tokenizer padding='max_length', 77) with "
                   "output_hidden_states=True: penultimate = hidden_states[-2], te2.text_embeds, "
                   "te1.last_hidden_state",
            "encode.*": "pipe.encode_prompt(prompt, negative_prompt=negative, do_classifier_free_guidance=True)",
            "unet.t500.out": "pipe.unet(unet.sample, 500, encoder_hidden_states, added_cond_kwargs)",
            "run.*": "pipe(prompt, negative_prompt, euler (make_scheduler), 4 steps, guidance 5, 64x64, "
                     "generator=torch.Generator('cpu').manual_seed(42), output_type='pt'); latents per step from "
                     "callback_on_step_end; run.image in [0, 1]",
        },
        "effect_rel_change_vs_base": effects,
        "checks_max_rel_err": checks,
        "malformed": malformed,
        "diffusers_sgm_probe": sgm_probe(unet_config),
        "diffusers_sgm_probe_note": "not a fixture: diffusers' own key conversion of SGM/LDM-named kohya keys "
                                    "(lora_state_dict with unet_config, then convert_unet_state_dict_to_peft). "
                                    "diffusers numbers input_blocks/output_blocks with the model's own "
                                    "layers_per_block + 1 per level, so on KOALA (layers_per_block 1) SDXL's "
                                    "numbering maps elsewhere. diffusers has no utility for the opposite direction "
                                    "(diffusers -> SGM names for a LoRA), so no SGM-named fixture is made.",
    }
    meta_json = versions()
    meta_json.update(params)
    (out / "reference.json").write_text(json.dumps(meta_json, indent=1, ensure_ascii=False) + "\n")
    return log


# --- --check --------------------------------------------------------------------------------------------------------

def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def check(committed: Path) -> int:
    from safetensors.torch import load_file

    tmp = Path(tempfile.mkdtemp(prefix="lora_ref_check_"))
    try:
        print(f"regenerating into {tmp}", flush=True)
        generate(tmp)
        new_files = sorted(str(f.relative_to(tmp)) for f in tmp.rglob("*") if f.is_file())
        old_files = sorted(str(f.relative_to(committed)) for f in committed.rglob("*")
                           if f.is_file() and f.name != "PROVENANCE.md")
        failures = []
        if new_files != old_files:
            failures.append(f"file lists differ: only new {sorted(set(new_files) - set(old_files))}, only "
                            f"committed {sorted(set(old_files) - set(new_files))}")
        for name in sorted(set(new_files) & set(old_files)):
            a, b = tmp / name, committed / name
            if sha(a) == sha(b):
                print(f"  {name:<48} identical", flush=True)
                continue
            if name == "reference.safetensors":
                new, old = load_file(str(a)), load_file(str(b))
                if sorted(new) != sorted(old):
                    failures.append(f"{name}: key sets differ")
                    continue
                bad = []
                for k in sorted(old):
                    if k.endswith("initial_noise") or k.startswith("unet.") or ".weight." in k:
                        ok = torch.equal(new[k], old[k]) if ".weight." not in k else rel_err(new[k], old[k]) < 1e-6
                    else:
                        tol = TOL_FINAL if ".run." in k else TOL_MODEL
                        ok = rel_err(new[k], old[k]) < tol
                    if not ok:
                        bad.append(k)
                print(f"  {name:<48} differs in bytes; {len(bad)} tensors beyond tolerance", flush=True)
                if bad:
                    failures.append(f"{name}: {bad[:8]}")
            elif name == "reference.json":
                a_j, b_j = json.loads(a.read_text()), json.loads(b.read_text())
                diff = sorted(k for k in set(a_j) | set(b_j) if a_j.get(k) != b_j.get(k))
                print(f"  {name:<48} differs in: {diff}", flush=True)
                if any(k not in ("platform", "python", "effect_rel_change_vs_base", "checks_max_rel_err")
                       for k in diff):
                    failures.append(f"{name}: {diff}")
            else:
                failures.append(f"{name}: bytes differ")
                print(f"  {name:<48} DIFFERS", flush=True)
        if failures:
            print("FAILED: " + "; ".join(failures))
            return 1
        print("check passed: regenerated files match the committed ones")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=OUT, help=f"output folder (default {OUT.relative_to(REPO_ROOT)})")
    ap.add_argument("--check", action="store_true", help="regenerate into a temporary folder and compare with --out")
    args = ap.parse_args()
    quiet_libraries()
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    v = versions()
    print("installed: " + ", ".join(f"{k} {v[k]}" for k in ("torch", "diffusers", "transformers", "safetensors",
                                                            "peft", "python") if k in v)
          + f"; threads {torch.get_num_threads()}", flush=True)
    if args.check:
        return check(args.out)
    if args.out.exists():
        for f in FILES:
            (args.out / f).unlink(missing_ok=True)
        shutil.rmtree(args.out / "malformed", ignore_errors=True)
    generate(args.out)
    for f in sorted(args.out.rglob("*")):
        if f.is_file():
            print(f"  {str(f.relative_to(args.out)):<48} {f.stat().st_size:>9} bytes")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception:
        traceback.print_exc()
        sys.exit(2)
