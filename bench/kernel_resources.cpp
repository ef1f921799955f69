// What each kernel asks of an H100/H200 (sm_90), known without a GPU: ptxas' registers, static shared
// memory, stack frame and spills for every function in kernels/*.cu (build/bench/ptxas/,
// made by bench/ptxas_report.cmake), each kernel's __launch_bounds__ (the PTX's .maxntid), joined with
// the launch configurations of the seed network's training step and evaluation batch, which the
// simulator records (simt::ScopedLaunchLog) for the fused and the per-layer path. For each launch it
// computes the theoretical occupancy with the toolkit's own calculator (cuda_occupancy.h) on sm_90's
// limits, and the waves the grid makes over 132 SMs.
//
//   kernel_resources --ptxas-dir DIR [--batch N] [--check]
// prints a Markdown table (bench/kernel_resources.sh records it in bench/RESULTS.md). --check exits 1,
// naming each, on what a real GPU would reject or slow down and the simulator cannot see:
//   - a function that spills registers or has a stack frame (local memory is off-chip);
//   - a launch with more threads than its kernel's __launch_bounds__ (the launch fails on a GPU);
//   - a launch that cannot be resident at all (registers or shared memory over an SM's);
//   - a launched kernel that ptxas did not report (the join went stale).
#include <cuda_occupancy.h>
#include <cxxabi.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "backend.h"
#include "launch.h"
#include "model.h"
#include "simt.h"
#include "synthetic_images.h"
#include "trainer.h"

namespace {

namespace fs = std::filesystem;
using convnet::BackendConfig;

constexpr int kSms = 132;  // H100 SXM and H200 (an H100 PCIe has 114)

// ptxas' report of one function (a kernel entry, or a device function it did not inline).
struct Function {
  std::string mangled, name;  // name: "conv_input_backward_kernel<3>", as convnet::launch names it
  std::string file;
  bool entry = false;
  int registers = 0, barriers = 0;
  long smem = 0, stack = 0, spill_stores = 0, spill_loads = 0;
  int max_threads = 0;  // __launch_bounds__ (PTX .maxntid), 0 when none
};

std::string demangle(const std::string& mangled) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> out(abi::__cxa_demangle(mangled.c_str(), nullptr, nullptr, &status),
                                             std::free);
  return status == 0 && out ? std::string(out.get()) : mangled;
}

// "void convnet::(anonymous namespace)::optimizer_step_kernel<convnet::(anonymous namespace)::AdamArgs>(float*, ...)"
// -> "optimizer_step_kernel<AdamArgs>"; template arguments keep only their last name component.
std::string short_name(const std::string& demangled) {
  const std::string plain = std::regex_replace(demangled, std::regex(R"(\(anonymous namespace\)::)"), "");
  std::string head = plain.substr(0, plain.find('('));
  if (head.rfind("void ", 0) == 0) head = head.substr(5);
  const size_t lt = head.find('<');
  std::string base = head.substr(0, lt), args = lt == std::string::npos ? "" : head.substr(lt);
  base = base.substr(base.rfind("::") == std::string::npos ? 0 : base.rfind("::") + 2);
  return base + std::regex_replace(args, std::regex(R"([A-Za-z_][A-Za-z0-9_]*::)"), "");
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// A number from a report, or an error naming the file and line.
long number(const std::string& text, const fs::path& file, int line_no) {
  errno = 0;
  char* end = nullptr;
  const long v = std::strtol(text.c_str(), &end, 10);
  if (errno != 0 || *end != '\0' || v < 0 || v > INT_MAX)
    throw std::runtime_error(file.string() + ":" + std::to_string(line_no) + ": '" + text + "' is not a count");
  return v;
}

// Functions are keyed by report and mangled name: a device function ptxas did not inline (libdevice's
// __internal_accurate_pow, say) appears in every report whose kernels call it.
std::string function_key(const std::string& report, const std::string& mangled) { return report + " " + mangled; }

// Parses one <name>.ptxas.txt (nvcc --resource-usage). Every kernel entry must have its "Used N
// registers" line: a report in another format is an error, never a kernel with 0 registers.
void parse_ptxas(const fs::path& txt, std::map<std::string, Function>* functions) {
  const std::regex entry(R"(Compiling entry function '([^']+)')"), props(R"(Function properties for (\S+))"),
      frame(R"((\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads)"),
      used(R"(Used (\d+) registers)"), barriers(R"(used (\d+) barriers)"), smem(R"((\d+) bytes smem)");
  std::istringstream lines(read_file(txt));
  std::string line, current, props_of;
  std::map<std::string, bool> has_used;  // entries of this file
  auto at = [&](const std::string& m) -> Function& {
    Function& f = (*functions)[function_key(txt.filename().string(), m)];
    f.mangled = m, f.name = short_name(demangle(m)), f.file = txt.filename().string();
    return f;
  };
  std::smatch m;
  for (int no = 1; std::getline(lines, line); ++no) {
    if (std::regex_search(line, m, entry)) {
      current = m[1], at(current).entry = true, has_used[current] = false;
    } else if (std::regex_search(line, m, props)) {
      props_of = m[1];
    } else if (std::regex_search(line, m, frame) && !props_of.empty()) {
      Function& f = at(props_of);
      f.stack = number(m[1], txt, no), f.spill_stores = number(m[2], txt, no), f.spill_loads = number(m[3], txt, no);
    } else if (std::regex_search(line, m, used) && !current.empty()) {
      Function& f = at(current);
      f.registers = int(number(m[1], txt, no));
      f.barriers = std::regex_search(line, m, barriers) ? int(number(m[1], txt, no)) : 0;
      f.smem = std::regex_search(line, m, smem) ? number(m[1], txt, no) : 0;
      has_used[current] = true;
    }
  }
  if (has_used.empty()) throw std::runtime_error(txt.string() + ": no 'Compiling entry function' line (not a ptxas report?)");
  for (const auto& [mangled, seen] : has_used)
    if (!seen) throw std::runtime_error(txt.string() + ": no 'Used N registers' line for " + mangled);
}

// The .maxntid (__launch_bounds__) of each kernel in <name>.ptx: ".entry NAME(" ... ".maxntid X, Y, Z"
// before the body's "{", line by line (std::regex over a whole PTX file recurses too deep).
void parse_ptx(const fs::path& ptx, const std::string& report, std::map<std::string, Function>* functions) {
  std::istringstream lines(read_file(ptx));
  const std::regex entry_line(R"(^(?:\.visible\s+)?\.entry\s+(\S+)\()"), maxntid(R"(^\.maxntid (\d+), (\d+), (\d+))");
  Function* open = nullptr;
  std::string line;
  std::smatch m;
  for (int no = 1; std::getline(lines, line); ++no) {
    if (std::regex_search(line, m, entry_line)) {
      auto f = functions->find(function_key(report, m[1]));
      open = f == functions->end() ? nullptr : &f->second;
    } else if (open && std::regex_search(line, m, maxntid)) {
      open->max_threads = int(number(m[1], ptx, no) * number(m[2], ptx, no) * number(m[3], ptx, no));
    } else if (line.rfind("{", 0) == 0) {
      open = nullptr;
    }
  }
}

// Every <name>.ptxas.txt of the folder with its <name>.ptx. Two kernels of one name (a stale report
// of a renamed kernels/*.cu, say) are an error: the join would pick one of them blindly.
std::map<std::string, Function> read_reports(const fs::path& dir) {
  std::map<std::string, Function> functions;
  if (!fs::is_directory(dir)) throw std::runtime_error(dir.string() + ": not a folder (build the kernel_resources target)");
  const std::string suffix = ".ptxas.txt";
  int reports = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string file = e.path().filename().string();
    if (file.size() <= suffix.size() || file.compare(file.size() - suffix.size(), suffix.size(), suffix) != 0) continue;
    parse_ptxas(e.path(), &functions);
    parse_ptx(dir / (file.substr(0, file.size() - suffix.size()) + ".ptx"), file, &functions);
    ++reports;
  }
  if (reports == 0) throw std::runtime_error(dir.string() + ": no *.ptxas.txt reports");
  std::map<std::string, const Function*> by_name;
  for (const auto& [key, f] : functions) {
    if (!f.entry) continue;
    auto [it, fresh] = by_name.emplace(f.name, &f);
    if (!fresh)
      throw std::runtime_error(dir.string() + ": kernel " + f.name + " is in both " + it->second->file + " and " + f.file +
                               " (a stale report? delete the folder and build again)");
  }
  return functions;
}

// One distinct launch configuration of the step, and where it was seen.
struct Launch {
  simt::LaunchRecord shape;
  std::vector<std::string> seen_in;  // "fused train", "per-layer eval", ...
};

bool same_shape(const simt::LaunchRecord& a, const simt::LaunchRecord& b) {
  return a.name == b.name && a.grid.x == b.grid.x && a.grid.y == b.grid.y && a.grid.z == b.grid.z &&
         a.block.x == b.block.x && a.block.y == b.block.y && a.block.z == b.block.z && a.shmem == b.shmem;
}

void record_step(const std::string& path, bool fused, bool eval, int batch, std::vector<Launch>* launches) {
  BackendConfig config;
  config.max_batch = batch;
  config.fused = fused;
  config.graphs = false;
  auto gpu = convnet::make_gpu_backend(convnet::build_model("seed"), config);
  const int set = gpu->add_images(convnet::test::bar_digits(2 * batch, 7));
  gpu->set_order(convnet::epoch_order(7, 1, 2 * batch));
  gpu->train_step(set, 0, batch);  // the first step may differ (first-use work); the second is the steady one
  std::vector<float> probs(size_t(batch) * convnet::kNumClasses);
  simt::ScopedLaunchLog log;
  if (eval)
    gpu->eval_batch(set, 0, batch, probs.data());
  else
    gpu->train_step(set, batch, batch);
  for (const simt::LaunchRecord& r : log.records()) {
    auto it = std::find_if(launches->begin(), launches->end(), [&](const Launch& l) { return same_shape(l.shape, r); });
    if (it == launches->end()) it = launches->insert(launches->end(), Launch{r, {}});
    if (std::find(it->seen_in.begin(), it->seen_in.end(), path) == it->seen_in.end()) it->seen_in.push_back(path);
  }
}

cudaOccDeviceProp sm90() {
  cudaOccDeviceProp p;
  p.computeMajor = 9, p.computeMinor = 0;
  p.maxThreadsPerBlock = 1024, p.maxThreadsPerMultiprocessor = 2048;
  p.regsPerBlock = 65536, p.regsPerMultiprocessor = 65536, p.warpSize = 32;
  p.sharedMemPerBlock = 48 * 1024, p.sharedMemPerMultiprocessor = 228 * 1024;
  p.sharedMemPerBlockOptin = 227 * 1024, p.reservedSharedMemPerBlock = 1024;
  p.numSms = kSms;
  return p;
}

struct Occupancy {
  int blocks_per_sm = 0;
  double occupancy = 0;  // resident warps / 64
  std::string limit;     // what limits it
};

// The default 48 KiB limit of dynamic shared memory applies (FUNC_SHMEM_LIMIT_DEFAULT): no kernel opts
// into more with cudaFuncSetAttribute. One that does would need that limit here.
Occupancy occupancy(const Function& f, const simt::LaunchRecord& l) {
  cudaOccFuncAttributes a;
  a.maxThreadsPerBlock = f.max_threads ? f.max_threads : INT_MAX;
  a.numRegs = f.registers, a.sharedSizeBytes = size_t(f.smem);
  a.numBlockBarriers = std::max(f.barriers, 1);
  cudaOccDeviceState state;
  cudaOccResult r;
  const cudaOccDeviceProp p = sm90();
  const int threads = int(l.block.x * l.block.y * l.block.z);
  Occupancy o;
  if (cudaOccMaxActiveBlocksPerMultiprocessor(&r, &p, &a, &state, threads, l.shmem) != CUDA_OCC_SUCCESS) {
    o.limit = "invalid launch";
    return o;
  }
  o.blocks_per_sm = r.activeBlocksPerMultiprocessor;
  o.occupancy = double(o.blocks_per_sm * ((threads + 31) / 32)) / (p.maxThreadsPerMultiprocessor / 32);
  std::vector<std::string> why;
  if (r.limitingFactors & OCC_LIMIT_WARPS) why.push_back("warps");
  if (r.limitingFactors & OCC_LIMIT_REGISTERS) why.push_back("registers");
  if (r.limitingFactors & OCC_LIMIT_SHARED_MEMORY) why.push_back("shared memory");
  if (r.limitingFactors & OCC_LIMIT_BLOCKS) why.push_back("blocks");
  if (r.limitingFactors & OCC_LIMIT_BARRIERS) why.push_back("barriers");
  for (size_t i = 0; i < why.size(); ++i) o.limit += (i ? ", " : "") + why[i];
  return o;
}

const Function* find_kernel(const std::map<std::string, Function>& functions, const std::string& name) {
  for (const auto& [key, f] : functions)
    if (f.entry && f.name == name) return &f;
  // convnet::launch names an instance by its argument's short form ("optimizer_step_kernel<adam>" for
  // optimizer_step_kernel<AdamArgs>): match the base name and the argument as a case-blind prefix.
  const size_t lt = name.find('<');
  if (lt == std::string::npos) return nullptr;
  auto lower = [](std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    return s;
  };
  const std::string base = name.substr(0, lt + 1), arg = lower(name.substr(lt + 1, name.size() - lt - 2));
  for (const auto& [key, f] : functions)
    if (f.entry && f.name.rfind(base, 0) == 0 && lower(f.name.substr(base.size())).rfind(arg, 0) == 0) return &f;
  return nullptr;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + v[i];
  return s;
}

std::string dims(dim3 d) {
  std::string s = std::to_string(d.x);
  if (d.y > 1 || d.z > 1) s += "×" + std::to_string(d.y);
  if (d.z > 1) s += "×" + std::to_string(d.z);
  return s;
}

// Every function that spills or has a stack frame, as findings.
std::vector<std::string> local_memory_findings(const std::map<std::string, Function>& functions) {
  std::vector<std::string> found;
  for (const auto& [key, f] : functions)
    if (f.spill_stores || f.spill_loads || f.stack)
      found.push_back(f.name + " (" + f.file + "): " + std::to_string(f.stack) + " bytes stack frame, " +
                      std::to_string(f.spill_stores) + " bytes spill stores, " + std::to_string(f.spill_loads) +
                      " bytes spill loads (local memory, off-chip)");
  return found;
}

// The table, and the --check findings.
int report(const std::map<std::string, Function>& functions, const std::vector<Launch>& launches, int batch) {
  std::vector<std::string> failures;
  std::printf("| kernel | launched in (batch %d) | grid | block | regs/thread | static + dynamic smem (B) | "
              "__launch_bounds__ | blocks/SM | theoretical occupancy | limited by | waves on %d SMs |\n",
              batch, kSms);
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const Launch& launch : launches) {
    const simt::LaunchRecord& l = launch.shape;
    const Function* f = find_kernel(functions, l.name);
    if (!f) {
      failures.push_back(l.name + ": launched, but ptxas reported no kernel of that name");
      continue;
    }
    const Occupancy o = occupancy(*f, l);
    const unsigned threads = l.block.x * l.block.y * l.block.z;
    const double blocks = double(l.grid.x) * l.grid.y * l.grid.z;
    const double waves = o.blocks_per_sm ? blocks / (double(o.blocks_per_sm) * kSms) : 0;
    std::printf("| `%s` | %s | %s | %s | %d | %ld + %zu | %s | %d | %.0f%% | %s | %.2f |\n", l.name.c_str(),
                join(launch.seen_in).c_str(), dims(l.grid).c_str(), dims(l.block).c_str(), f->registers, f->smem, l.shmem,
                f->max_threads ? std::to_string(f->max_threads).c_str() : "—", o.blocks_per_sm, 100 * o.occupancy,
                o.limit.empty() ? "—" : o.limit.c_str(), waves);
    if (f->max_threads && threads > unsigned(f->max_threads))
      failures.push_back(l.name + ": launched with " + std::to_string(threads) + " threads, over its __launch_bounds__(" +
                         std::to_string(f->max_threads) + ")");
    if (o.blocks_per_sm == 0)
      failures.push_back(l.name + ": a block of " + std::to_string(threads) + " threads with " +
                         std::to_string(f->registers) + " registers each and " + std::to_string(f->smem + long(l.shmem)) +
                         " B of shared memory cannot be resident on an sm_90 SM (" + o.limit + ")");
  }
  const std::vector<std::string> spilling = local_memory_findings(functions);
  failures.insert(failures.end(), spilling.begin(), spilling.end());
  std::vector<std::string> unlaunched;
  for (const auto& [key, f] : functions) {
    if (!f.entry) continue;
    const bool used = std::any_of(launches.begin(), launches.end(),
                                  [&](const Launch& l) { return find_kernel(functions, l.shape.name) == &f; });
    if (!used) unlaunched.push_back("`" + f.name + "` (" + std::to_string(f.registers) + " regs)");
  }
  std::sort(unlaunched.begin(), unlaunched.end());
  std::printf("\nKernels the seed step does not launch (other models, SGD): %s.\n",
              unlaunched.empty() ? "none" : join(unlaunched).c_str());
  std::printf("Functions that spill or have a stack frame: %s.\n", spilling.empty() ? "none" : "some (see the check's findings)");
  for (const std::string& f : failures) std::fprintf(stderr, "kernel_resources: FAIL %s\n", f.c_str());
  return failures.empty() ? 0 : 1;
}

int usage(const char* why) {
  std::fprintf(stderr, "kernel_resources: %s\nusage: kernel_resources --ptxas-dir DIR [--batch N] [--check]\n", why);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir;
  int batch = 128;
  bool check = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if ((a == "--ptxas-dir" || a == "--batch") && i + 1 == argc) return usage((a + ": missing value").c_str());
    if (a == "--ptxas-dir") {
      dir = argv[++i];
    } else if (a == "--batch") {
      char* end = nullptr;
      const long b = std::strtol(argv[++i], &end, 10);
      if (*end != '\0' || b < 1 || b > 4096) return usage("--batch: expected an integer in 1..4096");
      batch = int(b);
    } else if (a == "--check") {
      check = true;
    } else {
      return usage(("unknown argument '" + a + "'").c_str());
    }
  }
  if (dir.empty()) return usage("--ptxas-dir is required");
  try {
    const auto functions = read_reports(dir);
    std::vector<Launch> launches;
    for (bool fused : {true, false})
      for (bool eval : {false, true})
        record_step(std::string(fused ? "fused" : "per-layer") + (eval ? " eval" : " train"), fused, eval, batch,
                    &launches);
    const int failed = report(functions, launches, batch);
    return check ? failed : 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kernel_resources: %s\n", e.what());
    return 2;
  }
}
