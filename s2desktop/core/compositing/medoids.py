"""Rules that treat a pixel's observation as one point across its bands: the medoid and the geometric median.

Both take the (bands, dates, h, w) uint16 stacks and the (dates, h, w) validity of one window, as the median
kernel does (`rules`), and know nothing of files or processes.

`medoid_bands`: per pixel the valid observation whose summed Euclidean distance (across the bands) to the other
valid observations is least -- every band of the pixel from that one date; ties go to the earlier date. The
distances are exact: squared differences of DNs are whole numbers that float64 holds exactly, `np.sqrt` is
correctly rounded, and each observation's sum is taken in date order (pairs (i, j) in order: observation i
receives its terms at j ascending), so a plain per-pixel loop in that order gives the same bits.

`geomedian_bands`: per pixel the point minimising the summed Euclidean distance to the valid observations (the
geometric median, or spatial median), by Weiszfeld's iteration in float32 from the band-wise mean: each step
moves to the mean of the observations weighted by 1 / distance (at least `EPSILON` DN, so a step onto an
observation stays defined); a pixel stops when its step is below `tolerance` DN or after `max_iterations`.
Pixels that have stopped leave the working set, so the cost follows the slow ones. At the end a pixel whose
nearest observation is itself the optimum (Kuhn's condition) moves onto it: Weiszfeld's steps approach such an
optimum ever more slowly. (Checking every few steps, to stop such pixels early, cost more than it saved.)
Rounded half up to DNs.

Work goes in chunks of rows of `CHUNK_PIXELS`, whose float planes stay in the CPU's cache.
"""

from __future__ import annotations

import math

import numpy as np

CHUNK_PIXELS = 1 << 13
GEOMEDIAN_CHUNK_PIXELS = 1 << 14  # twice as fast as 1 << 16 (cache) and as 1 << 12 (calls)
EPSILON = 1e-3  # DN: the least distance a Weiszfeld weight divides by
KUHN_MARGIN = 1e-3  # a border case of Kuhn's condition (two observations: the whole segment) keeps its point


def _row_chunks(shape: tuple[int, ...], pixels: int = CHUNK_PIXELS) -> list[tuple[int, int]]:
    rows = max(1, pixels // max(1, math.prod(shape[1:])))
    return [(r0, min(shape[0], r0 + rows)) for r0 in range(0, shape[0], rows)] or [(0, 0)]


def _whole_dates(valid: np.ndarray, count: np.ndarray) -> np.ndarray | None:
    """The dates valid at every pixel when every other date is valid at none, else None."""
    if not count.size or count.min() != count.max():
        return None
    whole = valid.reshape(valid.shape[0], -1).all(axis=1)
    return np.flatnonzero(whole) if whole.sum() == count.flat[0] else None


def medoid_bands(stacks: np.ndarray, valid: np.ndarray):
    """The medoid of each pixel's valid observations (module docstring).

    -> ((bands, h, w) uint16 values, (h, w) uint16 count, (h, w) uint8 index of the date chosen); no valid
    observation: values 0, index 0.
    """
    stacks = np.asarray(stacks)
    valid = np.asarray(valid, dtype=bool)
    bands, n = stacks.shape[:2]
    count = valid.sum(axis=0, dtype=np.uint16)
    out = np.zeros((bands,) + stacks.shape[2:], dtype=np.uint16)
    chosen = np.zeros(stacks.shape[2:], dtype=np.uint8)
    whole = _whole_dates(valid, count)
    dates = np.arange(n) if whole is None else whole
    if len(dates) == 0:
        return out, count, chosen
    for r0, r1 in _row_chunks(stacks.shape[2:]):
        x = stacks[:, dates, r0:r1].astype(np.float64)
        v = None if whole is not None else valid[:, r0:r1].astype(np.float64)
        sums = _distance_sums(x, v)
        if v is not None:
            sums[v == 0] = np.inf
        pick = sums.argmin(axis=0)
        for b in range(bands):
            out[b, r0:r1] = np.take_along_axis(stacks[b, dates, r0:r1], pick[None], axis=0)[0]
        chosen[r0:r1] = dates[pick]
    if whole is None:
        none = count == 0
        out[:, none] = 0
        chosen[none] = 0
    return out, count, chosen


def _distance_sums(x: np.ndarray, v: np.ndarray | None) -> np.ndarray:
    """Per date the sum of its Euclidean distances to the other dates: x (bands, dates, ...) float64; v the
    dates' validity as 0/1 (None: all valid), an invalid date's distances counting for nobody."""
    n = x.shape[1]
    sums = np.zeros(x.shape[1:], dtype=np.float64)
    d = np.empty(x.shape[2:], dtype=np.float64)
    t = np.empty_like(d)
    for i in range(n):
        for j in range(i + 1, n):
            np.subtract(x[0, i], x[0, j], out=d)
            d *= d
            for b in range(1, x.shape[0]):
                np.subtract(x[b, i], x[b, j], out=t)
                t *= t
                d += t
            np.sqrt(d, out=d)
            if v is not None:
                d *= v[i]
                d *= v[j]
            sums[i] += d
            sums[j] += d
    return sums


def geomedian_bands(stacks: np.ndarray, valid: np.ndarray, tolerance: float = 0.5, max_iterations: int = 50):
    """The geometric median of each pixel's valid observations (module docstring).

    -> ((bands, h, w) uint16 values rounded half up, (h, w) uint16 count); no valid observation: 0.
    """
    stacks = np.asarray(stacks)
    valid = np.asarray(valid, dtype=bool)
    bands = stacks.shape[0]
    count = valid.sum(axis=0, dtype=np.uint16)
    out = np.zeros((bands,) + stacks.shape[2:], dtype=np.uint16)
    for r0, r1 in _row_chunks(stacks.shape[2:], GEOMEDIAN_CHUNK_PIXELS):
        x = stacks[:, :, r0:r1].reshape(bands, stacks.shape[1], -1).astype(np.float32)
        w = valid[:, r0:r1].reshape(stacks.shape[1], -1).astype(np.float32)
        y = _weiszfeld(x, w, tolerance, max_iterations)
        np.floor(y + np.float32(0.5), out=y)
        np.clip(y, 1, 65535, out=y)  # inside the observations' hull: float error only
        out[:, r0:r1] = y.reshape((bands, r1 - r0) + out.shape[2:])
    out[:, count == 0] = 0
    return out, count


def _weiszfeld(x: np.ndarray, v: np.ndarray, tolerance: float, max_iterations: int) -> np.ndarray:
    """Weiszfeld's iteration for pixels: x (bands, dates, p) float32 observations, v (dates, p) 0/1 validity.
    -> (bands, p) float32 geometric medians (the mean start, 0, where no date is valid)."""
    bands = x.shape[0]
    k = v.sum(axis=0)
    y = np.stack([np.einsum("dp,dp->p", x[b], v) for b in range(bands)]) / np.maximum(k, 1)
    todo = np.flatnonzero(k > 1)  # one observation is its own geometric median
    xs, vs, ys = x[:, :, todo], v[:, todo], y[:, todo]
    stopped = np.zeros(todo.size, dtype=bool)
    for _ in range(max_iterations):
        if not todo.size:
            break
        new, step = _weiszfeld_step(xs, vs, ys)
        np.copyto(ys, new, where=~stopped)
        stopped |= step < np.float32(tolerance * tolerance)
        if stopped.sum() > todo.size // 4:  # the pixels that stopped leave the working set
            y[:, todo] = ys
            going = ~stopped
            todo, xs, vs, ys = todo[going], xs[:, :, going], vs[:, going], ys[:, going]
            stopped = stopped[going]
    y[:, todo] = ys
    multi = np.flatnonzero(k > 1)  # then onto the nearest observation where it is the optimum
    ym = y[:, multi]
    _to_optimal_observation(x[:, :, multi], v[:, multi], ym)
    y[:, multi] = ym
    return y


def _to_optimal_observation(x: np.ndarray, v: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Where the observation nearest to `y` is itself the geometric median, move `y` onto it (in place) -> where.

    Weiszfeld's steps shrink as they near an observation, so a geometric median that is an observation is
    approached ever more slowly. Observation o is the optimum when the unit vectors from it to the other
    observations sum to less than the number of observations at o (Kuhn's condition), here by a margin: on
    the border (two observations: the whole segment between them) Weiszfeld's point is kept."""
    dist = _squared_distances(x, y)
    dist[v == 0] = np.inf
    nearest = dist.argmin(axis=0)
    at = np.take_along_axis(x, nearest[None, None].repeat(x.shape[0], axis=0), axis=1)[:, 0]
    d = _squared_distances(x, at)
    np.sqrt(d, out=d)
    here = ((d == 0) & (v != 0)).sum(axis=0)
    inv = np.divide(v, d, out=np.zeros_like(d), where=d > 0)
    pull = np.zeros(y.shape[1], dtype=np.float32)
    for b in range(x.shape[0]):
        r = np.einsum("dp,dp->p", x[b] - at[b], inv)
        pull += r * r
    optimal = pull < (here.astype(np.float32) - np.float32(KUHN_MARGIN)) ** 2
    y[:, optimal] = at[:, optimal]
    return optimal


def _squared_distances(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(dates, p) squared Euclidean distances of the observations x (bands, dates, p) to points y (bands, p)."""
    dist = np.subtract(x[0], y[0], dtype=np.float32)
    dist *= dist
    t = np.empty_like(dist)
    for b in range(1, x.shape[0]):
        np.subtract(x[b], y[b], out=t)
        t *= t
        dist += t
    return dist


def _weiszfeld_step(x: np.ndarray, v: np.ndarray, y: np.ndarray):
    """One step from `y` (bands, p): the observations' mean weighted by validity / distance (at least
    EPSILON). -> (the new points, the squared length of each step)."""
    dist = _squared_distances(x, y)
    np.sqrt(dist, out=dist)
    np.maximum(dist, np.float32(EPSILON), out=dist)
    w = np.divide(v, dist, out=dist)
    total = w.sum(axis=0)
    new = np.stack([np.einsum("dp,dp->p", x[b], w) for b in range(x.shape[0])])
    new /= total
    d = new - y
    d *= d
    return new, d.sum(axis=0)
