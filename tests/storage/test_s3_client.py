"""The app's S3 clients keep only S3's (and STS's) endpoint data, and still address AWS as
boto3's own clients do."""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3.session
import botocore.session
import pytest
from botocore.awsrequest import AWSRequest

from storage.s3_client import _session, make_s3_client

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2", "cn-north-1", "us-gov-west-1"]


@pytest.mark.parametrize("region", REGIONS)
def test_an_aws_client_is_addressed_as_boto3_addresses_it(region: str) -> None:
    ours = make_s3_client(
        endpoint_url=None,
        region=region,
        access_key_id="AKIDEXAMPLE",
        secret_access_key="secret",
        path_style=False,
    )
    stock = boto3.session.Session().client(
        "s3",
        region_name=region,
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
        config=ours.meta.config,  # the same settings, through a stock session
    )
    assert ours.meta.endpoint_url == stock.meta.endpoint_url
    assert ours.meta.partition == stock.meta.partition
    assert ours.meta.region_name == stock.meta.region_name
    # The URL of a request, as the endpoint rules build it, without sending it.
    assert _request_url(ours, region) == _request_url(stock, region)


class _Stop(Exception):
    """Raised before a request is signed, so nothing is sent."""


def _request_url(client: S3Client, region: str) -> str:
    urls: list[str] = []

    def stop(request: AWSRequest, **_: object) -> None:
        urls.append(str(request.url))
        raise _Stop

    events = client.meta.events
    events.register_first("before-sign.s3.HeadObject", stop)
    try:
        with pytest.raises(_Stop):
            client.head_object(Bucket="clientvault-example", Key="a/b")
    finally:
        events.unregister("before-sign.s3.HeadObject", stop)
    assert urls, f"no request was prepared for {region}"
    return urls[0]


def test_a_session_keeps_only_the_endpoints_it_uses() -> None:
    ours = _session()
    stock = botocore.session.Session()
    for partition in ("aws", "aws-cn", "aws-us-gov"):
        for service in ("s3", "sts"):
            kept = ours.get_available_regions(service, partition)
            assert kept
            assert kept == stock.get_available_regions(service, partition)
    assert stock.get_available_regions("ec2")
    assert ours.get_available_regions("ec2") == []


def test_a_client_holds_its_model_without_documentation_text() -> None:
    client = make_s3_client(
        endpoint_url="http://127.0.0.1:1",
        region="us-east-1",
        access_key_id="a",
        secret_access_key="b",
    )
    model = client.meta.service_model
    operation = model.operation_model("UploadPart")
    assert operation.documentation == ""
    assert operation.input_shape is not None
    assert "ContentMD5" in operation.input_shape.members  # the rest of the model is whole
    assert operation.input_shape.members["ContentMD5"].documentation == ""
    stock = botocore.session.Session().get_service_model("s3")
    assert stock.operation_model("UploadPart").documentation  # botocore's own keeps it
    assert sorted(model.operation_names) == sorted(stock.operation_names)
