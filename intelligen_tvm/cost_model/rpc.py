"""Measure candidates on a device behind TVM's RPC tracker.

Candidates are built and exported here, uploaded to a server registered with the tracker under
``key``, loaded and timed there with the same settings as ``LocalMeasurer``. Set up the device
side with ``python -m tvm.exec.rpc_tracker`` (needs the ``tornado`` and ``cloudpickle``
packages) and ``python -m tvm.exec.rpc_server --tracker HOST:PORT --key KEY``.

For a remote machine whose CPU differs from this one, give the target a matching ``host``.
"""

from __future__ import annotations

import os
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tvm
from tvm import rpc

from . import bundle_runner as _rt
from .measure import MeasureInput, MeasureResult, MeasureSettings, device_kind, export, symbol_name


@dataclass
class RPCMeasurer(MeasureSettings):
    """Times candidates on the device of one RPC session requested from the tracker."""

    tracker_host: str
    tracker_port: int
    key: str
    target: Any
    priority: int = 1
    request_timeout_s: float = 60.0  # waiting for a free server
    session_timeout_s: int = 600  # the server ends a longer session (e.g. a hung kernel)


    def measure(self, inputs: list[MeasureInput]) -> list[MeasureResult]:
        """One result per input, in order; a session failure marks every candidate."""
        with tempfile.TemporaryDirectory(prefix="ig_rpc_") as tmp:
            libs: list[Path | str] = []
            for index, inp in enumerate(inputs):
                path = Path(tmp) / f"ig_{os.getpid()}_{index}.so"
                try:
                    export(inp, self.target, path)
                    libs.append(path)
                except Exception as err:  # pylint: disable=broad-except
                    libs.append(_rt.error_text("build", err))
            try:
                remote = self._session()
                dev = remote.device(device_kind(self.target), 0)
                if not dev.exist:
                    raise RuntimeError(f"the server for {self.key!r} has no {dev}")
                dev_name = self._device_name(dev)
            except Exception as err:  # pylint: disable=broad-except
                message = _rt.error_text("rpc", err)
                return [MeasureResult(i.name, [], message, f"rpc:{self.key}") for i in inputs]
            return [
                self._measure_one(remote, dev, dev_name, inp, lib) for inp, lib in zip(inputs, libs)
            ]

    def _session(self) -> Any:
        """Request a session, failing after ``request_timeout_s`` instead of waiting forever."""
        tracker = rpc.connect_tracker(self.tracker_host, self.tracker_port)
        sock = getattr(tracker, "_sock", None)
        if isinstance(sock, socket.socket):
            sock.settimeout(self.request_timeout_s)
        try:
            return tracker.request(
                self.key,
                priority=self.priority,
                session_timeout=self.session_timeout_s,
                max_retry=1,
            )
        finally:
            tracker.close()

    def _device_name(self, dev: Any) -> str:
        """GPU name as the remote reports it; TVM's RPC has no call for a CPU's model, so a
        remote CPU is named by its tracker key."""
        return _rt.device_name(dev) if not _rt.is_cpu(dev) else f"{self.key} (cpu via rpc)"

    def _measure_one(
        self, remote: Any, dev: Any, dev_name: str, inp: MeasureInput, lib: Path | str
    ) -> MeasureResult:
        if isinstance(lib, str):  # the build error
            return MeasureResult(inp.name, [], lib, dev_name)
        stage = "upload"
        try:
            remote.upload(str(lib))
            stage = "load"
            module = remote.load_module(lib.name)
            stage = "run"
            args = _rt.make_args(tvm.runtime, inp.arg_specs, dev, seed=self.seed)
            times = self.time(module, symbol_name(inp.name), dev, args)
        except Exception as err:  # pylint: disable=broad-except
            return MeasureResult(inp.name, [], _rt.error_text(stage, err), dev_name)
        finally:
            try:
                remote.remove(lib.name)
            except Exception:  # pylint: disable=broad-except
                pass
        return MeasureResult(inp.name, times, None, dev_name)
