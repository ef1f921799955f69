// Model specification: presets and their parameter counts, spec parsing and its errors, the
// parameter layout table, Glorot initialisation, the summary table.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>
#include <string>
#include <utility>

#include "errors.h"
#include "model.h"

namespace convnet {
namespace {

TEST(Model, SeedPresetMatchesKerasParameterCount) {
  Model m = build_model("seed");
  EXPECT_EQ(m.param_count, 56394u);
  EXPECT_EQ(m.spec, "conv32-pool-conv64-pool-conv64-pool-flatten-dropout0.6-dense10");
  ASSERT_EQ(m.layers.size(), 9u);
  // 28 -> conv 26 -> pool 13 -> conv 11 -> pool 5 (floor) -> conv 3 -> pool 1
  EXPECT_EQ(m.layers[0].out.h, 26);
  EXPECT_EQ(m.layers[3].out.h, 5);
  EXPECT_EQ(m.layers[5].out.h, 1);
  EXPECT_EQ(m.layers[6].out.c, 64);
  EXPECT_TRUE(m.layers[6].out.flat);
  EXPECT_FLOAT_EQ(m.layers[7].spec.rate, 0.6f);
}

TEST(Model, KerasAndSeed96Presets) {
  EXPECT_EQ(build_model("keras").param_count, 34826u);
  EXPECT_EQ(build_model("seed96").param_count, 75178u);
}

TEST(Model, SpecStringsRoundTripAndAcceptSeparators) {
  Model a = build_model("conv16x5, pool, flatten, dense32relu, dropout0.25, dense10");
  EXPECT_EQ(a.spec, "conv16x5-pool-flatten-dense32relu-dropout0.25-dense10");
  EXPECT_EQ(build_model(a.spec).spec, a.spec);
  EXPECT_EQ(a.layers[0].out.h, 24);
  EXPECT_EQ(a.layers[0].spec.kernel, 5);
  // 16*25+16 + (16*12*12)*32+32 + 32*10+10
  EXPECT_EQ(a.param_count, 416u + 73760u + 330u);
}

TEST(Model, BadSpecsNameTheToken) {
  struct Case {
    const char* spec;
    const char* expect;
  } cases[] = {
      {"conv32-pool-flatten-dense10x", "dense10x"},
      {"conv0-flatten-dense10", "conv0"},
      {"conv32-pool-flatten-dropout1.0-dense10", "dropout1.0"},
      {"conv32-pool-flatten-dropout-dense10", "'dropout'"},
      {"conv32-pool-dense10", "add 'flatten'"},
      {"flatten-conv32-dense10", "cannot follow flatten"},
      {"conv32-pool-flatten-dense12", "last layer must be dense10"},
      {"conv32-pool-flatten-dense10relu", "last layer must be dense10"},
      {"conv32x29-flatten-dense10", "conv32x29"},
      {"pool-pool-pool-pool-pool-flatten-dense10", "too small to pool"},
      {"softmax", "unknown layer kind"},
      {"", "empty"},
      {" - ", "empty"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.spec);
    try {
      build_model(c.spec);
      ADD_FAILURE() << "accepted";
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find("--arch"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(c.expect), std::string::npos) << e.what();
    }
  }
}

TEST(Model, LayoutIsAlignedDisjointAndNamed) {
  Model m = build_model("seed");
  std::set<std::string> names;
  size_t end = 0;
  for (const ParamEntry& p : m.params) {
    EXPECT_EQ(p.offset % kParamAlign, 0u) << p.name;
    EXPECT_GE(p.offset, end) << p.name;
    end = p.offset + p.count;
    names.insert(p.name);
  }
  EXPECT_LE(end, m.arena_size);
  EXPECT_EQ(names, (std::set<std::string>{"conv2d.weight", "conv2d.bias", "conv2d_1.weight", "conv2d_1.bias",
                                           "conv2d_2.weight", "conv2d_2.bias", "dense.weight", "dense.bias"}));
  EXPECT_EQ(m.params[0].shape, (std::vector<int>{32, 1, 3, 3}));
  EXPECT_EQ(m.params[6].shape, (std::vector<int>{10, 64}));
}

TEST(Model, GlorotUniformInitIsSeededBoundedAndZeroBias) {
  Model m = build_model("seed");
  std::vector<float> a = init_params(m, 7), b = init_params(m, 7), c = init_params(m, 8);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  // Keras' glorot_uniform fans, written out rather than taken from the model: a convolution's fan_in
  // is kh*kw*in_channels and its fan_out kh*kw*out_channels; a dense layer's are its input and output
  // widths. Biases start at zero (fan 0 here).
  const std::map<std::string, std::pair<size_t, size_t>> fans = {
      {"conv2d.weight", {3 * 3 * 1, 3 * 3 * 32}},     // 9, 288
      {"conv2d_1.weight", {3 * 3 * 32, 3 * 3 * 64}},  // 288, 576
      {"conv2d_2.weight", {3 * 3 * 64, 3 * 3 * 64}},  // 576, 576
      {"dense.weight", {64, 10}},
      {"conv2d.bias", {0, 0}},   {"conv2d_1.bias", {0, 0}}, {"conv2d_2.bias", {0, 0}}, {"dense.bias", {0, 0}}};
  ASSERT_EQ(m.params.size(), fans.size());
  for (const ParamEntry& p : m.params) {
    SCOPED_TRACE(p.name);
    ASSERT_EQ(fans.count(p.name), 1u);
    const auto [fan_in, fan_out] = fans.at(p.name);
    EXPECT_EQ(p.fan_in, fan_in);
    EXPECT_EQ(p.fan_out, fan_out);
    if (fan_in == 0) {
      for (size_t i = 0; i < p.count; ++i) ASSERT_EQ(a[p.offset + i], 0.0f);
      continue;
    }
    const double limit = std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
    double sum = 0, sq = 0, max_abs = 0;
    for (size_t i = 0; i < p.count; ++i) {
      double v = a[p.offset + i];
      sum += v;
      sq += v * v;
      max_abs = std::max(max_abs, std::fabs(v));
    }
    const double n = static_cast<double>(p.count);
    EXPECT_LE(max_abs, limit);
    EXPECT_GT(max_abs, 0.9 * limit);
    // Uniform(-L, L): mean 0 (sd L/sqrt(3n)), variance L^2/3.
    EXPECT_NEAR(sum / n, 0.0, 5 * limit / std::sqrt(3 * n));
    EXPECT_NEAR(sq / n, limit * limit / 3, 0.25 * limit * limit / 3);
  }
  // Padding between tensors stays zero.
  for (size_t i = m.params[0].count; i < m.params[1].offset; ++i) ASSERT_EQ(a[i], 0.0f);
}

TEST(Model, SummaryTableLooksLikeKeras) {
  std::string s = summary_table(build_model("seed"));
  EXPECT_NE(s.find("conv2d (Conv2D)"), std::string::npos);
  EXPECT_NE(s.find("(None, 26, 26, 32)"), std::string::npos);
  EXPECT_NE(s.find("max_pooling2d_2 (MaxPooling2D)"), std::string::npos);
  EXPECT_NE(s.find("(None, 64)"), std::string::npos);
  EXPECT_NE(s.find("36,928"), std::string::npos);
  EXPECT_NE(s.find("Total params: 56,394"), std::string::npos);
}

}  // namespace
}  // namespace convnet
