// LoRA files (internal): kohya/A1111 (.lora_down/.lora_up/.alpha, `lora_unet_`, `lora_te1_`, `lora_te2_`) and
// diffusers/PEFT (`unet.`/`text_encoder.`/`text_encoder_2.` + `.lora_A/.lora_B`, alpha in the
// `lora_adapter_metadata` JSON, else = rank). Reading, validation, A1111's short hash and trigger words; the merge
// into the models is pipeline/lora.cpp. Spec: docs/features-spec.md section 3.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace koala::models {

enum class LoraComponent { Unet, TextEncoder1, TextEncoder2 };

struct LoraModule {
    LoraComponent component = LoraComponent::Unet;
    std::string key;      // the module part of the file's key: "lora_unet_down_blocks_0_resnets_0_conv1" (kohya,
                          // prefix included) or "down_blocks.0.resnets.0.conv1" (PEFT, component prefix removed)
    bool kohya = false;   // underscore names (kohya/A1111) or dotted module paths (diffusers/PEFT)
    at::Tensor down, up;  // float32 CPU: [r,in] or [r,in,kh,kw]; [out,r] or [out,r,1,1]
    double scale = 1.0;   // alpha / rank (1 without alpha for kohya; alpha from metadata else rank for PEFT)
    std::int64_t rank() const { return down.size(0); }
};

struct LoraFile {
    std::string path;
    std::string format;  // "kohya" or "peft"
    std::vector<LoraModule> modules;
};

// Reads and validates a LoRA file. Throws koala::Error(ModelFormat) naming the file and what is wrong: a LyCORIS
// type (LoHa, LoKr, ...) by name, an incomplete pair, ranks that disagree, an unknown key; Error(Io) when
// unreadable; a truncated file is refused by the safetensors reader.
LoraFile readLoraFile(const std::string& path);

// AUTOMATIC1111's hashes (modules/hashes.py addnet_hash_safetensors): sha256 of the file after the 8-byte length and
// the JSON header, as 64 hex digits; the short hash is its first 12.
std::string loraHash(const std::string& path);
std::string sha256Hex(const std::uint8_t* data, std::size_t size);

// Trigger words from the safetensors metadata: `modelspec.trigger_phrase` (comma-separated), else the tags of
// kohya's `ss_tag_frequency` by frequency (at most `maxTags`). Empty when there is no such metadata.
std::vector<std::string> loraTriggerWords(const std::string& path, std::size_t maxTags = 10);
// "kohya", "peft", or "" when the file's key names are neither (a header read only).
std::string loraFormatOf(const std::string& path);

}  // namespace koala::models
