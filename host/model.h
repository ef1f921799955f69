// Model specification: the sequential network, its shapes, its parameter layout and initialisation.
//
// An architecture is a short spec string of layer tokens joined by '-' (or ','), e.g. the seed:
//   conv32-pool-conv64-pool-conv64-pool-flatten-dropout0.6-dense10
// Tokens: conv<F>[x<K>] (F filters, KxK kernel, default 3, valid padding, stride 1, ReLU),
// pool (max-pool 2x2 stride 2, floor), flatten, dropout<rate> (0 <= rate < 1),
// dense<U>[relu] (U units; the last layer must be dense10 without relu: softmax is in the loss).
// Named presets: seed (default), seed96, keras. Input is 1x28x28.
//
// The parameter layout table gives every tensor its offset in one flat arena; the CPU backend,
// the GPU backend and the model file all use it, so parameters compare flat across backends.
// Offsets are aligned to kParamAlign floats (256 bytes) for vectorised GPU access; the padding is
// zero and stays zero (its gradient is zero).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace convnet {

enum class LayerKind { Conv, Pool, Flatten, Dropout, Dense };

struct LayerSpec {
  LayerKind kind = LayerKind::Conv;
  int units = 0;      // conv filters or dense units
  int kernel = 0;     // conv kernel size
  float rate = 0.0f;  // dropout rate
  bool relu = false;  // conv always; dense when the token ends in "relu"
};

// Activation shape of one sample. flat: a vector of c features (h = w = 1).
struct Shape {
  int c = 0, h = 0, w = 0;
  bool flat = false;
  size_t size() const { return static_cast<size_t>(c) * h * w; }
};

struct ParamEntry {
  std::string name;          // e.g. "conv2d_1.weight"
  std::vector<int> shape;    // conv (OC, C, K, K), dense (O, I), bias (OC)
  size_t offset = 0;         // in floats, into the parameter arena
  size_t count = 0;          // number of values
  size_t fan_in = 0, fan_out = 0;  // Glorot limits (weights); 0 for biases
};

// One layer of the instantiated network.
struct Layer {
  LayerSpec spec;
  std::string name;   // Keras-style: conv2d, max_pooling2d_1, dense, ...
  std::string type;   // Conv2D, MaxPooling2D, Flatten, Dropout, Dense
  Shape in, out;
  int weight = -1, bias = -1;  // indices into Model::params, -1 when none
};

struct Model {
  std::string spec;              // canonical spec string
  std::vector<Layer> layers;
  std::vector<ParamEntry> params;
  size_t param_count = 0;        // trainable values (without padding)
  size_t arena_size = 0;         // floats including alignment padding
};

constexpr size_t kParamAlign = 64;
constexpr int kInputChannels = 1;

// Parse a preset name or a spec string and build shapes and the layout. Throws UsageError naming
// the offending token (flag --arch) for anything malformed or impossible (e.g. a conv on 1x1).
Model build_model(const std::string& arch);

// The canonical spec string for a list of layers.
std::string spec_string(const std::vector<LayerSpec>& layers);

// Names of the presets and their spec strings, for help texts.
std::vector<std::pair<std::string, std::string>> arch_presets();

// Glorot-uniform weights (limit sqrt(6 / (fan_in + fan_out))) and zero biases, from the
// counter-based hash of (seed, tensor index, element index): the same on every machine.
std::vector<float> init_params(const Model& model, uint64_t seed);

// Keras-style summary table: layer (type), output shape, parameters, totals.
std::string summary_table(const Model& model);

// "(None, 26, 26, 32)" or "(None, 64)", as Keras prints shapes (channels last).
std::string keras_shape(const Shape& s);

}  // namespace convnet
