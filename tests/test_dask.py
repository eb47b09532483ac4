"""A parameter sweep and chunked-image filters through a Dask LocalCluster of worker processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from scipy import integrate, ndimage

import capsules

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.compile


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[distributed.Client]:
    """Two single-threaded worker processes on loopback, each starting from an empty cache."""
    cache = tmp_path_factory.mktemp("worker-cache")
    cache.chmod(0o700)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CAPSULES_CACHE", str(cache))  # the nannies' worker processes inherit it
        with distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=":0"
        ) as cluster, distributed.Client(cluster) as client:
            yield client


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return np.random.default_rng(7).random((96, 80))


def test_sweep_equals_the_serial_loop(
    client: distributed.Client, load_kernel: Callable[[str], capsules.KernelModule]
) -> None:
    genz = load_kernel("genz")
    grid = [[a1, a2, u1, u2] for a1 in (0.5, 2.0, 5.0) for a2 in (1.0, 4.0) for u1 in (0.1, 0.6) for u2 in (0.3, 0.9)]
    integrate_2d = partial(integrate.nquad, ranges=[[0, 1]] * 2)
    callables = [genz.gaussian.lowlevel(p) for p in grid]
    serial = [integrate_2d(llc) for llc in callables]
    futures = client.map(integrate_2d, callables, pure=False)
    assert client.gather(futures) == serial


@pytest.mark.parametrize("depth", [2, 3])
def test_chunked_filter_is_exact_with_enough_overlap(
    client: distributed.Client, load_kernel: Callable[[str], capsules.KernelModule], image: np.ndarray, depth: int
) -> None:
    llc = load_kernel("filters").local_variance.lowlevel()
    expected = ndimage.generic_filter(image, llc, size=5)
    chunked = da.from_array(image, chunks=(40, 32))
    # boundary="none": the outer edges get ndimage's own mode, as in the whole image
    result = chunked.map_overlap(ndimage.generic_filter, depth=depth, boundary="none", function=llc, size=5)
    np.testing.assert_array_equal(result.compute(), expected)


def test_chunked_filter_without_overlap_differs_only_at_the_seams(
    client: distributed.Client, load_kernel: Callable[[str], capsules.KernelModule], image: np.ndarray
) -> None:
    llc = load_kernel("filters").local_variance.lowlevel()
    expected = ndimage.generic_filter(image, llc, size=5)
    result = da.from_array(image, chunks=(40, 32)).map_blocks(ndimage.generic_filter, function=llc, size=5).compute()
    seams = np.zeros(image.shape, bool)
    for axis, step in ((0, 40), (1, 32)):
        for edge in range(step, image.shape[axis], step):
            index = [slice(None)] * 2
            index[axis] = slice(edge - 2, edge + 2)
            seams[tuple(index)] = True
    np.testing.assert_array_equal(result[~seams], expected[~seams])
    assert not np.array_equal(result[seams], expected[seams])


def test_chunked_mapping_is_exact_with_enough_overlap(
    client: distributed.Client, load_kernel: Callable[[str], capsules.KernelModule], image: np.ndarray
) -> None:
    # a shift by exactly representable amounts: chunk-local coordinates interpolate bit for bit alike
    llc = load_kernel("transforms").shift.lowlevel([2, 1.5, -0.75])
    expected = ndimage.geometric_transform(image, llc, order=1)
    chunked = da.from_array(image, chunks=(40, 32))
    result = chunked.map_overlap(ndimage.geometric_transform, depth=3, boundary="none", mapping=llc, order=1)
    np.testing.assert_array_equal(result.compute(), expected)
    np.testing.assert_array_equal(expected, ndimage.shift(image, (1.5, -0.75), order=1))


def test_workers_received_the_carried_binaries(client: distributed.Client) -> None:
    def how() -> list[str]:
        from capsules import ship

        return sorted(set(ship.HOW.values()))

    received = set().union(*client.run(how).values())
    assert received and received <= {"binary", "cache"}  # never rebuilt: the binary suits these workers


def test_worker_cache_is_private(client: distributed.Client) -> None:
    roots = client.run(lambda: str(capsules.Cache().root))
    assert len(set(roots.values())) == 1 and Path(next(iter(roots.values()))).name.startswith("worker-cache")
