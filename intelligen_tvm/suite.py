"""The public benchmark suite of memory-intensive operators, kept as data.

Every case is a real ONNX model built with ``onnx.helper`` (opset 17), so that the whole path —
ONNX import, region selection, GIR, codegen — is exercised on the graphs ONNX exporters actually
emit, not on hand-written Relax. Each case has full-size shapes (the ones we report on) and small
shapes with the same structure (rank, reduction axes, permutations) so CPU tests stay fast.

Conventions: fp32 everywhere (token ids are int64); graph inputs are the activations; weights
(gamma, beta, biases, tables) are seeded initializers unless a case says otherwise. ``mean_last``
uses ``keepdims=0``; every other reduction keeps its dims (``keepdims=1``), as exporters emit them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8  # the IR version that introduced opset 17; keeps the files loadable by older tools
LN_EPS = 1e-12  # BERT's LayerNorm epsilon
RMS_EPS = 1e-6  # LLaMA's RMSNorm epsilon
MASK_VALUE = -10000.0  # additive attention mask value used by BERT exporters

Dim = int | str
Dims = Mapping[str, int]


@dataclass(frozen=True)
class InputSpec:
    """One graph input: its shape in named dims and how to draw test values for it.

    ``kind`` is ``"normal"`` (standard normal fp32), ``"mask"`` (additive attention mask: 0 or
    ``MASK_VALUE``) or ``"index"`` (int64 in ``[0, dims[high])``).
    """

    name: str
    shape: tuple[Dim, ...]
    kind: str = "normal"
    high: str | None = None

    def concrete_shape(self, dims: Dims) -> tuple[int, ...]:
        return tuple(d if isinstance(d, int) else dims[d] for d in self.shape)

    @property
    def dtype(self) -> str:
        return "int64" if self.kind == "index" else "float32"


class GraphBuilder:
    """Small helper that names intermediates and collects nodes and seeded initializers."""

    def __init__(self, seed: int = 0) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.rng = np.random.default_rng(seed)
        self._count = 0

    def _fresh(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}_{self._count}"

    def const(self, value: float | Sequence[int] | np.ndarray, name: str | None = None) -> str:
        """Add a constant initializer (python floats become fp32 scalars, int lists int64)."""
        if isinstance(value, float):
            array = np.array(value, dtype=np.float32)
        elif isinstance(value, np.ndarray):
            array = value
        else:
            array = np.array(value, dtype=np.int64)
        name = name or self._fresh("const")
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def weight(self, name: str, shape: Sequence[int], std: float = 1.0, mean: float = 0.0) -> str:
        """Add a seeded random fp32 initializer."""
        array = (mean + std * self.rng.standard_normal(tuple(shape))).astype(np.float32)
        return self.const(array, name)

    def op(self, op_type: str, *inputs: str, output: str | None = None, **attrs: object) -> str:
        """Append one node with a single output and return the output's name."""
        out = output or self._fresh(op_type.lower())
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], **attrs))
        return out

    def rename(self, old: str, new: str) -> str:
        """Rename a value everywhere (used to give graph outputs stable names)."""
        taken = {v for n in self.nodes for v in (*n.input, *n.output)}
        if new in taken and new != old:
            raise ValueError(f"name {new!r} is already used in the graph")
        for node in self.nodes:
            for values in (node.input, node.output):
                for i, value in enumerate(values):
                    if value == old:
                        values[i] = new
        return new

    def model(
        self, graph_name: str, inputs: Sequence[InputSpec], dims: Dims, outputs: Sequence[str]
    ) -> onnx.ModelProto:
        """Assemble, shape-infer and check the model."""
        elem = {"float32": TensorProto.FLOAT, "int64": TensorProto.INT64}
        graph = helper.make_graph(
            self.nodes,
            graph_name,
            [
                helper.make_tensor_value_info(s.name, elem[s.dtype], s.concrete_shape(dims))
                for s in inputs
            ],
            [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
            initializer=self.initializers,
        )
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET)],
            ir_version=IR_VERSION,
            producer_name="intelligen_tvm.suite",
        )
        # Strict shape inference fills the output shapes and fails on any ill-typed node.
        model = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
        onnx.checker.check_model(model)
        return model


GraphFn = Callable[[GraphBuilder, Dims], list[str]]


@dataclass(frozen=True)
class SuiteCase:
    """One suite entry: named dims (full and small), graph inputs, and the graph body.

    ``graph`` receives a builder whose graph inputs are named as in ``inputs`` and returns the
    names of the graph outputs (renamed ``out``, or ``out0``, ``out1``, ... when there are several).
    """

    name: str
    doc: str
    dims: Mapping[str, int]
    small_dims: Mapping[str, int]
    inputs: tuple[InputSpec, ...]
    graph: GraphFn = field(repr=False)

    def dims_for(self, small: bool = False) -> Dims:
        return self.small_dims if small else self.dims

    def build(self, small: bool = False) -> onnx.ModelProto:
        """Build the ONNX model (``small=True``: same structure, shrunk shapes)."""
        dims = self.dims_for(small)
        builder = GraphBuilder(seed=0)
        outputs = self.graph(builder, dims)
        names = ["out"] if len(outputs) == 1 else [f"out{i}" for i in range(len(outputs))]
        outputs = [builder.rename(old, new) for old, new in zip(outputs, names)]
        return builder.model(self.name, self.inputs, dims, outputs)

    def input_shapes(self, small: bool = False) -> dict[str, tuple[int, ...]]:
        dims = self.dims_for(small)
        return {s.name: s.concrete_shape(dims) for s in self.inputs}


def make_inputs_from_specs(
    specs: Sequence[InputSpec], dims: Dims, rng: np.random.Generator
) -> list[np.ndarray]:
    """Draw test values for graph inputs, in graph-input order."""
    arrays = []
    for spec in specs:
        shape = spec.concrete_shape(dims)
        if spec.kind == "index":
            assert spec.high is not None
            arrays.append(rng.integers(0, dims[spec.high], size=shape, dtype=np.int64))
        elif spec.kind == "mask":
            keep = rng.random(shape) < 0.75
            arrays.append(np.where(keep, 0.0, MASK_VALUE).astype(np.float32))
        else:
            arrays.append(rng.standard_normal(shape).astype(np.float32))
    return arrays


def make_inputs(case: SuiteCase, rng: np.random.Generator, small: bool = False) -> list[np.ndarray]:
    """Numpy inputs for ``case`` in graph-input order (token ids are in range)."""
    return make_inputs_from_specs(case.inputs, case.dims_for(small), rng)


# ----------------------------------------------------------------------------------------------
# Graph bodies. Each mirrors what exporters (torch.onnx, HF optimum) emit for the operator.


def _layer_norm(
    g: GraphBuilder, x: str, width: int, name: str = "ln", out: str | None = None
) -> str:
    gamma = g.weight(f"{name}_gamma", [width], std=0.1, mean=1.0)
    beta = g.weight(f"{name}_beta", [width], std=0.1)
    return g.op("LayerNormalization", x, gamma, beta, output=out, axis=-1, epsilon=LN_EPS)


def _gelu_erf(g: GraphBuilder, h: str) -> str:
    """GELU, erf form, as torch.onnx exports it: x * 0.5 * (1 + erf(x / sqrt(2)))."""
    e = g.op("Erf", g.op("Div", h, g.const(float(np.sqrt(2.0)))))
    return g.op("Mul", g.op("Mul", h, g.op("Add", e, g.const(1.0))), g.const(0.5))


def _softmax(g: GraphBuilder, d: Dims) -> list[str]:
    return [g.op("Softmax", "x", axis=-1)]


def _attention_softmax(g: GraphBuilder, d: Dims) -> list[str]:
    scaled = g.op("Mul", "x", g.const(0.125))
    return [g.op("Softmax", g.op("Add", scaled, "mask"), axis=-1)]


def _layer_norm_case(g: GraphBuilder, d: Dims) -> list[str]:
    return [_layer_norm(g, "x", d["n"])]


def _add_layer_norm(g: GraphBuilder, d: Dims) -> list[str]:
    return [_layer_norm(g, g.op("Add", "x", "residual"), d["n"])]


def _decomposed_layer_norm(g: GraphBuilder, d: Dims) -> list[str]:
    mean = g.op("ReduceMean", "x", axes=[-1], keepdims=1)
    centered = g.op("Sub", "x", mean)
    var = g.op("ReduceMean", g.op("Pow", centered, g.const(2.0)), axes=[-1], keepdims=1)
    std = g.op("Sqrt", g.op("Add", var, g.const(LN_EPS)))
    normed = g.op("Div", centered, std)
    gamma = g.weight("gamma", [d["n"]], std=0.1, mean=1.0)
    beta = g.weight("beta", [d["n"]], std=0.1)
    return [g.op("Add", g.op("Mul", normed, gamma), beta)]


def _rms_norm(g: GraphBuilder, d: Dims) -> list[str]:
    ms = g.op("ReduceMean", g.op("Pow", "x", g.const(2.0)), axes=[-1], keepdims=1)
    inv = g.op("Reciprocal", g.op("Sqrt", g.op("Add", ms, g.const(RMS_EPS))))
    w = g.weight("weight", [d["n"]], std=0.1, mean=1.0)
    return [g.op("Mul", g.op("Mul", "x", inv), w)]


def _bias_gelu_erf(g: GraphBuilder, d: Dims) -> list[str]:
    h = g.op("Add", "x", g.weight("bias", [d["n"]], std=0.1))
    return [_gelu_erf(g, h)]


def _swiglu(g: GraphBuilder, d: Dims) -> list[str]:
    silu = g.op("Mul", "a", g.op("Sigmoid", "a"))
    return [g.op("Mul", silu, "b")]


def _relu_add(g: GraphBuilder, d: Dims) -> list[str]:
    return [g.op("Add", g.op("Relu", "x"), "y")]


def _bias_add(g: GraphBuilder, d: Dims) -> list[str]:
    return [g.op("Add", "x", g.weight("bias", [1, d["c"], 1, 1], std=0.1))]


def _channel_shuffle(g: GraphBuilder, d: Dims) -> list[str]:
    n, groups, c, h, w = d["n"], d["g"], d["c"], d["h"], d["w"]
    split = g.op("Reshape", "x", g.const([n, groups, c, h, w]))
    swapped = g.op("Transpose", split, perm=[0, 2, 1, 3, 4])
    return [g.op("Reshape", swapped, g.const([n, groups * c, h, w]))]


def _transpose_relu(g: GraphBuilder, d: Dims) -> list[str]:
    return [g.op("Relu", g.op("Transpose", "x", perm=[2, 0, 3, 1]))]


def _attention_transpose(g: GraphBuilder, d: Dims) -> list[str]:
    return [g.op("Transpose", "x", perm=[0, 2, 1, 3])]


def _mean_last(g: GraphBuilder, d: Dims) -> list[str]:
    return [g.op("ReduceMean", "x", axes=[-1], keepdims=0)]


def _sum_axis0(g: GraphBuilder, d: Dims) -> list[str]:
    # Opset 13+ ReduceSum takes axes as an input, not an attribute.
    return [g.op("ReduceSum", "x", g.const([0]), keepdims=1)]


def _bert_embedding(g: GraphBuilder, d: Dims) -> list[str]:
    table = g.weight("word_embeddings", [d["vocab"], d["h"]], std=0.02)
    pos = g.weight("position_embeddings", [d["s"], d["h"]], std=0.02)
    words = g.op("Gather", table, "ids", axis=0)
    return [_layer_norm(g, g.op("Add", words, pos), d["h"])]


def _x(*shape: Dim) -> tuple[InputSpec, ...]:
    return (InputSpec("x", tuple(shape)),)


ROWS = {"m": 4096, "n": 1024}
SMALL_ROWS = {"m": 8, "n": 64}
HIDDEN = {"m": 4096, "n": 768}

SUITE: list[SuiteCase] = [
    SuiteCase("softmax", "softmax over the last axis", ROWS, SMALL_ROWS, _x("m", "n"), _softmax),
    SuiteCase(
        "attention_softmax",
        "softmax(scores * 0.125 + additive mask), mask broadcast over heads and queries",
        {"b": 32, "h": 12, "s": 128},
        {"b": 2, "h": 3, "s": 16},
        (InputSpec("x", ("b", "h", "s", "s")), InputSpec("mask", ("b", 1, 1, "s"), "mask")),
        _attention_softmax,
    ),
    SuiteCase(
        "layer_norm",
        "ONNX LayerNormalization (opset 17), eps 1e-12",
        HIDDEN,
        SMALL_ROWS,
        _x("m", "n"),
        _layer_norm_case,
    ),
    SuiteCase(
        "add_layer_norm",
        "LayerNormalization(x + residual); residual is a graph input",
        HIDDEN,
        SMALL_ROWS,
        (InputSpec("x", ("m", "n")), InputSpec("residual", ("m", "n"))),
        _add_layer_norm,
    ),
    SuiteCase(
        "decomposed_layer_norm",
        "layer norm as exporters decompose it: ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div, "
        "Mul, Add",
        HIDDEN,
        SMALL_ROWS,
        _x("m", "n"),
        _decomposed_layer_norm,
    ),
    SuiteCase(
        "rms_norm",
        "x * 1/sqrt(mean(x^2) + eps) * w, decomposed (Pow, ReduceMean, Add, Sqrt, Reciprocal, Mul)",
        {"m": 4096, "n": 4096},
        SMALL_ROWS,
        _x("m", "n"),
        _rms_norm,
    ),
    SuiteCase(
        "bias_gelu_erf",
        "x + b then GELU (erf form, decomposed)",
        {"m": 4096, "n": 3072},
        SMALL_ROWS,
        _x("m", "n"),
        _bias_gelu_erf,
    ),
    SuiteCase(
        "swiglu",
        "silu(a) * b; a and b are graph inputs",
        {"m": 4096, "n": 11008},
        SMALL_ROWS,
        (InputSpec("a", ("m", "n")), InputSpec("b", ("m", "n"))),
        _swiglu,
    ),
    SuiteCase(
        "relu_add",
        "relu(x) + y; y is a graph input",
        {"n": 1, "c": 64, "h": 512, "w": 512},
        {"n": 1, "c": 4, "h": 16, "w": 16},
        (InputSpec("x", ("n", "c", "h", "w")), InputSpec("y", ("n", "c", "h", "w"))),
        _relu_add,
    ),
    SuiteCase(
        "bias_add",
        "x + b with b[1, C, 1, 1] (per-channel broadcast)",
        {"n": 32, "c": 116, "h": 28, "w": 28},
        {"n": 2, "c": 12, "h": 7, "w": 7},
        _x("n", "c", "h", "w"),
        _bias_add,
    ),
    SuiteCase(
        "channel_shuffle",
        "ShuffleNet channel shuffle: Reshape to groups, Transpose(0,2,1,3,4), Reshape back",
        {"n": 32, "g": 2, "c": 116, "gc": 232, "h": 28, "w": 28},
        {"n": 2, "g": 2, "c": 6, "gc": 12, "h": 7, "w": 7},
        (InputSpec("x", ("n", "gc", "h", "w")),),
        _channel_shuffle,
    ),
    SuiteCase(
        "transpose_relu",
        "Transpose perm (2,0,3,1) then Relu; odd extents on purpose",
        {"a": 32, "b": 31, "c": 33, "d": 32},
        {"a": 4, "b": 7, "c": 9, "d": 8},
        _x("a", "b", "c", "d"),
        _transpose_relu,
    ),
    SuiteCase(
        "attention_transpose",
        "[batch, seq, heads, head_dim] -> perm (0,2,1,3)",
        {"b": 32, "s": 128, "h": 12, "d": 64},
        {"b": 2, "s": 16, "h": 4, "d": 8},
        _x("b", "s", "h", "d"),
        _attention_transpose,
    ),
    SuiteCase(
        "mean_last",
        "ReduceMean over the last axis, keepdims=0",
        {"b": 1, "s": 128, "n": 512},
        {"b": 1, "s": 16, "n": 64},
        _x("b", "s", "n"),
        _mean_last,
    ),
    SuiteCase(
        "sum_axis0",
        "ReduceSum over axis 0 (a column reduction), keepdims=1",
        ROWS,
        SMALL_ROWS,
        _x("m", "n"),
        _sum_axis0,
    ),
    SuiteCase(
        "bert_embedding",
        "LayerNorm(Gather(word table, ids) + position table); tables are initializers",
        {"vocab": 30522, "b": 32, "s": 128, "h": 768},
        {"vocab": 100, "b": 2, "s": 16, "h": 64},
        (InputSpec("ids", ("b", "s"), "index", high="vocab"),),
        _bert_embedding,
    ),
    SuiteCase(
        "long_softmax",
        "softmax over long rows (32768): a row does not fit in one warp's registers",
        {"m": 256, "n": 32768},
        {"m": 4, "n": 256},
        _x("m", "n"),
        _softmax,
    ),
]


def get_case(name: str) -> SuiteCase:
    """Look a case up by name."""
    for case in SUITE:
        if case.name == name:
            return case
    raise KeyError(f"no suite case {name!r}; have {[c.name for c in SUITE]}")


# ----------------------------------------------------------------------------------------------
# The end-to-end model: one BERT-base encoder layer.


def _bert_dims(seq: int, batch: int, hidden: int, heads: int, ffn: int, small: bool) -> Dims:
    if small:
        seq, hidden, heads, ffn = min(seq, 16), min(hidden, 64), min(heads, 4), min(ffn, 128)
    if hidden % heads:
        raise ValueError(f"hidden ({hidden}) must be a multiple of heads ({heads})")
    return {"b": batch, "s": seq, "h": hidden, "nh": heads, "dh": hidden // heads, "f": ffn}


def bert_encoder_input_specs() -> tuple[InputSpec, ...]:
    """Graph inputs of :func:`bert_encoder_layer`, in named dims (see :func:`bert_encoder_dims`)."""
    return (
        InputSpec("hidden_states", ("b", "s", "h")),
        InputSpec("attention_mask", ("b", 1, 1, "s"), "mask"),
    )


def bert_encoder_dims(
    seq: int = 128,
    batch: int = 1,
    hidden: int = 768,
    heads: int = 12,
    ffn: int = 3072,
    small: bool = False,
) -> Dims:
    """Named dims of the encoder layer (``small`` shrinks seq/hidden/heads/ffn to 16/64/4/128)."""
    return _bert_dims(seq, batch, hidden, heads, ffn, small)


def bert_encoder_layer(
    seq: int = 128,
    batch: int = 1,
    hidden: int = 768,
    heads: int = 12,
    ffn: int = 3072,
    small: bool = False,
    dynamic: bool = False,
) -> onnx.ModelProto:
    """One BERT-base encoder layer with seeded random weights, as HF/torch.onnx export it.

    Memory-intensive work between the matmuls (bias adds, head transposes, scaled masked softmax,
    residual + LayerNorm, bias + GELU) is exactly what the IntelliGen layer should take; the
    MatMuls stay with TVM. Inputs: hidden_states [batch, seq, hidden] and an additive
    attention_mask [batch, 1, 1, seq].  With ``dynamic`` batch and seq are the dim_params
    "batch" and "seq" (as torch.onnx exports with dynamic_axes) and the reshapes copy them (0).
    """
    d = _bert_dims(seq, batch, hidden, heads, ffn, small)
    b, s, h, nh, dh, f = d["b"], d["s"], d["h"], d["nh"], d["dh"], d["f"]
    g = GraphBuilder(seed=0)
    x = "hidden_states"

    def dense(inp: str, n_in: int, n_out: int, name: str) -> str:
        w = g.weight(f"{name}.weight", [n_in, n_out], std=0.02)
        bias = g.weight(f"{name}.bias", [n_out], std=0.02)
        return g.op("Add", g.op("MatMul", inp, w), bias)

    b_s = [0, 0] if dynamic else [b, s]

    def heads_of(t: str, perm: list[int]) -> str:
        return g.op("Transpose", g.op("Reshape", t, g.const([*b_s, nh, dh])), perm=perm)

    q = heads_of(dense(x, h, h, "attention.query"), [0, 2, 1, 3])  # [b, nh, s, dh]
    k = heads_of(dense(x, h, h, "attention.key"), [0, 2, 3, 1])  # [b, nh, dh, s]
    v = heads_of(dense(x, h, h, "attention.value"), [0, 2, 1, 3])  # [b, nh, s, dh]
    scores = g.op("Mul", g.op("MatMul", q, k), g.const(float(1.0 / np.sqrt(dh))))
    probs = g.op("Softmax", g.op("Add", scores, "attention_mask"), axis=-1)
    ctx = g.op("Transpose", g.op("MatMul", probs, v), perm=[0, 2, 1, 3])  # [b, s, nh, dh]
    ctx = g.op("Reshape", ctx, g.const([*b_s, h]))
    attn = _layer_norm(g, g.op("Add", dense(ctx, h, h, "attention.output"), x), h, "attention.ln")
    inter = _gelu_erf(g, dense(attn, h, f, "intermediate"))
    out = _layer_norm(
        g, g.op("Add", dense(inter, f, h, "output"), attn), h, "output.ln", "last_hidden_state"
    )
    return g.model("bert_encoder_layer", bert_encoder_input_specs(), d | {"b": "batch", "s": "seq"} if dynamic else d, [out])
