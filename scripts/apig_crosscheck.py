"""Signs requests with Huawei's official Python SDK signer (huaweicloudsdkcore.signer.signer.Signer).

Reads a JSON list of cases on stdin, each {method, host, path, query: [[name, value]...], headers: {...},
body_b64, ak, sk}, and prints a JSON list of the Authorization header values. Used by the protocol crate's
cross-check test (crates/protocol/tests/suite/apig_crosscheck.rs), which compares them with koogate's signer.
"""
import base64
import json
import sys
from types import SimpleNamespace

from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer


def sign(case):
    request = SdkRequest(
        method=case["method"],
        schema="https",
        host=case["host"],
        resource_path=case["path"],
        query_params=[tuple(pair) for pair in case["query"]],
        header_params=dict(case["headers"]),
        body=base64.b64decode(case["body_b64"]),
    )
    Signer(SimpleNamespace(ak=case["ak"], sk=case["sk"])).sign(request)
    return request.header_params["Authorization"]


if __name__ == "__main__":
    print(json.dumps([sign(case) for case in json.load(sys.stdin)]))
