// Which models the GPU backend fuses (host/fused_plan.h): the presets do, with the expected blocks and
// launch counts; models outside the pattern run layer by layer.
#include <gtest/gtest.h>

#include <string>

#include "fused_plan.h"
#include "model.h"

namespace convnet {
namespace {

TEST(FusedPlan, TheSeedNetworkIsThreeBlocksAndAHeadIn14Launches) {
  const Model m = build_model("seed");
  const std::optional<FusedPlan> p = fused_plan(m);
  ASSERT_TRUE(p.has_value());
  ASSERT_EQ(p->blocks.size(), 3u);
  const int outs[] = {1, 3, 5}, oc[] = {32, 64, 64}, oh[] = {26, 11, 3};
  for (size_t b = 0; b < 3; ++b) {
    SCOPED_TRACE(b);
    EXPECT_EQ(p->blocks[b].conv, 2 * static_cast<int>(b));
    EXPECT_EQ(p->blocks[b].pool, outs[b]);
    EXPECT_EQ(p->blocks[b].out, outs[b]);
    EXPECT_EQ(p->blocks[b].OC, oc[b]);
    EXPECT_EQ(p->blocks[b].OH, oh[b]);
    EXPECT_EQ(p->blocks[b].OW, oh[b]);
    EXPECT_EQ(p->blocks[b].K, 3);
  }
  EXPECT_EQ(p->blocks[0].C, 1);
  EXPECT_EQ(p->blocks[1].C, 32);
  EXPECT_EQ(p->blocks[2].H, 5);
  EXPECT_EQ(p->dropout, 7);
  EXPECT_FLOAT_EQ(p->rate, 0.6f);
  EXPECT_EQ(p->dense, 8);
  EXPECT_EQ(p->features, 64);
  EXPECT_EQ(p->train_launches(), 14);
  EXPECT_EQ(p->eval_launches(), 6);
}

TEST(FusedPlan, ThePresetsAndOtherBlockFormsFuse) {
  const std::optional<FusedPlan> keras = fused_plan(build_model("keras"));
  ASSERT_TRUE(keras.has_value());
  EXPECT_EQ(keras->blocks.size(), 2u);
  EXPECT_EQ(keras->features, 1600);
  EXPECT_FLOAT_EQ(keras->rate, 0.5f);
  EXPECT_EQ(keras->train_launches(), 9);
  ASSERT_TRUE(fused_plan(build_model("seed96")).has_value());
  EXPECT_EQ(fused_plan(build_model("seed96"))->features, 96);

  // A conv without a pool, a block without dropout, a single block, no flatten before the dense.
  const std::optional<FusedPlan> p = fused_plan(build_model("conv8-conv16-pool-flatten-dense10"));
  ASSERT_TRUE(p.has_value());
  ASSERT_EQ(p->blocks.size(), 2u);
  EXPECT_FALSE(p->blocks[0].has_pool());
  EXPECT_EQ(p->blocks[0].out, 0);
  EXPECT_TRUE(p->blocks[1].has_pool());
  EXPECT_EQ(p->dropout, -1);
  EXPECT_EQ(p->rate, 0.0f);
  EXPECT_EQ(p->features, 16 * 12 * 12);
  const std::optional<FusedPlan> one = fused_plan(build_model("conv4x5-pool-flatten-dense10"));
  ASSERT_TRUE(one.has_value());
  EXPECT_EQ(one->blocks.size(), 1u);
  EXPECT_EQ(one->train_launches(), 4);
}

TEST(FusedPlan, OtherModelsRunLayerByLayer) {
  for (const std::string arch : {"flatten-dense10",                         // no conv
                                 "flatten-dense64relu-dense10",             // no conv, hidden dense
                                 "conv8-pool-flatten-dense32relu-dense10",  // hidden dense in the head
                                 "conv8-pool-pool-flatten-dense10",         // a pool without a conv
                                 "conv8-dropout0.5-conv8-flatten-dense10",  // dropout between convs
                                 "conv8-pool-flatten-dropout0.2-dropout0.2-dense10",
                                 "conv8x7-pool-flatten-dense10"}) {         // first kernel over 5
    SCOPED_TRACE(arch);
    EXPECT_FALSE(fused_plan(build_model(arch)).has_value());
  }
}

// The fused kernels index with 32 bits: a batch whose conv2 im2col (288 x N*121) reaches 2^31
// elements runs layer by layer instead of failing in a launcher.
TEST(FusedPlan, BatchesPastThe32BitIndexRunLayerByLayer) {
  const Model seed = build_model("seed");
  EXPECT_TRUE(fused_plan(seed, 1024).has_value());
  EXPECT_TRUE(fused_plan(seed, 61624).has_value());   // 288 * 61624 * 121 < 2^31
  EXPECT_FALSE(fused_plan(seed, 61625).has_value());  // >= 2^31
  EXPECT_FALSE(fused_plan(seed, 65536).has_value());
}

}  // namespace
}  // namespace convnet
