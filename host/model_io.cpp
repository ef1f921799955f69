// Model <-> model file (see model_io.h).
#include "model_io.h"

#include <algorithm>

#include "errors.h"

namespace convnet {
namespace {

std::string shape_text(const std::vector<uint64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + ")";
}

std::vector<uint64_t> to_u64(const std::vector<int>& shape) { return {shape.begin(), shape.end()}; }

}  // namespace

ModelFile make_model_file(const Model& model, const std::vector<float>& arena,
                          std::vector<std::pair<std::string, std::string>> metadata) {
  CONVNET_CHECK(arena.size() == model.arena_size, "arena size does not match the model");
  ModelFile f;
  f.arch = model.spec;
  f.metadata = std::move(metadata);
  for (const ParamEntry& p : model.params) {
    NamedTensor t;
    t.name = p.name;
    t.shape = to_u64(p.shape);
    t.data.assign(arena.begin() + static_cast<std::ptrdiff_t>(p.offset),
                  arena.begin() + static_cast<std::ptrdiff_t>(p.offset + p.count));
    f.tensors.push_back(std::move(t));
  }
  return f;
}

std::pair<Model, std::vector<float>> load_trained_model(const std::string& path) {
  return load_trained_model(load_model_file(path), path);
}

std::pair<Model, std::vector<float>> load_trained_model(const ModelFile& f, const std::string& path) {
  Model model;
  try {
    model = build_model(f.arch);
  } catch (const UsageError& e) {
    throw InputError(path + ": invalid architecture in model file: " + e.what());
  }
  if (f.tensors.size() != model.params.size())
    throw InputError(path + ": architecture mismatch: file has " + std::to_string(f.tensors.size()) +
                     " tensors, architecture '" + model.spec + "' needs " + std::to_string(model.params.size()));
  // Every tensor is checked before the arena is allocated: the arch string alone can describe
  // terabytes of parameters (conv4096x1-flatten-dense65536relu-dense10 in a 150-byte file), while
  // tensors that match it are really in the file, so the arena is then bounded by the file's size.
  for (const ParamEntry& p : model.params) {
    const NamedTensor* t = f.find(p.name);
    if (!t) throw InputError(path + ": architecture mismatch: tensor '" + p.name + "' is missing");
    if (t->shape != to_u64(p.shape) || t->data.size() != p.count)
      throw InputError(path + ": architecture mismatch: tensor '" + p.name + "' has shape " + shape_text(t->shape) +
                       ", architecture '" + model.spec + "' needs " + shape_text(to_u64(p.shape)));
  }
  std::vector<float> arena(model.arena_size, 0.0f);
  for (const ParamEntry& p : model.params) {
    const NamedTensor* t = f.find(p.name);
    std::copy(t->data.begin(), t->data.end(), arena.begin() + static_cast<std::ptrdiff_t>(p.offset));
  }
  return {std::move(model), std::move(arena)};
}

}  // namespace convnet
