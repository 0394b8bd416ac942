"""What a download will cost: one dated price table, bytes and requests from the listing, verified files free."""

from __future__ import annotations

import datetime as dt

import pytest

from s2desktop.core import pricing
from s2desktop.core.pipeline import Job, Request, SourceSpec


def test_requester_pays_costs_transfer_and_requests():
    sizes = [100 * 10**6] * 3 + [20 * 2**20]  # three 100 MB bands and a 20 MiB one
    cost = pricing.estimate(sizes, requester_pays=True, region="eu-central-1")
    per_gb, per_1k = pricing.PRICES["eu-central-1"]
    requests = 3 * (1 + 6) + (1 + 2)  # a HEAD per file and a GET per 16 MiB part
    assert cost.requests == requests and cost.bytes == sum(sizes)
    assert cost.usd == pytest.approx(sum(sizes) / 1e9 * per_gb + requests / 1000 * per_1k)
    text = cost.describe()
    assert f"US${cost.usd:.2f}" in text and pricing.PRICES_AS_OF in text and "requester pays" in text
    assert dt.date.fromisoformat(pricing.PRICES_AS_OF + "-01") <= dt.date.today()  # dated, and not in the future
    free = pricing.estimate(sizes, requester_pays=False)
    assert free.usd is None and free.describe().endswith("free of charge")
    assert "less than US$0.01" in pricing.estimate([1000], requester_pays=True).describe()
    assert pricing.estimate([10**9], requester_pays=True, region="mars-1").region == pricing.DEFAULT_REGION


@pytest.mark.parametrize("endpoint, billed", [(None, True), ("https://s3.eu-central-1.amazonaws.com", True),
                                              ("http://127.0.0.1:9000", False), ("https://minio.example.org", False),
                                              ("https://amazonaws.com.example.org", False)])
def test_a_custom_endpoint_that_is_not_aws_is_not_billed_to_the_aws_account(endpoint, billed):
    text = pricing.estimate([10**9], requester_pays=True, endpoint_url=endpoint).describe()
    assert ("billed to your AWS account" in text) == billed, text
    assert "US$" in text and "requester pays" in text  # the figure, at AWS's prices, either way
    if not billed:
        assert "not AWS" in text and endpoint.split("//")[1].split(":")[0] in text


def test_the_job_leaves_files_already_verified_out_of_the_cost(seeded_s3, tmp_path):
    request = Request(SourceSpec("l1c", endpoint_url=seeded_s3.endpoint), tile="33UUP", start=dt.date(2023, 7, 14),
                      end=dt.date(2023, 7, 14), download_dir=tmp_path / "dl")
    job = Job(request)
    plan = job.plan()
    before = job.cost(plan)
    assert before.bytes == plan.bytes_total and before.usd > 0
    job.download(plan)
    after = job.cost(plan)
    assert after.bytes == 0 and after.requests == 0 and after.usd == 0
    assert after.describe().startswith("nothing to download")
