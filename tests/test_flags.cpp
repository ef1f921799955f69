// Flags with an optional value (`convnet train --timing [N]`): bare, `--name N`, `--name=N`, followed by
// another flag, and the errors that still name the flag.
#include <gtest/gtest.h>

#include "errors.h"
#include "flags.h"

namespace convnet {
namespace {

Flags parse(const std::vector<std::string>& args) {
  return Flags("train", args, {"epochs"}, {"tf32"}, {"timing"});
}

TEST(Flags, OptionalValueBareOrGivenEitherWay) {
  EXPECT_FALSE(parse({}).has("timing"));
  EXPECT_EQ(parse({}).get_int("timing", 50, 1, 100), 50);
  const Flags bare = parse({"--timing"});
  EXPECT_TRUE(bare.has("timing"));
  EXPECT_EQ(bare.get_int("timing", 50, 1, 100), 50);
  EXPECT_EQ(bare.get("timing", "fallback"), "fallback");
  EXPECT_EQ(parse({"--timing", "7"}).get_int("timing", 50, 1, 100), 7);
  EXPECT_EQ(parse({"--timing=8"}).get_int("timing", 50, 1, 100), 8);
  const Flags before_flag = parse({"--timing", "--epochs", "3", "--tf32"});
  EXPECT_EQ(before_flag.get_int("timing", 50, 1, 100), 50);
  EXPECT_EQ(before_flag.get_int("epochs", 1, 1, 100), 3);
  EXPECT_TRUE(before_flag.has("tf32"));
  EXPECT_TRUE(parse({"--timing"}).positional().empty());
}

TEST(Flags, OptionalValueErrorsNameTheFlag) {
  auto message = [](const std::vector<std::string>& args) {
    try {
      parse(args).get_int("timing", 50, 1, 100);
    } catch (const UsageError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(message({"--timing", "0"}), "--timing: 0 is out of range (expected 1 to 100)");
  EXPECT_EQ(message({"--timing", "-3"}), "--timing: -3 is out of range (expected 1 to 100)");
  EXPECT_EQ(message({"--timing=ten"}), "--timing: expected an integer, got 'ten'");
  EXPECT_EQ(message({"--timing="}), "--timing: expected an integer, got ''");
  EXPECT_EQ(message({"--timing", "--timing"}), "--timing: given more than once");
}

}  // namespace
}  // namespace convnet
