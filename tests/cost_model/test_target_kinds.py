"""One reading of a target argument for every layer: TVM targets, external kinds, devices."""

from __future__ import annotations

import pytest
import tvm

from intelligen_tvm import targets
from intelligen_tvm.cost_model import measure
from intelligen_tvm.cost_model.target_kinds import as_target, device_kind, target_kind
from intelligen_tvm.testing import device_for


def test_targets_from_names_dicts_and_targets() -> None:
    llvm = tvm.target.Target("llvm")
    assert as_target(llvm) is llvm
    assert as_target({"kind": "rocm", "mcpu": "gfx942"}).kind.name == "rocm"
    assert target_kind("cuda") == "cuda"


def test_an_external_kind_stays_a_name_and_has_no_device() -> None:
    assert as_target("bang") == "bang" and target_kind("bang") == "bang"
    with pytest.raises(ValueError, match="no runtime device for target kind 'bang'"):
        device_kind("bang")


def test_every_layer_reads_targets_and_devices_the_same_way() -> None:
    assert targets.as_target is as_target and measure.as_target is as_target
    assert device_kind({"kind": "rocm", "mcpu": "gfx942"}) == "rocm" and device_kind("c") == "cpu"
    assert device_for(tvm.target.Target("llvm")) == tvm.cpu(0)
