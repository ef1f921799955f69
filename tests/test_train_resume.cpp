// Checkpoints and resuming on the CPU reference backend, in process: a run stopped at an epoch
// boundary or in the middle of an epoch, written to a checkpoint file, loaded into a new backend
// and resumed ends bit-identical to the uninterrupted run (tests/resume_check.h); the checkpoint
// file holds every field it promises, refuses damage and model files, and its writes clean up the
// temporary files of writes that never finished. (The GPU twin of the resume test runs on the
// simulator: tests/kernels/test_gpu_resume.cpp.)
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <utility>

#include "checkpoint.h"
#include "errors.h"
#include "model_file.h"
#include "model_io.h"
#include "resume_check.h"
#include "temp_dir.h"

namespace convnet::test {
namespace {

const BackendFactory kCpu = [](const Model& m, const BackendConfig& c) { return make_cpu_backend(m, c); };

class CpuResume : public ::testing::TestWithParam<const char*> {};

TEST_P(CpuResume, AtEveryKindOfPointIsBitIdentical) {
  ResumeCase c;
  c.optimizer = GetParam();
  // 4 steps per epoch, 3 epochs: the first step; mid epoch 1; an epoch boundary (step 4: the stop
  // comes after the last step, so the run validates, checkpoints at the boundary and stops); mid
  // epoch 3, the epoch after a boundary; the last step of the run.
  for (int64_t stop : {1, 2, 4, 9, 12}) expect_resume_is_bit_identical(kCpu, c, stop);
}

TEST_P(CpuResume, RaisingEpochsContinuesAFinishedRun) {
  ResumeCase c;
  c.optimizer = GetParam();
  expect_longer_resume_is_bit_identical(kCpu, c, 1);
}

INSTANTIATE_TEST_SUITE_P(Optimizers, CpuResume, ::testing::Values("adam", "sgd"));

TEST(CpuResume, SeedNetworkWithPartialLastBatch) {
  ResumeCase c;
  c.arch = "seed";
  c.batch = 24;
  c.train_images = 100;  // 80 trained: 4 steps, the last one of 8 samples
  c.epochs = 2;
  expect_resume_is_bit_identical(kCpu, c, 6);
}

// ---- the file ------------------------------------------------------------------------------------

Checkpoint written_checkpoint(const std::string& path) {
  ResumeCase c;
  c.optimizer = "sgd";
  const TrainRecipe recipe = recipe_of(c);
  const Model model = build_model(recipe.arch);
  auto b = make_cpu_backend(model, backend_config_of(recipe));
  run(*b, bar_dataset(c.train_images, 16, 1), recipe, 3, TrainState{}, 6, path, 0);  // stops mid epoch 2
  return load_checkpoint(path);
}

TEST(Checkpoint, HoldsTheRecipeThePositionAndTheOptimizerState) {
  TempDir dir("convnet_ckpt");
  const std::string path = dir.file("run.ckpt");
  const Checkpoint c = written_checkpoint(path);
  EXPECT_EQ(c.recipe.arch, build_model("conv4-pool-flatten-dropout0.5-dense10").spec);
  EXPECT_EQ(c.recipe.dataset, "mnist");
  EXPECT_EQ(c.recipe.train_images, 80);
  EXPECT_EQ(c.recipe.batch, 16);
  EXPECT_EQ(c.recipe.val_split, 0.2);
  EXPECT_EQ(c.recipe.seed, 7u);
  EXPECT_EQ(c.recipe.optimizer.kind, "sgd");
  EXPECT_EQ(c.recipe.optimizer.lr, 0.05f);
  EXPECT_EQ(c.recipe.optimizer.momentum, 0.9f);
  EXPECT_TRUE(c.recipe.optimizer.nesterov);
  EXPECT_EQ(c.settings.epochs, 3);
  EXPECT_EQ(c.state.epochs_done, 1);
  EXPECT_EQ(c.state.epoch_step, 2);
  EXPECT_EQ(c.state.global_step, 6);
  EXPECT_EQ(c.state.partial.count, 32);
  EXPECT_GT(c.state.partial.loss_sum, 0.0);
  EXPECT_EQ(c.device, "cpu: reference layers, OpenBLAS GEMM");
  EXPECT_NE(c.m, std::vector<float>(c.m.size(), 0.0f)) << "SGD velocity is saved";

  // The tensors and metadata keys checkpoint.h documents.
  const ModelFile f = load_model_file(path);
  for (const ParamEntry& p : c.model.params)
    for (const std::string prefix : {"", "optimizer.m/", "optimizer.v/"})
      EXPECT_NE(f.find(prefix + p.name), nullptr) << prefix + p.name;
  for (const char* key : {"format", "dataset", "train_images", "batch_size", "val_split", "limit_train", "seed",
                          "optimizer", "lr", "beta1", "beta2", "eps", "momentum", "nesterov", "epochs",
                          "checkpoint_every", "log", "save", "test", "epochs_done", "epoch_step", "global_step",
                          "partial_loss_sum", "partial_correct", "partial_count", "device", "created",
                          "convnet_version"})
    EXPECT_NE(f.meta(key, "<none>"), "<none>") << key;
  EXPECT_EQ(f.meta("format"), "convnet-checkpoint 2");
}

// load (load_checkpoint by default) throws InputError naming path and containing needle.
void expect_refused(
    const std::string& path, const std::string& needle,
    const std::function<void(const std::string&)>& load = [](const std::string& p) { load_checkpoint(p); }) {
  try {
    load(path);
    ADD_FAILURE() << "accepted " << path;
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(Checkpoint, RefusesModelFilesDamageAndInconsistentMetadata) {
  TempDir dir("convnet_ckpt");
  const std::string path = dir.file("run.ckpt");
  written_checkpoint(path);
  const ModelFile good = load_model_file(path);

  // A model written by --save is not a checkpoint.
  const Model model = build_model(good.arch);
  save_model_file(dir.file("model.cnvn"), make_model_file(model, init_params(model, 1), {{"dataset", "mnist"}}));
  expect_refused(dir.file("model.cnvn"), "not a training checkpoint");

  // One flipped byte: the CRC says so.
  std::vector<char> bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  bytes[bytes.size() / 2] ^= 0x10;
  std::ofstream(dir.file("flipped.ckpt"), std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  expect_refused(dir.file("flipped.ckpt"), "checksum");

  // Well-formed files whose content does not add up.
  auto with_all = [&](const std::vector<std::pair<std::string, std::string>>& edits) {
    ModelFile f = good;
    for (auto& [k, v] : f.metadata)
      for (const auto& [key, value] : edits)
        if (k == key) v = value;
    save_model_file(dir.file("edited.ckpt"), f);
    return dir.file("edited.ckpt");
  };
  auto with = [&](const std::string& key, const std::string& value) { return with_all({{key, value}}); };
  expect_refused(with("epoch_step", "4"), "'epoch_step'");  // an epoch has 4 steps: 0..3
  expect_refused(with("global_step", "7"), "'global_step'");
  expect_refused(with("optimizer", "rmsprop"), "'optimizer'");
  expect_refused(with("lr", "fast"), "'lr'");
  expect_refused(with("dataset", "kmnist"), "'dataset'");  // resume would not know where to find it
  expect_refused(with("format", "convnet-checkpoint 9"), "'format'");
  // Format 1 rounded the validation split; Keras (and format 2) floors it. 80 images at 0.2 split the
  // same either way (64), so such a checkpoint reads; 82 do not (65.6: 66 rounded, 65 floored), so
  // resuming it would shuffle its epoch over other images: refused, saying why.
  EXPECT_EQ(load_checkpoint(with("format", "convnet-checkpoint 1")).recipe.train_images, 80);
  expect_refused(with_all({{"format", "convnet-checkpoint 1"}, {"train_images", "82"}}),
                 "validation split rounded (66 training images) where this build floors it as Keras does (65)");
  ModelFile missing = good;
  missing.tensors.pop_back();
  save_model_file(dir.file("missing.ckpt"), missing);
  expect_refused(dir.file("missing.ckpt"), "tensors");
  expect_refused(dir.file("absent.ckpt"), "cannot open");
}

// What eval, predict and show load: the parameters of a checkpoint (checked as --resume checks it) or
// of a --save model file.
TEST(Checkpoint, EvalPredictAndShowLoadItsParametersOrAModelFile) {
  TempDir dir("convnet_ckpt");
  const std::string path = dir.file("run.ckpt");
  const Checkpoint c = written_checkpoint(path);
  auto [from_ckpt, params, ckpt_dataset] = load_model_or_checkpoint(path);
  EXPECT_EQ(from_ckpt.spec, c.model.spec);
  EXPECT_EQ(params, c.params);
  EXPECT_NE(params, c.m) << "the parameters, not a moment";
  EXPECT_EQ(ckpt_dataset, c.recipe.dataset);

  // The dataset a model file records is what eval and show default to; a name this build does not
  // know is ignored (the metadata of a model file is informational).
  const std::vector<float> weights = init_params(c.model, 3);
  save_model_file(dir.file("model.cnvn"), make_model_file(c.model, weights, {{"dataset", "fashion"}}));
  auto [from_model, model_params, model_dataset] = load_model_or_checkpoint(dir.file("model.cnvn"));
  EXPECT_EQ(from_model.spec, c.model.spec);
  EXPECT_EQ(model_params, weights);
  EXPECT_EQ(model_dataset, "fashion");
  save_model_file(dir.file("kmnist.cnvn"), make_model_file(c.model, weights, {{"dataset", "kmnist"}}));
  EXPECT_EQ(load_model_or_checkpoint(dir.file("kmnist.cnvn")).dataset, "");

  // A damaged checkpoint is refused as --resume refuses it, not read as a model file.
  ModelFile f = load_model_file(path);
  f.tensors.pop_back();
  save_model_file(dir.file("missing.ckpt"), f);
  auto load_for_eval = [](const std::string& p) { load_model_or_checkpoint(p); };
  expect_refused(dir.file("missing.ckpt"), "tensors", load_for_eval);
  expect_refused(dir.file("absent.ckpt"), "cannot open", load_for_eval);
}

TEST(Checkpoint, AWriteRemovesTemporaryFilesOfWritesThatNeverFinished) {
  TempDir dir("convnet_ckpt");
  const std::string path = dir.file("run.ckpt");
  for (const char* name : {"run.ckpt.tmp.12345", "run.ckpt.tmp.99", "run.ckpt.tmp.notapid", "other.ckpt.tmp.5"})
    std::ofstream(dir.file(name)) << "half a checkpoint";
  written_checkpoint(path);
  std::vector<std::string> names = dir.entries();
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"other.ckpt.tmp.5", "run.ckpt", "run.ckpt.tmp.notapid"}));
}

}  // namespace
}  // namespace convnet::test
