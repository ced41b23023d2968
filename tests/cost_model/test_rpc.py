"""RPCMeasurer through a real tracker and CPU server on loopback (127.0.0.1 only)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from tvm import rpc

from tests.cost_model.kernels import vector_add, copy
from intelligen_tvm.cost_model.measure import MeasureInput
from intelligen_tvm.cost_model.rpc import RPCMeasurer

# TVM's tracker and server run in PopenWorkers (cloudpickle); the tracker needs tornado.
pytest.importorskip("tornado")
pytest.importorskip("cloudpickle")

HOST = "127.0.0.1"
KEY = "intelligen-test-cpu"
LLVM = {"kind": "llvm"}
START_TIMEOUT_S = 30.0




def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_until(check, what: str, procs: list[subprocess.Popen]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError(f"{p.args[2]} exited with {p.returncode} before {what}")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"timed out waiting for {what}")


def start(module: str, *args: str) -> subprocess.Popen:
    """Start a TVM RPC process in its own session so that its workers can be ended together."""
    return subprocess.Popen(
        [sys.executable, "-m", module, "--host", HOST, *args, "--silent"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop(proc: subprocess.Popen) -> None:
    """End the process group we started (the process and its PopenWorker children)."""
    for sig, wait_s in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait_s)
            break
        except subprocess.TimeoutExpired:
            continue


def tracker_accepts(port: int) -> bool:
    with socket.create_connection((HOST, port), timeout=1):
        return True


def server_registered(port: int) -> bool:
    tracker = rpc.connect_tracker(HOST, port)
    try:
        return tracker.summary()["queue_info"].get(KEY, {}).get("free", 0) > 0
    finally:
        tracker.close()


@pytest.fixture(scope="module")
def tracker_port(request) -> int:
    procs: list[subprocess.Popen] = []
    request.addfinalizer(lambda: [stop(p) for p in reversed(procs)])
    port = free_port()
    procs.append(start("tvm.exec.rpc_tracker", "--port", str(port), "--port-end", str(port + 1)))
    wait_until(lambda: tracker_accepts(port), "the tracker listens", procs)
    server_port = free_port()
    procs.append(
        start(
            "tvm.exec.rpc_server",
            "--port", str(server_port),
            "--port-end", str(server_port + 1),
            "--tracker", f"{HOST}:{port}",
            "--key", KEY,
        )
    )
    wait_until(lambda: server_registered(port), "the server registers", procs)
    return port


def test_measures_two_kernels_through_the_tracker(tracker_port: int):
    measurer = RPCMeasurer(HOST, tracker_port, KEY, LLVM, repeat=5, warmup=1, request_timeout_s=20)
    inputs = [
        MeasureInput.from_prim_func("vector add", vector_add(1 << 14)),
        MeasureInput.from_prim_func("copy", copy(1 << 14)),
        MeasureInput("broken", "not a prim func", [((4,), "float32")]),
    ]
    results = measurer.measure(inputs)
    assert [r.name for r in results] == ["vector add", "copy", "broken"]
    for r in results[:2]:
        assert r.error is None, r.error
        assert len(r.times_us) == 5 and all(t > 0 for t in r.times_us)
        assert r.device == f"{KEY} (cpu via rpc)"
    assert results[2].error.startswith("build:") and results[2].times_us == []


def test_session_can_be_requested_again(tracker_port: int):
    """The server goes back to the tracker's free queue after a session ends."""
    measurer = RPCMeasurer(HOST, tracker_port, KEY, LLVM, repeat=2, request_timeout_s=20)
    (result,) = measurer.measure([MeasureInput.from_prim_func("copy", copy(256))])
    assert result.ok, result.error


def test_unknown_key_times_out_into_errors(tracker_port: int):
    measurer = RPCMeasurer(HOST, tracker_port, "no-such-device", LLVM, request_timeout_s=1.5)
    start_s = time.monotonic()
    (result,) = measurer.measure([MeasureInput.from_prim_func("copy", copy(256))])
    assert time.monotonic() - start_s < 15
    assert result.error is not None and result.error.startswith("rpc:") and not result.ok
