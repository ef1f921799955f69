// The fence check's access hooks. kernels_sim_fence is kernels/*.cu compiled with GCC's
// -fsanitize=thread instrumentation, which calls __tsan_read<N>/__tsan_write<N> before every memory
// access it cannot prove local; this file defines those entry points itself (no ThreadSanitizer runtime
// is linked) and hands each access to the simulator's fence check (simt.cpp, "The fence check"). Linking
// it turns the check on. Only what the instrumentation of kernels/ calls is defined: a kernel that needs
// more fails to link, which is the sign to add the hook.
#include <cstddef>

#include "simt.h"

namespace {
struct TurnOn {
  TurnOn() { simt::detail::fence_check = true; }
};
const TurnOn turn_on;

inline void read(const void* p, size_t n) { simt::detail::checked_access(p, n, false); }
inline void write(const void* p, size_t n) { simt::detail::checked_access(p, n, true); }
}  // namespace

extern "C" {
void __tsan_init() {}
void __tsan_read1(void* p) { read(p, 1); }
void __tsan_read2(void* p) { read(p, 2); }
void __tsan_read4(void* p) { read(p, 4); }
void __tsan_read8(void* p) { read(p, 8); }
void __tsan_read16(void* p) { read(p, 16); }
void __tsan_write1(void* p) { write(p, 1); }
void __tsan_write2(void* p) { write(p, 2); }
void __tsan_write4(void* p) { write(p, 4); }
void __tsan_write8(void* p) { write(p, 8); }
void __tsan_write16(void* p) { write(p, 16); }
void __tsan_unaligned_read2(void* p) { read(p, 2); }
void __tsan_unaligned_read4(void* p) { read(p, 4); }
void __tsan_unaligned_read8(void* p) { read(p, 8); }
void __tsan_unaligned_read16(void* p) { read(p, 16); }
void __tsan_unaligned_write2(void* p) { write(p, 2); }
void __tsan_unaligned_write4(void* p) { write(p, 4); }
void __tsan_unaligned_write8(void* p) { write(p, 8); }
void __tsan_unaligned_write16(void* p) { write(p, 16); }
// Block copies and the like: a range is checked at its first byte.
void __tsan_read_range(void* p, size_t n) { read(p, n ? 1 : 0); }
void __tsan_write_range(void* p, size_t n) { write(p, n ? 1 : 0); }
// std::atomic operations (launch counts in kernels/launch.h), done here as sequentially consistent
// atomics: the ThreadSanitizer ABI passes the memory order, which may only be strengthened.
char __tsan_atomic8_load(const volatile char* a, int) { return __atomic_load_n(a, __ATOMIC_SEQ_CST); }
int __tsan_atomic32_load(const volatile int* a, int) { return __atomic_load_n(a, __ATOMIC_SEQ_CST); }
long __tsan_atomic64_load(const volatile long* a, int) { return __atomic_load_n(a, __ATOMIC_SEQ_CST); }
long __tsan_atomic64_fetch_add(volatile long* a, long v, int) { return __atomic_fetch_add(a, v, __ATOMIC_SEQ_CST); }
void __tsan_func_entry(void*) {}
void __tsan_func_exit() {}
void __tsan_vptr_update(void**, void*) {}
void __tsan_vptr_read(void**) {}
}
