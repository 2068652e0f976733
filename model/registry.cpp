// The model registry (see registry.h) and the t2v sizes.
#include "model/registry.h"

#include "common/error.h"
#include "model/counts.h"

namespace reel::model {
namespace {

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// CPU scale: a few million parameters, learns the synthetic shapes data in minutes on 2 cores.
// max_grid h/w = 12 so 16x24 and 24x16 (F x H x W = 8x16x24, 8x24x16) pixel buckets fit with the
// 1x2x2 patch.
T2VOptions t2v_tiny() {
  T2VOptions o;
  o.transformer.in_channels = 3;
  o.transformer.patch = {1, 2, 2};
  o.transformer.dim = 128;
  o.transformer.depth = 4;
  o.transformer.heads = 4;
  o.transformer.max_grid = {8, 12, 12};
  TextEncoderSlotOptions byte;
  byte.encoder = TextEncoderOptions{128, 2, 4, 96};
  o.text = {byte};
  return o;
}

// Movie Gen Video 30B (MOVIEGEN.md): 48 layers, width 6144, SwiGLU 16384, 48 heads (head dim
// 128), 16 TAE latent channels, 1x2x2 patches; position tables for 32 latent frames and
// 768 px / 16 = 48 patches per side. Text, three frozen slots as published: UL2's encoder (the
// 20B model's: 32 layers, width 4096, 16 heads of 256, FFN 16384), Long-prompt MetaCLIP's text
// tower (ViT-H/14's: 24 layers, width 1024, 16 heads, context 256) and ByT5-small's encoder for
// quoted text (12 layers, width 1472, 6 heads of 64, FFN 3584).
std::vector<TextEncoderSlotOptions> moviegen_text_slots() {
  TextEncoderSlotOptions ul2, metaclip, byt5;
  ul2.name = ul2.type = "ul2";
  ul2.encoder = TextEncoderOptions{4096, 32, 16, 512, 0, 16384, 256, 0};
  metaclip.name = metaclip.type = "metaclip";
  metaclip.encoder = TextEncoderOptions{1024, 24, 16, 256, 0, 4096, 0, 0};
  byt5.name = byt5.type = "byt5";
  byt5.encoder = TextEncoderOptions{1472, 12, 6, 256, 0, 3584, 64, 0};
  byt5.input = "quoted";
  for (auto* s : {&ul2, &metaclip, &byt5}) s->trainable = false;
  return {ul2, metaclip, byt5};
}

T2VOptions t2v_30b() {
  T2VOptions o;
  o.transformer.in_channels = 16;
  o.transformer.patch = {1, 2, 2};
  o.transformer.dim = 6144;
  o.transformer.depth = 48;
  o.transformer.heads = 48;
  o.transformer.ffn_dim = 16384;
  o.transformer.max_grid = {32, 48, 48};
  o.text = moviegen_text_slots();
  return o;
}

std::map<std::string, ModelSpec> build_registry() {
  std::map<std::string, ModelSpec> specs;
  ModelSpec t2v;
  t2v.name = "t2v";
  t2v.description = "Movie Gen text-to-video: text encoder slots (byte, byt5, ul2, metaclip) + adaLN video transformer with text cross-attention";
  t2v.sizes = {{"tiny", t2v_tiny()}, {"30b", t2v_30b()}};
  t2v.build = [](const T2VOptions& o) { return T2VModel(o); };
  t2v.param_count = [](const T2VOptions& o) { return param_count(o); };
  specs.emplace(t2v.name, std::move(t2v));
  return specs;
}

const std::map<std::string, ModelSpec>& registry() {
  static const std::map<std::string, ModelSpec> specs = build_registry();
  return specs;
}

}  // namespace

const ModelSpec& find_model(const std::string& name) {
  auto it = registry().find(name);
  if (it == registry().end()) fail("unknown model '", name, "'; known models: ", join(model_names()));
  return it->second;
}

std::vector<std::string> model_names() {
  std::vector<std::string> names;
  for (const auto& entry : registry()) names.push_back(entry.first);
  return names;
}

const T2VOptions& find_size(const ModelSpec& spec, const std::string& size) {
  auto it = spec.sizes.find(size);
  if (it == spec.sizes.end()) {
    std::vector<std::string> known;
    for (const auto& entry : spec.sizes) known.push_back(entry.first);
    fail("model '", spec.name, "' has no size '", size, "'; known sizes: ", join(known));
  }
  return it->second;
}

}  // namespace reel::model
