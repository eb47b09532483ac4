"""capsules/ship.py: kernels, modules and LowLevelCallables pickle, in this process and into fresh ones."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import pickle
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from scipy import LowLevelCallable, integrate, ndimage

import capsules
from capsules import ship

pytestmark = pytest.mark.compile

ROOT = Path(__file__).resolve().parent.parent
USER_DATA = [1.3, 0.6, 0.35, 0.7]  # a_1, a_2, u_1, u_2

# Runs in a fresh interpreter: unpickle a callable, integrate it, and say how its module arrived.
RECEIVER = """
import json, pickle, sys
from scipy import integrate
from capsules import ship
llc = pickle.loads(open(sys.argv[1], "rb").read())
value = integrate.nquad(llc, [[0, 1]] * int(sys.argv[2]))[0]
module = llc.kernel.module
print(json.dumps({"value": value, "how": list(ship.HOW.values()), "path": str(module.path),
                  "python_source": str(llc.kernel.py.__code__.co_filename), "type": type(llc).__mro__[1].__name__}))
"""


def receive_in_fresh_process(payload: bytes, tmp_path: Path, dims: int) -> dict:
    """Unpickle ``payload`` in a new interpreter whose cache (CAPSULES_CACHE) is empty."""
    (tmp_path / "llc.pickle").write_bytes(payload)
    cache = tmp_path / "empty-cache"
    env = {**os.environ, "CAPSULES_CACHE": str(cache)}
    done = subprocess.run(
        [sys.executable, "-c", RECEIVER, str(tmp_path / "llc.pickle"), str(dims)],
        env=env, capture_output=True, text=True, check=False, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def genz(load_kernel: Callable[[str], capsules.KernelModule]) -> capsules.KernelModule:
    return load_kernel("genz")


def test_round_trip_in_process_gives_the_same_objects(genz: capsules.KernelModule) -> None:
    assert pickle.loads(pickle.dumps(genz)) is genz
    assert pickle.loads(pickle.dumps(genz.gaussian)) is genz.gaussian
    llc = genz.gaussian.lowlevel(USER_DATA)
    back = pickle.loads(pickle.dumps(llc))
    assert isinstance(back, LowLevelCallable)
    assert back.kernel is genz.gaussian
    assert back.user_data_array.dtype == np.float64 and not back.user_data_array.flags.writeable
    np.testing.assert_array_equal(back.user_data_array, USER_DATA)
    assert back.signature == llc.signature
    assert integrate.nquad(back, [[0, 1]] * 2)[0] == integrate.nquad(llc, [[0, 1]] * 2)[0]


def test_callable_without_user_data_round_trips(load_kernel: Callable[[str], capsules.KernelModule]) -> None:
    filters = load_kernel("filters")
    image = np.random.default_rng(0).random((12, 10))
    llc = pickle.loads(pickle.dumps(filters.local_range.lowlevel()))
    assert llc.user_data is None
    expected = ndimage.generic_filter(image, np.ptp, size=3)
    np.testing.assert_array_equal(ndimage.generic_filter(image, llc, size=3), expected)


def test_pickle_carries_source_binary_and_key(genz: capsules.KernelModule) -> None:
    shipment = ship.pack(genz)
    assert shipment.key == genz.key
    assert shipment.binaries == {"native": genz.entry.binary.read_bytes()}
    assert shipment.source == (ROOT / "kernels" / "genz.py").read_bytes()
    assert not shipment.portable
    assert ship.pack(genz) is shipment  # read once per process
    assert len(pickle.dumps(genz.gaussian.lowlevel(USER_DATA))) < len(shipment.binaries["native"]) + 32_000


def test_a_damaged_binary_or_foreign_source_is_refused(genz: capsules.KernelModule) -> None:
    shipment = ship.pack(genz)
    assert ship._binary_ok(shipment)
    binary = shipment.binaries["native"]
    damaged = binary[:-1] + bytes([binary[-1] ^ 1])
    assert not ship._binary_ok(dataclasses.replace(shipment, binaries={"native": damaged}))
    assert not ship._binary_ok(dataclasses.replace(shipment, binaries={}))
    with pytest.raises(capsules.CacheError, match="does not match"):
        dataclasses.replace(shipment, source=shipment.source + b"\n")


def test_runtime_inputs_decide_whether_a_binary_suits() -> None:
    here = {name: f"value of {name}" for name in ship.RUNTIME_INPUTS} | {"pythran": "0.18", "toolchain": "g++"}
    assert ship._suits(here, {**here, "pythran": "0.19", "toolchain": "clang++"})
    for name in ship.RUNTIME_INPUTS:
        assert not ship._suits(here, {**here, name: "other"}), name


def test_fresh_process_with_empty_cache_loads_the_carried_binary(
    load_kernel_file: Callable[[Path], capsules.KernelModule], tmp_path: Path
) -> None:
    # the sender's file is gone in the receiver: Kernel.py falls back to the copy in its cache
    copy = tmp_path / "sender" / "genz.py"
    copy.parent.mkdir()
    shutil.copy(ROOT / "kernels" / "genz.py", copy)
    llc = load_kernel_file(copy).gaussian.lowlevel(USER_DATA)
    payload = pickle.dumps(llc)
    shutil.rmtree(copy.parent)
    got = receive_in_fresh_process(payload, tmp_path, dims=2)
    assert got["how"] == ["binary"]
    assert got["type"] == "LowLevelCallable"
    assert got["value"] == integrate.nquad(llc, [[0, 1]] * 2)[0]
    assert Path(got["path"]).name == "genz.py" and (tmp_path / "empty-cache") in Path(got["path"]).parents
    assert got["python_source"] == got["path"]


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda s: dataclasses.replace(s, binaries={}), id="binary-stripped"),
        pytest.param(
            lambda s: dataclasses.replace(s, entry={**s.entry, "inputs": {**s.inputs, "numpy": "0.0"}}),
            id="other-numpy",
        ),
    ],
)
def test_fresh_process_rebuilds_from_the_carried_source(
    load_kernel: Callable[[str], capsules.KernelModule],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    forge: Callable[[ship.Shipment], ship.Shipment],
) -> None:
    integrands = load_kernel("integrands")
    llc = integrands.f.lowlevel([1.0])
    real_pack = ship.pack
    monkeypatch.setattr(ship, "pack", lambda module: forge(real_pack(module)))
    got = receive_in_fresh_process(pickle.dumps(llc), tmp_path, dims=3)
    assert got["how"] == ["built"]
    assert got["value"] == integrate.nquad(llc, [[0, 1]] * 3)[0]


def test_process_pool_sweep_equals_the_serial_loop(genz: capsules.KernelModule, tmp_path: Path) -> None:
    grid = [[a1, a2, u1, 0.5] for a1 in (0.5, 1.0, 2.0, 4.0) for a2 in (0.5, 3.0) for u1 in (0.2, 0.8)]
    callables = [genz.product_peak.lowlevel(p) for p in grid]
    integrate_2d = partial(integrate.nquad, ranges=[[0, 1]] * 2)
    serial = [integrate_2d(llc) for llc in callables]
    cache = tmp_path / "worker-cache"
    cache.mkdir(mode=0o700)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CAPSULES_CACHE", str(cache))  # spawned workers inherit it: they start from an empty cache
        with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
            parallel = list(pool.map(integrate_2d, callables))
    assert parallel == serial
    assert any(cache.glob(f"v1/{genz.key}/*.so"))  # the carried binary, published once by the first worker


@pytest.mark.compile
@pytest.mark.parametrize(
    "text",
    [
        "#pythran export capsule f(int32, float64*)\ndef f(n, x):\n    return x[0] + 1.0\n",
        "#capsules integrand f(x)\ndef f(x):\n    return x + 1.0\n",
    ],
    ids=["raw", "natural"],
)
def test_a_module_pickles_after_its_file_is_edited(tmp_path, text):
    path = tmp_path / "edited.py"
    path.write_text(text)
    mod = capsules.load(path, cache=tmp_path / "cache")
    path.write_text(text.replace("1.0", "2.0"))  # edited after the build
    shipment = ship.pack(mod)
    assert shipment.source == text.encode()  # the bytes it was built from, not the edited file
    assert pickle.loads(pickle.dumps(mod)) is mod
