// CPU emulation of the CUDA C subset that TVM emits for intelligen_tvm kernels (see
// cuda_emulation.py, which rewrites the `__shared__` declarations and writes the driver).
//
// Every CUDA thread of a block is a fiber (ucontext); blocks run one after the other.  A fiber
// runs until it reaches a collective (`__syncthreads`, `__activemask`, a warp shuffle) or exits;
// when no fiber of the block can run, the collectives are resolved, strictly:
//  - `__activemask()`: the lanes of the warp waiting at the same call (maximal convergence);
//  - a shuffle: every lane named in the mask must wait at the same shuffle (same line, mask,
//    width); the caller must be named in its mask; the source lane must be named too and lie
//    in the caller's `width` segment (xor / idx), else the run fails;
//  - `__syncthreads()`: every thread of the block must wait at the same barrier (no thread may
//    have exited, no thread may wait elsewhere).
// Shared arrays are poisoned (NaN / 0xA5 bytes) at every block start; every element access is
// bounds-checked, a read of an element never written in this block fails, and so does a read of
// an element another thread wrote since the last barrier, or a write to one another thread read
// or wrote since the last barrier.  Global buffers sit against PROT_NONE guard pages with
// canaries in the slack (cuda_emu::alloc); outputs and workspaces start as NaN.
// Build with -fsanitize=alignment: the vector types carry CUDA's alignment, so a misaligned
// float4 access is reported.  Anything not defined here (atomics, dynamic shared memory, other
// intrinsics) is a compile error on purpose.
#pragma once
#include <ucontext.h>
#include <sys/mman.h>
#include <unistd.h>

#include <csignal>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <type_traits>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) alignas(n)
// cuda_emulation.py rewrites every `__shared__ alignas(A) T name[N];`; any other form must not build.
#define __shared__ CUDA_EMU_UNSUPPORTED_SHARED_DECLARATION

namespace cuda_emu {

struct Dim3 {
  unsigned x = 1, y = 1, z = 1;
};

enum class State { Ready, Active, Shuffle, Barrier, Done };
enum class Shfl { Xor, Idx, Down, Up };

struct Fiber {
  ucontext_t ctx;      // portable switch
  void* sp = nullptr;  // x86-64 switch: the saved stack pointer
  State state = State::Ready;
  Dim3 idx;
  int tid = 0, line = 0;
  Shfl kind = Shfl::Xor;
  unsigned mask = 0, active = 0;
  int param = 0, width = 32;
  unsigned char value[16], result[16];
};

inline Dim3 block_idx, block_dim, grid_dim;
inline Fiber* cur = nullptr;
inline ucontext_t scheduler;
inline std::vector<Fiber> fibers;
inline std::vector<char*> stacks;
inline std::function<void()> kernel_call;
inline long epoch = 0;   // barrier phases of the current block
inline const char* kernel_name = "";
constexpr size_t kStack = 256 * 1024;

[[noreturn]] inline void fail(const char* what, const char* fmt, ...) {
  std::fprintf(stderr, "cuda_emu: %s: ", what);
  va_list ap;
  va_start(ap, fmt);
  std::vfprintf(stderr, fmt, ap);
  va_end(ap);
  std::fprintf(stderr, " [kernel %s, block (%u,%u,%u)", kernel_name, block_idx.x, block_idx.y, block_idx.z);
  if (cur) std::fprintf(stderr, ", thread (%u,%u,%u)", cur->idx.x, cur->idx.y, cur->idx.z);
  std::fprintf(stderr, "]\n");
  std::fflush(stderr);
  std::_Exit(3);
}

inline int me() { return cur ? cur->tid : -1; }

// ---- context switch ---------------------------------------------------------------------
// On x86-64 a fiber switch saves the callee-saved registers, MXCSR and the x87 control word on
// the stack and swaps stack pointers (glibc's swapcontext also makes two sigprocmask system
// calls per switch, which dominated the run time).  Elsewhere: ucontext.
#if defined(__x86_64__)
extern "C" void cuda_emu_switch(void** save_sp, void* load_sp);
asm(R"(
.text
.globl cuda_emu_switch
.type cuda_emu_switch, @function
cuda_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
.size cuda_emu_switch, .-cuda_emu_switch
)");
inline void* scheduler_sp = nullptr;
inline void to_scheduler() { cuda_emu_switch(&cur->sp, scheduler_sp); }
inline void to_fiber(Fiber& f) { cuda_emu_switch(&scheduler_sp, f.sp); }
#else
inline void to_scheduler() { swapcontext(&cur->ctx, &scheduler); }
inline void to_fiber(Fiber& f) { swapcontext(&scheduler, &f.ctx); }
#endif

inline void wait(State s, int line) {
  cur->state = s;
  cur->line = line;
  to_scheduler();
}

// ---- shared memory ----------------------------------------------------------------------
struct SharedArray {
  virtual void reset() = 0;
  virtual ~SharedArray() = default;
};
inline std::vector<SharedArray*> shared_arrays;

template <typename T>
inline void poison(T* data, long n) {
  if constexpr (std::is_floating_point_v<T>) {
    for (long i = 0; i < n; ++i) data[i] = NAN;
  } else {
    std::memset(static_cast<void*>(data), 0xA5, sizeof(T) * n);
  }
}

template <typename T, long N>
struct Shared : SharedArray {
  alignas(64) T data[N];
  int writer[N], reader[N];   // reader -2: several threads
  long written_in[N], read_in[N];
  const char* name;

  explicit Shared(const char* n) : name(n) {
    shared_arrays.push_back(this);
    reset();
  }
  void reset() override {
    poison(data, N);
    for (long i = 0; i < N; ++i) writer[i] = reader[i] = -1, written_in[i] = read_in[i] = -1;
  }
  T load(long i) {
    if (writer[i] == -1) fail("shared memory", "%s[%ld] read before any thread of the block wrote it", name, i);
    if (written_in[i] == epoch && writer[i] != me())
      fail("shared memory race", "%s[%ld] read by thread %d, written by thread %d since the last barrier", name, i, me(), writer[i]);
    if (read_in[i] != epoch) read_in[i] = epoch, reader[i] = me();
    else if (reader[i] != me()) reader[i] = -2;
    return data[i];
  }
  void store(long i, T v) {
    if (written_in[i] == epoch && writer[i] != me())
      fail("shared memory race", "%s[%ld] written by threads %d and %d since the last barrier", name, i, writer[i], me());
    if (read_in[i] == epoch && reader[i] != me())
      fail("shared memory race", "%s[%ld] written by thread %d after another thread read it since the last barrier", name, i, me());
    writer[i] = me();
    written_in[i] = epoch;
    data[i] = v;
  }
  struct Ref {
    Shared* s;
    long i;
    operator T() const { return s->load(i); }
    Ref& operator=(T v) { s->store(i, v); return *this; }
    Ref& operator=(const Ref& o) { s->store(i, static_cast<T>(o)); return *this; }
  };
  Ref operator[](long i) {
    if (i < 0 || i >= N) fail("shared memory", "%s[%ld] out of bounds (%ld elements)", name, i, N);
    return Ref{this, i};
  }
};

#define CUDA_EMU_SHARED(T, name, N) static cuda_emu::Shared<T, N> name(#name)

// ---- collectives ------------------------------------------------------------------------
inline void syncthreads(int line) { wait(State::Barrier, line); }

inline unsigned activemask(int line) {
  wait(State::Active, line);
  return cur->active;
}

template <typename T>
inline T shuffle(Shfl kind, int line, unsigned mask, T var, int param, int width = 32) {
  static_assert(sizeof(T) <= 16, "shuffle of a value wider than 16 bytes");
  cur->kind = kind;
  cur->mask = mask;
  cur->param = param;
  cur->width = width;
  std::memcpy(cur->value, &var, sizeof(T));
  wait(State::Shuffle, line);
  T out;
  std::memcpy(&out, cur->result, sizeof(T));
  return out;
}

inline const char* state_name(State s) {
  switch (s) {
    case State::Ready: return "running";
    case State::Active: return "__activemask";
    case State::Shuffle: return "a shuffle";
    case State::Barrier: return "__syncthreads";
    case State::Done: return "exited";
  }
  return "?";
}

// Resolves __activemask calls (warp by warp): returns whether any fiber was released.
inline bool resolve_active(int n) {
  bool any = false;
  for (int w = 0; w * 32 < n; ++w) {
    for (int l = 0; l < 32 && w * 32 + l < n; ++l) {
      Fiber& f = fibers[w * 32 + l];
      if (f.state != State::Active) continue;
      unsigned mask = 0;
      for (int k = 0; k < 32 && w * 32 + k < n; ++k) {
        const Fiber& g = fibers[w * 32 + k];
        if (g.state == State::Active && g.line == f.line) mask |= 1u << k;
      }
      for (int k = 0; k < 32 && w * 32 + k < n; ++k) {
        Fiber& g = fibers[w * 32 + k];
        if (mask >> k & 1u) g.active = mask, g.state = State::Ready;
      }
      any = true;
    }
  }
  return any;
}

inline bool resolve_shuffles(int n) {
  bool any = false;
  for (int t = 0; t < n; ++t) {
    Fiber& f = fibers[t];
    if (f.state != State::Shuffle) continue;
    cur = &f;
    const int warp = t / 32 * 32, lane = t % 32;
    if (!(f.mask >> lane & 1u)) fail("shuffle", "lane %d calls a shuffle (line %d) whose mask 0x%08x does not name it", lane, f.line, f.mask);
    if (f.width <= 0 || f.width > 32 || (f.width & (f.width - 1)))
      fail("shuffle", "width %d is not a power of two <= 32 (line %d)", f.width, f.line);
    for (int k = 0; k < 32; ++k) {
      if (!(f.mask >> k & 1u)) continue;
      if (warp + k >= n) fail("shuffle", "mask 0x%08x names lane %d, which the block does not have (line %d)", f.mask, k, f.line);
      const Fiber& g = fibers[warp + k];
      if (g.state != State::Shuffle || g.line != f.line || g.mask != f.mask || g.width != f.width || g.kind != f.kind)
        fail("divergent shuffle", "lane %d waits at a shuffle (line %d, mask 0x%08x, width %d) but lane %d named in the mask is at %s (line %d)",
             lane, f.line, f.mask, f.width, k, state_name(g.state), g.line);
    }
  }
  for (int t = 0; t < n; ++t) {
    Fiber& f = fibers[t];
    if (f.state != State::Shuffle) continue;
    cur = &f;
    const int warp = t / 32 * 32, lane = t % 32, base = lane & ~(f.width - 1);
    int src = lane;
    switch (f.kind) {
      case Shfl::Xor:
        src = lane ^ f.param;
        if ((src & ~(f.width - 1)) != base)
          fail("shuffle", "xor %d from lane %d leaves its %d-lane segment (line %d)", f.param, lane, f.width, f.line);
        break;
      case Shfl::Idx: src = base + (f.param % f.width); break;
      case Shfl::Down: src = lane + f.param < base + f.width ? lane + f.param : lane; break;
      case Shfl::Up: src = lane - f.param >= base ? lane - f.param : lane; break;
    }
    if (!(f.mask >> src & 1u))
      fail("shuffle", "lane %d reads lane %d, which mask 0x%08x does not name (line %d)", lane, src, f.mask, f.line);
    std::memcpy(f.result, fibers[warp + src].value, sizeof f.result);
  }
  for (Fiber& f : fibers) {
    if (&f - fibers.data() >= n) break;
    if (f.state == State::Shuffle) f.state = State::Ready, any = true;
  }
  cur = nullptr;
  return any;
}

inline bool resolve_barrier(int n) {
  int line = -1;
  for (int t = 0; t < n; ++t) {
    const Fiber& f = fibers[t];
    if (f.state == State::Barrier && line < 0) line = f.line;
  }
  if (line < 0) return false;
  for (int t = 0; t < n; ++t) {
    cur = &fibers[t];
    if (cur->state != State::Barrier || cur->line != line)
      fail("divergent __syncthreads", "a thread waits at the barrier of line %d, this one is at %s (line %d)", line,
           state_name(cur->state), cur->line);
  }
  cur = nullptr;
  ++epoch;
  for (int t = 0; t < n; ++t) fibers[t].state = State::Ready;
  return true;
}

inline void fiber_main() {
  kernel_call();
  cur->state = State::Done;
  to_scheduler();
  fail("fiber", "resumed after it exited");
}

inline void start_fiber(Fiber& f, char* stack) {
#if defined(__x86_64__)
  // The frame cuda_emu_switch pops: control words, six registers, then `ret` to fiber_main
  // with the stack as after a call (16-byte aligned + 8).
  auto* top = reinterpret_cast<uint64_t*>(reinterpret_cast<uintptr_t>(stack + kStack) & ~uintptr_t(15));
  uint64_t* sp = top - 9;
  uint32_t mxcsr;
  uint16_t fpucw;
  asm volatile("stmxcsr %0" : "=m"(mxcsr));
  asm volatile("fnstcw %0" : "=m"(fpucw));
  std::memset(sp, 0, 9 * sizeof(uint64_t));
  std::memcpy(sp, &mxcsr, 4);
  std::memcpy(reinterpret_cast<char*>(sp) + 4, &fpucw, 2);
  sp[7] = reinterpret_cast<uint64_t>(&fiber_main);   // after the 6 registers
  f.sp = sp;
#else
  getcontext(&f.ctx);
  f.ctx.uc_stack.ss_sp = stack;
  f.ctx.uc_stack.ss_size = kStack;
  f.ctx.uc_link = nullptr;
  makecontext(&f.ctx, fiber_main, 0);
#endif
}

inline void run_block(int n) {
  for (SharedArray* s : shared_arrays) s->reset();
  epoch = 0;
  for (int t = 0; t < n; ++t) {
    Fiber& f = fibers[t];
    f.state = State::Ready;
    f.tid = t;
    f.idx = Dim3{unsigned(t % block_dim.x), unsigned(t / block_dim.x % block_dim.y), unsigned(t / (block_dim.x * block_dim.y))};
    start_fiber(f, stacks[t]);
  }
  for (;;) {
    bool ran = false, live = false;
    for (int t = 0; t < n; ++t) {
      if (fibers[t].state != State::Ready) continue;
      cur = &fibers[t];
      ran = true;
      to_fiber(*cur);
    }
    cur = nullptr;
    for (int t = 0; t < n; ++t) live |= fibers[t].state != State::Done;
    if (!live) return;
    if (ran) continue;   // run until nothing can run, then resolve
    if (resolve_active(n) || resolve_shuffles(n) || resolve_barrier(n)) continue;
    fail("deadlock", "no thread can run and no collective can complete");
  }
}

// Launches `call` (the kernel with its arguments) on a grid of blocks, one block at a time.
inline void launch(const char* name, Dim3 grid, Dim3 block, int bound, std::function<void()> call) {
  kernel_name = name;
  const int n = int(block.x * block.y * block.z);
  if (n > bound) fail("launch", "%d threads per block exceed __launch_bounds__(%d)", n, bound);
  if (n > 1024) fail("launch", "%d threads per block exceed 1024", n);
  if ((int)fibers.size() < n) fibers.resize(n);
  while ((int)stacks.size() < n) stacks.push_back(static_cast<char*>(std::malloc(kStack)));
  kernel_call = std::move(call);
  grid_dim = grid;
  block_dim = block;
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) {
        block_idx = Dim3{x, y, z};
        run_block(n);
      }
}

// ---- global memory ----------------------------------------------------------------------
struct Allocation {
  char *base, *start, *end, *page_end;
  const char* name;
};
inline std::vector<Allocation> allocations;
constexpr unsigned char kCanary = 0xFF;   // reads as NaN in every float width

inline void segv(int) {
  const char msg[] = "cuda_emu: out-of-bounds global memory access (guard page)\n";
  (void)!write(2, msg, sizeof msg - 1);
  std::_Exit(3);
}

// `bytes` of global memory whose end is within 64 bytes of a PROT_NONE page (and whose start
// follows one): the slack on both sides holds canaries that check_guards() verifies.
inline void* alloc(long bytes, const char* name) {
  static bool handler = [] {
    static char alt[1 << 16];
    stack_t ss{};
    ss.ss_sp = alt;
    ss.ss_size = sizeof alt;
    sigaltstack(&ss, nullptr);
    struct sigaction sa{};
    sa.sa_handler = segv;
    sa.sa_flags = SA_ONSTACK;
    sigaction(SIGSEGV, &sa, nullptr);
    sigaction(SIGBUS, &sa, nullptr);
    return true;
  }();
  (void)handler;
  const long page = sysconf(_SC_PAGESIZE);
  const long rounded = (bytes + 63) / 64 * 64;
  const long pages = (rounded + page - 1) / page;
  char* base = static_cast<char*>(mmap(nullptr, (pages + 2) * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (base == MAP_FAILED) fail("alloc", "mmap of %ld bytes for %s", bytes, name);
  mprotect(base, page, PROT_NONE);
  mprotect(base + (pages + 1) * page, page, PROT_NONE);
  char* page_end = base + (pages + 1) * page;
  char* start = page_end - rounded;
  std::memset(base + page, kCanary, pages * page);
  allocations.push_back({base + page, start, start + bytes, page_end, name});
  return start;
}

inline void check_guards() {
  for (const Allocation& a : allocations) {
    for (const char* p = a.base; p < a.start; ++p)
      if ((unsigned char)*p != kCanary) fail("global memory", "write %ld bytes before %s", long(a.start - p), a.name);
    for (const char* p = a.end; p < a.page_end; ++p)
      if ((unsigned char)*p != kCanary) fail("global memory", "write %ld bytes past the end of %s", long(p - a.end) + 1, a.name);
  }
}

}  // namespace cuda_emu

#define threadIdx (cuda_emu::cur->idx)
#define blockIdx (cuda_emu::block_idx)
#define blockDim (cuda_emu::block_dim)
#define gridDim (cuda_emu::grid_dim)
#define __syncthreads() cuda_emu::syncthreads(__LINE__)
#define __activemask() cuda_emu::activemask(__LINE__)
#define __shfl_xor_sync(mask, var, ...) cuda_emu::shuffle(cuda_emu::Shfl::Xor, __LINE__, mask, var, __VA_ARGS__)
#define __shfl_sync(mask, var, ...) cuda_emu::shuffle(cuda_emu::Shfl::Idx, __LINE__, mask, var, __VA_ARGS__)
#define __shfl_down_sync(mask, var, ...) cuda_emu::shuffle(cuda_emu::Shfl::Down, __LINE__, mask, var, __VA_ARGS__)
#define __shfl_up_sync(mask, var, ...) cuda_emu::shuffle(cuda_emu::Shfl::Up, __LINE__, mask, var, __VA_ARGS__)

// ---- half precision (cuda_fp16.h): IEEE binary16, every operation rounded once ------------
struct __half {
  uint16_t bits;
  __half() = default;
  __half(float f) : bits(from_float(f)) {}
  __half(double d) : bits(from_float(float(d))) {}
  __half(int i) : bits(from_float(float(i))) {}
  operator float() const { return to_float(bits); }

  static uint16_t from_float(float f) {   // round to nearest even, subnormals, inf, nan
    uint32_t x;
    std::memcpy(&x, &f, 4);
    const uint32_t sign = (x >> 16) & 0x8000u;
    const uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return uint16_t(sign | 0x7e00u);
    if (ax >= 0x477ff000u) return uint16_t(sign | 0x7c00u);   // rounds to >= 65520: inf
    if (ax < 0x38800000u) {                                     // subnormal half (or zero)
      float a;
      std::memcpy(&a, &ax, 4);
      return uint16_t(sign | uint32_t(std::nearbyint(a * 16777216.0f)));   // units of 2^-24
    }
    const uint32_t mant = ax & 0x7fffffu, exp = (ax >> 23) - 112;
    uint32_t h = (exp << 10) | (mant >> 13);
    const uint32_t rest = mant & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;
    return uint16_t(sign | h);
  }
  static float to_float(uint16_t h) {
    const uint32_t sign = uint32_t(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
    if (exp == 0) {
      const float v = std::ldexp(float(mant), -24);
      return sign ? -v : v;
    }
    const uint32_t x = sign | (exp == 31 ? 0x7f800000u | (mant << 13) : ((exp + 112) << 23) | (mant << 13));
    float f;
    std::memcpy(&f, &x, 4);
    return f;
  }
};
using half = __half;
inline half operator+(half a, half b) { return half(float(a) + float(b)); }
inline half operator-(half a, half b) { return half(float(a) - float(b)); }
inline half operator*(half a, half b) { return half(float(a) * float(b)); }
inline half operator/(half a, half b) { return half(float(a) / float(b)); }
inline half operator-(half a) { return half(-float(a)); }
inline bool operator<(half a, half b) { return float(a) < float(b); }
inline bool operator>(half a, half b) { return float(a) > float(b); }
inline bool operator<=(half a, half b) { return float(a) <= float(b); }
inline bool operator>=(half a, half b) { return float(a) >= float(b); }
inline bool operator==(half a, half b) { return float(a) == float(b); }
inline bool operator!=(half a, half b) { return float(a) != float(b); }
inline half __float2half(float f) { return half(f); }
inline half __float2half_rn(float f) { return half(f); }
inline float __half2float(half h) { return float(h); }
inline bool __hgt(half a, half b) { return a > b; }
inline bool __hlt(half a, half b) { return a < b; }
inline half hexp(half h) { return half(std::exp(float(h))); }
inline half hsqrt(half h) { return half(std::sqrt(float(h))); }
inline half hpow(half a, half b) { return half(std::pow(float(a), float(b))); }   // TVM's preamble: powf, rounded
struct alignas(4) __half2 {
  half x, y;
};
using half2 = __half2;
inline half2 make_half2(half x, half y) { return half2{x, y}; }

// ---- vector types (CUDA's alignment; no operators, as in CUDA) ------------------------------
#define CUDA_EMU_VEC(T, N2, N4, A2, A4)                                                      \
  struct alignas(A2) N2 { T x, y; };                                                         \
  struct alignas(A4) N4 { T x, y, z, w; };                                                   \
  inline N2 make_##N2(T x, T y) { return N2{x, y}; }                                         \
  inline N4 make_##N4(T x, T y, T z, T w) { return N4{x, y, z, w}; }
CUDA_EMU_VEC(signed char, char2, char4, 2, 4)
CUDA_EMU_VEC(unsigned char, uchar2, uchar4, 2, 4)
CUDA_EMU_VEC(short, short2, short4, 4, 8)
CUDA_EMU_VEC(unsigned short, ushort2, ushort4, 4, 8)
CUDA_EMU_VEC(int, int2, int4, 8, 16)
CUDA_EMU_VEC(unsigned int, uint2, uint4, 8, 16)
CUDA_EMU_VEC(float, float2, float4, 8, 16)
CUDA_EMU_VEC(long long, longlong2, longlong4, 16, 16)
CUDA_EMU_VEC(double, double2, double4, 16, 16)
#undef CUDA_EMU_VEC

// ---- math as CUDA spells it -----------------------------------------------------------------
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline float __expf(float x) { return std::exp(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float max(float a, float b) { return std::fmax(a, b); }
inline float min(float a, float b) { return std::fmin(a, b); }
inline double max(double a, double b) { return std::fmax(a, b); }
inline double min(double a, double b) { return std::fmin(a, b); }
inline int max(int a, int b) { return a > b ? a : b; }
inline int min(int a, int b) { return a < b ? a : b; }
inline int64_t max(int64_t a, int64_t b) { return a > b ? a : b; }
inline int64_t min(int64_t a, int64_t b) { return a < b ? a : b; }
