// Model specification: parsing, shapes, parameter layout, initialisation, summary (see model.h).
#include "model.h"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <map>

#include "errors.h"
#include "idx.h"
#include "rng.h"

namespace convnet {
namespace {

const char* const kSeedSpec = "conv32-pool-conv64-pool-conv64-pool-flatten-dropout0.6-dense10";
const char* const kSeed96Spec = "conv32-pool-conv64-pool-conv96-pool-flatten-dropout0.6-dense10";
const char* const kKerasSpec = "conv32-pool-conv64-pool-flatten-dropout0.5-dense10";

[[noreturn]] void bad_token(const std::string& token, const std::string& why) {
  throw UsageError("--arch: bad layer '" + token + "': " + why +
                   " (tokens: conv<F>[x<K>], pool, flatten, dropout<rate>, dense<U>[relu]; presets: "
                   "seed, seed96, keras)");
}

// Parse a positive integer that makes up all of `digits`; -1 when it is not one.
int parse_count(const std::string& digits) {
  if (digits.empty() || digits.size() > 6) return -1;
  for (char ch : digits)
    if (ch < '0' || ch > '9') return -1;
  int v = std::stoi(digits);
  return v > 0 ? v : -1;
}

LayerSpec parse_token(const std::string& tok) {
  LayerSpec l;
  auto starts = [&](const char* p) { return tok.rfind(p, 0) == 0; };
  if (tok == "pool" || tok == "pool2") {
    l.kind = LayerKind::Pool;
  } else if (tok == "flatten") {
    l.kind = LayerKind::Flatten;
  } else if (starts("conv")) {
    l.kind = LayerKind::Conv;
    l.relu = true;
    std::string rest = tok.substr(4);
    size_t x = rest.find('x');
    l.units = parse_count(rest.substr(0, x));
    l.kernel = x == std::string::npos ? 3 : parse_count(rest.substr(x + 1));
    if (l.units < 0 || l.units > 4096) bad_token(tok, "filters must be an integer in 1..4096");
    if (l.kernel < 0 || l.kernel > 28) bad_token(tok, "kernel size must be an integer in 1..28");
  } else if (starts("dropout")) {
    l.kind = LayerKind::Dropout;
    std::string rest = tok.substr(7);
    char* end = nullptr;
    double r = rest.empty() ? -1 : std::strtod(rest.c_str(), &end);
    // The range is checked on the float the layers use: 0.99999999 < 1 rounds to 1.0f, and a rate
    // of 1 scales kept values by 1 / (1 - rate) = inf.
    l.rate = static_cast<float>(r);
    if (rest.empty() || *end != '\0' || !(r >= 0.0 && l.rate < 1.0f))
      bad_token(tok, "rate must be a number in [0, 1)");
  } else if (starts("dense")) {
    l.kind = LayerKind::Dense;
    std::string rest = tok.substr(5);
    if (rest.size() > 4 && rest.compare(rest.size() - 4, 4, "relu") == 0) {
      l.relu = true;
      rest.resize(rest.size() - 4);
    }
    l.units = parse_count(rest);
    if (l.units < 0 || l.units > 65536) bad_token(tok, "units must be an integer in 1..65536");
  } else {
    bad_token(tok, "unknown layer kind");
  }
  return l;
}

std::vector<LayerSpec> parse_spec(const std::string& text) {
  std::vector<LayerSpec> layers;
  std::string tok;
  for (char ch : text) {
    if (ch == '-' || ch == ',' || ch == ' ') {
      if (!tok.empty()) layers.push_back(parse_token(tok));
      tok.clear();
    } else {
      tok += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    }
  }
  if (!tok.empty()) layers.push_back(parse_token(tok));
  if (layers.empty()) throw UsageError("--arch: empty architecture");
  return layers;
}

// The canonical text of a dropout rate, which parse_token reads back (strtod, then float) as the
// same float: the canonical spec is what a model file stores, so it must rebuild the rate trained
// with, and it must not contain '-', the token separator. Plain "%g" broke both: 6 digits turned
// 0.9999999 into "1" (refused) and 0.00001 into "1e-05" (split into two tokens).
std::string format_rate(float r) {
  auto reads_back = [r](const char* text) { return static_cast<float>(std::strtod(text, nullptr)) == r; };
  char buf[96];
  for (int p = 6; p <= 9; ++p) {  // the shortest of 6..9 significant digits; 9 always round-trip
    std::snprintf(buf, sizeof buf, "%.*g", p, static_cast<double>(r));
    if (reads_back(buf)) break;
  }
  if (std::strchr(buf, 'e') == nullptr) return buf;
  for (int p = 1; p <= 64; ++p) {  // below 1e-4: fixed point; 64 decimals reach every float
    std::snprintf(buf, sizeof buf, "%.*f", p, static_cast<double>(r));
    if (reads_back(buf)) break;
  }
  return buf;
}

// Shapes, names and parameter entries for one layer appended to the model.
void add_layer(Model& m, const LayerSpec& spec, Shape in, std::map<std::string, int>& seen) {
  static const std::map<LayerKind, std::pair<const char*, const char*>> kNames = {
      {LayerKind::Conv, {"conv2d", "Conv2D"}},     {LayerKind::Pool, {"max_pooling2d", "MaxPooling2D"}},
      {LayerKind::Flatten, {"flatten", "Flatten"}}, {LayerKind::Dropout, {"dropout", "Dropout"}},
      {LayerKind::Dense, {"dense", "Dense"}}};
  Layer l;
  l.spec = spec;
  l.in = in;
  const auto& names = kNames.at(spec.kind);
  int n = seen[names.first]++;
  l.name = n == 0 ? names.first : std::string(names.first) + "_" + std::to_string(n);
  l.type = names.second;
  std::string tok = spec_string({spec});
  auto add_param = [&](const std::string& suffix, std::vector<int> shape, size_t fan_in, size_t fan_out) {
    ParamEntry p;
    p.name = l.name + "." + suffix;
    p.shape = std::move(shape);
    p.count = 1;
    for (int d : p.shape) p.count *= static_cast<size_t>(d);
    p.offset = m.arena_size;
    p.fan_in = fan_in;
    p.fan_out = fan_out;
    m.arena_size += (p.count + kParamAlign - 1) / kParamAlign * kParamAlign;
    m.param_count += p.count;
    m.params.push_back(p);
    return static_cast<int>(m.params.size()) - 1;
  };
  switch (spec.kind) {
    case LayerKind::Conv: {
      if (in.flat) bad_token(tok, "a convolution cannot follow flatten or dense");
      if (in.h < spec.kernel || in.w < spec.kernel)
        bad_token(tok, "input " + std::to_string(in.h) + "x" + std::to_string(in.w) + " is smaller than the kernel");
      l.out = {spec.units, in.h - spec.kernel + 1, in.w - spec.kernel + 1, false};
      size_t kk = static_cast<size_t>(spec.kernel) * spec.kernel;
      l.weight = add_param("weight", {spec.units, in.c, spec.kernel, spec.kernel}, kk * in.c, kk * spec.units);
      l.bias = add_param("bias", {spec.units}, 0, 0);
      break;
    }
    case LayerKind::Pool:
      if (in.flat) bad_token(tok, "pooling needs an image-shaped input, not a flat vector");
      if (in.h < 2 || in.w < 2)
        bad_token(tok, "input " + std::to_string(in.h) + "x" + std::to_string(in.w) + " is too small to pool");
      l.out = {in.c, in.h / 2, in.w / 2, false};
      break;
    case LayerKind::Flatten:
      if (in.flat) bad_token(tok, "input is already flat");
      l.out = {static_cast<int>(in.size()), 1, 1, true};
      break;
    case LayerKind::Dropout:
      l.out = in;
      break;
    case LayerKind::Dense:
      if (!in.flat) bad_token(tok, "dense needs a flat input: add 'flatten' before it");
      l.out = {spec.units, 1, 1, true};
      l.weight = add_param("weight", {spec.units, in.c}, static_cast<size_t>(in.c), static_cast<size_t>(spec.units));
      l.bias = add_param("bias", {spec.units}, 0, 0);
      break;
  }
  m.layers.push_back(l);
}

}  // namespace

std::vector<std::pair<std::string, std::string>> arch_presets() {
  return {{"seed", kSeedSpec}, {"seed96", kSeed96Spec}, {"keras", kKerasSpec}};
}

std::string spec_string(const std::vector<LayerSpec>& layers) {
  std::string s;
  for (const LayerSpec& l : layers) {
    if (!s.empty()) s += '-';
    switch (l.kind) {
      case LayerKind::Conv:
        s += "conv" + std::to_string(l.units) + (l.kernel != 3 ? "x" + std::to_string(l.kernel) : "");
        break;
      case LayerKind::Pool: s += "pool"; break;
      case LayerKind::Flatten: s += "flatten"; break;
      case LayerKind::Dropout: s += "dropout" + format_rate(l.rate); break;
      case LayerKind::Dense: s += "dense" + std::to_string(l.units) + (l.relu ? "relu" : ""); break;
    }
  }
  return s;
}

Model build_model(const std::string& arch) {
  std::string text = arch;
  for (const auto& preset : arch_presets())
    if (text == preset.first) text = preset.second;
  std::vector<LayerSpec> specs = parse_spec(text);
  Model m;
  m.spec = spec_string(specs);
  std::map<std::string, int> seen;
  Shape shape{kInputChannels, kImageSide, kImageSide, false};
  for (const LayerSpec& spec : specs) {
    add_layer(m, spec, shape, seen);
    shape = m.layers.back().out;
  }
  const LayerSpec& last = specs.back();
  if (last.kind != LayerKind::Dense || last.relu || last.units != kNumClasses)
    throw UsageError("--arch: the last layer must be dense" + std::to_string(kNumClasses) +
                     " (softmax output), found '" + spec_string({last}) + "'");
  return m;
}

std::vector<float> init_params(const Model& model, uint64_t seed) {
  std::vector<float> arena(model.arena_size, 0.0f);
  for (size_t t = 0; t < model.params.size(); ++t) {
    const ParamEntry& p = model.params[t];
    if (p.fan_in == 0) continue;  // biases start at zero, as in Keras
    double limit = std::sqrt(6.0 / static_cast<double>(p.fan_in + p.fan_out));
    for (size_t i = 0; i < p.count; ++i) {
      float u = uniform01(hash4(seed ^ (kStreamInit << 56), t, i, 0));
      arena[p.offset + i] = static_cast<float>(limit * (2.0 * u - 1.0));
    }
  }
  return arena;
}

std::string keras_shape(const Shape& s) {
  if (s.flat) return "(None, " + std::to_string(s.c) + ")";
  return "(None, " + std::to_string(s.h) + ", " + std::to_string(s.w) + ", " + std::to_string(s.c) + ")";
}

std::string summary_table(const Model& model) {
  auto row = [](const std::string& a, const std::string& b, const std::string& c) {
    char buf[160];
    std::snprintf(buf, sizeof buf, " %-34s%-22s%11s\n", a.c_str(), b.c_str(), c.c_str());
    return std::string(buf);
  };
  auto with_commas = [](size_t v) {
    std::string s = std::to_string(v);
    for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<size_t>(i), ",");
    return s;
  };
  std::string rule(68, '=');
  std::string out = "Model: \"sequential\"   (" + model.spec + ")\n" + rule + "\n";
  out += row("Layer (type)", "Output Shape", "Param #") + rule + "\n";
  for (const Layer& l : model.layers) {
    size_t n = 0;
    if (l.weight >= 0) n += model.params[l.weight].count;
    if (l.bias >= 0) n += model.params[l.bias].count;
    out += row(l.name + " (" + l.type + ")", keras_shape(l.out), with_commas(n));
  }
  out += rule + "\n";
  out += "Total params: " + with_commas(model.param_count) + "\n";
  out += "Trainable params: " + with_commas(model.param_count) + "\n";
  out += "Non-trainable params: 0\n";
  return out;
}

}  // namespace convnet
