// Conversions between a trained model (spec + parameter arena) and the model file (model_file.h).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "model.h"
#include "model_file.h"

namespace convnet {

// One named tensor per ParamEntry, in layout order, plus the given metadata.
ModelFile make_model_file(const Model& model, const std::vector<float>& arena,
                          std::vector<std::pair<std::string, std::string>> metadata);

// Rebuild the model the file describes and its parameter arena. Throws InputError naming `path`
// when the architecture is invalid or a tensor is missing, extra or of the wrong shape.
std::pair<Model, std::vector<float>> load_trained_model(const std::string& path);
// The same for a file already read from path (path only names it in errors).
std::pair<Model, std::vector<float>> load_trained_model(const ModelFile& f, const std::string& path);

}  // namespace convnet
