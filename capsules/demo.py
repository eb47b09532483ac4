"""The demo: build the bundled kernels, then time each against the same function in Python.

``tour`` runs four short steps, each a :class:`Row`: SciPy's nquad example,
a Genz integral against its closed form, a local standard deviation filter
on a 1000 x 1000 image and a log-polar unwarp of the same image.  Every step
runs SciPy twice, with the kernel's plain Python version (``Kernel.py``) as
the callback and with the compiled capsule, and checks the capsule's result
against an independent reference.  ``format_table`` and ``plot`` present the
rows; nothing here prints.  The numbers are measured on this machine.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import integrate, ndimage, special

from .build import BuildResult, build
from .cache import Cache
from .errors import CapsulesError
from .load import KernelModule, load

# the kernel files the tour loads, all in the repository's kernels/ folder
KERNEL_FILES = ("integrands.py", "genz.py", "filters.py", "transforms.py")


@dataclass(frozen=True)
class Settings:
    """Problem sizes: the image side, the side of the crop the Python filter is timed on, repeats."""

    image: int = 1000
    python_image: int = 200
    repeat: int = 3

    def __post_init__(self) -> None:
        if not 0 < self.python_image <= self.image or self.repeat < 1:
            raise ValueError("need 0 < python_image <= image and repeat >= 1")

    @classmethod
    def quick(cls) -> Settings:
        """Small sizes, one run each: a few seconds in all."""
        return cls(image=300, python_image=60, repeat=1)


@dataclass(frozen=True)
class Row:
    """One step of the tour: the capsule's result, its error and both timings."""

    step: str
    result: str
    error: float
    tolerance: float
    python_seconds: float
    capsule_seconds: float
    note: str = ""  # how the Python time was obtained when not measured directly
    images: tuple[tuple[str, np.ndarray], ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.python_seconds <= 0 or self.capsule_seconds <= 0:
            raise ValueError("timings must be positive")

    @property
    def speedup(self) -> float:
        return self.python_seconds / self.capsule_seconds

    @property
    def ok(self) -> bool:
        """Whether the capsule's result is within tolerance of the reference."""
        return self.error <= self.tolerance


def kernels_dir() -> Path:
    """The bundled kernels: inside the installed package, else beside it in a clone, else in the current directory.

    Raises
    ------
    CapsulesError
        No place has the kernel files the demo runs.
    """
    here = Path(__file__).resolve().parent
    places = (here / "kernels", here.parent / "kernels", Path.cwd() / "kernels")
    for place in places:
        if all((place / name).is_file() for name in KERNEL_FILES):
            return place
    raise CapsulesError(
        f"the demo needs the bundled kernels/ folder ({', '.join(KERNEL_FILES)}), found it nowhere "
        f"(looked in {', '.join(map(str, places))}); "
        "reinstall capsules or run it from a clone of the capsules repository"
    )


def build_kernels(
    cache: Cache | str | Path | None = None,
    jobs: int = 1,
    on_result: Callable[[Path, BuildResult | CapsulesError], None] | None = None,
) -> list[BuildResult]:
    """Build every bundled kernel module (``on_result`` is called as each finishes)."""
    return build([kernels_dir()], cache=cache, jobs=jobs, on_result=on_result)


def tour(cache: Cache | str | Path | None = None, settings: Settings = Settings()) -> tuple[Row, ...]:
    """Run the four steps (building any kernel not built yet); see the module docstring."""
    kernels = kernels_dir()
    mods = {name: load(kernels / name, cache=cache) for name in KERNEL_FILES}  # built if needed
    image = pattern_image(settings.image)
    return (
        nquad_row(mods["integrands.py"], settings),
        genz_row(mods["genz.py"], settings),
        filter_row(mods["filters.py"], image, settings),
        unwarp_row(mods["transforms.py"], image, settings),
    )


def nquad_row(mod: KernelModule, settings: Settings) -> Row:
    """SciPy's nquad example: c + x - y z over [0, 10] x [-10, 0] x [-1, 1], c = 1; exactly 1200."""
    ranges, c = [[0, 10], [-10, 0], [-1, 1]], np.array([1.0])
    f = mod.f
    (native, _), fast = _timed(lambda: integrate.nquad(f.lowlevel(c), ranges), settings.repeat, True)
    _, slow = _timed(lambda: integrate.nquad(lambda x, y, z: f.py(3, (x, y, z), c), ranges), settings.repeat)
    return Row("nquad example: c + x - y z (3-D)", f"{native:.12g}", abs(native - 1200.0), 1e-9, slow, fast)


def genz_row(mod: KernelModule, settings: Settings) -> Row:
    """The Genz Gaussian family in 2-D with nquad, against its closed form."""
    a, u = np.array([4.0, 2.5]), np.array([0.35, 0.6])
    user_data = np.concatenate([a, u])
    kernel, box = mod.gaussian, [[0, 1], [0, 1]]
    (native, _), fast = _timed(lambda: integrate.nquad(kernel.lowlevel(user_data), box), settings.repeat, True)
    _, slow = _timed(lambda: integrate.nquad(lambda x, y: kernel.py(2, (x, y), user_data), box), settings.repeat)
    exact = float(np.prod(math.sqrt(math.pi) / (2 * a) * (special.erf(a * (1 - u)) + special.erf(a * u))))
    return Row("Genz Gaussian integral (2-D)", f"{native:.12g}", abs(native - exact), 1e-10, slow, fast)


def filter_row(mod: KernelModule, image: np.ndarray, settings: Settings) -> Row:
    """generic_filter with the local standard deviation over 5 x 5 windows, against numpy's std."""
    kernel, size = mod.local_std, 5
    native, fast = _timed(lambda: ndimage.generic_filter(image, kernel.lowlevel(), size=size), settings.repeat, True)
    crop = image[: settings.python_image, : settings.python_image]
    out = np.empty(1)

    def python(window: np.ndarray) -> float:
        kernel.py(window, window.size, out, None)
        return float(out[0])

    _, slow = _timed(lambda: ndimage.generic_filter(crop, python, size=size), 1)
    scale = image.size / crop.size
    note = ""
    if scale != 1:
        note = f"Python time measured on a {crop.shape[0]}x{crop.shape[1]} crop and scaled by {scale:g} (the pixel count)"
    error = float(np.max(np.abs(native - _window_std(image, size))))
    rows, cols = image.shape
    return Row(f"local std filter, 5x5, {rows}x{cols} image", f"{rows}x{cols} image", error, 1e-12, slow * scale,
               fast, note, (("input image", image), ("local std (5x5)", native)))


def unwarp_row(mod: KernelModule, image: np.ndarray, settings: Settings) -> Row:
    """geometric_transform (bilinear) with the log-polar unwarp about the image centre, against map_coordinates.

    Bilinear (order=1) rather than SciPy's default cubic splines, whose prefilter
    of the whole input would be timed too: the mapping is what the capsule speeds up.
    """
    kernel = mod.log_polar_unwarp
    centre = (image.shape[0] - 1) / 2, (image.shape[1] - 1) / 2
    shape = (image.shape[0] // 3, (image.shape[1] * 2) // 3)  # rows: log radius, columns: angle
    r_min, r_max = 2.0, min(centre)
    dlog, dtheta = math.log(r_max / r_min) / (shape[0] - 1), 2 * math.pi / shape[1]
    params = [*centre, r_min, dlog, dtheta]

    def python(o: tuple[int, int]) -> tuple[float, float]:
        x = [0.0, 0.0]
        kernel.py(o, x, 2, 2, params)
        return x[0], x[1]

    native, fast = _timed(
        lambda: ndimage.geometric_transform(image, kernel.lowlevel(params), shape, order=1), settings.repeat, True
    )
    _, slow = _timed(lambda: ndimage.geometric_transform(image, python, shape, order=1), 1)
    i, j = np.mgrid[0 : shape[0], 0 : shape[1]].astype(float)
    r, theta = r_min * np.exp(i * dlog), j * dtheta
    reference = ndimage.map_coordinates(
        image, [centre[0] + r * np.sin(theta), centre[1] + r * np.cos(theta)], order=1
    )
    error = float(np.max(np.abs(native - reference)))
    return Row(f"log-polar unwarp, {shape[0]}x{shape[1]} output", f"{shape[0]}x{shape[1]} image", error, 1e-9, slow,
               fast, "", (("log-polar unwarp (up: log r, across: angle)", native[::-1]),))


def pattern_image(n: int) -> np.ndarray:
    """An n x n test pattern: rings and spokes about the centre, an off-centre square, mild noise."""
    y, x = np.mgrid[0:n, 0:n].astype(float) - (n - 1) / 2
    r, theta = np.hypot(x, y) / n, np.arctan2(y, x)
    rings = np.sin(2 * math.pi * 12 * r) > 0
    spokes = np.cos(12 * theta) > 0
    square = (np.abs(x - n * 0.22) < n * 0.12) & (np.abs(y + n * 0.22) < n * 0.12)
    noise = np.random.default_rng(0).normal(0.0, 0.04, (n, n))
    return 0.45 * rings + 0.3 * spokes * (r < 0.3) + 0.5 * square + noise


def format_table(rows: tuple[Row, ...]) -> str:
    """The rows as a text table, with a footnote for every Python time not measured directly."""
    header = ("step", "result", "error", "Python", "capsule", "speedup")
    cells = [header]
    notes: list[str] = []
    for row in rows:
        mark = ""
        if row.note:
            notes.append(row.note)
            mark = "*" * len(notes)
        cells.append((row.step, row.result, f"{row.error:.1e}", _seconds(row.python_seconds) + mark,
                      _seconds(row.capsule_seconds), f"{row.speedup:,.0f}x"))
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(c, widths)))
             for c in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines += [f"{'*' * (k + 1)} {note}" for k, note in enumerate(notes)]
    lines.append("error: |capsule - reference| (exact value, closed form, numpy's std, map_coordinates); "
                 "Python: the same kernel run as plain Python (Kernel.py) as SciPy's callback")
    return "\n".join(lines)


def require_matplotlib() -> None:
    """Raise a clear error now, before any work, if matplotlib is missing.

    Raises
    ------
    CapsulesError
        matplotlib is not installed.
    """
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise CapsulesError("--plot needs matplotlib: pip install 'pythran-capsules[plot]' (or pip install matplotlib)") \
            from None


def plot(rows: tuple[Row, ...], path: str | Path) -> Path:
    """Save a figure: the images of the tour and a bar chart of the speedups; return the path."""
    require_matplotlib()
    from matplotlib.figure import Figure  # the object API: no pyplot, no global backend state

    images = [image for row in rows for image in row.images]
    fig = Figure(figsize=(4.2 * (len(images) + 1.3), 4.6), layout="constrained")
    axes = fig.subplots(1, len(images) + 1, width_ratios=[1] * len(images) + [1.3])
    for ax, (title, data) in zip(axes, images):
        ax.imshow(data, cmap="gray", aspect="auto" if data.shape[0] != data.shape[1] else "equal")
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    _speedup_chart(axes[-1], rows)
    path = Path(path)
    fig.savefig(path, dpi=110)
    return path


def _speedup_chart(ax: Any, rows: tuple[Row, ...]) -> None:
    names = [row.step.split(",")[0].split(":")[0] for row in rows]
    speedups = [row.speedup for row in rows]
    bars = ax.barh(names[::-1], speedups[::-1], color="tab:blue")
    ax.set_xscale("log")
    ax.bar_label(bars, labels=[f"{s:,.0f}x" for s in speedups[::-1]], padding=3, fontsize=9)
    ax.set_xlim(1, max(speedups) * 8)
    ax.set_xlabel("speedup over the Python callback (log scale)")
    ax.set_title("capsule vs Python callback", fontsize=10)
    ax.tick_params(axis="y", labelsize=9)


def _timed(fn: Callable[[], Any], repeat: int, warm_up: bool = False) -> tuple[Any, float]:
    """fn()'s value and its best time over ``repeat`` runs (after one untimed run if ``warm_up``)."""
    best, value = math.inf, fn() if warm_up else None
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return value, best


def _window_std(image: np.ndarray, size: int) -> np.ndarray:
    """The population std of every size x size window (mode 'reflect'), with numpy, a block of rows at a time."""
    half = size // 2
    padded = np.pad(image, half, mode="symmetric")  # numpy's 'symmetric' is ndimage's 'reflect'
    windows = np.lib.stride_tricks.sliding_window_view(padded, (size, size))
    out = np.empty_like(image)
    for start in range(0, image.shape[0], 100):
        out[start : start + 100] = windows[start : start + 100].std(axis=(-2, -1))
    return out


def _seconds(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms" if seconds < 0.1 else f"{seconds:.2f} s"
