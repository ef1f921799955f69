// Helpers for the simulator's own tests: device arrays, launching through convnet::launch (so the
// launch check is exercised too), and the thread orders every order-sensitive test runs in.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "cuda_check.h"
#include "device_array.h"
#include "launch.h"
#include "simt.h"

inline std::vector<simt::ThreadOrder> all_orders() {
  return {simt::ThreadOrder::forward(), simt::ThreadOrder::reverse(), simt::ThreadOrder::shuffle(7),
          simt::ThreadOrder::shuffle(12345), simt::ThreadOrder::interleave(3)};
}

inline bool is_poison(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return bits == 0xFFFFFFFFu;
}

// The message of the exception that `fn` throws, or "" when it throws none.
template <typename F>
std::string thrown_message(F&& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}
