"""Bundle pieces built here: weights made inputs compute the same model; the runtime-only TVM
holds the runtime, tvm_ffi for the device's Python and libcudart, and no compiler."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import tvm
from onnx import numpy_helper

from intelligen_tvm import suite
from intelligen_tvm.benchmark import timing
from intelligen_tvm.campaign import build, runner, runtime_pack
from intelligen_tvm.testing import device_sources, reference_outputs


def test_externalized_weights_compute_the_same_model():
    model = suite.get_case("add_layer_norm").build(small=True)
    ext, weights = build.externalize_weights(model)
    assert [w["name"] for w in weights] == ["ln_gamma", "ln_beta"]
    assert {i.name for i in ext.graph.initializer} == {i.name for i in model.graph.initializer} - {"ln_gamma", "ln_beta"}
    case = build.case_models(small=True, names=["add_layer_norm"])[0]
    inputs = [runner.make_array(s, i) for i, s in enumerate(case.inputs, start=1)]
    originals = {i.name: i for i in model.graph.initializer}
    fed = inputs + [numpy_helper.to_array(originals[w["name"]]) for w in weights]
    np.testing.assert_allclose(reference_outputs(ext, fed)[0], reference_outputs(model, inputs)[0], rtol=1e-6)


def test_bert_weights_are_inputs_and_int_shapes_stay_constants():
    case = build.case_models(small=True, names=[build.BERT])[0]
    ext, weights = build.externalize_weights(case.model)
    assert len(weights) == 16  # 6 dense layers x (weight, bias) + 2 LayerNorms x (gamma, beta)
    kept = [numpy_helper.to_array(i) for i in ext.graph.initializer]
    assert kept and all(a.dtype != np.float32 or a.size <= 1 for a in kept)


def test_runtime_only_tvm_for_cuda(tmp_path):
    info = runtime_pack.stage_runtime(tmp_path, "cuda")
    names = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    assert {"tvm/lib/libtvm_runtime.so", "tvm/lib/libtvm_runtime_cuda.so", "tvm_ffi/lib/libtvm_ffi.so",
            "typing_extensions.py", "tvm/runtime/module.py"} <= names
    assert not any("compiler" in n or n.startswith("tvm/relax") for n in names)
    # the device's Python (3.12) and libcudart.so.13 come from wheels: present, or said missing
    cp312 = "tvm_ffi/core.cpython-312-x86_64-linux-gnu.so" in names
    assert cp312 or any("3.12" in m for m in info["missing"])
    assert f"{runner.CUDART_DIR}/libcudart.so.13" in names or any("libcudart" in m for m in info["missing"])
    assert info["bytes"] < 20 << 20


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not on PATH")
def test_cuda_sources_are_precompiled_under_the_key_the_device_will_ask_for(tmp_path):
    """The device's runtime hands the source stored in the library to tvm_callback_cuda_compile;
    its hash names the fatbin the build made (a fatbin: SASS for sm_90 and PTX)."""
    executable = tvm.compile(timing.copy_kernel_module(1024), target=tvm.target.Target(build.TARGETS["cuda"]),
                             relax_pipeline="default")
    (tmp_path / runner.CUDA_DIR).mkdir()
    cuda = build.CudaSources(tmp_path / runner.CUDA_DIR)
    cuda(executable)
    (source,) = device_sources(executable, "cuda")
    assert source.encode() in build.serialized(executable.mod)
    fatbin = tmp_path / runner.CUDA_DIR / f"{runner.source_key(source)}.fatbin"
    assert fatbin.read_bytes()[:4] == bytes.fromhex("50ed55ba") and cuda.count == 1
    compiler = runner.CudaCompiler(tmp_path, "sm_90")
    assert compiler(source) == fatbin.read_bytes() and compiler.stats["precompiled"] == 1
