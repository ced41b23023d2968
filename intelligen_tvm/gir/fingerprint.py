"""Structural fingerprints: a digest of the IR objects themselves, never of printed text.

Records of measured candidates are keyed by the fingerprint of their region (see
cost_model/records.py), so it must change when the region's meaning changes and only
then: a printer change (`Program.text`, a renderer) leaves it as it was.  The digest walks
the frozen IR values field by field (type and field names included, so a new field or
instruction type changes it); the region's tensor names, which depend on the model the
region came from, are replaced by their roles (in0, in1, ..., out0, ...).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from enum import Enum

from .program import Buffer, Kernel, Program



def structural_digest(obj: object, buffer_names: Mapping[str, str] | None = None) -> str:
    """Hex sha256 of `obj`'s structure.  Where a field names a buffer (a buffer's own name, a
    slice's or a gather's buffer) a name found in `buffer_names` is replaced by its mapping,
    so two models' copies of one region agree; other names (values, axes) are the region's own."""
    h = hashlib.sha256()
    _feed(h, obj, buffer_names or {})
    return h.hexdigest()


def region_fingerprint(kernel: Kernel, shell: Program) -> str:
    """Identity of a rewritten region independent of its tensor and kernel names: records
    of one region measured in one model serve the same region in another."""
    roles = {name: f"in{i}" for i, name in enumerate(shell.inputs)}
    roles |= {name: f"out{i}" for i, name in enumerate(shell.outputs)}
    buffers = tuple(shell.buffers[name] for name in (*shell.inputs, *shell.outputs))
    body = {f.name: getattr(kernel, f.name) for f in dataclasses.fields(kernel) if f.name != "name"}
    return structural_digest((buffers, body), roles)[:16]


def _feed(h, obj: object, names: Mapping[str, str]) -> None:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        kind = type(obj)
        h.update(b"D" + kind.__name__.encode())
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            h.update(b"." + f.name.encode())
            if isinstance(value, str) and (f.name == "buffer" or (kind is Buffer and f.name == "name")):
                value = names.get(value, value)   # a slice's or a gather's buffer, a buffer's own name
            _feed(h, value, names)
    elif isinstance(obj, Enum):
        h.update(b"E" + type(obj).__name__.encode() + b":" + str(obj.value).encode())
    elif isinstance(obj, str):
        h.update(b"S%d:" % len(obj) + obj.encode())
    elif obj is None or isinstance(obj, (bool, int, float)):
        h.update(b"V" + type(obj).__name__.encode() + b":" + repr(obj).encode())
    elif isinstance(obj, (tuple, list)):
        h.update(b"L%d" % len(obj))
        for item in obj:
            _feed(h, item, names)
    elif isinstance(obj, (set, frozenset)):
        h.update(b"F%d" % len(obj))
        for item in sorted(obj, key=repr):
            _feed(h, item, names)
    elif isinstance(obj, Mapping):
        h.update(b"M%d" % len(obj))
        for key in sorted(obj, key=repr):
            _feed(h, key, names)
            _feed(h, obj[key], names)
    else:
        raise TypeError(f"no structural digest for {type(obj).__name__}")
