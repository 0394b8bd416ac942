"""What a download from a requester-pays bucket will cost: one dated table of AWS prices, one estimate.

The ``l1c`` and ``l2a`` buckets bill the account that makes the requests: the bytes transferred out and the
requests (every HEAD and ranged GET). The estimate is for transfer out to the internet, the common case for a
desktop; from inside AWS's own region it is lower. Prices change: PRICES_AS_OF says when these were read, and
https://aws.amazon.com/s3/pricing/ has today's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from urllib.parse import urlsplit

from s2desktop.core.units import human_bytes

__all__ = ["PRICES", "PRICES_AS_OF", "Cost", "estimate", "is_aws_endpoint"]

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
    endpoint: str | None = None  # the host of a custom endpoint that is not AWS: its owner bills, not AWS

    def describe(self) -> str:
        """'1.2 GiB, about US$0.11 (requester pays; AWS prices of 2024-11)' or '1.2 GiB, free of charge'."""
        size = human_bytes(self.bytes)
        if not self.bytes:
            return "nothing to download: every file is already here and verified"
        if self.usd is None:
            return f"{size}, free of charge"
        money = f"US${self.usd:.2f}" if self.usd >= 0.01 else "less than US$0.01"
        if self.endpoint:
            return (f"{size}, about {money} at AWS's requester pays prices of {PRICES_AS_OF}; {self.endpoint} is "
                    "not AWS: its owner's terms apply")
        return f"{size}, about {money} billed to your AWS account (requester pays; AWS prices of {PRICES_AS_OF})"


def is_aws_endpoint(url: str | None) -> bool:
    """No custom endpoint (AWS itself), or an AWS S3 endpoint (...amazonaws.com): what AWS bills."""
    host = (urlsplit(url).hostname or "") if url else "amazonaws.com"
    return host == "amazonaws.com" or host.endswith(".amazonaws.com")


def estimate(sizes, *, requester_pays: bool, region: str | None = None, endpoint_url: str | None = None) -> Cost:
    """The cost of downloading files of ``sizes`` bytes: per file a HEAD, and a GET per 16 MiB part. Through a
    custom endpoint that is not AWS (a mirror, MinIO) the figure is AWS's price, and the description says that
    its owner's terms apply instead of billing it to the user's AWS account."""
    sizes = [int(s or 0) for s in sizes]
    requests = sum(1 + max(1, math.ceil(s / PART_SIZE)) for s in sizes)
    total = sum(sizes)
    region = region if region in PRICES else DEFAULT_REGION
    if not requester_pays:
        return Cost(total, requests, None, region)
    per_gb, per_1k = PRICES[region]
    other = None if is_aws_endpoint(endpoint_url) else (urlsplit(endpoint_url).hostname or endpoint_url)
    return Cost(total, requests, total / GB * per_gb + requests / 1000 * per_1k, region, other)
