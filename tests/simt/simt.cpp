// simt runtime: the block scheduler, the fibers it runs threads on, warp operations, and the CUDA
// runtime shims (memory, streams, events, errors, device properties). Design in simt.h and README.md.
//
// Scheduling in one paragraph: a block starts on a runner fiber, which calls the threads' bodies one
// after another. A thread that must wait (barrier, or a warp operation whose partners have not
// arrived) keeps the fiber it is on and switches to the next thing that can run: a thread that a
// completed barrier released (FIFO), else a runner from the pool that goes on starting threads, else
// the scheduler's own context, which then sees either a finished block or a deadlock. A runner with
// nothing left to start parks itself in the pool. A block runs on one OS thread with its own State,
// and only one OS thread runs at a time (the interleave order's workers pass a baton), so the
// scheduler state is plain data.
#include "simt.h"

#include <cxxabi.h>
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <numeric>
#include <stdexcept>
#include <thread>
#include <typeinfo>
#include <unordered_map>
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

// Plain globals, not thread_local: GCC 12's UBSan null check on an extern thread_local reads the flags
// of an `add` that the linker relaxes into a flag-less `lea`, and reports null pointers that are not.
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
  // Launches run since the thread order was last set: an interleave order draws from this and its seed
  // (not from `launches`), so a test that sets the order replays the same interleavings on its own.
  uint64_t order_launches = 0;
  std::vector<LaunchRecord>* launch_log = nullptr;  // the innermost ScopedLaunchLog's records
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
  std::map<uintptr_t, size_t> pinned;  // cudaMallocHost

  // Stream capture and graphs.
  std::vector<CUstream_st*> capturing;  // streams between BeginCapture and EndCapture
  unsigned long long capture_ids = 0;
  GraphStats graph_stats;
  std::map<const void*, int> max_dynamic_shared;
  bool timing_note_printed = false;

  // Asynchronous streams (simt::set_async).
  bool async_setting = false;
  uint64_t issue_seq = 0;  // work items queued so far
};

// The worker threads of an interleaved launch each have their own State (see run_interleaved).
thread_local State* t_state = nullptr;

State& launcher_state() {
  static State* s = new State;  // never destroyed: fibers may outlive static destruction order
  return *s;
}

State& state() { return t_state ? *t_state : launcher_state(); }

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
thread_local Fiber* g_starting = nullptr;
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
  if (o.kind == ThreadOrder::kShuffle || o.kind == ThreadOrder::kInterleave)
    shuffle_in_place(s.order, mix64(o.seed ^ mix64(s.launches) ^ mix64(~block_linear)));
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
    if (kind != ThreadOrder::kShuffle && kind != ThreadOrder::kInterleave) return;
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

// ---- Interleaved launches (ThreadOrder::interleave) ------------------------------------------------
// Up to kResidentBlocks blocks are in flight. Each runs on its own worker OS thread with its own State (fibers, ready
// queue), its own static __shared__ variables (thread_local) and its own built-in variables (plain globals, saved and
// restored around every hand-over). Exactly one thread runs at any time: the one holding the baton (`turn`); the others
// wait on the condition variable. The running worker hands the baton on at every switch point (a global atomic or fence
// in kernel code, and before each block it takes) to a resident block drawn from the launch's seeded generator,
// possibly itself. Mutex hand-offs order every access, so the workers' plain reads and writes of kernel memory and of
// this struct are race-free, and a seed always gives the same interleaving.
constexpr int kResident = ThreadOrder::kResidentBlocks;

struct Interleave {
  std::mutex mutex;
  std::condition_variable cv;
  int turn = -1;  // the worker holding the baton; -1: the launching thread
  bool started = false;
  State* workers[kResident] = {};
  // The launch (written by the launching thread before it hands the baton out).
  uint64_t generation = 0;
  State* launcher = nullptr;
  const BlockOrder* blocks = nullptr;
  uint64_t nblocks = 0;
  uint64_t next_block = 0;
  uint64_t rng = 0;
  bool live[kResident] = {};  // still taking blocks in this launch
  bool aborted = false;       // a block faulted: the others stop at their next switch point
  std::string fault;          // the first fault
};

Interleave& interleave() {
  static Interleave* i = new Interleave;  // never destroyed: its workers outlive static destruction
  return *i;
}

thread_local int t_worker = -1;

// pthread_atfork's child handler: a forked child (a death test) has none of the workers, so its first
// interleaved launch starts its own. Their States stay reachable (the child may exit under LeakSanitizer).
void forget_workers_after_fork() {
  Interleave& il = interleave();
  static std::vector<State*>* orphans = new std::vector<State*>;
  orphans->insert(orphans->end(), std::begin(il.workers), std::end(il.workers));
  new (&il.mutex) std::mutex;
  new (&il.cv) std::condition_variable;
  il.turn = -1;
  il.started = false;
}

// A live worker drawn from the launch's generator, or -1 when none is left.
int draw_worker(Interleave& il) {
  int live[kResident];
  int n = 0;
  for (int w = 0; w < kResident; ++w)
    if (il.live[w]) live[n++] = w;
  if (n == 0) return -1;
  il.rng = mix64(il.rng);
  return live[il.rng % static_cast<uint64_t>(n)];
}

// Hands the baton to worker `to` (or the launching thread, -1) and, unless `leaving`, waits for it back
// and restores the built-in variables, which the others have set for their own blocks meanwhile.
void hand_over(Interleave& il, int to, bool leaving) {
  const int me = t_worker;
  const uint3 tid = threadIdx, bid = blockIdx;
  const dim3 bdim = blockDim, gdim = gridDim;
  std::unique_lock<std::mutex> lock(il.mutex);
  il.turn = to;
  il.cv.notify_all();
  if (leaving) return;
  il.cv.wait(lock, [&] { return il.turn == me; });
  threadIdx = tid;
  blockIdx = bid;
  blockDim = bdim;
  gridDim = gdim;
}

void maybe_hand_over(Interleave& il) {
  if (il.aborted) return;
  const int next = draw_worker(il);
  if (next != t_worker) hand_over(il, next, false);
}

void begin_worker_launch(State& w, const State& l) {
  w.order_setting = l.order_setting;
  w.launches = l.order_launches;  // what make_thread_order draws from
  prepare_launch(*l.desc, l.body, l.ctx);
  w.dyn_shared = std::malloc(l.desc->shmem ? l.desc->shmem : 1);
  if (!w.dyn_shared) die("simt: out of memory for dynamic shared memory");
  w.in_kernel = true;
}

void end_worker_launch(State& w, State& l) {
  if (w.aborted) recycle_abandoned();
  w.in_kernel = false;
  std::free(w.dyn_shared);
  w.dyn_shared = nullptr;
  threadIdx = uint3{0, 0, 0};
  blockIdx = uint3{0, 0, 0};
  l.stats.blocks += w.stats.blocks;
  l.stats.threads += w.stats.threads;
  l.stats.waiting_blocks += w.stats.waiting_blocks;
  l.stats.waits += w.stats.waits;
  l.stats.switches += w.stats.switches;
}

[[noreturn]] void worker_main(int me) {
  Interleave& il = interleave();
  State& w = *il.workers[me];
  t_state = &w;
  t_worker = me;
  uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(il.mutex);
      il.cv.wait(lock, [&] { return il.turn == me; });
    }
    if (il.generation != seen) {
      seen = il.generation;
      begin_worker_launch(w, *il.launcher);
    }
    for (;;) {
      maybe_hand_over(il);
      if (w.aborted || il.aborted || il.next_block == il.nblocks) break;
      run_block((*il.blocks)[il.next_block++]);
      if (w.aborted && !il.aborted) {
        il.aborted = true;
        il.fault = w.fault;
      }
    }
    end_worker_launch(w, *il.launcher);
    il.live[me] = false;
    hand_over(il, draw_worker(il), true);
  }
}

// Runs the launch prepared in the launching thread's State `s` on the workers; returns when every
// block has run or a fault has stopped them.
void run_interleaved(State& s, const BlockOrder& blocks, uint64_t nblocks) {
  Interleave& il = interleave();
  if (!il.started) {
    static const bool fork_handler = pthread_atfork(nullptr, nullptr, forget_workers_after_fork) == 0;
    if (!fork_handler) die("simt: pthread_atfork failed");
    for (int w = 0; w < kResident; ++w) {
      il.workers[w] = new State;  // never destroyed, like the launching thread's
      std::thread(worker_main, w).detach();
    }
    il.started = true;
  }
  std::unique_lock<std::mutex> lock(il.mutex);
  ++il.generation;
  il.launcher = &s;
  il.blocks = &blocks;
  il.nblocks = nblocks;
  il.next_block = 0;
  il.rng = mix64(s.order_setting.seed ^ mix64(s.order_launches + 0x1E4A));
  il.aborted = false;
  il.fault.clear();
  const uint64_t resident = std::min<uint64_t>(kResident, nblocks);
  for (int w = 0; w < kResident; ++w) il.live[w] = static_cast<uint64_t>(w) < resident;
  il.turn = draw_worker(il);
  interleaving = true;
  il.cv.notify_all();
  il.cv.wait(lock, [&] { return il.turn == -1; });
  interleaving = false;
  if (il.aborted) {
    s.aborted = true;
    s.fault = il.fault;
  }
}

}  // namespace

cudaError_t run_launch(const LaunchDesc& d, ThreadBody body, void* ctx) {
  State& s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mutex);
  ++s.launches;
  if (s.launch_log) s.launch_log->push_back({d.name, d.grid, d.block, d.shmem});
  cudaError_t code = cudaSuccess;
  std::string invalid = validate(d, &code);
  if (!invalid.empty()) {
    set_error(code, "launch of '" + std::string(d.name) + "': " + invalid);
    return code;
  }
  prepare_launch(d, body, ctx);
  s.dyn_shared = std::malloc(d.shmem ? d.shmem : 1);
  if (!s.dyn_shared) die("simt: out of memory for dynamic shared memory");
  const uint64_t nblocks = uint64_t{d.grid.x} * d.grid.y * d.grid.z;
  ++s.order_launches;
  const bool interleaved = s.order_setting.kind == ThreadOrder::kInterleave;
  BlockOrder blocks(nblocks, s.order_setting, interleaved ? s.order_launches : s.launches);
  s.in_kernel = true;
  if (interleaved)
    run_interleaved(s, blocks, nblocks);
  else
    for (uint64_t i = 0; i < nblocks && !s.aborted; ++i) run_block(blocks[i]);
  s.in_kernel = false;
  std::free(s.dyn_shared);
  s.dyn_shared = nullptr;
  threadIdx = uint3{0, 0, 0};
  blockIdx = uint3{0, 0, 0};
  s.stats.stacks = s.fibers.size();
  if (!s.aborted) return cudaSuccess;
  recycle_abandoned();
  set_error(cudaErrorLaunchFailure, s.fault, true);
  return cudaErrorLaunchFailure;
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

bool interleaving = false;

void switch_block() {
  Interleave& il = interleave();
  maybe_hand_over(il);
  if (il.aborted) throw KernelFault("stopped: another block of the interleaved launch faulted");
}

}  // namespace detail

// ---- Public simulator API ------------------------------------------------------------------------------

ThreadOrder ThreadOrder::parse(const std::string& text) {
  if (text == "forward") return forward();
  if (text == "reverse") return reverse();
  for (const Kind kind : {kShuffle, kInterleave}) {
    const std::string prefix = kind == kShuffle ? "shuffle" : "interleave";
    if (text.rfind(prefix, 0) != 0) continue;
    if (text == prefix) return {kind, 1};
    const char* digits = text.c_str() + prefix.size() + 1;
    if (text[prefix.size()] == ':' && std::isdigit(static_cast<unsigned char>(*digits))) {
      char* end = nullptr;
      const unsigned long long seed = std::strtoull(digits, &end, 10);
      if (end && *end == '\0') return {kind, seed};
    }
  }
  throw std::invalid_argument("thread order '" + text +
                              "': expected forward, reverse, shuffle:SEED or interleave:SEED");
}

std::string ThreadOrder::name() const {
  switch (kind) {
    case kForward: return "forward";
    case kReverse: return "reverse";
    case kShuffle: return "shuffle:" + std::to_string(seed);
    case kInterleave: return "interleave:" + std::to_string(seed);
  }
  return "?";
}

namespace {
struct OrderInit {
  OrderInit() {
    detail::state().order_setting = detail::order_from_environment();
    const char* async_env = std::getenv("SIMT_ASYNC");
    detail::state().async_setting = async_env && *async_env && std::strcmp(async_env, "0") != 0;
  }
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
  detail::state().order_launches = 0;
}
uint64_t launch_count() {
  std::lock_guard<std::recursive_mutex> lock(detail::state().mutex);
  return detail::state().launches;
}
ScopedLaunchLog::ScopedLaunchLog() {
  std::lock_guard<std::recursive_mutex> lock(detail::state().mutex);
  saved_ = std::exchange(detail::state().launch_log, &records_);
}
ScopedLaunchLog::~ScopedLaunchLog() {
  std::lock_guard<std::recursive_mutex> lock(detail::state().mutex);
  detail::state().launch_log = saved_;
}
LaunchStats last_launch_stats() {
  std::lock_guard<std::recursive_mutex> lock(detail::state().mutex);
  detail::run_all_work();
  return detail::state().stats;
}
const std::vector<LaunchRecord>& ScopedLaunchLog::records() const {
  std::lock_guard<std::recursive_mutex> lock(detail::state().mutex);
  detail::run_all_work();
  return records_;
}
bool async() {
  std::lock_guard<std::recursive_mutex> lock(detail::state().mutex);
  return detail::state().async_setting;
}
void set_async(bool on) {
  std::lock_guard<std::recursive_mutex> lock(detail::state().mutex);
  if (!on) detail::run_all_work();  // nothing stays queued once every call completes at once
  detail::state().async_setting = on;
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
    case cudaErrorIllegalState: return "cudaErrorIllegalState";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    case cudaErrorLaunchOutOfResources: return "cudaErrorLaunchOutOfResources";
    case cudaErrorLaunchTimeout: return "cudaErrorLaunchTimeout";
    case cudaErrorAssert: return "cudaErrorAssert";
    case cudaErrorHardwareStackError: return "cudaErrorHardwareStackError";
    case cudaErrorIllegalInstruction: return "cudaErrorIllegalInstruction";
    case cudaErrorMisalignedAddress: return "cudaErrorMisalignedAddress";
    case cudaErrorInvalidAddressSpace: return "cudaErrorInvalidAddressSpace";
    case cudaErrorInvalidPc: return "cudaErrorInvalidPc";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorNotSupported: return "cudaErrorNotSupported";
    case cudaErrorStreamCaptureUnsupported: return "cudaErrorStreamCaptureUnsupported";
    case cudaErrorStreamCaptureInvalidated: return "cudaErrorStreamCaptureInvalidated";
    case cudaErrorStreamCaptureIsolation: return "cudaErrorStreamCaptureIsolation";
    case cudaErrorStreamCaptureImplicit: return "cudaErrorStreamCaptureImplicit";
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
    case cudaErrorIllegalState: return "the operation cannot be performed in the present state";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchOutOfResources: return "too many resources requested for launch";
    case cudaErrorLaunchTimeout: return "the launch timed out and was terminated";
    case cudaErrorAssert: return "device-side assert triggered";
    case cudaErrorHardwareStackError: return "hardware stack error";
    case cudaErrorIllegalInstruction: return "an illegal instruction was encountered";
    case cudaErrorMisalignedAddress: return "misaligned address";
    case cudaErrorInvalidAddressSpace: return "operation not supported on global/shared address space";
    case cudaErrorInvalidPc: return "invalid program counter";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorNotSupported: return "operation not supported";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
    case cudaErrorStreamCaptureIsolation: return "dependency created on uncaptured work in another stream";
    case cudaErrorStreamCaptureImplicit:
      return "operation would make the legacy stream depend on a capturing blocking stream";
    case cudaErrorUnknown: return "unknown error";
  }
  return "unknown error";
}

// Synchronising calls return a failed kernel's error, like a GPU's asynchronous fault.
cudaError_t pending_fault() { return state().fault_error; }

}  // namespace

// A recorded operation of a stream capture: run at every launch of a graph made from it.
struct GraphNode {
  std::string name;
  std::function<cudaError_t()> run;
};
using NodeList = std::vector<std::shared_ptr<const GraphNode>>;

struct CUstream_st {
  unsigned int flags = cudaStreamDefault;
  // Between cudaStreamBeginCapture and cudaStreamEndCapture: operations are appended to `nodes`.
  bool capturing = false;
  bool invalidated = false;    // a forbidden call broke the capture; EndCapture returns no graph
  std::string invalid_reason;  // that call, for the errors that follow
  cudaStreamCaptureMode mode = cudaStreamCaptureModeGlobal;
  unsigned long long capture_id = 0;
  NodeList nodes;
  // Asynchronous mode: work queued on the stream, in issue order (seq: a process-wide issue count).
  struct Pending {
    uint64_t seq;
    std::function<cudaError_t()> run;
  };
  std::deque<Pending> pending;
};
// A graph and its executable form hold the same immutable nodes: instantiating copies the list, so
// destroying (or re-capturing) the graph leaves the executable graph as it was, as on a GPU.
struct CUgraph_st {
  NodeList nodes;
};
struct CUgraphExec_st {
  NodeList nodes;
};
struct CUevent_st {
  std::chrono::steady_clock::time_point when;
  bool recorded;
  unsigned int flags;
  // Asynchronous mode: the last record is queued on `stream` as work number `seq` and has not run.
  bool pending = false;
  CUstream_st* stream = nullptr;
  uint64_t seq = 0;
};

namespace {

// ---- Stream capture ----------------------------------------------------------------------------------
// The rules follow the CUDA Programming Guide ("Prohibited and Unhandled Operations", "Invalidation")
// and cudaThreadExchangeStreamCaptureMode: synchronising with a capturing stream (or the device that
// holds it) is invalid; the legacy default stream implicitly depends on every blocking stream, so any
// use of it while one captures is invalid; cudaMalloc/cudaFree and the like are "potentially unsafe"
// unless the capture was begun in relaxed mode. An invalid call fails, and it invalidates the captures
// concerned: they go on until cudaStreamEndCapture, which then returns
// cudaErrorStreamCaptureInvalidated and no graph. The simulator runs one OS thread at a time and does
// not tell threads apart, so thread-local mode behaves as global mode.

// The captures a violation concerns: those of one stream, of blocking streams (legacy stream use),
// those not begun in relaxed mode (potentially unsafe calls), or all (device-wide synchronisation).
enum class Scope { kStream, kBlocking, kStrict, kAll };

bool concerns(const CUstream_st* capture, Scope scope, const CUstream_st* stream) {
  switch (scope) {
    case Scope::kStream: return capture == stream;
    case Scope::kBlocking: return (capture->flags & cudaStreamNonBlocking) == 0;
    case Scope::kStrict: return capture->mode != cudaStreamCaptureModeRelaxed;
    case Scope::kAll: return true;
  }
  return true;
}

bool any_capture(Scope scope) {
  for (const CUstream_st* c : state().capturing)
    if (concerns(c, scope, nullptr)) return true;
  return false;
}

// Fails `what` with `code` and invalidates the captures in `scope`.
cudaError_t violate(cudaError_t code, Scope scope, const CUstream_st* stream, const std::string& what) {
  for (CUstream_st* c : state().capturing) {
    if (!concerns(c, scope, stream) || c->invalidated) continue;
    c->invalidated = true;
    c->invalid_reason = what + " (" + error_name(code) + ")";
  }
  return fail(code, what);
}

// Whether an operation on `stream` runs now (*record false), is recorded into the stream's capture
// (*record true), or fails (the error is returned).
cudaError_t gate(cudaStream_t stream, const std::string& what, bool* record) {
  *record = false;
  if (stream && stream->capturing) {
    if (stream->invalidated)
      return fail(cudaErrorStreamCaptureInvalidated, what + " on a stream whose capture was invalidated by " +
                                                         stream->invalid_reason);
    *record = true;
    return cudaSuccess;
  }
  if (!stream && any_capture(Scope::kBlocking))
    return violate(cudaErrorStreamCaptureImplicit, Scope::kBlocking, nullptr,
                   what + " on the legacy default stream while a blocking stream captures");
  return cudaSuccess;
}

// cudaMalloc, cudaFree, cudaMallocHost, cudaFreeHost: "potentially unsafe" during a capture.
cudaError_t unsafe_call(const char* what) {
  if (!any_capture(Scope::kStrict)) return cudaSuccess;
  return violate(cudaErrorStreamCaptureUnsupported, Scope::kStrict, nullptr,
                 std::string(what) + " while a stream captures (allowed only in cudaStreamCaptureModeRelaxed)");
}

void add_node(cudaStream_t stream, std::string name, std::function<cudaError_t()> run) {
  stream->nodes.push_back(std::make_shared<const GraphNode>(GraphNode{std::move(name), std::move(run)}));
}

cudaError_t run_nodes(const NodeList& nodes) {
  for (const auto& node : nodes) {
    const cudaError_t err = node->run();
    if (err != cudaSuccess) return err;  // a GPU's context would be lost: nothing after it runs
  }
  return cudaSuccess;
}

void end_capture(CUstream_st* stream) {
  State& s = state();
  s.capturing.erase(std::remove(s.capturing.begin(), s.capturing.end(), stream), s.capturing.end());
  stream->capturing = false;
}

// ---- Asynchronous streams (simt::set_async) -------------------------------------------------------
// Work is queued on its stream (the legacy default stream has a queue object of its own) and runs when
// the host synchronises with it. Running stream X up to work number n first runs what X implicitly
// waits for: before each item of the legacy stream, every blocking stream's earlier work; before each
// item of a blocking stream, the legacy stream's earlier work. Non-blocking streams, and two blocking
// streams, are not ordered with each other. A failed item (a kernel fault, a copy whose memory was
// freed) drops all queued work, as a GPU's context would be lost, and its error is the sync's result.

CUstream_st& legacy_queue() {
  static CUstream_st* q = new CUstream_st;
  return *q;
}
std::vector<CUstream_st*>& live_streams() {
  static auto* v = new std::vector<CUstream_st*>;
  return *v;
}
CUstream_st& queue_of(cudaStream_t stream) { return stream ? *stream : legacy_queue(); }
bool blocking(const CUstream_st& q) { return (q.flags & cudaStreamNonBlocking) == 0; }

// Queues `run` on `stream`; returns its work number.
uint64_t enqueue(cudaStream_t stream, std::function<cudaError_t()> run) {
  State& s = state();
  CUstream_st& q = queue_of(stream);
  q.pending.push_back({++s.issue_seq, std::move(run)});
  return s.issue_seq;
}

void drop_all_pending() {
  legacy_queue().pending.clear();
  for (CUstream_st* q : live_streams()) q->pending.clear();
}

// Runs the work of `q` numbered up to `upto`, after what it waits for.
cudaError_t run_queue(CUstream_st& q, uint64_t upto) {
  while (!q.pending.empty() && q.pending.front().seq <= upto) {
    const uint64_t seq = q.pending.front().seq;
    if (&q == &legacy_queue()) {
      for (CUstream_st* b : live_streams())
        if (blocking(*b))
          if (const cudaError_t e = run_queue(*b, seq - 1)) return e;
    } else if (blocking(q)) {
      if (const cudaError_t e = run_queue(legacy_queue(), seq - 1)) return e;
    }
    if (q.pending.empty() || q.pending.front().seq != seq) continue;  // a failure above dropped it
    std::function<cudaError_t()> run = std::move(q.pending.front().run);
    q.pending.pop_front();
    if (const cudaError_t e = run()) {
      drop_all_pending();
      return e;
    }
  }
  return cudaSuccess;
}

constexpr uint64_t kAllWork = ~uint64_t{0};

// What a synchronous call on the legacy stream (cudaMemcpy, cudaStreamSynchronize(0)) waits for: the
// legacy stream's queued work and every blocking stream's work issued so far.
cudaError_t run_legacy_stream() {
  const uint64_t now = state().issue_seq;
  if (const cudaError_t e = run_queue(legacy_queue(), now)) return e;
  for (CUstream_st* q : live_streams())
    if (blocking(*q))
      if (const cudaError_t e = run_queue(*q, now)) return e;
  return cudaSuccess;
}

cudaError_t run_all_queues() {
  if (const cudaError_t e = run_queue(legacy_queue(), kAllWork)) return e;
  for (CUstream_st* q : live_streams())
    if (const cudaError_t e = run_queue(*q, kAllWork)) return e;
  return cudaSuccess;
}

// Work on `stream` is queued now (not captured, asynchronous mode on).
bool deferred(cudaStream_t stream) { return state().async_setting && !(stream && stream->capturing); }

// Runs the work up to the event's queued record, if it has not run (its stream may be gone: a stream
// is destroyed only after its work has run, or been dropped by a failure).
cudaError_t run_event(cudaEvent_t event) {
  if (!event || !event->pending) return cudaSuccess;
  CUstream_st* q = event->stream;
  const auto& live = live_streams();
  if (q != &legacy_queue() && std::find(live.begin(), live.end(), q) == live.end()) return cudaSuccess;
  return run_queue(*q, event->seq);
}

// ---- Copies --------------------------------------------------------------------------------------------

bool in_pinned_memory(const State& s, const void* p, size_t bytes) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  auto it = s.pinned.upper_bound(a);
  if (it == s.pinned.begin()) return false;
  --it;
  return a - it->first <= it->second && bytes <= it->second - (a - it->first);
}

const char* kind_name(cudaMemcpyKind kind) {
  switch (kind) {
    case cudaMemcpyHostToHost: return "HtoH";
    case cudaMemcpyHostToDevice: return "HtoD";
    case cudaMemcpyDeviceToHost: return "DtoH";
    case cudaMemcpyDeviceToDevice: return "DtoD";
    case cudaMemcpyDefault: return "default";
  }
  return "?";
}

// Why a copy's pointers disagree with its kind (cudaErrorInvalidValue), or "" when they agree. With
// pinned_host, a host side must also be cudaMallocHost memory (a captured copy).
std::string copy_problem(const State& s, void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                         bool pinned_host) {
  const std::string n = std::to_string(bytes);
  const bool dst_dev = kind == cudaMemcpyDefault ? in_device_memory(s, dst, bytes)
                                                 : kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool src_dev = kind == cudaMemcpyDefault ? in_device_memory(s, src, bytes)
                                                 : kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (kind != cudaMemcpyDefault) {
    if (dst_dev && !in_device_memory(s, dst, bytes))
      return "cudaMemcpy of " + n + " bytes: the destination is not inside one cudaMalloc allocation";
    if (src_dev && !in_device_memory(s, src, bytes))
      return "cudaMemcpy of " + n + " bytes: the source is not inside one cudaMalloc allocation";
    if (!dst_dev && touches_device_memory(s, dst, bytes))
      return "cudaMemcpy: the destination is device memory but the kind says host";
    if (!src_dev && touches_device_memory(s, src, bytes))
      return "cudaMemcpy: the source is device memory but the kind says host";
  }
  if (pinned_host && !dst_dev && !in_pinned_memory(s, dst, bytes))
    return "captured cudaMemcpyAsync of " + n + " bytes: the destination is pageable host memory (not cudaMallocHost)";
  if (pinned_host && !src_dev && !in_pinned_memory(s, src, bytes))
    return "captured cudaMemcpyAsync of " + n + " bytes: the source is pageable host memory (not cudaMallocHost)";
  return {};
}

// The checks every copy makes before its pointers; cudaSuccess when it may go on.
cudaError_t copy_arguments(void* dst, const void* src, cudaMemcpyKind kind) {
  if (!dst || !src) return fail(cudaErrorInvalidValue, "cudaMemcpy: null pointer");
  if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault)
    return fail(cudaErrorInvalidMemcpyDirection, "cudaMemcpy: kind " + std::to_string(kind));
  return cudaSuccess;
}

cudaError_t copy_now(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  State& s = state();
  if (const cudaError_t e = copy_arguments(dst, src, kind)) return e;
  const std::string problem = copy_problem(s, dst, src, bytes, kind, false);
  if (!problem.empty()) return fail(cudaErrorInvalidValue, problem);
  std::memmove(dst, src, bytes);
  return cudaSuccess;
}

// A copy that runs after its call (a graph's memcpy node, which reads its source when the graph runs,
// or a queued cudaMemcpyAsync) checks its ranges again then: an allocation freed since the call is an
// illegal address (a GPU might read stale memory silently).
cudaError_t late_copy(const char* what, bool pinned_host, void* dst, const void* src, size_t bytes,
                      cudaMemcpyKind kind) {
  const std::string problem = copy_problem(state(), dst, src, bytes, kind, pinned_host);
  if (!problem.empty()) {
    set_error(cudaErrorIllegalAddress, std::string(what) + ": " + problem + " (freed since the call?)", true);
    return cudaErrorIllegalAddress;
  }
  std::memmove(dst, src, bytes);
  return cudaSuccess;
}

// Captured copies must use pinned host memory. A GPU may accept a pageable one, but the node then
// reads (or writes) host memory at replay that nothing keeps alive, and the copy is staged through
// the driver instead of running asynchronously: the simulator refuses it so that code meant for graphs
// uses cudaMallocHost.
cudaError_t record_copy(cudaStream_t stream, void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  State& s = state();
  if (const cudaError_t e = copy_arguments(dst, src, kind)) {
    const std::string why = s.detail;
    return violate(e, Scope::kStream, stream, why);
  }
  const std::string plain = copy_problem(s, dst, src, bytes, kind, false);
  if (!plain.empty()) return violate(cudaErrorInvalidValue, Scope::kStream, stream, plain);
  const std::string pinned = copy_problem(s, dst, src, bytes, kind, true);
  if (!pinned.empty())
    return violate(cudaErrorStreamCaptureUnsupported, Scope::kStream, stream,
                   pinned + " [simt is stricter than a GPU here: use cudaMallocHost]");
  add_node(stream, std::string("memcpy ") + kind_name(kind) + " " + std::to_string(bytes) + " B",
           [dst, src, bytes, kind] { return late_copy("graph memcpy node", true, dst, src, bytes, kind); });
  return cudaSuccess;
}

cudaError_t run_queued_copy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  return late_copy("queued cudaMemcpyAsync", false, dst, src, bytes, kind);
}

// cudaMemcpyAsync in asynchronous mode, as a GPU does it: a copy to pageable host memory returns when
// it is done (after the stream's earlier work); a pageable source is staged at the call; pinned and
// device memory is read and written when the copy runs.
cudaError_t defer_copy(cudaStream_t stream, void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  State& s = state();
  if (const cudaError_t e = copy_arguments(dst, src, kind)) return e;
  const std::string problem = copy_problem(s, dst, src, bytes, kind, false);
  if (!problem.empty()) return fail(cudaErrorInvalidValue, problem);
  const bool pageable_dst = !in_device_memory(s, dst, bytes) && !in_pinned_memory(s, dst, bytes);
  const bool pageable_src = !in_device_memory(s, src, bytes) && !in_pinned_memory(s, src, bytes);
  if (pageable_dst) {
    if (const cudaError_t e = stream ? run_queue(*stream, kAllWork) : run_legacy_stream()) return e;
    return run_queued_copy(dst, src, bytes, kind);
  }
  if (pageable_src) {
    const auto* from = static_cast<const unsigned char*>(src);
    auto staged = std::make_shared<std::vector<unsigned char>>(from, from + bytes);
    enqueue(stream, [dst, staged, bytes, kind] { return run_queued_copy(dst, staged->data(), bytes, kind); });
    return cudaSuccess;
  }
  enqueue(stream, [dst, src, bytes, kind] { return run_queued_copy(dst, src, bytes, kind); });
  return cudaSuccess;
}

cudaError_t set_now(void* ptr, int value, size_t bytes) {
  State& s = state();
  if (!in_device_memory(s, ptr, bytes))
    return fail(cudaErrorInvalidValue,
                "cudaMemset of " + std::to_string(bytes) + " bytes: not inside one cudaMalloc allocation");
  std::memset(ptr, value, bytes);
  return cudaSuccess;
}

// cudaMemset and cudaMemsetAsync in asynchronous mode (both are asynchronous on a GPU for device memory).
cudaError_t defer_set(cudaStream_t stream, void* ptr, int value, size_t bytes) {
  if (!in_device_memory(state(), ptr, bytes))
    return fail(cudaErrorInvalidValue,
                "cudaMemset of " + std::to_string(bytes) + " bytes: not inside one cudaMalloc allocation");
  enqueue(stream, [ptr, value, bytes] {
    if (!in_device_memory(state(), ptr, bytes)) {
      set_error(cudaErrorIllegalAddress,
                "queued cudaMemset of " + std::to_string(bytes) +
                    " bytes: no longer inside one cudaMalloc allocation (freed before it ran?)",
                true);
      return cudaErrorIllegalAddress;
    }
    std::memset(ptr, value, bytes);
    return cudaSuccess;
  });
  return cudaSuccess;
}

cudaError_t replay_set(void* ptr, int value, size_t bytes) {
  if (!in_device_memory(state(), ptr, bytes)) {
    set_error(cudaErrorIllegalAddress, "graph memset node: " + std::to_string(bytes) +
                                           " bytes no longer inside one cudaMalloc allocation (freed since the capture?)",
              true);
    return cudaErrorIllegalAddress;
  }
  std::memset(ptr, value, bytes);
  return cudaSuccess;
}

}  // namespace

cudaError_t cudaMalloc(void** ptr, size_t bytes) {
  State& s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mutex);
  if (!ptr) return fail(cudaErrorInvalidValue, "cudaMalloc: null result pointer");
  *ptr = nullptr;
  if (const cudaError_t e = unsafe_call("cudaMalloc")) return e;
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
  if (const cudaError_t e = unsafe_call("cudaFree")) return e;
  run_all_queues();  // cudaFree synchronises the device; a fault stays pending for the next sync
  auto it = s.allocations.find(reinterpret_cast<uintptr_t>(ptr));
  if (it == s.allocations.end()) return fail(cudaErrorInvalidValue, "cudaFree: pointer was not returned by cudaMalloc");
  // NaN bytes again: a stale pointer (a graph captured before the free, say) then reads NaN, not the
  // old values, even where the host allocator has not reused the memory yet.
  std::memset(ptr, 0xFF, it->second);
  s.allocations.erase(it);
  std::free(ptr);
  return cudaSuccess;
}

cudaError_t cudaMallocHost(void** ptr, size_t bytes) {
  State& s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mutex);
  if (!ptr) return fail(cudaErrorInvalidValue, "cudaMallocHost: null result pointer");
  *ptr = nullptr;
  if (const cudaError_t e = unsafe_call("cudaMallocHost")) return e;
  if (bytes == 0) return cudaSuccess;
  *ptr = std::malloc(bytes);
  if (!*ptr) return fail(cudaErrorMemoryAllocation, "cudaMallocHost: " + std::to_string(bytes) + " bytes");
  s.pinned[reinterpret_cast<uintptr_t>(*ptr)] = bytes;
  return cudaSuccess;
}

cudaError_t cudaFreeHost(void* ptr) {
  State& s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mutex);
  if (!ptr) return cudaSuccess;
  if (const cudaError_t e = unsafe_call("cudaFreeHost")) return e;
  run_all_queues();
  auto it = s.pinned.find(reinterpret_cast<uintptr_t>(ptr));
  if (it == s.pinned.end()) return fail(cudaErrorInvalidValue, "cudaFreeHost: pointer was not returned by cudaMallocHost");
  s.pinned.erase(it);
  std::free(ptr);
  return cudaSuccess;
}

// Synchronous copies and memsets go through the legacy default stream.
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  State& s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mutex);
  if (s.fault_error != cudaSuccess) return s.fault_error;
  bool record = false;
  if (const cudaError_t e = gate(nullptr, "cudaMemcpy", &record)) return e;
  if (const cudaError_t e = run_legacy_stream()) return e;  // asynchronous mode
  if (bytes == 0) return cudaSuccess;
  return copy_now(dst, src, bytes, kind);
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream) {
  State& s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mutex);
  if (s.fault_error != cudaSuccess) return s.fault_error;
  bool record = false;
  if (const cudaError_t e = gate(stream, "cudaMemcpyAsync", &record)) return e;
  if (bytes == 0) return cudaSuccess;
  if (record) return record_copy(stream, dst, src, bytes, kind);
  return deferred(stream) ? defer_copy(stream, dst, src, bytes, kind) : copy_now(dst, src, bytes, kind);
}

cudaError_t cudaMemset(void* ptr, int value, size_t bytes) {
  State& s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mutex);
  if (s.fault_error != cudaSuccess) return s.fault_error;
  bool record = false;
  if (const cudaError_t e = gate(nullptr, "cudaMemset", &record)) return e;
  if (bytes == 0) return cudaSuccess;
  return deferred(nullptr) ? defer_set(nullptr, ptr, value, bytes) : set_now(ptr, value, bytes);
}

cudaError_t cudaMemsetAsync(void* ptr, int value, size_t bytes, cudaStream_t stream) {
  State& s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mutex);
  if (s.fault_error != cudaSuccess) return s.fault_error;
  bool record = false;
  if (const cudaError_t e = gate(stream, "cudaMemsetAsync", &record)) return e;
  if (bytes == 0) return cudaSuccess;
  if (!record) return deferred(stream) ? defer_set(stream, ptr, value, bytes) : set_now(ptr, value, bytes);
  if (!in_device_memory(s, ptr, bytes))
    return violate(cudaErrorInvalidValue, Scope::kStream, stream,
                   "cudaMemsetAsync of " + std::to_string(bytes) + " bytes: not inside one cudaMalloc allocation");
  add_node(stream, "memset " + std::to_string(bytes) + " B", [ptr, value, bytes] { return replay_set(ptr, value, bytes); });
  return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  const size_t total = static_cast<size_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t avail = static_cast<size_t>(sysconf(_SC_AVPHYS_PAGES)) * static_cast<size_t>(sysconf(_SC_PAGESIZE));
  if (free_bytes) *free_bytes = avail;
  if (total_bytes) *total_bytes = total;
  return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t* stream) { return cudaStreamCreateWithFlags(stream, cudaStreamDefault); }
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int flags) {
  State& s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mutex);
  if (!stream) return fail(cudaErrorInvalidValue, "cudaStreamCreate: null result pointer");
  *stream = new CUstream_st;
  (*stream)->flags = flags;
  live_streams().push_back(*stream);
  return cudaSuccess;
}
// A stream destroyed while it captures takes its unfinished capture with it.
cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  State& s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mutex);
  if (stream && stream->capturing) end_capture(stream);
  if (!stream) return cudaSuccess;
  run_queue(*stream, kAllWork);  // its queued work completes first; a fault stays pending for the next sync
  auto& live = live_streams();
  live.erase(std::remove(live.begin(), live.end(), stream), live.end());
  delete stream;
  return cudaSuccess;
}
// Runs the stream's queued work (asynchronous mode); otherwise every operation completed when it
// returned, and synchronising only reports a failed kernel (or fails when it would wait for a capture,
// which has nothing to wait for).
cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  State& s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mutex);
  if (stream && stream->capturing)
    return violate(cudaErrorStreamCaptureUnsupported, Scope::kStream, stream, "cudaStreamSynchronize on a capturing stream");
  bool record = false;
  if (const cudaError_t e = gate(stream, "cudaStreamSynchronize", &record)) return e;
  if (const cudaError_t e = stream ? run_queue(*stream, kAllWork) : run_legacy_stream()) return e;
  return pending_fault();
}
// Events recorded inside a capture are not simulated, so a capturing stream never has a captured event
// to wait for: waiting on an ordinary event from a capturing stream is invalid on a GPU too.
// In asynchronous mode the event's work runs now, so the stream's later work comes after it.
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int) {
  State& s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mutex);
  if (stream && stream->capturing)
    return violate(cudaErrorStreamCaptureIsolation, Scope::kStream, stream,
                   "cudaStreamWaitEvent on a capturing stream for an event recorded outside the capture");
  bool record = false;
  if (const cudaError_t e = gate(stream, "cudaStreamWaitEvent", &record)) return e;
  return run_event(event);
}

cudaError_t cudaEventCreate(cudaEvent_t* event) { return cudaEventCreateWithFlags(event, cudaEventDefault); }
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int flags) {
  if (!event) return fail(cudaErrorInvalidValue, "cudaEventCreate: null result pointer");
  *event = new CUevent_st{{}, false, flags};
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t event) {
  State& s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mutex);
  run_event(event);  // its queued record must not outlive it
  delete event;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  State& s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mutex);
  if (!event) return fail(cudaErrorInvalidResourceHandle, "cudaEventRecord: null event");
  if (stream && stream->capturing)  // legal on a GPU (an event node); a limit of the simulator
    return violate(cudaErrorNotSupported, Scope::kStream, stream,
                   "cudaEventRecord on a capturing stream (events in a capture are not simulated)");
  bool record = false;
  if (const cudaError_t e = gate(stream, "cudaEventRecord", &record)) return e;
  event->recorded = true;
  if (!deferred(stream)) {
    event->when = std::chrono::steady_clock::now();
    event->pending = false;
    return cudaSuccess;
  }
  // Stamped when the stream's earlier work has run. A later record of the same event supersedes it.
  const uint64_t seq = s.issue_seq + 1;
  event->pending = true;
  event->stream = &queue_of(stream);
  event->seq = enqueue(stream, [event, seq] {
    if (event->seq == seq) {
      event->when = std::chrono::steady_clock::now();
      event->pending = false;
    }
    return cudaSuccess;
  });
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  State& s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mutex);
  if (const cudaError_t e = run_event(event)) return e;
  return pending_fault();
}
// Work not yet run is not ready; it runs now, so that a polling loop ends.
cudaError_t cudaEventQuery(cudaEvent_t event) {
  State& s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mutex);
  if (!event || !event->pending) return cudaSuccess;
  if (const cudaError_t e = run_event(event)) return e;
  return cudaErrorNotReady;
}
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  if (!ms || !start || !end) return fail(cudaErrorInvalidValue, "cudaEventElapsedTime: null argument");
  if ((start->flags | end->flags) & cudaEventDisableTiming)
    return fail(cudaErrorInvalidResourceHandle, "cudaEventElapsedTime: event created with cudaEventDisableTiming");
  if (!start->recorded || !end->recorded) return fail(cudaErrorInvalidResourceHandle, "cudaEventElapsedTime: event not recorded");
  if (start->pending || end->pending)
    return fail(cudaErrorNotReady, "cudaEventElapsedTime: an event's work has not run yet (synchronise with it first)");
  State& s = state();
  if (!s.timing_note_printed) {
    s.timing_note_printed = true;
    std::fprintf(stderr, "simt: cudaEventElapsedTime measures the CUDA-on-CPU simulator on the host; "
                         "it says nothing about GPU time\n");
  }
  *ms = std::chrono::duration<float, std::milli>(end->when - start->when).count();
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize() {
  State& s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mutex);
  if (any_capture(Scope::kAll))
    return violate(cudaErrorStreamCaptureUnsupported, Scope::kAll, nullptr, "cudaDeviceSynchronize while a stream captures");
  if (const cudaError_t e = run_all_queues()) return e;
  return pending_fault();
}
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

// ---- Stream capture and graphs -------------------------------------------------------------------------

cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode) {
  State& s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mutex);
  if (!stream)
    return fail(cudaErrorStreamCaptureUnsupported, "cudaStreamBeginCapture: the legacy default stream cannot capture");
  if (mode < cudaStreamCaptureModeGlobal || mode > cudaStreamCaptureModeRelaxed)
    return fail(cudaErrorInvalidValue, "cudaStreamBeginCapture: mode " + std::to_string(mode));
  if (stream->capturing) return fail(cudaErrorIllegalState, "cudaStreamBeginCapture: the stream is already capturing");
  stream->capturing = true;
  stream->invalidated = false;
  stream->invalid_reason.clear();
  stream->mode = mode;
  stream->capture_id = ++s.capture_ids;
  stream->nodes.clear();
  s.capturing.push_back(stream);
  return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph) {
  State& s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mutex);
  if (!graph) return fail(cudaErrorInvalidValue, "cudaStreamEndCapture: null result pointer");
  *graph = nullptr;
  if (!stream || !stream->capturing) return fail(cudaErrorIllegalState, "cudaStreamEndCapture: the stream is not capturing");
  end_capture(stream);
  NodeList nodes = std::move(stream->nodes);
  stream->nodes.clear();
  if (stream->invalidated)
    return fail(cudaErrorStreamCaptureInvalidated, "cudaStreamEndCapture: the capture was invalidated by " +
                                                       stream->invalid_reason);
  *graph = new CUgraph_st{std::move(nodes)};
  ++s.graph_stats.captures;
  ++s.graph_stats.graphs_live;
  return cudaSuccess;
}

cudaError_t cudaStreamGetCaptureInfo(cudaStream_t stream, cudaStreamCaptureStatus* status, unsigned long long* id) {
  State& s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mutex);
  if (!status) return fail(cudaErrorInvalidValue, "cudaStreamGetCaptureInfo: null status pointer");
  if (!stream && any_capture(Scope::kBlocking))  // an error, but it does not invalidate the capture
    return fail(cudaErrorStreamCaptureImplicit, "capture status of the legacy default stream while a blocking stream captures");
  const bool on = stream && stream->capturing;
  *status = !on ? cudaStreamCaptureStatusNone
                : stream->invalidated ? cudaStreamCaptureStatusInvalidated : cudaStreamCaptureStatusActive;
  if (id) *id = on ? stream->capture_id : 0;
  return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus* status) {
  return cudaStreamGetCaptureInfo(stream, status, nullptr);
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long flags) {
  State& s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mutex);
  if (!exec || !graph) return fail(cudaErrorInvalidValue, "cudaGraphInstantiate: null argument");
  *exec = nullptr;
  if (flags & cudaGraphInstantiateFlagDeviceLaunch)
    return fail(cudaErrorNotSupported, "cudaGraphInstantiate: device-launchable graphs are not simulated");
  const unsigned long long known = cudaGraphInstantiateFlagAutoFreeOnLaunch | cudaGraphInstantiateFlagUpload |
                                   cudaGraphInstantiateFlagUseNodePriority;
  if (flags & ~known) return fail(cudaErrorInvalidValue, "cudaGraphInstantiate: unknown flags " + std::to_string(flags));
  *exec = new CUgraphExec_st{graph->nodes};
  ++s.graph_stats.execs_live;
  return cudaSuccess;
}

// Runs the graph's nodes in capture order before it returns; a kernel fault stops the launch and is
// returned at once (a GPU would report it at the next synchronising call).
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
  State& s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mutex);
  if (!exec) return fail(cudaErrorInvalidValue, "cudaGraphLaunch: null executable graph");
  if (s.fault_error != cudaSuccess) return s.fault_error;
  bool record = false;
  if (const cudaError_t e = gate(stream, "cudaGraphLaunch", &record)) return e;
  if (record) {  // a child graph node: the executable graph's nodes as they are now
    add_node(stream, "graph (" + std::to_string(exec->nodes.size()) + " nodes)",
             [nodes = exec->nodes] { return run_nodes(nodes); });
    return cudaSuccess;
  }
  if (deferred(stream)) {
    enqueue(stream, [nodes = exec->nodes] {
      ++state().graph_stats.launches;
      return run_nodes(nodes);
    });
    return cudaSuccess;
  }
  ++s.graph_stats.launches;
  return run_nodes(exec->nodes);
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  State& s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mutex);
  if (!exec) return fail(cudaErrorInvalidValue, "cudaGraphExecDestroy: null executable graph");
  delete exec;
  --s.graph_stats.execs_live;
  return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  State& s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mutex);
  if (!graph) return fail(cudaErrorInvalidValue, "cudaGraphDestroy: null graph");
  delete graph;
  --s.graph_stats.graphs_live;
  return cudaSuccess;
}

namespace simt {

Submit submit(cudaStream_t stream, const char* what, cudaError_t* error) {
  State& s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mutex);
  bool rec = false;
  const cudaError_t e = gate(stream, what, &rec);
  if (error) *error = e;
  if (e != cudaSuccess) return Submit::kFail;
  return rec ? Submit::kRecord : deferred(stream) ? Submit::kDefer : Submit::kRun;
}

void record(cudaStream_t stream, const std::string& name, std::function<cudaError_t()> run) {
  State& s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mutex);
  if (stream && stream->capturing && !stream->invalidated) return add_node(stream, name, std::move(run));
  if (deferred(stream)) return void(enqueue(stream, std::move(run)));
  throw std::logic_error("simt::record: " + name + " on a stream that neither captures nor queues (ask simt::submit)");
}

bool is_device_range(const void* p, size_t bytes) {
  State& s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mutex);
  return in_device_memory(s, p, bytes);
}

namespace {
std::vector<std::string> node_names(const NodeList& nodes) {
  std::vector<std::string> names;
  for (const auto& n : nodes) names.push_back(n->name);
  return names;
}
}  // namespace

std::vector<std::string> graph_nodes(cudaGraph_t graph) { return graph ? node_names(graph->nodes) : std::vector<std::string>{}; }
std::vector<std::string> graph_nodes(cudaGraphExec_t exec) { return exec ? node_names(exec->nodes) : std::vector<std::string>{}; }

GraphStats graph_stats() {
  State& s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mutex);
  run_all_queues();
  return s.graph_stats;
}

namespace detail {

// A launch on a capturing stream is checked now (a bad configuration fails the launch and the
// capture, as on a GPU) and kept as a node with its own copy of the converted parameters.
void submit_launch(const LaunchDesc& d, ThreadBody body, void* ctx, CloneContext clone) {
  State& s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mutex);
  bool rec = false;
  if (gate(d.stream, "launch of '" + std::string(d.name) + "'", &rec) != cudaSuccess) {
    ++s.launches;  // rejected launches count, as run_launch counts those it rejects
    return;
  }
  if (!rec && !deferred(d.stream)) {
    run_launch(d, body, ctx);
    return;
  }
  // Recorded or queued: the configuration is checked now (as a GPU reports it at the launch), the
  // parameters are copied, and the kernel runs later.
  cudaError_t code = cudaSuccess;
  const std::string invalid = validate(d, &code);
  if (!invalid.empty()) {
    ++s.launches;
    const std::string what = "launch of '" + std::string(d.name) + "': " + invalid;
    if (rec) {
      violate(code, Scope::kStream, d.stream, what);
    } else {
      if (s.launch_log) s.launch_log->push_back({d.name, d.grid, d.block, d.shmem});
      set_error(code, what);
    }
    return;
  }
  const LaunchDesc copy = d;
  std::shared_ptr<void> held = clone(ctx);
  auto run = [copy, body, held] { return run_launch(copy, body, held.get()); };
  if (rec)
    add_node(d.stream, std::string("kernel ") + d.name, std::move(run));
  else
    enqueue(d.stream, std::move(run));
}

void run_all_work() {
  std::lock_guard<std::recursive_mutex> lock(state().mutex);
  run_all_queues();  // a failure is pending for the next synchronising call
}

// ---- The fence check (tests/simt/fence_check.cpp) ---------------------------------------------------
// Within one launch: every global write's writer (block, thread) and that thread's fence count when it
// wrote; every thread's fence count. A read by another block of a write whose writer has not fenced
// since is what the last-block pattern forbids (kernels/last_block.h): on a GPU the reader may see the
// old value. Reads within a block are ordered by its barriers, and launches by the kernel boundary.
bool fence_check = false;

namespace {
struct WriteRecord {
  uint64_t block;
  uint32_t thread;
  uint32_t fences;  // the writer's fences before the write
};
struct FenceState {
  uint64_t launch = ~uint64_t{0};                 // the launch the records belong to
  std::unordered_map<uintptr_t, WriteRecord> writes;
  std::unordered_map<uint64_t, uint32_t> fences;  // by block * 1024 + thread
  uintptr_t lo = 0, hi = 0;                       // the allocation of the last access
};
FenceState& fence_state() {
  static FenceState* f = new FenceState;
  return *f;
}
uint64_t running_block() {
  return (uint64_t{blockIdx.z} * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
}
// The records, emptied when a new launch begins.
FenceState& fence_records() {
  FenceState& f = fence_state();
  const uint64_t launch = launcher_state().launches;
  if (f.launch != launch) {
    f.launch = launch;
    f.writes.clear();
    f.fences.clear();
    f.lo = f.hi = 0;
  }
  return f;
}
std::string describe_address(uintptr_t a) {
  const State& l = launcher_state();
  auto it = l.allocations.upper_bound(a);
  --it;
  char buf[96];
  std::snprintf(buf, sizeof buf, "byte %zu of a %zu-byte allocation", static_cast<size_t>(a - it->first), it->second);
  return buf;
}
}  // namespace

void note_fence() {
  State& s = state();
  if (!s.in_kernel) return;
  ++fence_records().fences[running_block() * 1024 + s.current];
}

void checked_access(const void* p, size_t bytes, bool write) {
  State& s = state();
  if (!s.in_kernel) return;
  FenceState& f = fence_records();
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  if (a < f.lo || a + bytes > f.hi) {  // not in the allocation of the last access: look it up
    const State& l = launcher_state();  // an interleaved launch's workers have no allocations of their own
    if (!in_device_memory(l, p, bytes)) return;  // shared memory, the stack, host memory
    auto it = l.allocations.upper_bound(a);
    --it;
    f.lo = it->first;
    f.hi = it->first + it->second;
  }
  const uint64_t block = running_block();
  const uint32_t thread = s.current;
  auto fences_of = [&f](uint64_t b, uint32_t t) {
    auto it = f.fences.find(b * 1024 + t);
    return it == f.fences.end() ? 0u : it->second;
  };
  if (write) {
    f.writes[a] = WriteRecord{block, thread, fences_of(block, thread)};
    return;
  }
  auto it = f.writes.find(a);
  if (it == f.writes.end() || it->second.block == block) return;
  const WriteRecord w = it->second;
  if (fences_of(w.block, w.thread) != w.fences) return;  // the writer fenced after writing
  const uint64_t gx = gridDim.x, gy = gridDim.y;
  const uint3 wb{static_cast<unsigned>(w.block % gx), static_cast<unsigned>(w.block / gx % gy),
                 static_cast<unsigned>(w.block / (gx * gy))};
  throw KernelFault("fence check: reads " + describe_address(a) + " that block " + d3(wb) + " thread " +
                    d3(s.tid_of[w.thread]) +
                    " wrote in this launch without a __threadfence() after it (on a GPU this read may see the "
                    "old value)");
}

cudaError_t synchronize_legacy_stream() {
  std::lock_guard<std::recursive_mutex> lock(state().mutex);
  return run_legacy_stream();
}

}  // namespace detail
}  // namespace simt
