from setuptools import find_packages, setup

setup(
    name="intelligen_tvm",
    version="0.1.0",
    description="IntelliGen scheduling layer for Apache TVM: memory-intensive operators via GIR",
    packages=find_packages(include=["intelligen_tvm", "intelligen_tvm.*"]),
    python_requires=">=3.10",
    install_requires=[
        "apache-tvm==0.27.0.post1",
        "numpy",
        "onnx",
        "xgboost-cpu",
    ],
    # tornado + cloudpickle: TVM's RPC tracker and server (measurement through RPC, its tests)
    extras_require={"test": ["pytest", "tornado", "cloudpickle"], "rpc": ["tornado", "cloudpickle"]},
)
