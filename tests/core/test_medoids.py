"""The medoid and the geometric median against plain per-pixel references, with nodata and masks."""

import math

import numpy as np
import pytest

from s2desktop.core.compositing.medoids import EPSILON, KUHN_MARGIN, geomedian_bands, medoid_bands


def _random_stack(n, seed, shape=(3, 24, 30)):
    rng = np.random.default_rng(seed)
    stacks = rng.integers(1, 12000, size=(shape[0], n) + shape[1:]).astype(np.uint16)
    stacks[:, :, 4, :6] = 500  # identical observations: ties
    stacks[rng.random(stacks.shape) < 0.01] = 65535
    stacks[rng.random(stacks.shape) < 0.1] = 0
    valid = (stacks != 0).all(axis=0) & (rng.random((n,) + shape[1:]) > 0.25)
    valid[:, :2] = False
    return stacks, valid


def reference_medoid(stacks, valid):
    """Per pixel, in plain Python: each valid date's distances to the other valid dates summed in date order;
    the least sum, the earliest on a tie."""
    bands, n, h, w = stacks.shape
    out = np.zeros((bands, h, w), np.uint16)
    chosen = np.zeros((h, w), np.uint8)
    for i in range(h):
        for j in range(w):
            dates = [d for d in range(n) if valid[d, i, j]]
            best = None
            for a in dates:
                total = 0.0
                for c in dates:
                    if c != a:
                        sq = sum((int(stacks[b, a, i, j]) - int(stacks[b, c, i, j])) ** 2 for b in range(bands))
                        total += math.sqrt(sq)
                if best is None or total < best[0]:
                    best = (total, a)
            if best is not None:
                out[:, i, j], chosen[i, j] = stacks[:, best[1], i, j], best[1]
    return out, chosen


@pytest.mark.parametrize("n", [1, 2, 3, 6, 11])
def test_medoid_is_exact_with_nodata_and_masks(n):
    stacks, valid = _random_stack(n, n)
    values, count, chosen = medoid_bands(stacks, valid)
    ref, ref_chosen = reference_medoid(stacks, valid)
    np.testing.assert_array_equal(values, ref)
    np.testing.assert_array_equal(chosen, ref_chosen)
    np.testing.assert_array_equal(count, valid.sum(axis=0))
    # every band of a pixel from the one date it names
    picked = np.take_along_axis(stacks, chosen[None, None].astype(np.intp).repeat(3, axis=0), axis=1)[:, 0]
    some = count > 0
    np.testing.assert_array_equal(values[:, some], picked[:, some])
    assert (values[:, ~some] == 0).all()


@pytest.mark.parametrize("n", [2, 5, 9])
def test_medoid_of_dates_valid_everywhere(n):
    stacks, _ = _random_stack(n, 50 + n)
    valid = np.zeros((n,) + stacks.shape[2:], dtype=bool)
    valid[1::2] = True
    values, _, chosen = medoid_bands(stacks, valid)
    ref, ref_chosen = reference_medoid(stacks, valid)
    np.testing.assert_array_equal(values, ref)
    np.testing.assert_array_equal(chosen, ref_chosen)
    assert set(np.unique(chosen)) <= set(range(1, n, 2))


def reference_weiszfeld(points, tolerance, max_iterations):
    """Weiszfeld's iteration for one pixel in float64, as documented: from the mean, weights 1 / max(distance,
    EPSILON), until a step is under `tolerance` or after `max_iterations`; then onto the nearest observation when
    it is itself the optimum (Kuhn's condition)."""
    y = points.mean(axis=0)
    if len(points) == 1:
        return y
    for _ in range(max_iterations):
        w = 1 / np.maximum(np.sqrt(((points - y) ** 2).sum(axis=1)), EPSILON)
        new = (points * w[:, None]).sum(axis=0) / w.sum()
        step = np.sqrt(((new - y) ** 2).sum())
        y = new
        if step < tolerance:
            break
    at = _optimal_observation(points, y)
    return y if at is None else at


def _optimal_observation(points, y):
    """The observation nearest to y when the unit vectors from it to the others sum to no more than the number
    of observations at it (by KUHN_MARGIN), else None."""
    at = points[np.argmin(((points - y) ** 2).sum(axis=1))]
    d = np.sqrt(((points - at) ** 2).sum(axis=1))
    pull = ((points[d > 0] - at) / d[d > 0, None]).sum(axis=0)
    return at if np.sqrt((pull ** 2).sum()) < (d == 0).sum() - KUHN_MARGIN else None


def _objective(points, y):
    return np.sqrt(((points - y) ** 2).sum(axis=1)).sum()


@pytest.mark.parametrize("n", [1, 2, 3, 6, 10])
def test_geomedian_is_weiszfeld_within_its_tolerance(n):
    stacks, valid = _random_stack(n, 200 + n)
    tolerance, cap = 0.1, 50
    values, count = geomedian_bands(stacks, valid, tolerance, cap)
    np.testing.assert_array_equal(count, valid.sum(axis=0))
    assert (values[:, count == 0] == 0).all()
    for i, j in zip(*np.nonzero(count)):
        points = stacks[:, valid[:, i, j], i, j].T.astype(np.float64)
        ref = reference_weiszfeld(points, tolerance, cap)
        # float32 against float64: the same iterate within the tolerance, then rounded to DNs
        assert np.abs(values[:, i, j] - ref).max() <= 0.5 + tolerance, (i, j)
        # the steps descend: no farther from the observations than the mean it started from, beyond rounding
        best = _objective(points, values[:, i, j].astype(np.float64))
        assert best <= _objective(points, points.mean(axis=0)) + n


def test_geomedian_reaches_an_observation_that_is_the_optimum():
    # three observations at an angle above 120 degrees: the optimum is the vertex, which Weiszfeld's steps
    # approach ever more slowly; the check lands on it
    points = np.array([[5000, 5000, 5000], [1000, 5200, 5000], [9000, 5200, 5000]], dtype=np.uint16)
    stacks = np.broadcast_to(points.T[:, :, None, None], (3, 3, 2, 2)).copy()
    values, _ = geomedian_bands(stacks, np.ones((3, 2, 2), bool), 0.1, 50)
    assert (values[:, 0, 0] == points[0]).all()
    assert (_objective(points.astype(float), values[:, 1, 1].astype(float))
            <= _objective(points.astype(float), reference_weiszfeld(points.astype(float), 1e-9, 10**5)))


def test_geomedian_of_one_cluster_and_an_outlier_stays_with_the_cluster():
    # four clear observations near (1000, 2000, 3000) and a cloud at 9000: the mean is pulled, the geomedian not
    clear = np.array([[1000, 2000, 3000], [1010, 1990, 3005], [995, 2012, 2990], [1003, 2001, 3011]])
    points = np.vstack([clear, [[9000, 9000, 9000]]]).astype(np.uint16)
    stacks = np.broadcast_to(points.T[:, :, None, None], (3, 5, 4, 4)).copy()
    values, _ = geomedian_bands(stacks, np.ones((5, 4, 4), bool))
    assert np.abs(values[:, 0, 0].astype(int) - clear.mean(axis=0)).max() < 15
    assert np.ptp(values.reshape(3, -1), axis=1).max() == 0  # the same everywhere
