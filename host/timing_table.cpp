// The --timing table (see timing_table.h).
#include "timing_table.h"

#include <algorithm>
#include <cstdio>

#include "errors.h"

namespace convnet {
namespace {

std::string num(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

// One line: the name left-aligned in `width`, then four right-aligned cells (blank when "").
std::string row(int width, const std::string& name, const std::string& calls, const std::string& per_call,
                const std::string& per_step, const std::string& share) {
  char buf[512];
  std::snprintf(buf, sizeof buf, "%-*s %10s %10s %10s %7s", width, name.c_str(), calls.c_str(), per_call.c_str(),
                per_step.c_str(), share.c_str());
  std::string line = buf;
  line.erase(line.find_last_not_of(' ') + 1);
  return line + "\n";
}

// Kernel indices, heaviest first (ties keep their order).
std::vector<size_t> by_total_time(const TimingReport& report) {
  std::vector<size_t> order(report.kernels.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return report.kernels[a].total_us > report.kernels[b].total_us; });
  return order;
}

}  // namespace

double kernel_sum_us(const TimingReport& report) {
  double sum = 0.0;
  for (const KernelTime& k : report.kernels) sum += k.total_us;
  return sum;
}

std::vector<double> kernel_shares(const TimingReport& report) {
  const double sum = kernel_sum_us(report);
  std::vector<double> shares;
  for (const KernelTime& k : report.kernels) shares.push_back(sum > 0.0 ? 100.0 * k.total_us / sum : 0.0);
  return shares;
}

std::string format_timing_table(const TimingReport& report, const std::string& title) {
  CONVNET_CHECK(report.steps > 0, "a timing report needs at least one step");
  const double steps = report.steps;
  const std::vector<double> shares = kernel_shares(report);
  int width = 36;
  for (const KernelTime& k : report.kernels) width = std::max(width, static_cast<int>(k.name.size()));
  std::string out = title + "\n" + row(width, "kernel", "calls/step", "us/call", "us/step", "share");
  int64_t calls = 0;
  for (size_t i : by_total_time(report)) {
    const KernelTime& k = report.kernels[i];
    calls += k.calls;
    const double per_call = k.calls ? k.total_us / static_cast<double>(k.calls) : 0.0;
    out += row(width, k.name, num("%.2f", static_cast<double>(k.calls) / steps), num("%.2f", per_call),
               num("%.2f", k.total_us / steps), num("%.1f%%", shares[i]));
  }
  const double sum = kernel_sum_us(report);
  out += row(width, "all kernels", num("%.2f", static_cast<double>(calls) / steps), "", num("%.2f", sum / steps),
             num("%.1f%%", sum > 0.0 ? 100.0 : 0.0));
  out += row(width, "step, first launch to last (events)", "", "", num("%.2f", report.step_events_us / steps), "");
  out += row(width, "step, host wall clock", "", "", num("%.2f", report.wall_us / steps), "");
  return out;
}

}  // namespace convnet
