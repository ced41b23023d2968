"""Planned regions on llvm: each region's PrimFunc, built alone, computes what TVM's own legalized
PrimFuncs compute (awkward shapes on purpose: guards, tails, odd extents) — the CPU backend's plans
and, through the thread-emulating lowering (`hw=` a GPU preset), the CUDA and wave64 plans."""

from __future__ import annotations

import numpy as np
import pytest
import tvm
from tvm import relax

from intelligen_tvm.region import lower_region
from intelligen_tvm.targets import render_source, source_prim_func
from intelligen_tvm.targets.presets import AMD_GFX90A, NVIDIA_SM90
from tests.helpers import LLVM, chain_stages, relax_module, run_prim_func

op = relax.op


def _inputs(sp, consts, rng) -> dict[str, np.ndarray]:
    feed = {}
    for name in sp.inputs:
        b = sp.buffers[name]
        if name in consts:
            feed[name] = consts[name]
        elif b.dtype.startswith("int"):
            feed[name] = rng.integers(0, 10, b.shape).astype(b.dtype)
        else:
            feed[name] = rng.standard_normal(b.shape).astype(b.dtype)
    return feed


def _reference(fn, shapes, dtypes, feed) -> np.ndarray:
    """TVM's own path: legalized PrimFuncs, one per op, built for llvm."""
    ex = tvm.compile(relax_module(fn, shapes, dtypes), target=LLVM, relax_pipeline="default")
    vm = relax.VirtualMachine(ex, tvm.cpu())
    return vm["main"](*[tvm.runtime.tensor(feed[f"x{i}"]) for i in range(len(shapes))]).numpy()


# name, graph, input shapes, dtypes (None: all float32), expected plan kind
CASES = [
    # rows: unit scope, several rows per group, a tail group (37 rows, 4 per group)
    ("softmax_37x1000", lambda x: op.nn.softmax(x), [(37, 1000)], None, "row"),
    ("softmax_short_rows", lambda x: op.nn.softmax(x), [(5, 24)], None, "row"),
    ("softmax_odd_row", lambda x: op.nn.softmax(x), [(6, 333)], None, "row"),
    # rows: group scope (more than 1024 columns), with a column tail
    ("softmax_group_scope", lambda x: op.nn.softmax(x), [(3, 5000)], None, "row"),
    ("log_softmax", lambda x: op.nn.log_softmax(x), [(9, 130)], None, "row"),
    ("layer_norm", lambda x, g, b: op.nn.layer_norm(x, g, b, axes=[-1], epsilon=1e-5),
     [(13, 768), (768,), (768,)], None, "row"),
    ("layer_norm_3d", lambda x, g, b: op.nn.layer_norm(x, g, b, axes=[-1], epsilon=1e-5),
     [(3, 7, 96), (96,), (96,)], None, "row"),
    ("rms_norm_long", lambda x, w: op.nn.rms_norm(x, w, axes=[-1]), [(4, 2048), (2048,)], None, "row"),
    ("mean_last_keepdims0", lambda x: op.mean(x, axis=[-1]), [(2, 9, 70)], None, "row"),
    ("max_middle_axis", lambda x: op.max(x, axis=[1]), [(4, 33, 8)], None, None),
    ("add_then_softmax_broadcast_mask", lambda x, m: op.nn.softmax(op.add(op.multiply(x, relax.const(0.125)), m)),
     [(2, 3, 10, 10), (2, 1, 1, 10)], None, "row"),
    # column reductions (strided rows stream through a serial loop), with tails
    ("sum_axis0", lambda x: op.sum(x, axis=[0], keepdims=True), [(100, 70)], None, "column"),
    ("mean_axis0", lambda x: op.mean(x, axis=[0]), [(33, 65)], None, "column"),
    # flat
    ("gelu_bias", lambda x, b: op.nn.gelu(op.add(x, b)), [(7, 30), (30,)], None, "flat"),
    ("silu_mul", lambda a, b: op.multiply(op.nn.silu(a), b), [(3, 1001), (3, 1001)], None, "flat"),
    ("bias_add_nchw", lambda x, b: op.add(x, b), [(2, 12, 7, 7), (1, 12, 1, 1)], None, "flat"),
    ("where_cast", lambda a, b: op.where(op.greater(a, b), op.astype(a, "float16"), op.astype(b, "float16")),
     [(8, 16), (8, 16)], None, "flat"),
    ("take_add", lambda t, i, p: op.add(op.take(t, i, axis=0), p), [(50, 24), (3, 5), (5, 24)],
     ["float32", "int64", "float32"], None),
    ("concat_relu", lambda a, b: op.nn.relu(op.concat([a, b], axis=1)), [(4, 8), (4, 16)], None, "flat"),
    ("pad", lambda x: op.nn.pad(x, [0, 0, 2, 1], pad_value=-1.0), [(6, 10)], None, "flat"),
    # transposes: small ones flat, large ones through an SRAM tile (barrier phases on the CPU)
    ("transpose_small", lambda x: op.nn.relu(op.permute_dims(x, [2, 0, 3, 1])), [(4, 7, 9, 8)], None, "flat"),
    ("transpose_tile_2d", lambda x: op.nn.relu(op.permute_dims(x, [1, 0])), [(50, 40)], None, "tile"),
    ("transpose_tile_odd", lambda x: op.exp(op.permute_dims(x, [1, 0])), [(33, 17)], None, "tile"),
    ("transpose_tile_4d", lambda x: op.nn.relu(op.permute_dims(x, [2, 0, 3, 1])), [(3, 20, 33, 18)], None, "tile"),
    ("reshape_transpose", lambda x: op.permute_dims(op.reshape(x, (2, 2, 6, 7, 7)), [0, 2, 1, 3, 4]),
     [(2, 12, 7, 7)], None, "flat"),
]


@pytest.mark.parametrize("preset", [None, NVIDIA_SM90, AMD_GFX90A], ids=["cpu", "sm90", "gfx90a"])
@pytest.mark.parametrize("name, fn, shapes, dtypes, kind", CASES, ids=[c[0] for c in CASES])
def test_region_matches_tvm_legalized_build(name, fn, shapes, dtypes, kind, preset) -> None:
    """The CPU backend's default plan; the CUDA (warps of 32) and gfx90a (wave64: lanes, tails,
    64-wide tiles) plans through the thread-emulating lowering."""
    sp, consts = chain_stages(fn, shapes, dtypes)
    lowered = lower_region(sp, "region0", "llvm", hw=preset.model if preset else None)
    assert len(lowered.optimized.kernels) == 1
    if preset is not None:
        assert lowered.kernel.strategy.lanes == preset.model.lanes_per_unit
    elif kind is not None:
        assert lowered.kernel.strategy.kind == kind
    assert lowered.dram_bytes_planned == lowered.dram_bytes_ideal
    feed = _inputs(sp, consts, np.random.default_rng(0))
    (got,) = run_prim_func(lowered.prim_func, [feed[n] for n in sp.inputs])
    want = _reference(fn, shapes, dtypes, feed)
    assert got.dtype == want.dtype and got.shape == want.shape
    tol = 1e-3 if want.dtype == np.float16 else 2e-5
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


# Regions whose rows are re-read: (name, graph, shapes, plan kind, DRAM reads of the main
# input, other bytes: the shifted variance loads each row's first element once more).
REREAD = [
    ("softmax_streamed", lambda x: op.nn.softmax(x), [(3, 70001)], "row", 2, 0),       # online max + sum
    ("log_softmax_streamed", lambda x: op.nn.log_softmax(x), [(2, 66000)], "row", 2, 0),
    ("layer_norm_streamed", lambda x, g, b: op.nn.layer_norm(x, g, b, axes=[-1], epsilon=1e-5),
     [(2, 66000), (66000,), (66000,)], "row", 2, 2 * 4),                               # mean + shifted variance
    ("softmax_leading_axis_on_chip", lambda x: op.nn.softmax(x, axis=0), [(200, 10)], "column", 1, 0),
    ("softmax_leading_axis_streamed", lambda x: op.nn.softmax(x, axis=0), [(3000, 9)], "column", 2, 0),
]


@pytest.mark.parametrize("name, fn, shapes, kind, reads, extra", REREAD, ids=[c[0] for c in REREAD])
def test_streamed_and_on_chip_multi_pass_rows(name, fn, shapes, kind, reads, extra) -> None:
    """CUDA plans: rows too long for registers stream, one sweep per reduction level (online
    softmax and shifted variance bring two levels into one); the report's planned bytes count
    every re-read of the main input."""
    sp, consts = chain_stages(fn, shapes, None)
    lowered = lower_region(sp, "region0", "llvm", hw=NVIDIA_SM90.model)
    assert lowered.kernel.strategy.kind == kind
    main_bytes = 4 * int(np.prod(shapes[0]))
    assert lowered.dram_bytes_planned == lowered.dram_bytes_ideal + (reads - 1) * main_bytes + extra
    feed = _inputs(sp, consts, np.random.default_rng(0))
    (got,) = run_prim_func(lowered.prim_func, [feed[n] for n in sp.inputs])
    np.testing.assert_allclose(got, _reference(fn, shapes, None, feed), rtol=2e-5, atol=2e-5)


def test_thread_emulation_is_parallel_over_groups_and_phases_over_threads() -> None:
    sp, _ = chain_stages(lambda x: op.nn.softmax(x), [(64, 4096)])
    lowered = lower_region(sp, "region0", "llvm", hw=NVIDIA_SM90.model)
    src = lowered.source
    assert "T.parallel(" in src                 # groups
    assert "for u, l in T.grid(" in src         # units x lanes, one loop nest per phase
    assert "thread_binding" not in src and 'scope="shared"' not in src
    # a group-scope reduction needs barriers: more than one phase per reduction
    assert src.count("for u, l in T.grid(") > 2
    # the source is self-contained TVMScript: parsing it again gives an equal function
    again = source_prim_func(render_source(lowered.optimized, "llvm", "region0"))
    tvm.ir.assert_structural_equal(again, lowered.prim_func)


def test_thread_emulation_vectorizes_planned_vectors() -> None:
    sp, _ = chain_stages(lambda x, y: op.add(x, y), [(16, 64), (16, 64)])
    lowered = lower_region(sp, "region0", "llvm", hw=NVIDIA_SM90.model)
    assert lowered.kernel.strategy.vector == 4
    assert "T.vectorized(4)" in lowered.source
