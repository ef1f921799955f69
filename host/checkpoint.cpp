// Training checkpoints (see checkpoint.h): a model file with the optimiser state, the recipe and the
// position of the run.
#include "checkpoint.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <utility>

#include "errors.h"
#include "model_file.h"
#include "model_io.h"
#include "output_file.h"

namespace convnet {
namespace {

// Format 2: the validation split floors n * (1 - split) as Keras does. Format 1 rounded it, which
// gives one more training image for some counts; such a checkpoint is refused (resuming it here would
// shuffle its epoch over other images), the others read as format 2.
constexpr const char* kFormat = "convnet-checkpoint 2";
constexpr const char* kFormatRounded = "convnet-checkpoint 1";
constexpr const char* kMomentPrefix[2] = {"optimizer.m/", "optimizer.v/"};

// Decimal text that strtof/strtod read back to the same bits.
std::string text(float v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(v));
  return buf;
}
std::string text(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

std::vector<std::pair<std::string, std::string>> metadata(const TrainRecipe& r, const RunSettings& s,
                                                          const TrainState& st, const std::string& device) {
  const OptimizerConfig& o = r.optimizer;
  return {{"format", kFormat},
          {"dataset", r.dataset},
          {"train_images", std::to_string(r.train_images)},
          {"batch_size", std::to_string(r.batch)},
          {"val_split", text(r.val_split)},
          {"limit_train", std::to_string(r.limit_train)},
          {"seed", std::to_string(r.seed)},
          {"optimizer", o.kind},
          {"lr", text(o.lr)},
          {"beta1", text(o.beta1)},
          {"beta2", text(o.beta2)},
          {"eps", text(o.eps)},
          {"momentum", text(o.momentum)},
          {"nesterov", o.nesterov ? "1" : "0"},
          {"epochs", std::to_string(s.epochs)},
          {"checkpoint_every", std::to_string(s.checkpoint_every)},
          {"log", s.log},
          {"save", s.save},
          {"test", s.test ? "1" : "0"},
          {"epochs_done", std::to_string(st.epochs_done)},
          {"epoch_step", std::to_string(st.epoch_step)},
          {"global_step", std::to_string(st.global_step)},
          {"partial_loss_sum", text(st.partial.loss_sum)},
          {"partial_correct", std::to_string(st.partial.correct)},
          {"partial_count", std::to_string(st.partial.count)},
          {"device", device},
          {"created", utc_now()},
          {"convnet_version", CONVNET_VERSION}};
}

// Removes "<name>.tmp.<digits>" beside path: temporary files of writes that never finished (a
// second Ctrl-C, kill -9, power loss). Called after this process's own write has been renamed.
void remove_stale_temporaries(const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path target(output_target(path));  // the temporaries lie beside the file a link names
  const std::string prefix = target.filename().string() + ".tmp.";
  std::error_code ec;
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
    if (name.find_first_not_of("0123456789", prefix.size()) != std::string::npos) continue;
    std::error_code ignored;  // another run's cleanup may have got there first
    fs::remove(it->path(), ignored);
  }
}

// Typed, checked access to the metadata of one checkpoint file.
class Meta {
 public:
  Meta(const ModelFile& f, const std::string& path) : f_(f), path_(path) {}

  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    throw InputError(path_ + ": checkpoint metadata '" + key + "' " + what);
  }
  std::string str(const std::string& key) const {
    for (const auto& [k, v] : f_.metadata)
      if (k == key) return v;
    fail(key, "is missing");
  }
  int64_t integer(const std::string& key, int64_t lo, int64_t hi) const {
    const std::string s = str(key);
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(s.c_str(), &end, 10);
    if (s.empty() || *end != '\0' || errno == ERANGE || v < lo || v > hi)
      fail(key, "is '" + s + "', expected an integer from " + std::to_string(lo) + " to " + std::to_string(hi));
    return v;
  }
  uint64_t u64(const std::string& key) const {
    const std::string s = str(key);
    char* end = nullptr;
    errno = 0;
    const unsigned long long v = std::strtoull(s.c_str(), &end, 10);
    if (s.empty() || s[0] == '-' || *end != '\0' || errno == ERANGE)
      fail(key, "is '" + s + "', expected a non-negative integer");
    return v;
  }
  double real(const std::string& key) const {  // NaN allowed: a partial loss may be one
    const std::string s = str(key);
    char* end = nullptr;
    const double v = std::strtod(s.c_str(), &end);
    if (s.empty() || *end != '\0') fail(key, "is '" + s + "', expected a number");
    return v;
  }
  double finite(const std::string& key, double lo, double hi) const {
    const double v = real(key);
    if (!(v >= lo && v <= hi)) fail(key, "is " + str(key) + ", expected a number in [" + text(lo) + ", " + text(hi) + "]");
    return v;
  }
  bool flag(const std::string& key) const { return integer(key, 0, 1) != 0; }

 private:
  const ModelFile& f_;
  const std::string& path_;
};

TrainRecipe read_recipe(const Meta& m, const std::string& arch) {
  TrainRecipe r;
  r.arch = arch;
  r.dataset = m.str("dataset");
  if (r.dataset != "mnist" && r.dataset != "fashion") m.fail("dataset", "is '" + r.dataset + "', expected mnist or fashion");
  r.train_images = static_cast<int>(m.integer("train_images", 1, 1 << 30));
  r.batch = static_cast<int>(m.integer("batch_size", 1, 65536));
  r.val_split = m.finite("val_split", 0.0, 1.0);
  if (r.val_split >= 1.0) m.fail("val_split", "is 1, which leaves no training images");
  r.limit_train = static_cast<int>(m.integer("limit_train", 0, 1 << 30));
  r.seed = m.u64("seed");
  OptimizerConfig& o = r.optimizer;
  o.kind = m.str("optimizer");
  if (o.kind != "adam" && o.kind != "sgd") m.fail("optimizer", "is '" + o.kind + "', expected adam or sgd");
  o.lr = static_cast<float>(m.finite("lr", 1e-30, 10.0));
  o.beta1 = static_cast<float>(m.finite("beta1", 0.0, 1.0));
  o.beta2 = static_cast<float>(m.finite("beta2", 0.0, 1.0));
  o.eps = static_cast<float>(m.finite("eps", 0.0, 1.0));
  o.momentum = static_cast<float>(m.finite("momentum", 0.0, 1.0));
  o.nesterov = m.flag("nesterov");
  return r;
}

RunSettings read_settings(const Meta& m) {
  RunSettings s;
  s.epochs = static_cast<int>(m.integer("epochs", 1, 100000));
  s.checkpoint_every = static_cast<int>(m.integer("checkpoint_every", 0, 100000));
  s.log = m.str("log");
  s.save = m.str("save");
  s.test = m.flag("test");
  return s;
}

TrainState read_state(const Meta& m, int steps) {
  TrainState st;
  st.epochs_done = static_cast<int>(m.integer("epochs_done", 0, 100000));
  st.epoch_step = static_cast<int>(m.integer("epoch_step", 0, steps - 1));
  st.global_step = m.integer("global_step", 0, INT64_MAX);
  if (st.global_step != static_cast<int64_t>(st.epochs_done) * steps + st.epoch_step)
    m.fail("global_step", "is " + std::to_string(st.global_step) + ", but " + std::to_string(st.epochs_done) +
                              " epochs of " + std::to_string(steps) + " steps and " + std::to_string(st.epoch_step) +
                              " more make " + std::to_string(static_cast<int64_t>(st.epochs_done) * steps + st.epoch_step));
  st.partial.loss_sum = m.real("partial_loss_sum");
  st.partial.correct = m.integer("partial_correct", 0, INT64_MAX);
  st.partial.count = m.integer("partial_count", 0, INT64_MAX);
  return st;
}

// The arena named by prefix ("" for the parameters) from the file's tensors. Every tensor is checked
// against the model before the arena is allocated: a short file can name an architecture of
// terabytes, but tensors that match it must really be in the file.
std::vector<float> read_arena(const ModelFile& f, const Model& model, const std::string& prefix,
                              const std::string& path) {
  std::vector<const NamedTensor*> found;
  for (const ParamEntry& p : model.params) {
    const std::string name = prefix + p.name;
    const NamedTensor* t = f.find(name);
    if (!t) throw InputError(path + ": checkpoint tensor '" + name + "' is missing");
    if (t->shape != std::vector<uint64_t>(p.shape.begin(), p.shape.end()) || t->data.size() != p.count)
      throw InputError(path + ": checkpoint tensor '" + name + "' does not have the shape architecture '" +
                       model.spec + "' needs");
    found.push_back(t);
  }
  std::vector<float> arena(model.arena_size, 0.0f);
  for (size_t i = 0; i < found.size(); ++i)
    std::copy(found[i]->data.begin(), found[i]->data.end(),
              arena.begin() + static_cast<std::ptrdiff_t>(model.params[i].offset));
  return arena;
}

// A checkpoint from its file: the format, every metadata key, and the tensors against the architecture.
Checkpoint checkpoint_from(const ModelFile& f, const std::string& path) {
  const Meta meta(f, path);
  const bool rounded = f.meta("format") == kFormatRounded;
  if (f.meta("format") != kFormat && !rounded) {
    if (f.meta("format").empty())
      throw InputError(path + ": not a training checkpoint (a model file written by --save? --resume needs a file "
                              "written by --checkpoint or by an interrupted run)");
    meta.fail("format", "is '" + f.meta("format") + "', this build reads '" + kFormat + "'");
  }
  Checkpoint c;
  try {
    c.model = build_model(f.arch);
  } catch (const UsageError& e) {
    throw InputError(path + ": invalid architecture in checkpoint: " + e.what());
  }
  c.recipe = read_recipe(meta, c.model.spec);
  if (rounded) {
    const Split now = make_split(c.recipe.train_images, c.recipe.val_split, 0);
    const long then = std::lround(c.recipe.train_images * (1.0 - c.recipe.val_split));
    if (then != now.val_first)
      throw InputError(path + ": written by an earlier build whose validation split rounded (" + std::to_string(then) +
                       " training images) where this build floors it as Keras does (" +
                       std::to_string(now.val_first) + "); resume, evaluate or predict with it using that build");
  }
  const int steps = steps_per_epoch(c.recipe);
  if (steps <= 0) meta.fail("val_split", "leaves no training images");
  c.settings = read_settings(meta);
  c.state = read_state(meta, steps);
  c.device = f.meta("device");
  if (f.tensors.size() != 3 * c.model.params.size())
    throw InputError(path + ": checkpoint has " + std::to_string(f.tensors.size()) + " tensors, architecture '" +
                     c.model.spec + "' needs " + std::to_string(3 * c.model.params.size()));
  c.params = read_arena(f, c.model, "", path);
  c.m = read_arena(f, c.model, kMomentPrefix[0], path);
  c.v = read_arena(f, c.model, kMomentPrefix[1], path);
  return c;
}

}  // namespace

int steps_per_epoch(const TrainRecipe& recipe) {
  const Split split = make_split(recipe.train_images, recipe.val_split, recipe.limit_train);
  return (split.train_count + recipe.batch - 1) / recipe.batch;
}

void save_checkpoint(const std::string& path, const Model& model, const Backend& backend, const TrainRecipe& recipe,
                     const RunSettings& settings, const TrainState& state) {
  ModelFile f = make_model_file(model, backend.get_arena(Arena::Params),
                                metadata(recipe, settings, state, backend.describe()));
  const Arena moments[2] = {Arena::OptimizerM, Arena::OptimizerV};
  for (int k = 0; k < 2; ++k) {
    ModelFile moment = make_model_file(model, backend.get_arena(moments[k]), {});
    for (NamedTensor& t : moment.tensors) {
      t.name = kMomentPrefix[k] + t.name;
      f.tensors.push_back(std::move(t));
    }
  }
  save_model_file(path, f);
  remove_stale_temporaries(path);
}

Checkpoint load_checkpoint(const std::string& path) { return checkpoint_from(load_model_file(path), path); }

TrainedModel load_model_or_checkpoint(const std::string& path) {
  const ModelFile f = load_model_file(path);
  if (f.meta("format").empty()) {
    auto [model, params] = load_trained_model(f, path);
    // The dataset is informational in a model file: a name this build does not know is ignored.
    std::string dataset = f.meta("dataset");
    if (dataset != "mnist" && dataset != "fashion") dataset.clear();
    return {std::move(model), std::move(params), std::move(dataset)};
  }
  Checkpoint c = checkpoint_from(f, path);
  return {std::move(c.model), std::move(c.params), c.recipe.dataset};
}

void restore_checkpoint(Backend& backend, const Checkpoint& checkpoint) {
  backend.set_arena(Arena::Params, checkpoint.params);
  backend.set_arena(Arena::OptimizerM, checkpoint.m);
  backend.set_arena(Arena::OptimizerV, checkpoint.v);
  backend.set_step(checkpoint.state.global_step);
}

}  // namespace convnet
