// Training checkpoints: everything `convnet train --resume` needs to continue a run bit-identically.
//
// A checkpoint is a model file (model_file.h: checksummed, written atomically by temp + fsync +
// rename) with more in it:
//   arch      the canonical spec
//   tensors   "<param>" (the parameters, named and shaped as in a --save model file, e.g.
//             "conv2d.weight"), "optimizer.m/<param>" and "optimizer.v/<param>" (Adam's first and
//             second moments; SGD keeps its velocity in m and v stays zero). The arena's alignment
//             padding is not stored: it is zero and stays zero.
//   metadata  format           "convnet-checkpoint 2" (a --save model file has none: refused; format 1,
//                              whose validation split rounded, reads when the split is the same)
//             recipe, which a resumed run must keep (a flag that contradicts it is a usage error):
//               dataset, train_images (images in the training file), batch_size, val_split,
//               limit_train, seed, optimizer, lr, beta1, beta2, eps, momentum, nesterov
//             run settings, the defaults of a resumed run (flags override them):
//               epochs, checkpoint_every, log, save, test
//             position: epochs_done, epoch_step, global_step, and the partial epoch's training
//               metrics partial_loss_sum, partial_correct, partial_count (0 at an epoch boundary)
//             for people: device, created (UTC), convnet_version
// Numbers are decimal text that reads back to the same bits (floats with 9 significant digits,
// doubles with 17). The RNG is counter-based, so (seed, epoch, global step) is the whole random
// state (trainer.h).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "backend.h"
#include "model.h"
#include "trainer.h"

namespace convnet {

// What a run trains: must not change when it is resumed.
struct TrainRecipe {
  std::string arch;       // canonical spec
  std::string dataset = "mnist";
  int train_images = 0;   // images in the training file (the split depends on it)
  int batch = 128;
  double val_split = 0.1;
  int limit_train = 0;
  uint64_t seed = 1;
  OptimizerConfig optimizer;
};

// How a run was asked to go on: the defaults of a resumed run.
struct RunSettings {
  int epochs = 15;
  int checkpoint_every = 0;
  std::string log;   // --log, "" for none
  std::string save;  // --save, "" for none
  bool test = true;
};

struct Checkpoint {
  Model model;
  TrainRecipe recipe;
  RunSettings settings;
  TrainState state;
  std::vector<float> params, m, v;  // arenas, Model::arena_size floats each
  std::string device;               // the device that wrote it (informational)
};

// Writes the backend's parameters and optimiser state with recipe, settings and state to path,
// atomically, then removes stale "<path>.tmp.<pid>" files that an interrupted write left behind.
void save_checkpoint(const std::string& path, const Model& model, const Backend& backend, const TrainRecipe& recipe,
                     const RunSettings& settings, const TrainState& state);

// Reads and checks a checkpoint: the file (magic, lengths, CRC), that it is a checkpoint and not a
// model file, every metadata key, the tensors against the architecture, and that the position is
// inside the recipe's epoch. Throws InputError naming path and what is wrong.
Checkpoint load_checkpoint(const std::string& path);

// What eval, predict and show run: the model and parameters of a --save model file or of a
// checkpoint (checked as load_checkpoint does; its optimiser state is not used), and the dataset it
// was trained on, which eval and show evaluate unless --dataset says otherwise.
struct TrainedModel {
  Model model;
  std::vector<float> params;
  std::string dataset;  // "mnist" or "fashion" as the file records it; "" when it does not say
};

// The file is read once; a "format" metadata key marks a checkpoint. Throws InputError naming path.
TrainedModel load_model_or_checkpoint(const std::string& path);

// Gives a fresh backend (made with the checkpoint's seed, batch and optimiser) the checkpoint's
// parameters, optimiser state and step, ready for train_model(..., checkpoint.state).
void restore_checkpoint(Backend& backend, const Checkpoint& checkpoint);

// Steps per epoch under the recipe: ceil(training images after the split / batch).
int steps_per_epoch(const TrainRecipe& recipe);

}  // namespace convnet
