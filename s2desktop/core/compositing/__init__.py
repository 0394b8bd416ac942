"""Windowed temporal median composites of a `core.stack.Stack` of observations, over a pool of spawned worker
processes. Nothing here parses a file name or reads side-car metadata: the observations carry the facts.

One module per concern: `plan` (every check and decision before any decoding -> a `CompositePlan`), `pool` (the
spawn process pool), `window` (the work on one window, in the workers), `rules` (the rules: median, quantile, medoid,
geometric median), `tiles` (the output's levels and tiles, encoded in the workers), `cog` (the spill file, the small
overview levels, the COG's assembly, the rename) and `composite`, which runs them in turn.
"""

from s2desktop.core.compositing.composite import CompositeResult, composite
from s2desktop.core.compositing.plan import (
    BANDS,
    COMPRESSIONS,
    SCL_MASKED_CLASSES,
    VALID_SCALES,
    CompositePlan,
    check_output,
)
from s2desktop.core.compositing.rules import median_bands, reduce
from s2desktop.core.compositing.tiles import overview_factors
from s2desktop.core.compositing.window import harmonise
from s2desktop.core.methods import METHODS, Geomedian, Median, Medoid, Quantile, Rule, parse_method

__all__ = [
    "composite",
    "CompositeResult",
    "CompositePlan",
    "check_output",
    "harmonise",
    "BANDS",
    "SCL_MASKED_CLASSES",
    "VALID_SCALES",
    "COMPRESSIONS",
    "overview_factors",
    "median_bands",
    "reduce",
    "Rule",
    "Median",
    "Quantile",
    "Medoid",
    "Geomedian",
    "METHODS",
    "parse_method",
]
