"""The same sweep on Dask: a LocalCluster here, a real cluster with one changed line.

Needs the dask extra (``pip install '.[dask]'``).  Each worker needs capsules
and its dependencies installed; the kernel itself travels in the pickle (see
docs/parallel.md, "Process pools and clusters").  To use a running cluster, replace
the LocalCluster with ``Client("tcp://scheduler:8786")``.

    python examples/dask_sweep.py
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
from distributed import Client, LocalCluster
from scipy import integrate

import capsules

KERNELS = Path(__file__).parent.parent / "kernels"


def main() -> None:
    genz = capsules.load(KERNELS / "genz.py")
    grid = [[a, 2.0 * a, u, 1.0 - u] for a in np.linspace(1, 10, 20) for u in np.linspace(0.05, 0.95, 20)]
    callables = [genz.gaussian.lowlevel(p) for p in grid]
    integrate_2d = partial(integrate.nquad, ranges=[[0, 1]] * 2)

    with LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=":0") as cluster:
        with Client(cluster) as client:
            results = client.gather(client.map(integrate_2d, callables, pure=False))
    assert results == [integrate_2d(llc) for llc in callables]
    print(f"{len(results)} integrals on Dask, identical to the serial loop; first: {results[0][0]:.15g}")


if __name__ == "__main__":
    main()
