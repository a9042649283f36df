#!/usr/bin/env python3
"""Writes the seed corpora tests/fuzz/corpus/<name>/ (small real inputs, a few KB per target).

Run from anywhere: python3 tests/fuzz/make_corpus.py. Sources: the fixture model folders and LoRA files in
tests/data/fixtures, the shipped presets/, and the two text chunks koala-cli 0.1.0 wrote into a 64x64 PNG of
tiny-koala-700m (2026-12-02; copied below, the image itself replaced by a 4x4 one to keep the corpus small).
"""
import base64
import json
import os
import shutil
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FIX = os.path.join(ROOT, "tests", "data", "fixtures")
OUT = os.path.join(HERE, "corpus")

KOALA_CHUNK = (
    '{"compute_dtype":"fp32","device":"cpu","generator":"koala-cli","height":64,"model_name":"tiny-koala-700m",'
    '"params":{"count":1,"guidance":5.0,"guidance_rescale":0.0,"height":64,"loras":[{"from_prompt":true,'
    '"hash":"89ab21fd2cd7","name":"kohya_lora","weight":0.8}],"model":"/models/tiny-koala-700m",'
    '"model_name":"tiny-koala-700m","negative_prompt":"blurry, low quality","prompt":"a (koala:1.2) in a [tree], '
    '<lora:kohya_lora:0.8> BREAK sunset","prompt_syntax":"a1111","scheduler":"euler","seed":42,'
    '"spacing":"leading","steps":2,"width":64},"scheduler_used":"euler","spacing_used":"leading",'
    '"timings":{"decode_seconds":0.135,"total_seconds":0.29},"unet_shape":"custom","version":1,"width":64}'
)
KOALA_CHUNK_2 = (
    '{"generator":"KOALA Studio","params":{"count":2,"guidance":3.5,"guidance_rescale":0.7,"height":768,'
    '"model":"/m/koala-lightning-700m","negative_prompt":null,"prompt":"plain prompt","prompt_syntax":"plain",'
    '"scheduler":"dpmpp_2m_karras","seed":"18446744073709551615","spacing":"trailing","steps":10,"width":1024,'
    '"strength":0.75,"init_image":"in.png","init_image_sha256":"0123456789","mask_image":"m.png",'
    '"mask_image_sha256":"abcdef0123","mask_blur":4},"version":1}'
)
PARAMS = [
    'a (koala:1.2) in a [tree], <lora:kohya_lora:0.8> BREAK sunset\nNegative prompt: blurry, low quality\n'
    'Steps: 2, Sampler: Euler, CFG scale: 5, Seed: 42, Size: 64x64, Model: tiny-koala-700m, '
    'Timestep spacing: leading, Lora hashes: "kohya_lora: 89ab21fd2cd7"',
    'plain prompt\nSteps: 1, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 5, Seed: 7, Size: 64x64, '
    'Model: tiny-koala-700m, Timestep spacing: leading',
    'masterpiece, a cat\nwith two lines\nNegative prompt: ugly\nmore negative\nSteps: 30, Sampler: DPM++ 2M Karras, '
    'CFG scale: 7.5, Seed: 1234567890123, Size: 832x1216, Model hash: 31e35c80fc, Model: sd_xl_base_1.0, '
    'Denoising strength: 0.3, Mask blur: 4, CFG Rescale: 0.7, Version: v1.9.4',
    'Steps: 20, Sampler: Euler a, Schedule type: Automatic, CFG scale: 7, Seed: -1, Size: 512x512, '
    'Template: "a, b", Hires upscale: 2',
    'only a prompt without parameters',
    'x\nNegative prompt: \nSteps: 99999999999999999999, Sampler: DDIM, CFG scale: nan, Seed: 1e400, Size: 0x-5',
]
COMFY = [("prompt", '{"3":{"class_type":"KSampler","inputs":{"seed":5,"steps":20,"cfg":8}}}'),
         ("workflow", '{"nodes":[{"id":3,"type":"KSampler"}],"links":[]}')]


# Three small JPEGs for the image target, written by libjpeg-turbo 2.1.5 (Debian 12) with jpeg_set_defaults, the
# quality and sampling named, pixel (x, y) channel k = (37 * (3x + k) + 71 y) & 255 (grey: 37x + 71y); no JPEG encoder
# in Python's standard library, so they are kept here as base64.
JPEGS = {
    "baseline_rgb_420_q75_9x7.jpg": (
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0aHBwgJC4nICIsIxwcKDcpLDAx"
    "NDQ0Hyc5PTgyPC4zNDL/2wBDAQkJCQwLDBgNDRgyIRwhMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIy"
    "MjIyMjIyMjL/wAARCAAHAAkDASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUF"
    "BAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVW"
    "V1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi"
    "4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAEC"
    "AxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVm"
    "Z2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq"
    "8vP09fb3+Pn6/9oADAMBAAIRAxEAPwBTpomaWG1RVK4jNuD+7Bz5W0n5c/Ntizg/Ksp43jOV/wAJKv8A0GL/AP8ABdbf4UUVvSow"
    "qOSkr2dlon0XdGFWooNJxT0T69UuzR//2Q=="),
    "progressive_rgb_444_q60_8x8.jpg": (
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAA0JCgsKCA0LCgsODg0PEyAVExISEyccHhcgLikxMC4pLSwzOko+MzZGNywtQFdBRkxO"
    "UlNSMj5aYVpQYEpRUk//2wBDAQ4ODhMREyYVFSZPNS01T09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09P"
    "T09PT09PT0//wgARCAAIAAgDAREAAhEBAxEB/8QAFAABAAAAAAAAAAAAAAAAAAAAAf/EABQBAQAAAAAAAAAAAAAAAAAAAAD/2gAM"
    "AwEAAhADEAAAAQ//xAAVEAEBAAAAAAAAAAAAAAAAAAAAEv/aAAgBAQABBQKX/8QAGBEAAgMAAAAAAAAAAAAAAAAAAPABUcH/2gAI"
    "AQMBAT8BqF0//8QAFhEBAQEAAAAAAAAAAAAAAAAA8ABR/9oACAECAQE/ARl//8QAFxAAAwEAAAAAAAAAAAAAAAAAACHw0f/aAAgB"
    "AQAGPwJVp//EABsQAQABBQEAAAAAAAAAAAAAAAFBABExUXHw/9oACAEBAAE/IUWwDUejhT//2gAMAwEAAgADAAAAEL//xAAZEQEA"
    "AwEBAAAAAAAAAAAAAAABESFBUXH/2gAIAQMBAT8QiVDpG+BduMFnlf/EABsRAQACAgMAAAAAAAAAAAAAAAERIQAxQWFx/9oACAEC"
    "AQE/EBZE2Nvt9wRcSUDnP//EABcQAQEBAQAAAAAAAAAAAAAAAAEhEQD/2gAIAQEAAT8QergA2zEzZpKtE3v/2Q=="),
    "grey_q90_5x3.jpg": (
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAMCAgMCAgMDAwMEAwMEBQgFBQQEBQoHBwYIDAoMDAsKCwsNDhIQDQ4RDgsLEBYQERMU"
    "FRUVDA8XGBYUGBIUFRT/wAALCAADAAUBAREA/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUF"
    "BAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVW"
    "V1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi"
    "4+Tl5ufo6erx8vP09fb3+Pn6/9oACAEBAAA/AM39pLWJP2avhZ8Kv+FcWmm+HP7a/tH7f/xLbe687yRaeV/r0fbjzZPu4zu5zgY/"
    "/9k="),
}


def write(name, fname, data):
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(d, fname), "wb") as f:
        f.write(data)


def chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png(texts, mode="tEXt", w=4, h=4):
    rows = b""
    for y in range(h):
        rows += b"\x00" + b"".join(bytes([(x * 60) % 256, (y * 60) % 256, 128]) for x in range(w))
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    for key, value in texts:
        k, v = key.encode("latin-1"), value.encode("utf-8")
        if mode == "tEXt":
            out += chunk(b"tEXt", k + b"\x00" + v)
        elif mode == "zTXt":
            out += chunk(b"zTXt", k + b"\x00\x00" + zlib.compress(v))
        elif mode == "iTXt":
            out += chunk(b"iTXt", k + b"\x00\x00\x00en\x00" + k + b"\x00" + v)
        else:  # compressed iTXt
            out += chunk(b"iTXt", k + b"\x00\x01\x00\x00\x00" + zlib.compress(v))
    out += chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    return out


def st_file(tensors, meta=None):
    """A safetensors file: tensors = [(name, dtype, shape, bytes)]."""
    header, data = {}, b""
    for name, dt, shape, payload in tensors:
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [len(data), len(data) + len(payload)]}
        data += payload
    if meta is not None:
        header["__metadata__"] = meta
    h = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(h)) + h + data


def f32(n, v=1.0):
    return struct.pack("<%df" % n, *([v] * n))


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def png_image(w, h, color_type, depth, pixel, extra=b"", interlace=False):
    """A PNG whose pixel (x, y) has the samples pixel(x, y) (a list of ints), packed at `depth` bits."""
    def row(xs, y):
        bits = []
        for x in xs:
            for v in pixel(x, y):
                bits.append(v)
        if depth == 16:
            return b"\x00" + b"".join(struct.pack(">H", v) for v in bits)
        if depth == 8:
            return b"\x00" + bytes(bits)
        out, acc, n = bytearray(), 0, 0
        for v in bits:
            acc = (acc << depth) | v
            n += depth
            if n == 8:
                out.append(acc)
                acc, n = 0, 0
        if n:
            out.append(acc << (8 - n))
        return b"\x00" + bytes(out)

    if interlace:
        raw = b""
        for x0, y0, dx, dy in ADAM7:
            xs, ys = range(x0, w, dx), range(y0, h, dy)
            if len(xs) and len(ys):
                raw += b"".join(row(xs, y) for y in ys)
    else:
        raw = b"".join(row(range(w), y) for y in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 1 if interlace else 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra + chunk(b"IDAT", zlib.compress(raw)) +
            chunk(b"IEND", b""))


def image_corpus():
    g = lambda x, y: (x * 53 + y * 97) % 256
    write("image", "rgb8_4x4.png", png([]))
    write("image", "grey1_5x3.png", png_image(5, 3, 0, 1, lambda x, y: [(x + y) % 2]))
    write("image", "grey16_3x2.png", png_image(3, 2, 0, 16, lambda x, y: [g(x, y) * 257]))
    write("image", "grey_alpha8_2x2.png", png_image(2, 2, 4, 8, lambda x, y: [g(x, y), 255 - g(x, y)]))
    write("image", "rgba8_3x2.png", png_image(3, 2, 6, 8, lambda x, y: [g(x, y), 10, 200, (x * 100) % 256]))
    write("image", "rgb16_2x2.png", png_image(2, 2, 2, 16, lambda x, y: [g(x, y) * 257, 0, 65535]))
    write("image", "palette4_trns_4x3.png",
          png_image(4, 3, 3, 4, lambda x, y: [(x + y) % 3],
                    chunk(b"PLTE", bytes([255, 0, 0, 0, 255, 0, 0, 0, 255])) + chunk(b"tRNS", bytes([0, 128]))))
    write("image", "rgb_colour_key_2x2.png",
          png_image(2, 2, 2, 8, lambda x, y: [x * 255, y * 255, 0], chunk(b"tRNS", struct.pack(">HHH", 255, 0, 0))))
    write("image", "rgb8_adam7_5x5.png", png_image(5, 5, 2, 8, lambda x, y: [g(x, y), x * 40, y * 40], interlace=True))
    # Headers that claim more pixels than PIL's bomb limit (the decoders must refuse before allocating).
    huge = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
    write("image", "bomb_header_100000x100000.png", b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", huge) +
          chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))
    for name, b64 in JPEGS.items():
        write("image", name, base64.b64decode("".join(b64)))
    jpeg = bytearray(base64.b64decode("".join(JPEGS["baseline_rgb_420_q75_9x7.jpg"])))
    sof = jpeg.index(b"\xff\xc0")
    jpeg[sof + 5:sof + 9] = struct.pack(">HH", 65000, 65000)  # height, width
    write("image", "bomb_header_65000x65000.jpg", bytes(jpeg))


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)

    # ---- safetensors
    write("safetensors", "f32_f16_bf16", st_file([("a", "F32", [2, 2], f32(4)), ("b", "F16", [3], b"\x00\x3c" * 3),
                                                 ("c", "BF16", [1], b"\x80\x3f")], {"format": "pt"}))
    write("safetensors", "ints_bool", st_file([("i64", "I64", [1], b"\x01" + b"\x00" * 7), ("i32", "I32", [], b"\x02\0\0\0"),
                                              ("i16", "I16", [2], b"\0" * 4), ("i8", "I8", [1], b"\x05"),
                                              ("u8", "U8", [2, 1], b"\x01\x02"), ("b", "BOOL", [1], b"\x01"),
                                              ("f64", "F64", [1], struct.pack("<d", 2.5))]))
    write("safetensors", "empty_tensor", st_file([("e", "F32", [0, 4], b""), ("s", "F32", [], f32(1))]))
    write("safetensors", "empty_header", struct.pack("<Q", 2) + b"{}")
    write("safetensors", "padded_header", struct.pack("<Q", 8) + b'{}      ')
    write("safetensors", "truncated", st_file([("a", "F32", [4], f32(4))])[:-3])
    overlap = json.dumps({"a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]},
                          "b": {"dtype": "U8", "shape": [4], "data_offsets": [2, 6]}}).encode()
    write("safetensors", "overlap", struct.pack("<Q", len(overlap)) + overlap + b"\0" * 8)
    for f in ("lokr", "missing_up", "peft_rank_mismatch"):
        with open(os.path.join(FIX, "lora", "malformed", f + ".safetensors"), "rb") as fh:
            write("safetensors", "lora_" + f, fh.read())

    # ---- shard_index
    wm = {"a": "model-00001-of-00002.safetensors", "b": "model-00001-of-00002.safetensors",
          "c": "model-00002-of-00002.safetensors"}
    write("shard_index", "valid", json.dumps({"metadata": {"total_size": 22}, "weight_map": wm}, indent=2))
    write("shard_index", "one_shard", json.dumps({"weight_map": {"a": "model-00001-of-00002.safetensors"}}))
    write("shard_index", "missing_tensor", json.dumps({"weight_map": {"d": "model-00002-of-00002.safetensors"}}))
    write("shard_index", "bad_names", json.dumps({"weight_map": {"a": "../x.safetensors", "b": "", "c": 3}}))
    write("shard_index", "extra_shard", json.dumps({"weight_map": dict(wm, x="model-extra.safetensors")}) +
          "\n--SHARD--\n" + st_file([("x", "F32", [2], f32(2))]).decode("latin-1"))
    write("shard_index", "empty", '{"weight_map": {}}')

    # ---- config: each fixture model's five files, and single configs
    for model in ("tiny-koala-700m", "tiny-koala-1b", "tiny-sd15", "tiny-sd2"):
        parts = []
        for rel in ("model_index.json", "unet/config.json", "vae/config.json", "text_encoder/config.json",
                    "scheduler/scheduler_config.json"):
            with open(os.path.join(FIX, model, rel)) as fh:
                parts.append(fh.read())
        write("config", model, "\n--FILE--\n".join(parts))
    with open(os.path.join(FIX, "tiny-koala-700m", "unet", "config.json")) as fh:
        write("config", "unet_only", fh.read())
    with open(os.path.join(FIX, "tiny-koala-700m", "scheduler", "scheduler_config.json")) as fh:
        write("config", "scheduler_only", fh.read())

    # ---- tokenizer and prompt syntax
    with open(os.path.join(FIX, "tokenizer_cases.json")) as fh:
        cases = [c["text"] for c in json.load(fh)]
    for i, t in enumerate(cases[:20]):
        write("tokenizer", "case%02d" % i, t)
    write("tokenizer", "bytes", b"\xff\xfe\x00a\xc3\x28 caf\xc3\xa9 \xf0\x9f\x90\xa8 <|startoftext|>x<|endoftext|>")
    prompts = ["an (important) word", "(unbalanced", "\\(literal\\]", "(unnecessary)(parens)",
               "a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).", "(x: 1.5 )", "a\\\\b", "a\\b", "((a)",
               "a <lora:my_style:0.7> cat <lora:other> <hypernet:x:1> <lyco:y:-0.5>", "one BREAK two BREAKfast",
               "(koala:1.5) [astronaut], " + ", ".join("word%d" % i for i in range(90)),
               "(a:1.2.3) [b:0.5] (c:) (:2) <lora::> <lora:x:y>"]
    for i, p in enumerate(prompts):
        write("prompt_syntax", "p%02d" % i, p)
    for i, t in enumerate(cases[:6]):
        write("prompt_syntax", "case%02d" % i, t)

    # ---- PNG metadata (engine and app) and the texts alone
    pngs = {
        "koala_and_a1111": png([("parameters", PARAMS[0]), ("koala", KOALA_CHUNK)]),
        "koala_img2img_ztxt": png([("koala", KOALA_CHUNK_2), ("parameters", PARAMS[2])], "zTXt"),
        "a1111_itxt": png([("parameters", PARAMS[1])], "iTXt"),
        "a1111_itxt_z": png([("parameters", PARAMS[2])], "iTXtz"),
        "comfyui": png(COMFY),
        "no_text": png([]),
        "unknown_version": png([("koala", KOALA_CHUNK.replace('"version":1', '"version":99')),
                                ("parameters", PARAMS[3])]),
    }
    for k, v in pngs.items():
        write("png_metadata", k, v)
        write("app_metadata", k, v)
    for i, p in enumerate(PARAMS):
        write("a1111", "params%d" % i, p)
    write("a1111", "koala", KOALA_CHUNK)
    write("a1111", "koala_img2img", KOALA_CHUNK_2)
    write("a1111", "comfy", COMFY[0][1])
    write("app_metadata", "a1111_text", PARAMS[2])

    # ---- presets
    pdir = os.path.join(ROOT, "presets")
    for f in sorted(os.listdir(pdir)):
        if f.endswith(".yaml"):
            with open(os.path.join(pdir, f)) as fh:
                write("preset", f[:-5], fh.read())
    write("preset", "all_keys", "name: All keys\ndescription: every key\nmodel: koala-1b\nscheduler: dpmpp_2m_karras\n"
          "spacing: trailing\nsteps: 30\nguidance: 7.5\nguidance_rescale: 0.7\nwidth: 896\nheight: 1152\ncount: 4\n"
          "seed: 18446744073709551615\nnegative_prompt: \"blurry, (low quality:1.4)\"\nprompt_syntax: a1111\n")
    write("preset", "random_seed", "name: r\nseed: random\nprompt_syntax: plain\n")
    write("preset", "bad", "name: [unclosed\nsteps: many\n")

    # ---- LoRA: key lists (turned into files by the target) and small files
    write("lora", "keys_kohya", "KEYS\nlora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight 4 8\n"
          "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight 8 4\n"
          "lora_unet_down_blocks_0_attentions_0_proj_in.alpha\n"
          "lora_te1_text_model_encoder_layers_0_mlp_fc1.lora_down.weight 2 4\n"
          "lora_te1_text_model_encoder_layers_0_mlp_fc1.lora_up.weight 4 2\n"
          "lora_te2_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight 2 4 1 1\n"
          "lora_te2_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight 4 2 1 1\n"
          "TRIGGER koala style, bamboo\n")
    write("lora", "keys_peft", "KEYS\nunet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.lora_A.weight 4 8\n"
          "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.lora_B.weight 8 4\n"
          "text_encoder.text_model.encoder.layers.0.self_attn.k_proj.lora_A.weight 2 4\n"
          "text_encoder.text_model.encoder.layers.0.self_attn.k_proj.lora_B.weight 4 2\n"
          "text_encoder_2.text_model.encoder.layers.1.mlp.fc2.lora.down.weight 1 3\n"
          "text_encoder_2.text_model.encoder.layers.1.mlp.fc2.lora.up.weight 3 1\n"
          'META {"unet.lora_alpha": 8, "unet.r": 4, "unet.alpha_pattern": {"to_q": 2}, '
          '"text_encoder.use_rslora": true}\n'
          'TAGS {"10_koala": {"koala": 12, " bamboo ": 3}, "5_x": {"koala": 1, "tree": 2}}\n')
    write("lora", "keys_lycoris", "KEYS\nlora_unet_x.hada_w1_a 2 2\nlora_unet_x.hada_w1_b 2 2\n")
    write("lora", "keys_incomplete", "KEYS\nlora_unet_a.lora_down.weight 2 2\nunet.b.lora_B.weight 2 2\n"
          "lora_unet_c.alpha 0\n")
    write("lora", "kohya_file", st_file([
        ("lora_unet_mid_block_attentions_0_proj_out.lora_down.weight", "F16", [2, 4], b"\x00\x3c" * 8),
        ("lora_unet_mid_block_attentions_0_proj_out.lora_up.weight", "BF16", [4, 2], b"\x80\x3f" * 8),
        ("lora_unet_mid_block_attentions_0_proj_out.alpha", "F32", [], f32(1, 2.0))],
        {"ss_tag_frequency": '{"1_koala": {"koala": 3}}', "modelspec.trigger_phrase": "koala"}))
    for f in ("lokr", "missing_up", "rank_mismatch", "peft_rank_mismatch"):
        with open(os.path.join(FIX, "lora", "malformed", f + ".safetensors"), "rb") as fh:
            write("lora", f, fh.read())

    # ---- hub: model_index.json, a repo's file list, names
    with open(os.path.join(FIX, "tiny-koala-700m", "model_index.json")) as fh:
        index = fh.read()
    files = ["model_index.json", ".gitattributes", "README.md", "unet/config.json",
             "unet/diffusion_pytorch_model.safetensors", "unet/diffusion_pytorch_model.fp16.safetensors",
             "unet/diffusion_pytorch_model.bin", "vae/config.json",
             "vae/diffusion_pytorch_model-00001-of-00002.safetensors",
             "vae/diffusion_pytorch_model-00002-of-00002.safetensors",
             "vae/diffusion_pytorch_model.safetensors.index.json",
             "text_encoder/model.fp16.safetensors", "text_encoder/model.safetensors.index.fp16.json",
             "text_encoder_2/model.safetensors.fp16.index.json", "tokenizer/vocab.json", "tokenizer/merges.txt",
             "tokenizer_2/spiece.model", "scheduler/scheduler_config.json", "unet/../../etc/passwd",
             "vae_decoder/model.onnx", "sd_xl_base_1.0.safetensors"]
    names = ["etri-vilab/koala-700m-llava-cap", "koala", "a/b/c", "-x/y", "main", "refs/pr/1",
             "0123456789abcdef0123456789abcdef01234567", 'W/"abc123"', '"0f1e2d"', "unet/config.json", "../x",
             "a b", ""]
    listing = json.dumps({"_id": "x", "id": "etri-vilab/koala-700m", "sha": "0123456789abcdef0123456789abcdef01234567",
                          "siblings": [{"rfilename": "model_index.json", "size": 676, "blobId": "ABCDEF"},
                                       {"rfilename": "unet/diffusion_pytorch_model.safetensors", "size": 1024,
                                        "blobId": "0f", "lfs": {"sha256": "AB" * 32, "size": 1024, "pointerSize": 134}},
                                       {"rfilename": 3}, "x"]})
    headers = ("HTTP/1.1 302 Found\r\nLocation: https://cdn-lfs.hf.co/repos/ab/cd?x=1\r\n"
               "X-Linked-Etag: \"abc123\"\r\nX-Linked-Size: 1024\r\nX-Repo-Commit: 0123\r\n"
               "HTTP/2 200 \r\nETag: W/\"0f1e\"\r\ncontent-length: 99999999999999999999\r\nx-error-code: GatedRepo\r\n")
    write("hub", "koala_repo", index + "\n--\n" + "\n".join(files) + "\n--\n" + "\n".join(names) + "\n--\n" +
          listing + "\n--\n" + headers)
    write("hub", "sd_repo", json.dumps({"_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "U"],
                                        "vae": ["diffusers", "V"], "safety_checker": [None, None]}) +
          "\n--\nunet/diffusion_pytorch_model.fp16.safetensors\nvae/x.safetensors\nmodel_index.json\n--\nx/y\n")
    write("hub", "bad_index", "[1,2]\n--\nmodel_index.json\n--\nW/\n")

    # ---- image (img2img / inpainting inputs)
    image_corpus()


if __name__ == "__main__":
    main()
