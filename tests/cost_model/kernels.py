"""Small TVMScript kernels for the measurement tests, independent of the compiler."""

from __future__ import annotations

from tvm.script import tirx as T


def vector_add(n: int):
    @T.prim_func
    def func(A: T.Buffer((n,), "float32"), B: T.Buffer((n,), "float32"), C: T.Buffer((n,), "float32")):
        for i in range(n):
            C[i] = A[i] + B[i]

    return func


def copy(n: int):
    @T.prim_func
    def func(A: T.Buffer((n,), "float32"), B: T.Buffer((n,), "float32")):
        for i in range(n):
            B[i] = A[i]

    return func
