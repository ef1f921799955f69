// The interleave order: up to ThreadOrder::kResidentBlocks blocks in flight, switching at global atomics
// and fences. What it must catch (a block that publishes before all of its threads have written, which
// the one-block-at-a-time orders cannot show), what it must keep apart (each resident block's static and
// dynamic shared memory and built-in variables), and that it is deterministic for a seed.
#include <algorithm>
#include <set>

#include "simt_test_util.h"

namespace {

constexpr unsigned kBlock = 64;

// The last-block reduction of last_block.h, written out: each thread writes its partial, fences; thread 0
// takes a ticket after a barrier (or, with `skip_barrier`, without one: the bug); the block with the last
// ticket adds every partial of the grid into *total.
__global__ void last_block_sum_kernel(const float* x, float* partial, unsigned* ticket, float* total,
                                      bool skip_barrier) {
  __shared__ bool last;
  const unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
  partial[i] = 2.0f * x[i];
  __threadfence();
  if (!skip_barrier) __syncthreads();
  if (threadIdx.x == 0) last = atomicAdd(ticket, 1u) == gridDim.x - 1;
  __syncthreads();
  if (!last || threadIdx.x != 0) return;
  float sum = 0.0f;
  for (unsigned j = 0; j < gridDim.x * blockDim.x; ++j) sum += partial[j];
  *total = sum;
  *ticket = 0;
}

// The sum the last block reports, for `blocks` blocks of kBlock ones (exact: 2 * blocks * kBlock).
float last_block_sum(unsigned blocks, bool skip_barrier) {
  const size_t n = size_t{blocks} * kBlock;
  DeviceArray<float> x(std::vector<float>(n, 1.0f)), partial(n), total(1);
  DeviceArray<unsigned> ticket(std::vector<unsigned>{0u});
  partial.poison();
  convnet::launch("last_block_sum_kernel", last_block_sum_kernel, dim3(blocks), dim3(kBlock), 0, nullptr, x.get(),
                  partial.get(), ticket.get(), total.get(), skip_barrier);
  EXPECT_EQ(ticket.download()[0], 0u);
  return total.download()[0];
}

TEST(Interleave, ParseAndName) {
  const simt::ThreadOrder o = simt::ThreadOrder::parse("interleave:42");
  EXPECT_EQ(o.kind, simt::ThreadOrder::kInterleave);
  EXPECT_EQ(o.seed, 42u);
  EXPECT_EQ(o.name(), "interleave:42");
  EXPECT_EQ(simt::ThreadOrder::parse("interleave").seed, 1u);
  EXPECT_THROW(simt::ThreadOrder::parse("interleave:"), std::invalid_argument);
  EXPECT_THROW(simt::ThreadOrder::parse("interleave:-3"), std::invalid_argument);
  EXPECT_THROW(simt::ThreadOrder::parse("interleaved:3"), std::invalid_argument);
}

TEST(Interleave, TheLastBlockPatternIsRightInEveryOrder) {
  std::vector<simt::ThreadOrder> orders = all_orders();
  for (uint64_t seed = 1; seed <= 12; ++seed) orders.push_back(simt::ThreadOrder::interleave(seed));
  for (const simt::ThreadOrder& order : orders) {
    simt::ScopedThreadOrder scoped(order);
    for (unsigned blocks : {1u, 2u, 5u, 9u})
      EXPECT_EQ(last_block_sum(blocks, false), 2.0f * blocks * kBlock) << order.name() << ", " << blocks << " blocks";
  }
}

TEST(Interleave, CatchesATicketTakenBeforeTheBlockHasWritten) {
  // One block at a time, the missing barrier is invisible: every other block has finished by the time
  // the last one reads.
  for (const simt::ThreadOrder& order : all_orders()) {
    if (order.kind == simt::ThreadOrder::kInterleave) continue;
    simt::ScopedThreadOrder scoped(order);
    EXPECT_EQ(last_block_sum(3, true), 2.0f * 3 * kBlock) << order.name();
  }
  // Interleaved, the last ticket can go to a block while another block's threads have not yet written
  // their partials: the sum then reads poison (NaN). Three blocks, all resident at once: a block that
  // starts when the others are done runs alone, like a GPU's tail wave, and would see everything.
  int caught = 0;
  for (uint64_t seed = 1; seed <= 12; ++seed) {
    simt::ScopedThreadOrder scoped(simt::ThreadOrder::interleave(seed));
    caught += !(last_block_sum(3, true) == 2.0f * 3 * kBlock);
  }
  EXPECT_GE(caught, 4) << "of 12 seeds";
}

// Each thread records, after a switch point, whether its block's static and dynamic shared memory and
// its built-in variables still hold what the block set before it.
__global__ void private_state_kernel(int* counter, int* wrong) {
  __shared__ unsigned owner;
  DYNAMIC_SHARED(unsigned, dyn);
  const unsigned b = blockIdx.x, t = threadIdx.x;
  if (t == 0) owner = b;
  dyn[t] = b * 1000 + t;
  __syncthreads();
  atomicAdd(counter, 1);  // other blocks may run here
  __threadfence();        // and here
  const bool same = owner == b && dyn[t] == b * 1000 + t && blockIdx.x == b && threadIdx.x == t &&
                    gridDim.x == 16 && blockDim.x == kBlock;
  if (!same) atomicAdd(wrong, 1);
}

TEST(Interleave, ResidentBlocksKeepTheirOwnSharedMemoryAndBuiltins) {
  for (uint64_t seed : {1u, 2u, 3u}) {
    simt::ScopedThreadOrder scoped(simt::ThreadOrder::interleave(seed));
    DeviceArray<int> counter(std::vector<int>{0}), wrong(std::vector<int>{0});
    convnet::launch("private_state_kernel", private_state_kernel, dim3(16), dim3(kBlock),
                    kBlock * sizeof(unsigned), nullptr, counter.get(), wrong.get());
    EXPECT_EQ(counter.download()[0], int(16 * kBlock));
    EXPECT_EQ(wrong.download()[0], 0) << "seed " << seed;
    const simt::LaunchStats stats = simt::last_launch_stats();
    EXPECT_EQ(stats.blocks, 16u);
    EXPECT_EQ(stats.threads, 16u * kBlock);
  }
}

// Plain (non-atomic) read-modify-writes of one counter by every thread of every block, with a switch point
// between two runs of them: an update is lost only if two blocks' threads ever ran at the same time.
__global__ void plain_increment_kernel(int* plain, int* counter) {
  volatile int* p = plain;
  for (int k = 0; k < 50; ++k) *p = *p + 1;
  atomicAdd(counter, 1);
  for (int k = 0; k < 50; ++k) *p = *p + 1;
}

TEST(Interleave, RunsOneThreadAtATime) {
  simt::ScopedThreadOrder scoped(simt::ThreadOrder::interleave(4));
  DeviceArray<int> plain(std::vector<int>{0}), counter(std::vector<int>{0});
  convnet::launch("plain_increment_kernel", plain_increment_kernel, dim3(40), dim3(kBlock), 0, nullptr, plain.get(),
                  counter.get());
  EXPECT_EQ(counter.download()[0], int(40 * kBlock));
  EXPECT_EQ(plain.download()[0], int(100 * 40 * kBlock));
}

// The order in which blocks take tickets, and how many blocks were in flight at once.
__global__ void ticket_order_kernel(int* counter, int* order, int* in_flight, int* max_in_flight) {
  if (threadIdx.x == 0) {
    const int now = atomicAdd(in_flight, 1) + 1;
    atomicMax(max_in_flight, now);
  }
  __syncthreads();
  if (threadIdx.x == 0) order[blockIdx.x] = atomicAdd(counter, 1);
  __syncthreads();
  if (threadIdx.x == 0) atomicSub(in_flight, 1);
}

std::vector<int> ticket_order(const simt::ThreadOrder& o, int* max_in_flight) {
  simt::ScopedThreadOrder scoped(o);
  DeviceArray<int> counter(std::vector<int>{0}), order(32), in_flight(std::vector<int>{0}), peak(std::vector<int>{0});
  convnet::launch("ticket_order_kernel", ticket_order_kernel, dim3(32), dim3(32), 0, nullptr, counter.get(),
                  order.get(), in_flight.get(), peak.get());
  *max_in_flight = peak.download()[0];
  return order.download();
}

TEST(Interleave, IsDeterministicForASeedAndOverlapsBlocks) {
  int peak_a = 0, peak_b = 0, peak_c = 0, peak_f = 0;
  const std::vector<int> a = ticket_order(simt::ThreadOrder::interleave(5), &peak_a);
  const std::vector<int> b = ticket_order(simt::ThreadOrder::interleave(5), &peak_b);
  const std::vector<int> c = ticket_order(simt::ThreadOrder::interleave(6), &peak_c);
  ticket_order(simt::ThreadOrder::forward(), &peak_f);
  EXPECT_EQ(a, b);
  EXPECT_EQ(peak_a, peak_b);
  EXPECT_NE(a, c);
  std::vector<int> sorted = a;
  std::sort(sorted.begin(), sorted.end());
  for (int i = 0; i < 32; ++i) ASSERT_EQ(sorted[i], i);
  EXPECT_EQ(peak_f, 1);  // one block at a time
  EXPECT_GE(std::max(peak_a, peak_c), 2);
  EXPECT_LE(std::max(peak_a, peak_c), simt::ThreadOrder::kResidentBlocks);
}

__global__ void fault_in_one_block_kernel(int* done) {
  atomicAdd(done, 1);
  if (blockIdx.x == 3 && threadIdx.x == 5) __trap();
  __threadfence();
  atomicAdd(done, 1);
}

TEST(Interleave, AFaultStopsTheLaunchAndNamesTheFaultingBlock) {
  simt::ScopedThreadOrder scoped(simt::ThreadOrder::interleave(9));
  DeviceArray<int> done(std::vector<int>{0});
  const std::string message = thrown_message([&] {
    convnet::launch("fault_in_one_block_kernel", fault_in_one_block_kernel, dim3(8), dim3(32), 0, nullptr,
                    done.get());
  });
  EXPECT_NE(message.find("block (3,0,0) thread (5,0,0)"), std::string::npos) << message;
  EXPECT_NE(message.find("__trap()"), std::string::npos) << message;
  EXPECT_EQ(message.find("stopped"), std::string::npos) << message;
  (void)cudaGetLastError();
  // The next launch runs every block again.
  DeviceArray<int> again(std::vector<int>{0});
  int peak = 0;
  EXPECT_EQ(ticket_order(simt::ThreadOrder::interleave(9), &peak).size(), 32u);
  convnet::launch("fault_in_one_block_kernel", fault_in_one_block_kernel, dim3(3), dim3(32), 0, nullptr, again.get());
  EXPECT_EQ(again.download()[0], 2 * 3 * 32);
}

// Thread 0 of block 1 leaves before the barrier its block waits at.
__global__ void interleaved_deadlock_kernel(int* out) {
  atomicAdd(out, 1);
  if (blockIdx.x == 1 && threadIdx.x == 0) return;
  __syncthreads();
}

TEST(InterleaveDeathTest, AForkedChildStartsItsOwnWorkers) {
  // The parent's workers exist by now; the child of the death test's fork has none of them.
  int peak = 0;
  ticket_order(simt::ThreadOrder::interleave(2), &peak);
  simt::ScopedThreadOrder scoped(simt::ThreadOrder::interleave(2));
  DeviceArray<int> out(std::vector<int>{0});
  EXPECT_DEATH(convnet::launch("interleaved_deadlock_kernel", interleaved_deadlock_kernel, dim3(3), dim3(32), 0,
                               nullptr, out.get()),
               "deadlock in kernel 'interleaved_deadlock_kernel'.* in block \\(1,0,0\\).*31 of 32 threads wait at "
               "__syncthreads\\(\\)");
}

}  // namespace
