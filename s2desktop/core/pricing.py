"""What a download from a requester-pays bucket will cost: one dated table of AWS prices, one estimate.

The ``l1c`` and ``l2a`` buckets bill the account that makes the requests: the bytes transferred out and the
requests (every HEAD and ranged GET). The estimate is for transfer out to the internet, the common case for a
desktop; from inside AWS's own region it is lower. Prices change: PRICES_AS_OF says when these were read, and
https://aws.amazon.com/s3/pricing/ has today's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from s2desktop.core.units import human_bytes

__all__ = ["PRICES", "PRICES_AS_OF", "Cost", "estimate"]

PRICES_AS_OF = "2024-11"  # when the table below was read from the AWS S3 pricing page
# region: (US$ per GB transferred out to the internet (first 10 TB a month), US$ per 1,000 GET/HEAD requests)
PRICES = {
    "eu-central-1": (0.09, 0.00043),
    "us-west-2": (0.09, 0.0004),
}
DEFAULT_REGION = "eu-central-1"
GB = 1e9
PART_SIZE = 16 << 20  # the downloader's ranged GET size (core.download.MULTIPART_CHUNKSIZE)


@dataclass(frozen=True)
class Cost:
    """The estimate for a set of files: bytes, requests and US$ (None when the bucket does not bill the user)."""

    bytes: int
    requests: int
    usd: float | None
    region: str

    def describe(self) -> str:
        """'1.2 GiB, about US$0.11 (requester pays; AWS prices of 2024-11)' or '1.2 GiB, free of charge'."""
        size = human_bytes(self.bytes)
        if not self.bytes:
            return "nothing to download: every file is already here and verified"
        if self.usd is None:
            return f"{size}, free of charge"
        money = f"US${self.usd:.2f}" if self.usd >= 0.01 else "less than US$0.01"
        return f"{size}, about {money} billed to your AWS account (requester pays; AWS prices of {PRICES_AS_OF})"


def estimate(sizes, *, requester_pays: bool, region: str | None = None) -> Cost:
    """The cost of downloading files of ``sizes`` bytes: per file a HEAD, and a GET per 16 MiB part."""
    sizes = [int(s or 0) for s in sizes]
    requests = sum(1 + max(1, math.ceil(s / PART_SIZE)) for s in sizes)
    total = sum(sizes)
    region = region if region in PRICES else DEFAULT_REGION
    if not requester_pays:
        return Cost(total, requests, None, region)
    per_gb, per_1k = PRICES[region]
    return Cost(total, requests, total / GB * per_gb + requests / 1000 * per_1k, region)
