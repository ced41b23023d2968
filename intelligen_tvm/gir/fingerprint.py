"""Structural fingerprints: a digest of the IR objects themselves, never of printed text.

Records of measured candidates are keyed by the fingerprint of their region (see
cost_model/records.py), so it must change when the region's meaning changes and only
then: a printer change (`Program.text`, a renderer) leaves it as it was.  The digest walks
the frozen IR values field by field (type and field names included, so a new field or
instruction type changes it); the names that depend on where the region came from are
replaced: its input and output tensors by their roles (in0, in1, ..., out0, ...), its other
tensors (b2, b3, ...) and its values (v0, v1, ...) by their order of first use, so the twelve layers of an
encoder, whose regions differ only in those names, share one fingerprint, one plan and one set
of records.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from enum import Enum

from .program import Buffer, Kernel, Program



def structural_digest(obj: object, buffer_names: Mapping[str, str] | None = None,
                      value_names: Mapping[str, str] | None = None) -> str:
    """Hex sha256 of `obj`'s structure.  Where a field names a buffer (a buffer's own name, a
    slice's or a gather's buffer) a name found in `buffer_names` is replaced by its mapping;
    any string found in `value_names` is replaced by its mapping (value and tensor names
    appear in instruction fields, expressions and map keys alike); other names (axes) are kept."""
    h = hashlib.sha256()
    _feed(h, obj, buffer_names or {}, value_names or {})
    return h.hexdigest()


def region_fingerprint(kernel: Kernel, shell: Program) -> str:
    """Identity of a rewritten region independent of its tensor and kernel names: records
    of one region measured in one model serve the same region in another."""
    tensors = {name: f"in{i}" for i, name in enumerate(shell.inputs)}
    tensors |= {name: f"out{i}" for i, name in enumerate(shell.outputs)}
    used_tensors, used_values = _names_used(kernel.instrs)
    for name in [*used_tensors, *sorted(kernel.local_buffers)]:
        tensors.setdefault(name, f"b{len(tensors)}")
    values: dict[str, str] = {}
    for name in [*used_values, *sorted(kernel.values)]:
        values.setdefault(name, f"v{len(values)}")
    buffers = tuple(shell.buffers[name] for name in (*shell.inputs, *shell.outputs))
    body = {f.name: getattr(kernel, f.name) for f in dataclasses.fields(kernel) if f.name != "name"}
    return structural_digest((buffers, body), tensors, values)[:16]


# Fields that name a value (instructions, expressions) or a tensor (slices, gathers); axis
# names, operators and dtypes are meaning and stay.
_VALUE_FIELDS = frozenset({"dst", "src", "args", "shift", "value"})


def _names_used(obj: object) -> tuple[list[str], list[str]]:
    """The tensor names and the value names `obj` mentions, each in the order of one
    depth-first walk."""
    found: dict[str | None, list[str]] = {"tensor": [], "value": [], None: []}

    def walk(node: object, naming: str | None) -> None:
        if isinstance(node, str):
            found[naming].append(node)
        elif dataclasses.is_dataclass(node) and not isinstance(node, type):
            for f in dataclasses.fields(node):
                role = "tensor" if f.name == "buffer" else "value" if f.name in _VALUE_FIELDS else None
                walk(getattr(node, f.name), role)
        elif isinstance(node, (tuple, list)):
            for item in node:
                walk(item, naming)

    walk(obj, None)
    return found["tensor"], found["value"]


def _feed(h, obj: object, buffers: Mapping[str, str], values: Mapping[str, str]) -> None:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        kind = type(obj)
        h.update(b"D" + kind.__name__.encode())
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            h.update(b"." + f.name.encode())
            if isinstance(value, str) and (f.name == "buffer" or (kind is Buffer and f.name == "name")):
                _feed_str(h, buffers.get(value, value))   # a slice's or a gather's buffer, a buffer's own name
            else:
                _feed(h, value, buffers, values)
    elif isinstance(obj, Enum):
        h.update(b"E" + type(obj).__name__.encode() + b":" + str(obj.value).encode())
    elif isinstance(obj, str):
        _feed_str(h, values.get(obj, obj))
    elif obj is None or isinstance(obj, (bool, int, float)):
        h.update(b"V" + type(obj).__name__.encode() + b":" + repr(obj).encode())
    elif isinstance(obj, (tuple, list)):
        h.update(b"L%d" % len(obj))
        for item in obj:
            _feed(h, item, buffers, values)
    elif isinstance(obj, (set, frozenset)):
        h.update(b"F%d" % len(obj))
        for item in sorted(obj, key=lambda x: repr(values.get(x, x) if isinstance(x, str) else x)):
            _feed(h, item, buffers, values)
    elif isinstance(obj, Mapping):
        h.update(b"M%d" % len(obj))
        for key in sorted(obj, key=lambda k: repr(values.get(k, k) if isinstance(k, str) else k)):
            _feed(h, key, buffers, values)
            _feed(h, obj[key], buffers, values)
    else:
        raise TypeError(f"no structural digest for {type(obj).__name__}")


def _feed_str(h, text: str) -> None:
    h.update(b"S%d:" % len(text) + text.encode())
