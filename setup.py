from setuptools import find_packages, setup

setup(
    name="intelligen_tvm",
    version="0.1.0",
    description="IntelliGen scheduling layer for Apache TVM: memory-intensive operators via GIR",
    packages=find_packages(include=["intelligen_tvm", "intelligen_tvm.*"]),
    # the cost models trained on real measurements (scripts/collect_cpu_records.py)
    package_data={"intelligen_tvm.cost_model": ["models/*.json"]},
    python_requires=">=3.10",
    entry_points={"console_scripts": ["intelligen-tvm = intelligen_tvm.cli:main"]},
    install_requires=[
        "apache-tvm==0.27.0.post1",
        # with tvm-ffi 0.1.15.x, TVM 0.27.0.post1's ToJSONGraph segfaults on any IntImm (its value
        # is an ffi.BigInt field); MetaSchedule serializes its task module in every TuneContext
        "apache-tvm-ffi<0.1.15",
        "numpy",
        "onnx",
        "xgboost-cpu",
    ],
    # tornado + cloudpickle: TVM's RPC tracker and server (measurement through RPC, its tests)
    # psutil: TVM MetaSchedule (the comparison's baseline); matplotlib: the comparison's plots;
    # onnxruntime: the comparison's CPU contestant (its tests run it).
    # torch is optional for scripts/compare.py and deliberately in no extra (a CUDA build is GBs).
    extras_require={
        "test": ["pytest", "tornado", "cloudpickle", "psutil", "matplotlib", "onnxruntime"],
        "rpc": ["tornado", "cloudpickle"],
        "compare": ["psutil", "matplotlib", "onnxruntime"],
    },
)
