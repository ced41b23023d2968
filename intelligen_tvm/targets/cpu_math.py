"""Transcendental functions as SIMD-friendly float32 arithmetic for the CPU backend.

TVM lowers `T.exp` (and `T.pow`, `T.log`, ...) on llvm to the libm intrinsic, which LLVM
cannot vectorize without a vector math library: a vectorized loop turns into one `expf` call
per element.  Softmax, GELU and SiLU then run at libm speed, an order of magnitude below
memory speed.  Here the functions are polynomials and bit manipulation that stay in vector
registers:

- exp: Cephes `expf` (range reduction by ln 2 in two parts, its polynomial as one Horner
  chain of fused multiply-adds), with n rounded by adding 1.5 * 2^23 (the sum's low mantissa
  bits are n) and 2^n added to the polynomial's exponent bits: 15 vector instructions per
  vector where rounding, a float-to-int conversion and a multiplication by 2^n took 20 (softmax
  spends most of its compute here).  Relative error about 2 ulp on [-87.3, 88.4]; the clamp
  keeps n >= -126 with a polynomial >= 1 there, so every result is a normal float;
- erf: Eigen's rational approximation for float (`generic_fast_erf_float`), clamped to
  [-4, 4], absolute error about 1e-7;
- sigmoid 1 / (1 + exp(-x)) and tanh 1 - 2 / (exp(2x) + 1) through that exp;
- pow with a constant exponent 2 or 0.5 as x * x and sqrt(x).

Each expansion writes its steps into temporaries (`tmp(name)`, register buffers of the
renderer) because TVM 0.27's loop vectorizer mishandles scalar `let` bindings in a vectorized
loop (every lane gets lane 0's value).  Other dtypes and functions keep TVM's lowering.
"""

from __future__ import annotations

from collections.abc import Callable

_EXP_LO, _EXP_HI = "T.float32(-87.33654475)", "T.float32(88.3762626647950)"
# Cephes expf: exp(r) = 1 + r + r^2 P(r), here as the one polynomial r (r P(r) + 1) + 1.
_EXP_POLY = ("1.9875691500E-4", "1.3981999507E-3", "8.3334519073E-3", "4.1665795894E-2", "1.6666665459E-1",
             "5.0000001201E-1", "1.0", "1.0")
_ROUNDING = "T.float32(12582912.0)"   # 1.5 * 2^23: c * log2(e) + this rounds to an integer n in the low bits
_ERF_ALPHA = ("-2.72614225801306e-10", "2.77068142495902e-08", "-2.10102402082508e-06", "-5.69250639462346e-05",
              "-7.34990630326855e-04", "-2.95459980854025e-03", "-1.60960333262415e-02")
_ERF_BETA = ("-1.45660718464996e-05", "-2.13374055278905e-04", "-1.68282697438203e-03", "-7.37332916720468e-03",
             "-1.42647390514189e-02")


def _f(c: str) -> str:
    return f"T.float32({c})"


def _horner(var: str, coeffs: tuple[str, ...]) -> str:
    text = _f(coeffs[0])
    for c in coeffs[1:]:
        text = f"({text} * {var} + {_f(c)})"
    return text


def exp_lines(dst: str, x: str, tmp: Callable[[str], str]) -> list[str]:
    c, t, z, r = tmp("c"), tmp("t"), tmp("z"), tmp("r")
    return [f"{c} = T.min(T.max({x}, {_EXP_LO}), {_EXP_HI})",
            f"{t} = {c} * T.float32(1.44269504088896341) + {_ROUNDING}",
            f"{z} = {t} - {_ROUNDING}",
            f"{r} = {c} - {z} * T.float32(0.693359375) - {z} * T.float32(-2.12194440e-4)",
            f'{dst} = T.reinterpret("float32", T.reinterpret("int32", {_horner(r, _EXP_POLY)})'
            f' + T.shift_left(T.reinterpret("int32", {t}), 23))']


def erf_lines(dst: str, x: str, tmp: Callable[[str], str]) -> list[str]:
    c, c2 = tmp("c"), tmp("c2")
    return [f"{c} = T.min(T.max({x}, T.float32(-4.0)), T.float32(4.0))",
            f"{c2} = {c} * {c}",
            f"{dst} = {c} * {_horner(c2, _ERF_ALPHA)} / {_horner(c2, _ERF_BETA)}"]


def expand(op: str, dtype: str, args: list[str], dst: str, tmp: Callable[[str], str]) -> list[str] | None:
    """Lines computing `dst = op(args)` with vectorizable arithmetic, or None to keep TVM's."""
    if dtype != "float32":
        return None
    if op == "exp":
        return exp_lines(dst, args[0], tmp)
    if op == "erf":
        return erf_lines(dst, args[0], tmp)
    if op == "sigmoid":
        e = tmp("e")
        return exp_lines(e, f"(T.float32(0) - {args[0]})", tmp) + [f"{dst} = T.float32(1) / (T.float32(1) + {e})"]
    if op == "tanh":
        e = tmp("e")
        return exp_lines(e, f"(T.float32(2) * {args[0]})", tmp) + [f"{dst} = T.float32(1) - T.float32(2) / ({e} + T.float32(1))"]
    if op == "pow" and args[1] in ("T.float32(2.0)", "T.float32(2)"):
        return [f"{dst} = {args[0]} * {args[0]}"]
    if op == "pow" and args[1] == "T.float32(0.5)":
        return [f"{dst} = T.sqrt({args[0]})"]
    return None
