// CPU emulation of the BANG C subset that intelligen_tvm emits (see INTRINSICS in
// intelligen_tvm/targets/bang/render.py for the semantics assumed; this header implements
// exactly those).  Tasks run one at a time: the driver sets taskId and calls the kernel for
// every task.  NRAM variables live in their own linker section so that every call can check
// that an operand really is on chip and that the pool fits the NRAM size the driver checks.
// What is NOT emulated: timing, bank conflicts, cluster barriers (the emitted kernels use none).
#pragma once
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#define __mlu_global__
#define __mlu_func__ static inline
#define __nram__ static __attribute__((section("bang_nram"), aligned(128)))

extern "C" char __start_bang_nram[];
extern "C" char __stop_bang_nram[];

int taskId = 0;
int taskDim = 1;

enum mluMemcpyDirection_t { GDRAM2NRAM, NRAM2GDRAM, NRAM2NRAM };

static void emu_fail(const char* what, const char* detail) {
  std::fprintf(stderr, "bang_emu: %s: %s\n", what, detail);
  std::exit(3);
}

static bool emu_in_nram(const void* p, long bytes) {
  const char* c = static_cast<const char*>(p);
  return c >= __start_bang_nram && c + bytes <= __stop_bang_nram;
}

static long emu_nram_bytes() { return static_cast<long>(__stop_bang_nram - __start_bang_nram); }

static void emu_check_vector(const char* op, const void* p, long n, long elem) {
  if (n <= 0 || (n * elem) % 128 != 0) emu_fail(op, "vector length is not a positive multiple of 128 bytes");
  if (!emu_in_nram(p, n * elem)) emu_fail(op, "vector operand is not inside NRAM");
}

static void emu_check_copy(const void* dst, const void* src, long bytes, mluMemcpyDirection_t dir) {
  if (bytes <= 0) emu_fail("__memcpy", "non-positive size");
  const bool dn = emu_in_nram(dst, bytes), sn = emu_in_nram(src, bytes);
  const bool ok = (dir == GDRAM2NRAM && dn && !sn) || (dir == NRAM2GDRAM && !dn && sn) ||
                  (dir == NRAM2NRAM && dn && sn);
  if (!ok) emu_fail("__memcpy", "direction does not match where the pointers live");
}

static void __memcpy(void* dst, const void* src, int bytes, mluMemcpyDirection_t dir) {
  emu_check_copy(dst, src, bytes, dir);
  std::memmove(dst, src, bytes);
}

static void __memcpy(void* dst, const void* src, int bytes, mluMemcpyDirection_t dir, int dst_stride,
                     int src_stride, int segnum) {
  if (segnum < 0) emu_fail("__memcpy", "negative segnum");
  for (int i = 0; i <= segnum; ++i)
    __memcpy(static_cast<char*>(dst) + static_cast<long>(i) * dst_stride,
             static_cast<const char*>(src) + static_cast<long>(i) * src_stride, bytes, dir);
}

// Asynchronous copies land only at the next __sync(): reading a prefetched buffer before
// waiting sees the old data, as it could on the device.
struct EmuCopy {
  void* dst;
  const void* src;
  int bytes, dst_stride, src_stride, segnum;
  mluMemcpyDirection_t dir;
};
static std::vector<EmuCopy> emu_pending;

static void __memcpy_async(void* dst, const void* src, int bytes, mluMemcpyDirection_t dir) {
  emu_check_copy(dst, src, bytes, dir);
  emu_pending.push_back({dst, src, bytes, 0, 0, 0, dir});
}

static void __memcpy_async(void* dst, const void* src, int bytes, mluMemcpyDirection_t dir, int dst_stride,
                           int src_stride, int segnum) {
  emu_pending.push_back({dst, src, bytes, dst_stride, src_stride, segnum, dir});
}

static void __sync() {
  for (const EmuCopy& c : emu_pending) __memcpy(c.dst, c.src, c.bytes, c.dir, c.dst_stride, c.src_stride, c.segnum);
  emu_pending.clear();
}

template <typename T>
static void __bang_write_value(T* dst, int n, T value) {
  emu_check_vector("__bang_write_value", dst, n, sizeof(T));
  for (int i = 0; i < n; ++i) dst[i] = value;
}
static void __bang_write_value(float* dst, int n, double value) { __bang_write_value<float>(dst, n, (float)value); }

#define EMU_BINARY(NAME, EXPR)                                              \
  static void NAME(float* dst, const float* a, const float* b, int n) {     \
    emu_check_vector(#NAME, dst, n, 4);                                     \
    emu_check_vector(#NAME, a, n, 4);                                       \
    emu_check_vector(#NAME, b, n, 4);                                       \
    for (int i = 0; i < n; ++i) { const float x = a[i], y = b[i]; dst[i] = (EXPR); } \
  }
EMU_BINARY(__bang_add, x + y)
EMU_BINARY(__bang_sub, x - y)
EMU_BINARY(__bang_mul, x * y)
EMU_BINARY(__bang_div, x / y)
EMU_BINARY(__bang_maxequal, x > y ? x : y)
EMU_BINARY(__bang_minequal, x < y ? x : y)

#define EMU_SCALAR(NAME, EXPR)                                              \
  static void NAME(float* dst, const float* a, float y, int n) {            \
    emu_check_vector(#NAME, dst, n, 4);                                     \
    emu_check_vector(#NAME, a, n, 4);                                       \
    for (int i = 0; i < n; ++i) { const float x = a[i]; dst[i] = (EXPR); }  \
  }
EMU_SCALAR(__bang_add_scalar, x + y)
EMU_SCALAR(__bang_sub_scalar, x - y)
EMU_SCALAR(__bang_mul_scalar, x * y)
EMU_SCALAR(__bang_maxeq_scalar, x > y ? x : y)
EMU_SCALAR(__bang_mineq_scalar, x < y ? x : y)

#define EMU_CYCLE(NAME, EXPR)                                               \
  static void NAME(float* dst, const float* a, const float* b, int n, int m) { \
    emu_check_vector(#NAME, dst, n, 4);                                     \
    emu_check_vector(#NAME, a, n, 4);                                       \
    emu_check_vector(#NAME, b, m, 4);                                       \
    if (n % m != 0) emu_fail(#NAME, "the cycle length does not divide the length"); \
    for (int i = 0; i < n; ++i) { const float x = a[i], y = b[i % m]; dst[i] = (EXPR); } \
  }
EMU_CYCLE(__bang_cycle_add, x + y)
EMU_CYCLE(__bang_cycle_sub, x - y)
EMU_CYCLE(__bang_cycle_mul, x * y)

#define EMU_UNARY(NAME, EXPR)                                               \
  static void NAME(float* dst, const float* a, int n) {                     \
    emu_check_vector(#NAME, dst, n, 4);                                     \
    emu_check_vector(#NAME, a, n, 4);                                       \
    for (int i = 0; i < n; ++i) { const float x = a[i]; dst[i] = (EXPR); }  \
  }
EMU_UNARY(__bang_active_exp, std::exp(x))
EMU_UNARY(__bang_active_sqrt, std::sqrt(x))
EMU_UNARY(__bang_active_rsqrt, 1.0f / std::sqrt(x))
EMU_UNARY(__bang_active_recip, 1.0f / x)
EMU_UNARY(__bang_active_sigmoid, 1.0f / (1.0f + std::exp(-x)))
EMU_UNARY(__bang_active_log, std::log(x))

// Sums every 128-byte chunk; the sum of chunk c lands at dst[c * 32]; the rest of dst[0:n]
// is unspecified, poisoned with NaN here so that reading it (a missing second step) shows.
static void __bang_reduce_sum(float* dst, const float* src, int n) {
  emu_check_vector("__bang_reduce_sum", dst, n, 4);
  emu_check_vector("__bang_reduce_sum", src, n, 4);
  std::vector<float> sums(n / 32);
  for (int c = 0; c < n / 32; ++c) {
    float s = 0.0f;
    for (int i = 0; i < 32; ++i) s += src[c * 32 + i];
    sums[c] = s;
  }
  for (int i = 0; i < n; ++i) dst[i] = NAN;
  for (int c = 0; c < n / 32; ++c) dst[c * 32] = sums[c];
}

static void __bang_max(float* dst, const float* src, int n) {
  emu_check_vector("__bang_max", src, n, 4);
  if (!emu_in_nram(dst, 2 * 4)) emu_fail("__bang_max", "destination is not inside NRAM");
  int best = 0;
  for (int i = 1; i < n; ++i)
    if (src[i] > src[best]) best = i;
  const float value = src[best];
  dst[0] = value;
  dst[1] = static_cast<float>(best);
}
