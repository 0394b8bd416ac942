"""How a composite combines a pixel's dates: the rules as small typed values, and their command-line spelling.

    parse_method("quantile:25") -> Quantile(percent=25)

A rule is a frozen, picklable value -- `Median()` (the default), `Quantile(25)`, `Medoid()`, `Geomedian()` --
carried in the composite's options, its plan and every window task. It names itself for the output's tags
(`label`: its spelling, `description`: what it computes) and says whether it takes every band of a pixel from one
date (`picks_a_date`: then a date band can name that date). The kernels that apply the rules to a window are in
`compositing.rules`; this module imports nothing heavy, so the request types can hold a rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral
from typing import ClassVar, Union

from s2desktop.core.errors import InvalidInputError


@dataclass(frozen=True)
class Median:
    """Per pixel and band the median of the valid observations (today's rule, the default)."""

    picks_a_date: ClassVar[bool] = False

    @property
    def label(self) -> str:
        return "median"

    @property
    def description(self) -> str:
        return ("per pixel median of observations valid in every band (nonzero, not masked); even count: "
                "mean of the two middle values rounded half up; none valid: 0")


@dataclass(frozen=True)
class Quantile:
    """Per pixel and band the `percent`-th percentile of the valid observations (a whole percent, 0-100):
    numpy's linear interpolation between the closest ranks, rounded half up; quantile:50 is the median."""

    percent: int
    picks_a_date: ClassVar[bool] = False

    def __post_init__(self):
        if isinstance(self.percent, bool) or not isinstance(self.percent, Integral) \
                or not 0 <= self.percent <= 100:
            raise InvalidInputError(f"quantile:{self.percent}: the percent must be a whole number from 0 to 100")

    @property
    def label(self) -> str:
        return f"quantile:{self.percent}"

    @property
    def description(self) -> str:
        return (f"per pixel and band the {self.percent}th percentile of the observations valid in every band "
                "(nonzero, not masked): linear interpolation between the closest ranks (numpy's default), "
                "rounded half up; none valid: 0")


@dataclass(frozen=True)
class Medoid:
    """Per pixel the valid observation nearest to all others across the bands: every band from one date."""

    picks_a_date: ClassVar[bool] = True

    @property
    def label(self) -> str:
        return "medoid"

    @property
    def description(self) -> str:
        return ("per pixel the observation valid in every band with the least sum of Euclidean distances "
                "(across the bands, in DN) to the other valid observations: all bands from one date; "
                "ties: the earlier date; none valid: 0")


@dataclass(frozen=True)
class Geomedian:
    """Per pixel the geometric median of the valid observations across the bands (Weiszfeld's iteration from
    the mean, per pixel until a step is under `tolerance` DN or after `max_iterations`), rounded half up."""

    tolerance: float = 0.5  # DN: as coarse as the output's rounding to whole DNs
    max_iterations: int = 50
    picks_a_date: ClassVar[bool] = False

    def __post_init__(self):
        if not (self.tolerance > 0 and isinstance(self.max_iterations, Integral) and self.max_iterations >= 1):
            raise InvalidInputError(f"geomedian: the tolerance must be above 0 DN and the iterations 1 or more "
                                    f"(not {self.tolerance}, {self.max_iterations})")

    @property
    def label(self) -> str:
        return "geomedian"

    @property
    def description(self) -> str:
        return ("per pixel the geometric median of the observations valid in every band (the point with "
                "the least sum of Euclidean distances to them across the bands): Weiszfeld's iteration "
                f"from their mean, per pixel until a step is under {self.tolerance:g} DN or after "
                f"{self.max_iterations} steps, rounded half up; none valid: 0")


Rule = Union[Median, Quantile, Medoid, Geomedian]
METHODS = ("median", "quantile:P", "medoid", "geomedian")  # as the command line spells them


def parse_method(text) -> Rule:
    """A rule from its spelling: 'median', 'quantile:P' (P a whole percent 0-100), 'medoid', 'geomedian'; a
    rule given as a value is returned as it is. InvalidInputError (one line) otherwise."""
    if isinstance(text, (Median, Quantile, Medoid, Geomedian)):
        return text
    name, _, arg = str(text).strip().lower().partition(":")
    simple = {"median": Median, "medoid": Medoid, "geomedian": Geomedian}
    if name in simple and not arg:
        return simple[name]()
    if name == "quantile":
        if not arg.strip().isdecimal():  # ("²".isdigit(), but int("²") fails)
            raise InvalidInputError(f"method {text!r}: give quantile:P with P a whole percent from 0 to 100, "
                                    "e.g. quantile:25")
        return Quantile(int(arg))
    raise InvalidInputError(f"method {text!r} is not one of {', '.join(METHODS)}")
