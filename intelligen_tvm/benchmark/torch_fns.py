"""PyTorch versions of the suite cases and of the BERT encoder layer, as functions of torch and
the case's named dims only.

This file imports nothing but the standard library (torch is passed in), so that it can run
where neither ONNX nor this package is installed: the GPU campaign ships it next to its runner
(``intelligen_tvm/campaign``). ``torch_cases`` binds these functions to an ONNX model's weights.
Each function takes the graph inputs, then the weights named in the returned list, in order.
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable
from typing import Any


def case_fns(torch: Any, dims: dict, ln_eps: float, rms_eps: float) -> dict[str, tuple[Callable, list[str]]]:
    """Case name -> (function of graph inputs then weights, weight names in order)."""
    F = torch.nn.functional

    def ln(x, g, b):
        return F.layer_norm(x, (x.shape[-1],), g, b, ln_eps)

    def decomposed_ln(x, g, b):
        centered = x - x.mean(-1, keepdim=True)
        return centered / torch.sqrt((centered ** 2).mean(-1, keepdim=True) + ln_eps) * g + b

    def channel_shuffle(x):
        n, c, h, w = x.shape
        return x.reshape(n, dims["g"], c // dims["g"], h, w).transpose(1, 2).contiguous().reshape(x.shape)

    return {
        "softmax": (lambda x: torch.softmax(x, -1), []),
        "long_softmax": (lambda x: torch.softmax(x, -1), []),
        "attention_softmax": (lambda x, mask: torch.softmax(x * 0.125 + mask, -1), []),
        "layer_norm": (ln, ["ln_gamma", "ln_beta"]),
        "add_layer_norm": (lambda x, r, g, b: ln(x + r, g, b), ["ln_gamma", "ln_beta"]),
        "decomposed_layer_norm": (decomposed_ln, ["gamma", "beta"]),
        "rms_norm": (lambda x, w: x * torch.rsqrt((x * x).mean(-1, keepdim=True) + rms_eps) * w,
                     ["weight"]),
        "bias_gelu_erf": (lambda x, b: F.gelu(x + b), ["bias"]),
        "swiglu": (lambda a, b: F.silu(a) * b, []),
        "relu_add": (lambda x, y: torch.relu(x) + y, []),
        "bias_add": (lambda x, b: x + b, ["bias"]),
        "channel_shuffle": (channel_shuffle, []),
        "transpose_relu": (lambda x: torch.relu(x.permute(2, 0, 3, 1)).contiguous(), []),
        "attention_transpose": (lambda x: x.permute(0, 2, 1, 3).contiguous(), []),
        "mean_last": (lambda x: x.mean(-1), []),
        "sum_axis0": (lambda x: x.sum(0, keepdim=True), []),
        "bert_embedding": (lambda ids, t, pos, g, b: ln(t[ids] + pos, g, b),
                           ["word_embeddings", "position_embeddings", "ln_gamma", "ln_beta"]),
    }


def bert_layer(torch: Any, dims: dict, ln_eps: float) -> tuple[Callable, list[str]]:
    """The BERT-base encoder layer of ``suite.bert_encoder_layer``: (function, weight names)."""
    F = torch.nn.functional
    b, s, h, nh, dh = dims["b"], dims["s"], dims["h"], dims["nh"], dims["dh"]
    dense_names = ["attention.query", "attention.key", "attention.value", "attention.output",
                   "intermediate", "output"]
    names = [f"{n}.{p}" for n in dense_names for p in ("weight", "bias")]
    names += ["attention.ln_gamma", "attention.ln_beta", "output.ln_gamma", "output.ln_beta"]

    def layer(x, mask, *w):
        dense = {n: (w[2 * i], w[2 * i + 1]) for i, n in enumerate(dense_names)}
        ln1_g, ln1_b, ln2_g, ln2_b = w[12:]

        def lin(t, n):
            return t @ dense[n][0] + dense[n][1]

        def heads(t):
            return t.reshape(b, s, nh, dh).transpose(1, 2)

        q, k, v = heads(lin(x, "attention.query")), heads(lin(x, "attention.key")), heads(lin(x, "attention.value"))
        probs = torch.softmax(q @ k.transpose(-1, -2) * (1.0 / math.sqrt(dh)) + mask, -1)
        ctx = (probs @ v).transpose(1, 2).reshape(b, s, h)
        attn = F.layer_norm(lin(ctx, "attention.output") + x, (h,), ln1_g, ln1_b, ln_eps)
        inter = F.gelu(lin(attn, "intermediate"))
        return F.layer_norm(lin(inter, "output") + attn, (h,), ln2_g, ln2_b, ln_eps)

    return layer, names


def torch_fn(torch: Any, name: str, dims: dict, ln_eps: float, rms_eps: float) -> tuple[Callable, list[str]] | None:
    """``(fn, weight names)`` of a suite case or ``"bert_encoder_layer"``; None when there is none."""
    if name == "bert_encoder_layer":
        return bert_layer(torch, dims, ln_eps)
    return case_fns(torch, dims, ln_eps, rms_eps).get(name)


def covers(name: str) -> bool:
    """Whether ``name`` has a torch version (asked without torch: the functions are closures)."""
    no_torch = types.SimpleNamespace(nn=types.SimpleNamespace(functional=None))
    return name == "bert_encoder_layer" or name in case_fns(no_torch, {}, 0.0, 0.0)
