"""The median kernel against np.nanmedian (with the half-up rounding rule and 0 for no valid observation), the
quantile against a sorted reference, and the rules as values."""

import dataclasses
import pickle
import warnings

import numpy as np
import pytest

from s2desktop.core.compositing.rules import (
    quantile_bands,
    reduce,
    median_bands,
    median_stack,
    _select_in_place,
    reference_median,
    selection_network,
    sorting_network,
)
from s2desktop.core.errors import InvalidInputError
from s2desktop.core.methods import Geomedian, Median, Medoid, Quantile, parse_method


@pytest.mark.parametrize("n", [2, 3, 4, 5, 7, 8, 11, 16, 24])
def test_sorting_network_sorts(n):
    rng = np.random.default_rng(n)
    for _ in range(200):
        x = list(rng.integers(0, 6, n))
        for a, b in sorting_network(n):
            assert a < b < n
            if x[a] > x[b]:
                x[a], x[b] = x[b], x[a]
        assert x == sorted(x)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6, 7, 9, 16, 24])
def test_selection_network_gives_the_middle_ranks(n):
    # only the comparators the middle rank(s) depend on, some of them halves (min or max only), run in place
    rng = np.random.default_rng(n)
    x = rng.integers(0, 6, (n, 50, 40)).astype(np.uint16)  # many ties
    x[:, 0] = np.arange(n)[::-1, None]  # reversed order
    ranks = ((n - 1) // 2, n // 2)
    steps = selection_network(n, ranks)
    assert len(steps) <= len(sorting_network(n))
    planes = [p.copy() for p in x]
    _select_in_place(planes, np.empty_like(x[0]), steps)
    expected = np.sort(x, axis=0)
    for r in ranks:
        np.testing.assert_array_equal(planes[r], expected[r])


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6, 9, 12, 30])
def test_matches_nanmedian_with_nodata_and_masks(n):
    rng = np.random.default_rng(100 + n)
    stack = rng.integers(1, 12000, size=(n, 64, 64)).astype(np.uint16)
    stack[rng.random(stack.shape) < 0.25] = 0  # nodata
    stack[rng.random(stack.shape) < 0.01] = 65535  # saturated is a value, not nodata
    stack[:, :4, :] = 0  # all-nodata rows
    mask = rng.random(stack.shape) > 0.2
    med, count = median_stack(stack, mask, return_count=True)
    assert med.dtype == np.uint16
    np.testing.assert_array_equal(med, reference_median(stack, mask))
    np.testing.assert_array_equal(count, ((stack != 0) & mask).sum(axis=0))
    assert (med[:4] == 0).all() and (count[:4] == 0).all()


def test_even_count_rounds_half_up_and_odd_picks_middle():
    s = np.array([[[10]], [[11]], [[0]], [[0]]], dtype=np.uint16)
    assert median_stack(s)[0, 0] == 11  # (10 + 11) / 2 = 10.5 -> 11
    s = np.array([[[10]], [[12]], [[0]], [[30]]], dtype=np.uint16)
    assert median_stack(s)[0, 0] == 12
    s = np.array([[[65535]], [[65535]], [[0]]], dtype=np.uint16)
    assert median_stack(s)[0, 0] == 65535  # no overflow in the mean, saturated kept
    s = np.array([[[65534]], [[65535]]], dtype=np.uint16)
    assert median_stack(s)[0, 0] == 65535


def test_single_date_and_all_nodata():
    s = np.array([[[0, 5, 65535]]], dtype=np.uint16)
    np.testing.assert_array_equal(median_stack(s), [[0, 5, 65535]])
    np.testing.assert_array_equal(median_stack(s, np.array([[[True, False, True]]])), [[0, 0, 65535]])
    z = np.zeros((5, 3, 3), dtype=np.uint16)
    med, count = median_stack(z, return_count=True)
    assert not med.any() and not count.any()


def test_input_not_modified_and_dtype_checked():
    rng = np.random.default_rng(1)
    s = rng.integers(0, 100, (5, 8, 8)).astype(np.uint16)
    before = s.copy()
    median_stack(s, rng.random(s.shape) > 0.5)
    np.testing.assert_array_equal(s, before)
    with pytest.raises(TypeError):
        median_stack(s.astype(np.float32))


@pytest.mark.parametrize("n", [1, 2, 5, 8])
def test_median_bands_shares_validity(n):
    rng = np.random.default_rng(7 + n)
    stacks = rng.integers(0, 3000, size=(3, n, 40, 40)).astype(np.uint16)
    stacks[rng.random(stacks.shape) < 0.05] = 65535
    valid = (stacks != 0).all(axis=0) & (rng.random((n, 40, 40)) > 0.3)
    med, count = median_bands(stacks, valid)
    assert med.shape == (3, 40, 40) and med.dtype == np.uint16
    np.testing.assert_array_equal(count, valid.sum(axis=0))
    for b in range(3):
        np.testing.assert_array_equal(med[b], reference_median(stacks[b], valid))


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6, 9])
@pytest.mark.parametrize("case", ["all valid", "one date masked", "two dates masked", "none valid", "saturated"])
def test_windows_with_one_valid_count_everywhere(n, case):
    # the usual window without a cloud mask: every pixel has the same count, and the pick takes whole planes
    rng = np.random.default_rng(n)
    stacks = rng.integers(1, 12000, size=(3, n, 48, 40)).astype(np.uint16)
    valid = np.ones((n, 48, 40), dtype=bool)
    if case == "one date masked":
        valid[n // 2] = False
    elif case == "two dates masked":
        valid[[0, n - 1]] = False
    elif case == "none valid":
        valid[:] = False
    elif case == "saturated":
        stacks[:, :, :10] = 65535
    med, count = median_bands(stacks, valid)
    for b in range(3):
        np.testing.assert_array_equal(med[b], reference_median(stacks[b], valid))
    np.testing.assert_array_equal(median_stack(stacks[0], valid), med[0])
    mixed = valid.copy()  # the same window with one pixel's validity changed takes the padded path
    mixed[0, 0, 0] = not mixed[0, 0, 0]
    med, _ = median_bands(stacks, mixed)
    for b in range(3):
        np.testing.assert_array_equal(med[b], reference_median(stacks[b], mixed))


def test_median_bands_sorts_in_a_given_scratch_buffer():
    rng = np.random.default_rng(3)
    stacks = rng.integers(1, 5000, size=(3, 5, 30, 20)).astype(np.uint16)
    valid = rng.random((5, 30, 20)) > 0.3
    scratch = np.full((6, 30, 20), 7, dtype=np.uint16)
    med, count = median_bands(stacks, valid, scratch=scratch)
    ref_med, ref_count = median_bands(stacks, valid)
    np.testing.assert_array_equal(med, ref_med)
    np.testing.assert_array_equal(count, ref_count)
    assert not (scratch == 7).all()  # the padded values were sorted there
    for bad in (np.empty((5, 30, 20), np.uint16), np.empty((6, 30, 20), np.int32),
                np.empty((6, 30, 40), np.uint16)[:, :, ::2]):
        with pytest.raises(ValueError, match="scratch"):
            median_bands(stacks, valid, scratch=bad)


@pytest.mark.parametrize("n", [3, 5, 30])
def test_chunks_of_rows_give_the_same_medians(n, monkeypatch):
    """Windows are reduced a few rows at a time (cache-sized chunks): a last chunk shorter than the others, and
    both paths (padded, whole dates) in chunks, give what the reference gives."""
    from s2desktop.core.compositing import rules

    rng = np.random.default_rng(20 + n)
    stacks = rng.integers(1, 12000, size=(3, n, 23, 16)).astype(np.uint16)
    mixed = rng.random((n, 23, 16)) > 0.4
    whole = np.zeros((n, 23, 16), dtype=bool)
    whole[: n // 2 + 1] = True
    monkeypatch.setattr(rules, "CHUNK_PIXELS", 5 * 16)  # 5 rows per chunk: 4 chunks of 5 and one of 3
    for valid in (mixed, whole):
        med, count = median_bands(stacks, valid)
        np.testing.assert_array_equal(count, valid.sum(axis=0))
        for b in range(3):
            np.testing.assert_array_equal(med[b], reference_median(stacks[b], valid))


# --- the quantile, and the rules as values ----------------------------------------------------------------------


def reference_quantile(stacks, valid, percent):
    """np.sort of each pixel's valid values (invalid ones sorted last as NaN), then numpy's linear rule in exact
    integers: rank h = (k - 1) P / 100, lo + (frac (hi - lo) + 50) // 100; no valid observation: 0."""
    f = np.where(valid[None], stacks.astype(np.float64), np.nan)
    s = np.sort(f, axis=1)  # NaN last
    k = valid.sum(axis=0).astype(np.int64)
    lo, frac = np.divmod(np.maximum(k - 1, 0) * percent, 100)
    hi = np.minimum(lo + 1, np.maximum(k - 1, 0))
    a = np.take_along_axis(s, lo[None, None], axis=1)[:, 0]
    b = np.take_along_axis(s, hi[None, None], axis=1)[:, 0]
    out = np.where(k > 0, a + (frac * np.nan_to_num(b - a) + 50) // 100, 0)
    return out.astype(np.uint16)


def _random_stack(n, seed, shape=(3, 40, 50)):
    rng = np.random.default_rng(seed)
    stacks = rng.integers(1, 12000, size=(shape[0], n) + shape[1:]).astype(np.uint16)
    stacks[rng.random(stacks.shape) < 0.01] = 65535  # saturated: a value
    stacks[rng.random(stacks.shape) < 0.1] = 0  # nodata
    valid = (stacks != 0).all(axis=0) & (rng.random((n,) + shape[1:]) > 0.25)  # and a cloud mask
    valid[:, :3] = False  # rows with nothing valid
    return stacks, valid


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 10, 13, 30])
@pytest.mark.parametrize("percent", [0, 10, 25, 33, 90, 100])
def test_quantile_matches_a_sorted_reference_with_nodata_and_masks(n, percent):
    stacks, valid = _random_stack(n, 1000 + n)
    values, count = quantile_bands(stacks, valid, percent)
    np.testing.assert_array_equal(values, reference_quantile(stacks, valid, percent))
    np.testing.assert_array_equal(count, valid.sum(axis=0))
    # it is numpy's definition: within rounding of np.nanquantile (which computes it in floating point)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        q = np.nanquantile(np.where(valid[None], stacks.astype(float), np.nan), percent / 100, axis=1)
    some = count > 0
    assert np.abs(values[:, some] - q[:, some]).max() <= 0.5 + 1e-6


@pytest.mark.parametrize("n", [2, 5, 10])
@pytest.mark.parametrize("percent", [0, 25, 90, 100])
def test_quantile_of_dates_valid_everywhere(n, percent):
    stacks, _ = _random_stack(n, n)
    valid = np.zeros((n,) + stacks.shape[2:], dtype=bool)
    valid[::2] = True  # the usual window: whole dates valid, the others outside their footprint
    np.testing.assert_array_equal(quantile_bands(stacks, valid, percent)[0],
                                  reference_quantile(stacks, valid, percent))


@pytest.mark.parametrize("n", [1, 4, 9])
def test_quantile_50_is_the_median(n):
    stacks, valid = _random_stack(n, 7 * n)
    np.testing.assert_array_equal(quantile_bands(stacks, valid, 50)[0], median_bands(stacks, valid)[0])


def test_rules_are_small_picklable_values_read_from_their_spelling():
    rules = [parse_method(t) for t in ("median", "quantile:25", "medoid", "geomedian", " Quantile:0 ")]
    assert rules[:4] == [Median(), Quantile(25), Medoid(), Geomedian()] and rules[4] == Quantile(0)
    assert [r.label for r in rules] == ["median", "quantile:25", "medoid", "geomedian", "quantile:0"]
    assert [pickle.loads(pickle.dumps(r)) for r in rules] == rules
    assert parse_method(Quantile(75)) == Quantile(75)
    with pytest.raises(dataclasses.FrozenInstanceError):
        rules[1].percent = 30
    for bad, words in [("quantile:120", "0 to 100"), ("quantile", "quantile:P"), ("quantile:2.5", "whole"),
                       ("mean", "not one of median, quantile:P, medoid, geomedian"), ("medoid:2", "not one of")]:
        with pytest.raises(InvalidInputError, match=words) as exc:
            parse_method(bad)
        assert "\n" not in str(exc.value)


def test_each_rule_reduces_a_window_and_only_the_medoid_names_dates():
    stacks, valid = _random_stack(6, 3)
    for rule in (Median(), Quantile(25), Medoid(), Geomedian()):
        out = reduce(rule, stacks, valid)
        assert out.values.shape == stacks.shape[:1] + stacks.shape[2:] and out.values.dtype == np.uint16
        np.testing.assert_array_equal(out.count, valid.sum(axis=0))
        assert (out.values[:, out.count == 0] == 0).all() and (out.values[:, out.count > 0] > 0).all()
        assert (out.chosen is not None) == rule.picks_a_date


def test_a_geomedian_without_a_way_to_stop_is_refused():
    for kw in (dict(tolerance=0), dict(max_iterations=0), dict(tolerance=float("nan"))):
        with pytest.raises(InvalidInputError, match="geomedian"):
            Geomedian(**kw)
