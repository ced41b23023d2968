"""intelligen_tvm: IntelliGen (GIR + instruction-level dataflow graph) for Apache TVM.

`import intelligen_tvm` registers the relax pipeline "intelligen", so that
`tvm.compile(mod, target, relax_pipeline="intelligen")` works for cuda and llvm targets.
"""

from .frontend import from_onnx, from_torch
from .relax_integration import explain, register
from .tuning import pipeline, tune

register()

__all__ = ["explain", "from_onnx", "from_torch", "pipeline", "tune"]
