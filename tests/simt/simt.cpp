// simt runtime: the block scheduler, the fibers it runs threads on, warp operations, and the CUDA
// runtime shims (memory, streams, events, errors, device properties). Design in simt.h and README.md.
//
// Scheduling in one paragraph: a block starts on a runner fiber, which calls the threads' bodies one
// after another. A thread that must wait (barrier, or a warp operation whose partners have not
// arrived) keeps the fiber it is on and switches to the next thing that can run: a thread that a
// completed barrier released (FIFO), else a runner from the pool that goes on starting threads, else
// the scheduler's own context, which then sees either a finished block or a deadlock. A runner with
// nothing left to start parks itself in the pool. Everything runs on one OS thread, so the scheduler
// state is plain data.
#include "simt.h"

#include <cxxabi.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <stdexcept>
#include <typeinfo>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define SIMT_ASAN 1
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#else
#define SIMT_ASAN 0
#endif

#if defined(__x86_64__)
#define SIMT_UCONTEXT 0
#else
#define SIMT_UCONTEXT 1
#include <ucontext.h>
#endif

uint3 threadIdx{0, 0, 0};
uint3 blockIdx{0, 0, 0};
dim3 blockDim{1, 1, 1};
dim3 gridDim{1, 1, 1};

#if !SIMT_UCONTEXT
// simt_switch_context(save, to): pushes the callee-saved registers, stores the stack pointer in *save,
// loads `to` and pops that fiber's registers; `ret` continues where it switched out. MXCSR and the x87
// control word are not switched: all fibers share one floating-point environment.
// simt_fiber_start: first "return" of a new fiber; calls r13(r12) and never returns (the CFI marks it
// as the outermost frame, so unwinders and debuggers stop there).
extern "C" void simt_switch_context(void** save_sp, void* to_sp);
extern "C" void simt_fiber_start();
__asm__(
    ".pushsection .text\n"
    ".globl simt_switch_context\n"
    ".type simt_switch_context,@function\n"
    ".p2align 4\n"
    "simt_switch_context:\n"
    "  pushq %rbp\n"
    "  pushq %rbx\n"
    "  pushq %r12\n"
    "  pushq %r13\n"
    "  pushq %r14\n"
    "  pushq %r15\n"
    "  movq %rsp, (%rdi)\n"
    "  movq %rsi, %rsp\n"
    "  popq %r15\n"
    "  popq %r14\n"
    "  popq %r13\n"
    "  popq %r12\n"
    "  popq %rbx\n"
    "  popq %rbp\n"
    "  ret\n"
    ".size simt_switch_context,.-simt_switch_context\n"
    ".globl simt_fiber_start\n"
    ".type simt_fiber_start,@function\n"
    ".p2align 4\n"
    "simt_fiber_start:\n"
    "  .cfi_startproc\n"
    "  .cfi_undefined rip\n"
    "  movq %r12, %rdi\n"
    "  callq *%r13\n"
    "  ud2\n"
    "  .cfi_endproc\n"
    ".size simt_fiber_start,.-simt_fiber_start\n"
    ".popsection\n");
#endif

namespace simt {
namespace detail {
namespace {

// ---- Fibers --------------------------------------------------------------------------------------

struct Fiber;
using FiberEntry = void (*)(Fiber*);

struct Fiber {
#if SIMT_UCONTEXT
  ucontext_t context;
#else
  void* sp = nullptr;
#endif
  FiberEntry entry = nullptr;
  char* mapping = nullptr;  // guard page + stack; null for a thread's own (main) stack
  size_t mapping_size = 0;
  const void* stack_lo = nullptr;  // usable stack, for the AddressSanitizer annotations
  size_t stack_size = 0;
  void* fake_stack = nullptr;  // AddressSanitizer's fake stack while switched out
};

// Threads of a block are stored by linear id x + y*bx + z*bx*by (so lane = id % 32, as on a GPU).
enum class TState : uint8_t { kUnstarted, kRunning, kBarrier, kWarp, kReady, kExited };

struct ThreadRec {
  TState state = TState::kUnstarted;
  int8_t bar_kind = 0;
  WarpOp op = kSyncWarp;
  Fiber* fiber = nullptr;
  const char* file = nullptr;  // where it waits
  int line = 0;
  unsigned mask = 0;
  int param = 0;
  int width = 32;
  uint64_t value = 0;
  uint64_t result = 0;
};

struct WarpRec {
  uint32_t pending = 0;  // lanes waiting in (or just arriving at) a warp operation
  uint32_t gone = 0;     // lanes that exited or do not exist (partial last warp)
};

class KernelFault : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct State {
  std::recursive_mutex mutex;
  bool in_kernel = false;
  uint64_t launches = 0;
  ThreadOrder order_setting;
  LaunchStats stats;

  // The launch.
  const LaunchDesc* desc = nullptr;
  ThreadBody body = nullptr;
  void* ctx = nullptr;
  uint32_t nthreads = 0;
  dim3 tid_shape{0, 0, 0};
  std::vector<uint3> tid_of;  // linear id -> threadIdx
  void* dyn_shared = nullptr;

  // The running block.
  std::vector<uint16_t> order;  // start order of the block's threads
  std::vector<ThreadRec> th;
  std::vector<WarpRec> warps;
  std::vector<uint16_t> ready;  // ring buffer of released threads; each is in it at most once
  uint32_t ready_head = 0, ready_count = 0;
  uint32_t next_unstarted = 0;
  uint32_t exited = 0;
  uint32_t bar_arrived = 0;
  int bar_acc = 0;
  int bar_result = 0;
  bool block_waited = false;
  bool aborted = false;
  std::string fault;
  uint32_t current = 0;

  // Fibers.
  Fiber main;  // the launching thread's own stack
  Fiber* switch_from = nullptr;
  std::vector<std::unique_ptr<Fiber>> fibers;  // every fiber ever made (stacks are reused, never freed)
  std::vector<Fiber*> idle;                     // runners parked with nothing to start

  // Errors.
  cudaError_t last_error = cudaSuccess;
  cudaError_t fault_error = cudaSuccess;  // a failed kernel: also returned by synchronising calls
  cudaError_t detail_code = cudaSuccess;
  std::string detail;
  std::string composed;

  // Memory.
  std::map<uintptr_t, size_t> allocations;
  std::map<const void*, int> max_dynamic_shared;
  bool timing_note_printed = false;
};

State& state() {
  static State* s = new State;  // never destroyed: fibers may outlive static destruction order
  return *s;
}

ThreadOrder order_from_environment() {
  const char* env = std::getenv("SIMT_THREAD_ORDER");
  if (!env || !*env) return ThreadOrder::forward();
  try {
    return ThreadOrder::parse(env);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "simt: SIMT_THREAD_ORDER: %s\n", e.what());
    std::abort();
  }
}

size_t stack_bytes() {
  static const size_t bytes = [] {
    const char* env = std::getenv("SIMT_STACK_KB");
    // AddressSanitizer's redzones make frames several times larger.
    size_t kb = SIMT_ASAN ? 256 : 64;
    if (env && *env) kb = std::max<size_t>(16, std::strtoull(env, nullptr, 10));
    return kb * 1024;
  }();
  return bytes;
}

[[noreturn]] void die(const std::string& message) {
  std::fprintf(stderr, "%s\n", message.c_str());
  std::fflush(stderr);
  std::abort();
}

void finish_switch(void* fake_stack) {
#if SIMT_ASAN
  const void* lo = nullptr;
  size_t size = 0;
  __sanitizer_finish_switch_fiber(fake_stack, &lo, &size);
  State& s = state();
  // The launching thread's stack bounds are learnt from the first switch away from it.
  if (s.switch_from == &s.main) {
    s.main.stack_lo = lo;
    s.main.stack_size = size;
  }
#else
  (void)fake_stack;
#endif
}

#if SIMT_UCONTEXT
Fiber* g_starting = nullptr;
void ucontext_entry() { g_starting->entry(g_starting); }
#endif

void init_fiber(Fiber* f, FiberEntry entry) {
  f->entry = entry;
  f->fake_stack = nullptr;
#if SIMT_ASAN
  __asan_unpoison_memory_region(f->stack_lo, f->stack_size);
#endif
#if SIMT_UCONTEXT
  getcontext(&f->context);
  f->context.uc_stack.ss_sp = const_cast<void*>(f->stack_lo);
  f->context.uc_stack.ss_size = f->stack_size;
  f->context.uc_link = nullptr;
  makecontext(&f->context, ucontext_entry, 0);
#else
  uintptr_t top = reinterpret_cast<uintptr_t>(f->mapping + f->mapping_size) & ~uintptr_t{15};
  void** sp = reinterpret_cast<void**>(top);
  // Popped by simt_switch_context: r15 r14 r13 r12 rbx rbp, then `ret` into simt_fiber_start with
  // rsp = top (16-byte aligned), which calls entry(f) with the ABI's alignment.
  *--sp = reinterpret_cast<void*>(&simt_fiber_start);
  *--sp = nullptr;                                  // rbp
  *--sp = nullptr;                                  // rbx
  *--sp = f;                                        // r12
  *--sp = reinterpret_cast<void*>(entry);           // r13
  *--sp = nullptr;                                  // r14
  *--sp = nullptr;                                  // r15
  f->sp = sp;
#endif
}

Fiber* new_fiber(FiberEntry entry) {
  State& s = state();
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t size = (stack_bytes() + page - 1) / page * page + page;
  void* m = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
                 -1, 0);
  if (m == MAP_FAILED) die("simt: cannot map a fiber stack of " + std::to_string(size) + " bytes");
  // A guard page below the stack: an overflowing simulated thread faults instead of corrupting another.
  if (mprotect(m, page, PROT_NONE) != 0) die("simt: cannot protect a fiber stack guard page");
  auto f = std::make_unique<Fiber>();
  f->mapping = static_cast<char*>(m);
  f->mapping_size = size;
  f->stack_lo = f->mapping + page;
  f->stack_size = size - page;
  init_fiber(f.get(), entry);
  s.fibers.push_back(std::move(f));
  return s.fibers.back().get();
}

void switch_fiber(Fiber* from, Fiber* to) {
  State& s = state();
  ++s.stats.switches;
  s.switch_from = from;
#if SIMT_ASAN
  __sanitizer_start_switch_fiber(&from->fake_stack, to->stack_lo, to->stack_size);
#endif
#if SIMT_UCONTEXT
  g_starting = to;
  swapcontext(&from->context, &to->context);
#else
  simt_switch_context(&from->sp, to->sp);
#endif
  finish_switch(from->fake_stack);
}

// ---- Threads ------------------------------------------------------------------------------------

void runner_main(Fiber* self);

void fiber_entry(Fiber* self) {
  finish_switch(nullptr);
  runner_main(self);
}

Fiber* take_runner() {
  State& s = state();
  if (!s.idle.empty()) {
    Fiber* f = s.idle.back();
    s.idle.pop_back();
    return f;
  }
  return new_fiber(fiber_entry);
}

inline void enter_thread(uint32_t t) {
  State& s = state();
  s.current = t;
  s.th[t].state = TState::kRunning;
  threadIdx = s.tid_of[t];
}

inline void push_ready(uint32_t t) {
  State& s = state();
  s.th[t].state = TState::kReady;
  s.ready[(s.ready_head + s.ready_count++) % s.nthreads] = static_cast<uint16_t>(t);
}

inline uint32_t pop_ready() {
  State& s = state();
  uint32_t t = s.ready[s.ready_head];
  s.ready_head = (s.ready_head + 1) % s.nthreads;
  --s.ready_count;
  return t;
}

std::string d3(uint3 v) {
  return "(" + std::to_string(v.x) + "," + std::to_string(v.y) + "," + std::to_string(v.z) + ")";
}

std::string where(uint32_t t) {
  State& s = state();
  return "kernel '" + std::string(s.desc->name) + "' block " + d3(blockIdx) + " thread " + d3(s.tid_of[t]);
}

void record_fault(uint32_t t, const std::string& what) {
  State& s = state();
  if (s.aborted) return;
  s.aborted = true;
  s.fault = where(t) + ": " + what;
}

// The current thread cannot go on: switch to whatever can, and come back here when released.
void wait_current() {
  State& s = state();
  const uint32_t me = s.current;
  Fiber* self = s.th[me].fiber;
  ++s.stats.waits;
  s.block_waited = true;
  Fiber* next;
  if (s.ready_count)
    next = s.th[pop_ready()].fiber;
  else if (s.next_unstarted < s.nthreads)
    next = take_runner();
  else
    next = &s.main;  // nothing can run: the scheduler reports the deadlock
  switch_fiber(self, next);
  enter_thread(me);
}

const char* op_name(WarpOp op) {
  switch (op) {
    case kShflIdx: return "__shfl_sync";
    case kShflUp: return "__shfl_up_sync";
    case kShflDown: return "__shfl_down_sync";
    case kShflXor: return "__shfl_xor_sync";
    case kBallot: return "__ballot_sync";
    case kAny: return "__any_sync";
    case kAll: return "__all_sync";
    case kSyncWarp: return "__syncwarp";
    case kMatchAny: return "__match_any_sync";
    case kReduceAddU: return "__reduce_add_sync";
    case kReduceMinU:
    case kReduceMinS: return "__reduce_min_sync";
    case kReduceMaxU:
    case kReduceMaxS: return "__reduce_max_sync";
    case kReduceAnd: return "__reduce_and_sync";
    case kReduceOr: return "__reduce_or_sync";
    case kReduceXor: return "__reduce_xor_sync";
  }
  return "warp operation";
}

const char* barrier_name(int kind) {
  static const char* const names[] = {"__syncthreads()", "__syncthreads_count()", "__syncthreads_and()",
                                      "__syncthreads_or()"};
  return names[kind];
}

bool same_site(const char* fa, int la, const char* fb, int lb) {
  return la == lb && (fa == fb || std::strcmp(fa, fb) == 0);
}

std::string hex(unsigned v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

// Source lane of a shuffle, as PTX shfl.sync defines it (width w splits the warp into segments of w
// lanes): idx reads lane src % w of the caller's segment; up/down read lane -/+ delta and keep their
// own value when that leaves the segment; xor reads lane ^ mask and keeps its own value only when the
// result lies beyond the segment's end (lower segments are readable).
uint32_t shuffle_source(WarpOp op, uint32_t lane, int param, int width) {
  const uint32_t seg_start = lane & ~static_cast<uint32_t>(width - 1);
  const uint32_t seg_end = seg_start + static_cast<uint32_t>(width) - 1;
  const uint32_t b = static_cast<uint32_t>(param) & 31u;
  switch (op) {
    case kShflIdx: return seg_start | (b & static_cast<uint32_t>(width - 1));
    case kShflUp: return (lane >= seg_start + b) ? lane - b : lane;
    case kShflDown: return (lane + b <= seg_end) ? lane + b : lane;
    default: return ((lane ^ b) <= seg_end) ? (lane ^ b) : lane;
  }
}

// All lanes in `need` have arrived: check they agree, compute every lane's result, release them.
// Returns an error message instead of throwing (it also runs when a lane exits).
std::string resolve_group(uint32_t warp, uint32_t need) {
  State& s = state();
  const uint32_t base = warp * 32;
  ThreadRec& r0 = s.th[base + static_cast<uint32_t>(__builtin_ctz(need))];
  bool agree = true;
  for (uint32_t m = need; m; m &= m - 1) {
    const ThreadRec& r = s.th[base + static_cast<uint32_t>(__builtin_ctz(m))];
    agree = agree && r.op == r0.op && r.mask == r0.mask;
  }
  if (!agree) {
    std::string msg = "lanes of warp " + std::to_string(warp) + " met at different warp operations:";
    for (uint32_t m = need; m; m &= m - 1) {
      const uint32_t lane = static_cast<uint32_t>(__builtin_ctz(m));
      const ThreadRec& r = s.th[base + lane];
      msg += " lane " + std::to_string(lane) + " " + op_name(r.op) + "(mask " + hex(r.mask) + ") at " + r.file +
             ":" + std::to_string(r.line) + ";";
    }
    return msg;
  }
  uint32_t ballot = 0;
  uint32_t acc_u = 0;
  int32_t acc_s = 0;
  bool first = true;
  for (uint32_t m = need; m; m &= m - 1) {
    const uint32_t lane = static_cast<uint32_t>(__builtin_ctz(m));
    const uint64_t v = s.th[base + lane].value;
    const uint32_t vu = static_cast<uint32_t>(v);
    const int32_t vs = static_cast<int32_t>(vu);
    if (v) ballot |= 1u << lane;
    switch (r0.op) {
      case kReduceAddU: acc_u += vu; break;
      case kReduceMinU: acc_u = first ? vu : std::min(acc_u, vu); break;
      case kReduceMaxU: acc_u = first ? vu : std::max(acc_u, vu); break;
      case kReduceMinS: acc_s = first ? vs : std::min(acc_s, vs); break;
      case kReduceMaxS: acc_s = first ? vs : std::max(acc_s, vs); break;
      case kReduceAnd: acc_u = first ? vu : (acc_u & vu); break;
      case kReduceOr: acc_u |= vu; break;
      case kReduceXor: acc_u ^= vu; break;
      default: break;
    }
    first = false;
  }
  if (r0.op == kReduceMinS || r0.op == kReduceMaxS) acc_u = static_cast<uint32_t>(acc_s);
  for (uint32_t m = need; m; m &= m - 1) {
    const uint32_t lane = static_cast<uint32_t>(__builtin_ctz(m));
    ThreadRec& r = s.th[base + lane];
    switch (r0.op) {
      case kShflIdx:
      case kShflUp:
      case kShflDown:
      case kShflXor: {
        const uint32_t src = shuffle_source(r.op, lane, r.param, r.width);
        // Reading a lane that does not take part is undefined on a GPU: deliver NaN/-1 bytes.
        r.result = ((need >> src) & 1u) ? s.th[base + src].value : ~uint64_t{0};
        break;
      }
      case kBallot: r.result = ballot; break;
      case kAny: r.result = ballot != 0; break;
      case kAll: r.result = ballot == need; break;
      case kSyncWarp: r.result = 0; break;
      case kMatchAny: {
        uint32_t same = 0;
        for (uint32_t q = need; q; q &= q - 1) {
          const uint32_t other = static_cast<uint32_t>(__builtin_ctz(q));
          if (s.th[base + other].value == r.value) same |= 1u << other;
        }
        r.result = same;
        break;
      }
      default: r.result = acc_u; break;
    }
  }
  s.warps[warp].pending &= ~need;
  for (uint32_t m = need; m; m &= m - 1) {
    const uint32_t t = base + static_cast<uint32_t>(__builtin_ctz(m));
    if (s.th[t].state == TState::kWarp) push_ready(t);
  }
  return {};
}

// A lane left: a warp operation that was waiting only for lanes that are now gone can complete.
void lane_exited(uint32_t t) {
  State& s = state();
  WarpRec& w = s.warps[t >> 5];
  w.gone |= 1u << (t & 31);
  uint32_t todo = w.pending;
  while (todo && !s.aborted) {
    const uint32_t lane = static_cast<uint32_t>(__builtin_ctz(todo));
    const uint32_t need = s.th[(t & ~31u) + lane].mask & ~w.gone;
    todo &= ~need & ~(1u << lane);
    if ((w.pending & need) == need) {
      std::string err = resolve_group(t >> 5, need);
      if (!err.empty()) record_fault(t, err);
    }
  }
}

void run_thread(Fiber* self, uint32_t t) {
  State& s = state();
  s.th[t].fiber = self;
  enter_thread(t);
  try {
    s.body(s.ctx);
  } catch (const KernelFault& e) {
    record_fault(t, e.what());
  } catch (const std::exception& e) {
    int status = 0;
    char* type = abi::__cxa_demangle(typeid(e).name(), nullptr, nullptr, &status);
    record_fault(t, std::string("uncaught exception ") + (status == 0 && type ? type : typeid(e).name()) + ": " +
                        e.what());
    std::free(type);
  } catch (...) {
    record_fault(t, "uncaught exception of a type not derived from std::exception");
  }
  s.th[t].state = TState::kExited;
  ++s.exited;
  lane_exited(t);
}

void runner_main(Fiber* self) {
  for (;;) {
    State& s = state();
    while (!s.aborted && s.next_unstarted < s.nthreads) run_thread(self, s.order[s.next_unstarted++]);
    s.idle.push_back(self);
    Fiber* next = (!s.aborted && s.ready_count) ? s.th[pop_ready()].fiber : &s.main;
    switch_fiber(self, next);
  }
}

// ---- Blocks and launches ---------------------------------------------------------------------------

uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

template <typename T>
void shuffle_in_place(std::vector<T>& v, uint64_t key) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[mix64(key ^ (i * 0x2545F4914F6CDD1Dull)) % i]);
}

void make_thread_order(uint64_t block_linear) {
  State& s = state();
  s.order.resize(s.nthreads);
  const ThreadOrder& o = s.order_setting;
  for (uint32_t i = 0; i < s.nthreads; ++i)
    s.order[i] = static_cast<uint16_t>(o.kind == ThreadOrder::kReverse ? s.nthreads - 1 - i : i);
  if (o.kind == ThreadOrder::kShuffle) shuffle_in_place(s.order, mix64(o.seed ^ mix64(s.launches) ^ mix64(~block_linear)));
}

[[noreturn]] void report_deadlock() {
  State& s = state();
  std::vector<std::pair<std::string, uint32_t>> groups;  // description -> count, in first-seen order
  auto add = [&](const std::string& what) {
    for (auto& g : groups)
      if (g.first == what) return void(++g.second);
    groups.emplace_back(what, 1);
  };
  for (uint32_t t = 0; t < s.nthreads; ++t) {
    const ThreadRec& r = s.th[t];
    if (r.state == TState::kBarrier)
      add(std::string("wait at ") + barrier_name(r.bar_kind) + " at " + r.file + ":" + std::to_string(r.line));
    else if (r.state == TState::kWarp)
      add(std::string("wait at ") + op_name(r.op) + "(mask " + hex(r.mask) + ") in warp " + std::to_string(t / 32) +
          " at " + r.file + ":" + std::to_string(r.line));
  }
  std::string msg = "simt: deadlock in kernel '" + std::string(s.desc->name) + "' (grid " + d3(gridDim) +
                    ", block " + d3(blockDim) + ") in block " + d3(blockIdx) + ":\n";
  const std::string of = " of " + std::to_string(s.nthreads) + " threads ";
  for (const auto& g : groups) msg += "  " + std::to_string(g.second) + of + g.first + "\n";
  msg += "  " + std::to_string(s.exited) + of + "have exited\n";
  msg += "  (a __syncthreads completes when every thread of the block reaches it, and an exited thread never\n"
         "   does; a warp operation waits for every non-exited lane named in its mask)";
  die(msg);
}

void run_block(uint64_t block_linear) {
  State& s = state();
  const uint64_t gx = gridDim.x, gy = gridDim.y;
  blockIdx = uint3{static_cast<unsigned>(block_linear % gx), static_cast<unsigned>(block_linear / gx % gy),
                   static_cast<unsigned>(block_linear / (gx * gy))};
  make_thread_order(block_linear);
  s.next_unstarted = 0;
  s.exited = 0;
  s.bar_arrived = 0;
  s.bar_acc = 0;
  s.ready_head = 0;
  s.ready_count = 0;
  s.block_waited = false;
  const uint32_t nwarps = (s.nthreads + 31) / 32;
  for (uint32_t w = 0; w < nwarps; ++w) {
    const uint32_t lanes = std::min(32u, s.nthreads - w * 32);
    s.warps[w].pending = 0;
    s.warps[w].gone = lanes == 32 ? 0u : ~((1u << lanes) - 1u);
  }
  if (s.desc->shmem) std::memset(s.dyn_shared, 0xFF, s.desc->shmem);
  switch_fiber(&s.main, take_runner());
  ++s.stats.blocks;
  s.stats.threads += s.nthreads;
  if (s.block_waited) ++s.stats.waiting_blocks;
  if (!s.aborted && s.exited != s.nthreads) report_deadlock();
}

// Threads that were waiting when a fault stopped the launch are abandoned mid-kernel: their fibers
// get fresh stacks and go back to the pool.
void recycle_abandoned() {
  State& s = state();
  for (uint32_t t = 0; t < s.nthreads; ++t) {
    ThreadRec& r = s.th[t];
    if (r.state == TState::kBarrier || r.state == TState::kWarp || r.state == TState::kReady) {
      init_fiber(r.fiber, fiber_entry);
      s.idle.push_back(r.fiber);
      r.state = TState::kExited;
    }
  }
}

void set_error(cudaError_t code, const std::string& detail, bool fault = false) {
  State& s = state();
  s.last_error = code;
  if (fault) s.fault_error = code;
  s.detail_code = code;
  s.detail = detail;
}

// cudaErrorInvalidConfiguration etc. with the reason, or an empty string when the launch is valid.
std::string validate(const LaunchDesc& d, cudaError_t* code) {
  State& s = state();
  const dim3 g = d.grid, b = d.block;
  *code = cudaErrorInvalidConfiguration;
  std::string shape = "grid " + d3(g) + " block " + d3(b) + ": ";
  if (s.in_kernel) {
    *code = cudaErrorNotSupported;
    return "launch from inside a kernel (dynamic parallelism is not simulated)";
  }
  if (!d.kernel) {
    *code = cudaErrorInvalidDeviceFunction;
    return "null kernel";
  }
  if (g.x == 0 || g.y == 0 || g.z == 0 || b.x == 0 || b.y == 0 || b.z == 0) return shape + "a dimension is zero";
  if (b.x > 1024 || b.y > 1024 || b.z > 64) return shape + "block dimensions exceed (1024, 1024, 64)";
  if (uint64_t{b.x} * b.y * b.z > 1024) return shape + "more than 1024 threads per block";
  if (g.x > 2147483647u || g.y > 65535 || g.z > 65535) return shape + "grid dimensions exceed (2^31-1, 65535, 65535)";
  auto it = s.max_dynamic_shared.find(d.kernel);
  const size_t limit = it != s.max_dynamic_shared.end() ? static_cast<size_t>(it->second) : 48 * 1024;
  if (d.shmem > limit) {
    *code = cudaErrorInvalidValue;
    return std::to_string(d.shmem) + " bytes of dynamic shared memory exceed the kernel's limit of " +
           std::to_string(limit) + " (raise it with cudaFuncSetAttribute(cudaFuncAttributeMaxDynamicSharedMemorySize))";
  }
  return {};
}

void prepare_launch(const LaunchDesc& d, ThreadBody body, void* ctx) {
  State& s = state();
  s.desc = &d;
  s.body = body;
  s.ctx = ctx;
  s.nthreads = d.block.x * d.block.y * d.block.z;
  if (s.tid_shape.x != d.block.x || s.tid_shape.y != d.block.y || s.tid_shape.z != d.block.z) {
    s.tid_shape = d.block;
    s.tid_of.resize(s.nthreads);
    for (uint32_t t = 0; t < s.nthreads; ++t)
      s.tid_of[t] = uint3{t % d.block.x, t / d.block.x % d.block.y, t / (d.block.x * d.block.y)};
  }
  if (s.th.size() < s.nthreads) s.th.resize(s.nthreads);
  s.warps.resize((s.nthreads + 31) / 32);
  s.ready.resize(s.nthreads);
  s.aborted = false;
  s.fault.clear();
  s.stats = LaunchStats{};
  gridDim = d.grid;
  blockDim = d.block;
}

// Block b of the launch in the chosen order (a shuffle of very large grids uses an affine bijection).
struct BlockOrder {
  uint64_t n;
  ThreadOrder::Kind kind;
  std::vector<uint32_t> perm;
  uint64_t a = 1, c = 0;
  BlockOrder(uint64_t count, const ThreadOrder& o, uint64_t launch) : n(count), kind(o.kind) {
    if (kind != ThreadOrder::kShuffle) return;
    const uint64_t key = mix64(o.seed ^ mix64(launch + 0x51ED));
    if (n <= (uint64_t{1} << 24)) {
      perm.resize(n);
      for (uint64_t i = 0; i < n; ++i) perm[i] = static_cast<uint32_t>(i);
      shuffle_in_place(perm, key);
    } else {
      a = (mix64(key) % n) | 1;
      while (std::gcd(a, n) != 1) a += 2;
      c = mix64(key + 1) % n;
    }
  }
  uint64_t operator[](uint64_t i) const {
    if (kind == ThreadOrder::kForward) return i;
    if (kind == ThreadOrder::kReverse) return n - 1 - i;
    if (!perm.empty()) return perm[i];
    return static_cast<uint64_t>((static_cast<unsigned __int128>(a) * i + c) % n);
  }
};

}  // namespace

void run_launch(const LaunchDesc& d, ThreadBody body, void* ctx) {
  State& s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mutex);
  ++s.launches;
  cudaError_t code = cudaSuccess;
  std::string invalid = validate(d, &code);
  if (!invalid.empty()) {
    set_error(code, "launch of '" + std::string(d.name) + "': " + invalid);
    return;
  }
  prepare_launch(d, body, ctx);
  s.dyn_shared = std::malloc(d.shmem ? d.shmem : 1);
  if (!s.dyn_shared) die("simt: out of memory for dynamic shared memory");
  const uint64_t nblocks = uint64_t{d.grid.x} * d.grid.y * d.grid.z;
  BlockOrder blocks(nblocks, s.order_setting, s.launches);
  s.in_kernel = true;
  for (uint64_t i = 0; i < nblocks && !s.aborted; ++i) run_block(blocks[i]);
  s.in_kernel = false;
  std::free(s.dyn_shared);
  s.dyn_shared = nullptr;
  threadIdx = uint3{0, 0, 0};
  blockIdx = uint3{0, 0, 0};
  s.stats.stacks = s.fibers.size();
  if (s.aborted) {
    recycle_abandoned();
    set_error(cudaErrorLaunchFailure, s.fault, true);
  }
}

int block_barrier(int kind, int predicate, const char* file, int line) {
  State& s = state();
  if (!s.in_kernel) throw std::logic_error(std::string(barrier_name(kind)) + " called outside a kernel");
  const uint32_t me = s.current;
  ThreadRec& r = s.th[me];
  r.bar_kind = static_cast<int8_t>(kind);
  r.file = file;
  r.line = line;
  s.bar_acc += predicate;
  if (++s.bar_arrived < s.nthreads) {
    r.state = TState::kBarrier;
    wait_current();
  } else {
    // Everyone is here: release the others (in start order) and check that they all wait at this barrier.
    s.bar_result = s.bar_acc;
    s.bar_arrived = 0;
    s.bar_acc = 0;
    uint32_t elsewhere = 0;
    const ThreadRec* other = nullptr;
    for (uint32_t i = 0; i < s.nthreads; ++i) {
      const uint32_t t = s.order[i];
      if (t == me) continue;
      ThreadRec& q = s.th[t];
      if (q.bar_kind != kind || !same_site(q.file, q.line, file, line)) {
        ++elsewhere;
        other = &q;
      }
      push_ready(t);
    }
    if (elsewhere)
      throw KernelFault("divergent barriers: " + std::to_string(s.nthreads - elsewhere) + " threads at " +
                        barrier_name(kind) + " " + file + ":" + std::to_string(line) + " but " +
                        std::to_string(elsewhere) + " at other barriers (e.g. " + barrier_name(other->bar_kind) +
                        " " + other->file + ":" + std::to_string(other->line) +
                        "); every thread of a block must reach the same __syncthreads");
  }
  switch (kind) {
    case 1: return s.bar_result;
    case 2: return s.bar_result == static_cast<int>(s.nthreads);
    case 3: return s.bar_result > 0;
    default: return 0;
  }
}

uint64_t warp_op(WarpOp op, unsigned mask, uint64_t value, int param, int width, const char* file, int line) {
  State& s = state();
  if (!s.in_kernel) throw std::logic_error(std::string(op_name(op)) + " called outside a kernel");
  const uint32_t me = s.current, lane = me & 31u, warp = me >> 5;
  if (!((mask >> lane) & 1u))
    throw KernelFault(std::string(op_name(op)) + " at " + file + ":" + std::to_string(line) + ": lane " +
                      std::to_string(lane) + " is not in its own mask " + hex(mask));
  if (width < 1 || width > 32 || (width & (width - 1)))
    throw KernelFault(std::string(op_name(op)) + " at " + file + ":" + std::to_string(line) + ": width " +
                      std::to_string(width) + " is not a power of two in [1, 32]");
  ThreadRec& r = s.th[me];
  r.op = op;
  r.mask = mask;
  r.value = value;
  r.param = param;
  r.width = width;
  r.file = file;
  r.line = line;
  WarpRec& w = s.warps[warp];
  w.pending |= 1u << lane;
  const uint32_t need = mask & ~w.gone;
  if ((w.pending & need) == need) {
    std::string err = resolve_group(warp, need);
    if (!err.empty()) throw KernelFault(err);
  } else {
    r.state = TState::kWarp;
    wait_current();
  }
  return r.result;
}

unsigned active_mask() {
  State& s = state();
  if (!s.in_kernel) throw std::logic_error("__activemask called outside a kernel");
  return ~s.warps[s.current >> 5].gone;
}

void trap(const char* file, int line) {
  throw KernelFault(std::string("__trap() at ") + file + ":" + std::to_string(line));
}

}  // namespace detail

// ---- Public simulator API ------------------------------------------------------------------------------

ThreadOrder ThreadOrder::parse(const std::string& text) {
  if (text == "forward") return forward();
  if (text == "reverse") return reverse();
  if (text.rfind("shuffle", 0) == 0) {
    if (text == "shuffle") return shuffle(1);
    if (text.size() > 8 && text[7] == ':') {
      char* end = nullptr;
      const unsigned long long seed = std::strtoull(text.c_str() + 8, &end, 10);
      if (end && *end == '\0') return shuffle(seed);
    }
  }
  throw std::invalid_argument("thread order '" + text + "': expected forward, reverse or shuffle:SEED");
}

std::string ThreadOrder::name() const {
  switch (kind) {
    case kForward: return "forward";
    case kReverse: return "reverse";
    case kShuffle: return "shuffle:" + std::to_string(seed);
  }
  return "?";
}

namespace {
struct OrderInit {
  OrderInit() { detail::state().order_setting = detail::order_from_environment(); }
};
const OrderInit order_init;
}  // namespace

ThreadOrder thread_order() {
  std::lock_guard<std::recursive_mutex> lock(detail::state().mutex);
  return detail::state().order_setting;
}
void set_thread_order(ThreadOrder order) {
  std::lock_guard<std::recursive_mutex> lock(detail::state().mutex);
  detail::state().order_setting = order;
}
uint64_t launch_count() {
  std::lock_guard<std::recursive_mutex> lock(detail::state().mutex);
  return detail::state().launches;
}
LaunchStats last_launch_stats() {
  std::lock_guard<std::recursive_mutex> lock(detail::state().mutex);
  return detail::state().stats;
}
void* dynamic_shared_memory() {
  detail::State& s = detail::state();
  if (!s.in_kernel) throw std::logic_error("dynamic shared memory used outside a kernel");
  return s.dyn_shared;
}

namespace {
detail::Fiber* g_pingpong_peer = nullptr;
void pingpong_entry(detail::Fiber* self) {
  detail::finish_switch(nullptr);
  for (;;) detail::switch_fiber(self, g_pingpong_peer);
}
}  // namespace

double measure_switch_ns(uint64_t round_trips) {
  detail::State& s = detail::state();
  std::lock_guard<std::recursive_mutex> lock(s.mutex);
  static detail::Fiber* partner = detail::new_fiber(pingpong_entry);
  g_pingpong_peer = &s.main;
  const auto t0 = std::chrono::steady_clock::now();
  for (uint64_t i = 0; i < round_trips; ++i) detail::switch_fiber(&s.main, partner);
  const auto t1 = std::chrono::steady_clock::now();
  return std::chrono::duration<double, std::nano>(t1 - t0).count() / (2.0 * static_cast<double>(round_trips));
}

}  // namespace simt

// ---- CUDA runtime shims ------------------------------------------------------------------------------

namespace {

using simt::detail::set_error;
using simt::detail::State;
using simt::detail::state;

cudaError_t fail(cudaError_t code, const std::string& detail) {
  set_error(code, detail);
  return code;
}

// Does [p, p + bytes) lie inside one cudaMalloc allocation?
bool in_device_memory(const State& s, const void* p, size_t bytes) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  auto it = s.allocations.upper_bound(a);
  if (it == s.allocations.begin()) return false;
  --it;
  return a >= it->first && a - it->first <= it->second && bytes <= it->second - (a - it->first);
}

bool touches_device_memory(const State& s, const void* p, size_t bytes) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  auto it = s.allocations.upper_bound(a + (bytes ? bytes - 1 : 0));
  if (it == s.allocations.begin()) return false;
  --it;
  return it->first + it->second > a;
}

const char* error_name(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidSymbol: return "cudaErrorInvalidSymbol";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorInvalidDeviceFunction: return "cudaErrorInvalidDeviceFunction";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    case cudaErrorLaunchOutOfResources: return "cudaErrorLaunchOutOfResources";
    case cudaErrorAssert: return "cudaErrorAssert";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorNotSupported: return "cudaErrorNotSupported";
    case cudaErrorUnknown: return "cudaErrorUnknown";
  }
  return "cudaErrorUnknown";
}

const char* error_text(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidSymbol: return "invalid device symbol";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorInvalidDeviceFunction: return "invalid device function";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchOutOfResources: return "too many resources requested for launch";
    case cudaErrorAssert: return "device-side assert triggered";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorNotSupported: return "operation not supported";
    case cudaErrorUnknown: return "unknown error";
  }
  return "unknown error";
}

// Synchronising calls return a failed kernel's error, like a GPU's asynchronous fault.
cudaError_t pending_fault() { return state().fault_error; }

}  // namespace

struct CUstream_st {
  unsigned int flags;
};
struct CUevent_st {
  std::chrono::steady_clock::time_point when;
  bool recorded;
  unsigned int flags;
};

cudaError_t cudaMalloc(void** ptr, size_t bytes) {
  State& s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mutex);
  if (!ptr) return fail(cudaErrorInvalidValue, "cudaMalloc: null result pointer");
  *ptr = nullptr;
  if (bytes == 0) return cudaSuccess;
  // The fake device's memory is the host's physical memory: a request beyond what is free fails as
  // on a GPU, before the host allocator is asked (which could overcommit, or abort under ASan).
  size_t free_bytes = 0;
  cudaMemGetInfo(&free_bytes, nullptr);
  if (bytes > free_bytes)
    return fail(cudaErrorMemoryAllocation, "cudaMalloc: " + std::to_string(bytes) + " bytes, " +
                                               std::to_string(free_bytes) + " free");
  // Exactly `bytes` (AddressSanitizer then catches the first byte past the end), 256-byte aligned like
  // cudaMalloc, and filled with NaN bytes so that reading memory nobody wrote shows up.
  void* p = nullptr;
  if (posix_memalign(&p, 256, bytes) != 0 || !p)
    return fail(cudaErrorMemoryAllocation, "cudaMalloc: " + std::to_string(bytes) + " bytes");
  std::memset(p, 0xFF, bytes);
  s.allocations[reinterpret_cast<uintptr_t>(p)] = bytes;
  *ptr = p;
  return cudaSuccess;
}

cudaError_t cudaFree(void* ptr) {
  State& s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mutex);
  if (!ptr) return cudaSuccess;
  auto it = s.allocations.find(reinterpret_cast<uintptr_t>(ptr));
  if (it == s.allocations.end()) return fail(cudaErrorInvalidValue, "cudaFree: pointer was not returned by cudaMalloc");
  s.allocations.erase(it);
  std::free(ptr);
  return cudaSuccess;
}

cudaError_t cudaMallocHost(void** ptr, size_t bytes) {
  if (!ptr) return fail(cudaErrorInvalidValue, "cudaMallocHost: null result pointer");
  *ptr = bytes ? std::malloc(bytes) : nullptr;
  return (bytes && !*ptr) ? fail(cudaErrorMemoryAllocation, "cudaMallocHost") : cudaSuccess;
}

cudaError_t cudaFreeHost(void* ptr) {
  std::free(ptr);
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  State& s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mutex);
  if (s.fault_error != cudaSuccess) return s.fault_error;
  if (bytes == 0) return cudaSuccess;
  if (!dst || !src) return fail(cudaErrorInvalidValue, "cudaMemcpy: null pointer");
  const bool dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault)
    return fail(cudaErrorInvalidMemcpyDirection, "cudaMemcpy: kind " + std::to_string(kind));
  if (kind != cudaMemcpyDefault) {
    if (dst_dev && !in_device_memory(s, dst, bytes))
      return fail(cudaErrorInvalidValue, "cudaMemcpy of " + std::to_string(bytes) +
                                             " bytes: the destination is not inside one cudaMalloc allocation");
    if (src_dev && !in_device_memory(s, src, bytes))
      return fail(cudaErrorInvalidValue, "cudaMemcpy of " + std::to_string(bytes) +
                                             " bytes: the source is not inside one cudaMalloc allocation");
    if (!dst_dev && touches_device_memory(s, dst, bytes))
      return fail(cudaErrorInvalidValue, "cudaMemcpy: the destination is device memory but the kind says host");
    if (!src_dev && touches_device_memory(s, src, bytes))
      return fail(cudaErrorInvalidValue, "cudaMemcpy: the source is device memory but the kind says host");
  }
  std::memmove(dst, src, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t) {
  return cudaMemcpy(dst, src, bytes, kind);
}

cudaError_t cudaMemset(void* ptr, int value, size_t bytes) {
  State& s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mutex);
  if (s.fault_error != cudaSuccess) return s.fault_error;
  if (bytes == 0) return cudaSuccess;
  if (!in_device_memory(s, ptr, bytes))
    return fail(cudaErrorInvalidValue,
                "cudaMemset of " + std::to_string(bytes) + " bytes: not inside one cudaMalloc allocation");
  std::memset(ptr, value, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void* ptr, int value, size_t bytes, cudaStream_t) { return cudaMemset(ptr, value, bytes); }

cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  const size_t total = static_cast<size_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t avail = static_cast<size_t>(sysconf(_SC_AVPHYS_PAGES)) * static_cast<size_t>(sysconf(_SC_PAGESIZE));
  if (free_bytes) *free_bytes = avail;
  if (total_bytes) *total_bytes = total;
  return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t* stream) { return cudaStreamCreateWithFlags(stream, cudaStreamDefault); }
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int flags) {
  if (!stream) return fail(cudaErrorInvalidValue, "cudaStreamCreate: null result pointer");
  *stream = new CUstream_st{flags};
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  delete stream;
  return cudaSuccess;
}
// Every operation completed when it returned: synchronising only reports a failed kernel.
cudaError_t cudaStreamSynchronize(cudaStream_t) { return pending_fault(); }
cudaError_t cudaStreamWaitEvent(cudaStream_t, cudaEvent_t, unsigned int) { return cudaSuccess; }

cudaError_t cudaEventCreate(cudaEvent_t* event) { return cudaEventCreateWithFlags(event, cudaEventDefault); }
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int flags) {
  if (!event) return fail(cudaErrorInvalidValue, "cudaEventCreate: null result pointer");
  *event = new CUevent_st{{}, false, flags};
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t event) {
  delete event;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t) {
  if (!event) return fail(cudaErrorInvalidResourceHandle, "cudaEventRecord: null event");
  event->when = std::chrono::steady_clock::now();
  event->recorded = true;
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t) { return pending_fault(); }
cudaError_t cudaEventQuery(cudaEvent_t) { return cudaSuccess; }
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  if (!ms || !start || !end) return fail(cudaErrorInvalidValue, "cudaEventElapsedTime: null argument");
  if ((start->flags | end->flags) & cudaEventDisableTiming)
    return fail(cudaErrorInvalidResourceHandle, "cudaEventElapsedTime: event created with cudaEventDisableTiming");
  if (!start->recorded || !end->recorded) return fail(cudaErrorInvalidResourceHandle, "cudaEventElapsedTime: event not recorded");
  State& s = state();
  if (!s.timing_note_printed) {
    s.timing_note_printed = true;
    std::fprintf(stderr, "simt: cudaEventElapsedTime measures the CUDA-on-CPU simulator on the host; "
                         "it says nothing about GPU time\n");
  }
  *ms = std::chrono::duration<float, std::milli>(end->when - start->when).count();
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize() { return pending_fault(); }
cudaError_t cudaDeviceReset() {
  State& s = state();
  s.last_error = s.fault_error = cudaSuccess;
  return cudaSuccess;
}

cudaError_t cudaGetLastError() {
  State& s = state();
  const cudaError_t e = s.last_error;
  s.last_error = cudaSuccess;
  s.fault_error = cudaSuccess;  // unlike a GPU's, a fault is not sticky: the next test can go on
  return e;
}
cudaError_t cudaPeekAtLastError() { return state().last_error; }
const char* cudaGetErrorName(cudaError_t err) { return error_name(err); }
const char* cudaGetErrorString(cudaError_t err) {
  State& s = state();
  if (err != cudaSuccess && err == s.detail_code && !s.detail.empty()) {
    s.composed = std::string(error_text(err)) + " [simt: " + s.detail + "]";
    return s.composed.c_str();
  }
  return error_text(err);
}

cudaError_t cudaGetDeviceCount(int* count) {
  if (!count) return fail(cudaErrorInvalidValue, "cudaGetDeviceCount: null result pointer");
  *count = 1;
  return cudaSuccess;
}
cudaError_t cudaGetDevice(int* device) {
  if (!device) return fail(cudaErrorInvalidValue, "cudaGetDevice: null result pointer");
  *device = 0;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) {
  return device == 0 ? cudaSuccess : fail(cudaErrorInvalidDevice, "the simulator has one device, 0");
}

cudaError_t cudaRuntimeGetVersion(int* version) {
  if (!version) return fail(cudaErrorInvalidValue, "cudaRuntimeGetVersion: null result pointer");
  *version = 13000;
  return cudaSuccess;
}
cudaError_t cudaDriverGetVersion(int* version) {
  if (!version) return fail(cudaErrorInvalidValue, "cudaDriverGetVersion: null result pointer");
  *version = 0;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (!prop) return fail(cudaErrorInvalidValue, "cudaGetDeviceProperties: null result pointer");
  if (device != 0) return fail(cudaErrorInvalidDevice, "the simulator has one device, 0");
  *prop = cudaDeviceProp{};
  std::snprintf(prop->name, sizeof prop->name, "simt CUDA-on-CPU simulator (not a GPU)");
  size_t free_bytes = 0;
  cudaMemGetInfo(&free_bytes, &prop->totalGlobalMem);
  // Limits as on an H100, so that launch checks match the GPU the project targets.
  prop->sharedMemPerBlock = 48 * 1024;
  prop->sharedMemPerBlockOptin = 227 * 1024;
  prop->sharedMemPerMultiprocessor = 228 * 1024;
  prop->regsPerBlock = 65536;
  prop->regsPerMultiprocessor = 65536;
  prop->warpSize = 32;
  prop->memPitch = SIZE_MAX;
  prop->maxThreadsPerBlock = 1024;
  prop->maxThreadsDim[0] = 1024;
  prop->maxThreadsDim[1] = 1024;
  prop->maxThreadsDim[2] = 64;
  prop->maxGridSize[0] = 2147483647;
  prop->maxGridSize[1] = 65535;
  prop->maxGridSize[2] = 65535;
  prop->totalConstMem = 64 * 1024;
  prop->major = 9;
  prop->minor = 0;
  prop->multiProcessorCount = 132;
  prop->maxThreadsPerMultiProcessor = 2048;
  prop->maxBlocksPerMultiProcessor = 32;
  prop->l2CacheSize = 50 * 1024 * 1024;
  prop->memoryBusWidth = 5120;
  return cudaSuccess;
}

cudaError_t cudaFuncSetAttribute(const void* kernel, cudaFuncAttribute attr, int value) {
  State& s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mutex);
  if (!kernel) return fail(cudaErrorInvalidDeviceFunction, "cudaFuncSetAttribute: null kernel");
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize)
    return fail(cudaErrorInvalidValue, "cudaFuncSetAttribute: attribute not simulated");
  if (value < 0 || value > 227 * 1024)
    return fail(cudaErrorInvalidValue, "cudaFuncSetAttribute: " + std::to_string(value) +
                                           " bytes of dynamic shared memory exceed the opt-in limit 232448");
  s.max_dynamic_shared[kernel] = value;
  return cudaSuccess;
}
