"""Tests for the cmk_guard_emulator extension of moto 5.2.5.

Starts tests/emulator/run.sh on a free port (the same code path the Rust tests use)
and talks to it with boto3 and with raw HTTP (to check the wire format the Rust SDK sees).
Run with tests/emulator/test.sh.
"""

import json
import os
import re
import socket
import subprocess
import time
from datetime import datetime
from typing import Any
from urllib.parse import quote

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.session import Session

HERE = os.path.dirname(os.path.abspath(__file__))
ACCOUNT = "123456789012"
REGION = "us-east-1"
ISO_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$")
GUARDRAIL_ID_RE = re.compile(r"^[a-z0-9]{12}$")


# --------------------------------------------------------------------------- fixtures


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def endpoint() -> Any:
    port = _free_port()
    proc = subprocess.Popen(
        [os.path.join(HERE, "run.sh"), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            requests.get(f"{url}/_cmk_guard/requests", timeout=1)
            break
        except requests.ConnectionError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                raise RuntimeError("emulator did not start: " + (proc.stderr.read() if proc.stderr else ""))
            time.sleep(0.1)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(autouse=True)
def reset(endpoint: str) -> None:
    assert requests.post(f"{endpoint}/moto-api/reset").status_code == 200


def client(endpoint: str, service: str, **cfg: Any) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, **cfg),
    )


@pytest.fixture
def bedrock(endpoint: str) -> Any:
    return client(endpoint, "bedrock")


@pytest.fixture
def kms(endpoint: str) -> Any:
    return client(endpoint, "kms")


def raw(endpoint: str, method: str, path: str, service: str = "bedrock", body: Any = None) -> requests.Response:
    """An HTTP request as an SDK sends it (moto routes on the SigV4 credential scope, never checks it)."""
    headers = {
        "Authorization": f"AWS4-HMAC-SHA256 Credential=testing/20260101/{REGION}/{service}/aws4_request, "
        "SignedHeaders=host, Signature=0"
    }
    data = None
    if body is not None:
        headers["Content-Type"] = "application/json"
        data = json.dumps(body)
    return requests.request(method, endpoint + path, data=data, headers=headers, timeout=10)


_MODELS: dict[str, Any] = {}


def output_shape(service: str, op: str) -> Any:
    if service not in _MODELS:
        _MODELS[service] = Session().get_service_model(service)
    return _MODELS[service].operation_model(op).output_shape


def check_shape(value: Any, shape: Any, path: str = "$") -> None:
    """Assert raw JSON follows the botocore model: known members only, right types, required present,
    timestamps as ISO-8601 strings with 'T' and 'Z'."""
    t = shape.type_name
    if t == "structure":
        assert isinstance(value, dict), f"{path}: expected object, got {value!r}"
        for req in shape.required_members:
            if shape.members[req].serialization.get("location"):
                continue
            assert req in value, f"{path}: required member {req} missing"
        for k, v in value.items():
            assert k in shape.members, f"{path}: unknown member {k}"
            check_shape(v, shape.members[k], f"{path}.{k}")
    elif t == "list":
        assert isinstance(value, list), f"{path}: expected list"
        for i, item in enumerate(value):
            check_shape(item, shape.member, f"{path}[{i}]")
    elif t == "map":
        assert isinstance(value, dict), f"{path}: expected map"
        for k, v in value.items():
            check_shape(v, shape.value, f"{path}[{k}]")
    elif t == "timestamp":
        assert isinstance(value, str) and ISO_RE.match(value), f"{path}: bad timestamp {value!r}"
    elif t == "string":
        assert isinstance(value, str), f"{path}: expected string, got {value!r}"
        if shape.enum:
            assert value in shape.enum, f"{path}: {value!r} not in enum"
    elif t == "boolean":
        assert isinstance(value, bool), f"{path}: expected bool"
    elif t in ("integer", "long"):
        assert isinstance(value, int) and not isinstance(value, bool), f"{path}: expected int"
    elif t in ("double", "float"):
        assert isinstance(value, (int, float)) and not isinstance(value, bool), f"{path}: expected number"


def error_of(exc: ClientError) -> tuple[str, int]:
    return exc.response["Error"]["Code"], exc.response["ResponseMetadata"]["HTTPStatusCode"]


# --------------------------------------------------------------------------- guardrail fixtures

FULL_INPUT: dict[str, Any] = {
    "name": "full-guardrail",
    "description": "every member",
    "blockedInputMessaging": "input blocked",
    "blockedOutputsMessaging": "output blocked",
    "topicPolicyConfig": {
        "topicsConfig": [
            {
                "name": "investment",
                "definition": "Investment advice",
                "examples": ["Which stock should I buy?", "Is gold a good bet?"],
                "type": "DENY",
                "inputAction": "BLOCK",
                "outputAction": "NONE",
                "inputEnabled": True,
                "outputEnabled": False,
            }
        ],
        "tierConfig": {"tierName": "STANDARD"},
    },
    "contentPolicyConfig": {
        "filtersConfig": [
            {
                "type": "HATE",
                "inputStrength": "HIGH",
                "outputStrength": "MEDIUM",
                "inputModalities": ["TEXT", "IMAGE"],
                "outputModalities": ["TEXT"],
                "inputAction": "BLOCK",
                "outputAction": "NONE",
                "inputEnabled": True,
                "outputEnabled": False,
            },
            {"type": "PROMPT_ATTACK", "inputStrength": "HIGH", "outputStrength": "NONE"},
        ],
        "tierConfig": {"tierName": "STANDARD"},
    },
    "wordPolicyConfig": {
        "wordsConfig": [
            {"text": "badword", "inputAction": "NONE", "outputAction": "BLOCK", "inputEnabled": False, "outputEnabled": True}
        ],
        "managedWordListsConfig": [
            {"type": "PROFANITY", "inputAction": "BLOCK", "outputAction": "NONE", "inputEnabled": True, "outputEnabled": False}
        ],
    },
    "sensitiveInformationPolicyConfig": {
        "piiEntitiesConfig": [
            {
                "type": "EMAIL",
                "action": "ANONYMIZE",
                "inputAction": "BLOCK",
                "outputAction": "ANONYMIZE",
                "inputEnabled": True,
                "outputEnabled": False,
            }
        ],
        "regexesConfig": [
            {
                "name": "account-number",
                "description": "internal account numbers",
                "pattern": "ACC-[0-9]{6}",
                "action": "BLOCK",
                "inputAction": "NONE",
                "outputAction": "BLOCK",
                "inputEnabled": False,
                "outputEnabled": True,
            }
        ],
    },
    "contextualGroundingPolicyConfig": {
        "filtersConfig": [
            {"type": "GROUNDING", "threshold": 0.75, "action": "NONE", "enabled": False},
            {"type": "RELEVANCE", "threshold": 0.5},
        ],
        "tierConfig": {"tierName": "STANDARD"},
    },
    "automatedReasoningPolicyConfig": {
        "policies": [f"arn:aws:bedrock:{REGION}:{ACCOUNT}:automated-reasoning-policy/abcdefghijkl"],
        "confidenceThreshold": 0.9,
    },
    "crossRegionConfig": {"guardrailProfileIdentifier": "us.guardrail.v1:0"},
}

FULL_EXPECTED: dict[str, Any] = {
    "name": "full-guardrail",
    "description": "every member",
    "blockedInputMessaging": "input blocked",
    "blockedOutputsMessaging": "output blocked",
    "topicPolicy": {
        "topics": [
            {
                "name": "investment",
                "definition": "Investment advice",
                "examples": ["Which stock should I buy?", "Is gold a good bet?"],
                "type": "DENY",
                "inputAction": "BLOCK",
                "outputAction": "NONE",
                "inputEnabled": True,
                "outputEnabled": False,
            }
        ],
        "tier": {"tierName": "STANDARD"},
    },
    "contentPolicy": {
        "filters": [
            {
                "type": "HATE",
                "inputStrength": "HIGH",
                "outputStrength": "MEDIUM",
                "inputModalities": ["TEXT", "IMAGE"],
                "outputModalities": ["TEXT"],
                "inputAction": "BLOCK",
                "outputAction": "NONE",
                "inputEnabled": True,
                "outputEnabled": False,
            },
            {  # defaults filled in
                "type": "PROMPT_ATTACK",
                "inputStrength": "HIGH",
                "outputStrength": "NONE",
                "inputAction": "BLOCK",
                "outputAction": "BLOCK",
                "inputEnabled": True,
                "outputEnabled": True,
            },
        ],
        "tier": {"tierName": "STANDARD"},
    },
    "wordPolicy": {
        "words": [
            {"text": "badword", "inputAction": "NONE", "outputAction": "BLOCK", "inputEnabled": False, "outputEnabled": True}
        ],
        "managedWordLists": [
            {"type": "PROFANITY", "inputAction": "BLOCK", "outputAction": "NONE", "inputEnabled": True, "outputEnabled": False}
        ],
    },
    "sensitiveInformationPolicy": {
        "piiEntities": [
            {
                "type": "EMAIL",
                "action": "ANONYMIZE",
                "inputAction": "BLOCK",
                "outputAction": "ANONYMIZE",
                "inputEnabled": True,
                "outputEnabled": False,
            }
        ],
        "regexes": [
            {
                "name": "account-number",
                "description": "internal account numbers",
                "pattern": "ACC-[0-9]{6}",
                "action": "BLOCK",
                "inputAction": "NONE",
                "outputAction": "BLOCK",
                "inputEnabled": False,
                "outputEnabled": True,
            }
        ],
    },
    "contextualGroundingPolicy": {
        "filters": [
            {"type": "GROUNDING", "threshold": 0.75, "action": "NONE", "enabled": False},
            {"type": "RELEVANCE", "threshold": 0.5, "action": "BLOCK", "enabled": True},
        ],
        "tier": {"tierName": "STANDARD"},
    },
    "automatedReasoningPolicy": {
        "policies": [f"arn:aws:bedrock:{REGION}:{ACCOUNT}:automated-reasoning-policy/abcdefghijkl"],
        "confidenceThreshold": 0.9,
    },
    "crossRegionDetails": {
        "guardrailProfileId": "us.guardrail.v1:0",
        "guardrailProfileArn": f"arn:aws:bedrock:{REGION}:{ACCOUNT}:guardrail-profile/us.guardrail.v1:0",
    },
}

MINIMAL = {"name": "g", "blockedInputMessaging": "in", "blockedOutputsMessaging": "out"}


def get_raw_guardrail(endpoint: str, ident: str, version: str | None = None) -> dict[str, Any]:
    path = "/guardrails/" + quote(ident, safe="")
    if version:
        path += f"?guardrailVersion={version}"
    resp = raw(endpoint, "GET", path)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    check_shape(body, output_shape("bedrock", "GetGuardrail"))
    return body


# --------------------------------------------------------------------------- guardrails


def test_guardrail_full_round_trip(endpoint: str, bedrock: Any, kms: Any) -> None:
    key = kms.create_key()["KeyMetadata"]
    created = bedrock.create_guardrail(**FULL_INPUT, kmsKeyId=key["KeyId"], tags=[{"key": "team", "value": "sec"}])
    gid, arn = created["guardrailId"], created["guardrailArn"]
    assert GUARDRAIL_ID_RE.match(gid)
    assert arn == f"arn:aws:bedrock:{REGION}:{ACCOUNT}:guardrail/{gid}"
    assert created["version"] == "DRAFT"
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 202

    body = get_raw_guardrail(endpoint, gid)
    for k, v in FULL_EXPECTED.items():
        assert body[k] == v, k
    assert body["kmsKeyArn"] == key["Arn"]
    assert body["status"] == "READY" and body["version"] == "DRAFT"
    assert body["guardrailId"] == gid and body["guardrailArn"] == arn
    assert ISO_RE.match(body["createdAt"]) and ISO_RE.match(body["updatedAt"])
    assert bedrock.list_tags_for_resource(resourceARN=arn)["tags"] == [{"key": "team", "value": "sec"}]

    # the raw CreateGuardrail answer follows the model too
    resp = raw(endpoint, "POST", "/guardrails", body={**MINIMAL, "name": "raw"})
    assert resp.status_code == 202
    check_shape(resp.json(), output_shape("bedrock", "CreateGuardrail"))


def test_minimal_guardrail_has_no_optional_members(endpoint: str, bedrock: Any) -> None:
    gid = bedrock.create_guardrail(**MINIMAL)["guardrailId"]
    body = get_raw_guardrail(endpoint, gid)
    for absent in ("kmsKeyArn", "description", "crossRegionDetails", "topicPolicy", "contentPolicy",
                   "wordPolicy", "sensitiveInformationPolicy", "contextualGroundingPolicy",
                   "automatedReasoningPolicy"):
        assert absent not in body


def test_update_replaces_draft(endpoint: str, bedrock: Any, kms: Any) -> None:
    key = kms.create_key()["KeyMetadata"]
    created = bedrock.create_guardrail(**FULL_INPUT, kmsKeyId=key["Arn"], tags=[{"key": "k", "value": "v"}])
    arn = created["guardrailArn"]
    time.sleep(0.01)
    upd = bedrock.update_guardrail(
        guardrailIdentifier=arn,  # by ARN (URL-encoded in the path)
        name="renamed",
        blockedInputMessaging="in2",
        blockedOutputsMessaging="out2",
        wordPolicyConfig={"wordsConfig": [{"text": "other"}]},
    )
    assert upd["guardrailId"] == created["guardrailId"] and upd["version"] == "DRAFT"
    body = get_raw_guardrail(endpoint, arn)
    assert body["name"] == "renamed"
    assert body["blockedInputMessaging"] == "in2" and body["blockedOutputsMessaging"] == "out2"
    assert body["wordPolicy"] == {
        "words": [{"text": "other", "inputAction": "BLOCK", "outputAction": "BLOCK", "inputEnabled": True, "outputEnabled": True}]
    }
    for gone in ("description", "kmsKeyArn", "crossRegionDetails", "topicPolicy", "contentPolicy",
                 "sensitiveInformationPolicy", "contextualGroundingPolicy", "automatedReasoningPolicy"):
        assert gone not in body, gone
    assert datetime.fromisoformat(body["updatedAt"].replace("Z", "+00:00")) > datetime.fromisoformat(
        body["createdAt"].replace("Z", "+00:00")
    )
    assert bedrock.list_tags_for_resource(resourceARN=arn)["tags"] == [{"key": "k", "value": "v"}]

    # an update naming an unknown key is refused and leaves the draft alone
    with pytest.raises(ClientError) as e:
        bedrock.update_guardrail(guardrailIdentifier=arn, **MINIMAL, kmsKeyId="alias/does-not-exist")
    assert error_of(e.value) == ("ValidationException", 400)
    assert get_raw_guardrail(endpoint, arn)["name"] == "renamed"


def test_versions_list_delete(endpoint: str, bedrock: Any) -> None:
    gid = bedrock.create_guardrail(**MINIMAL, description="v1 draft")["guardrailId"]
    v1 = bedrock.create_guardrail_version(guardrailIdentifier=gid, description="first")
    assert v1["version"] == "1" and v1["guardrailId"] == gid
    bedrock.update_guardrail(guardrailIdentifier=gid, name="g2", blockedInputMessaging="x", blockedOutputsMessaging="y")
    assert bedrock.create_guardrail_version(guardrailIdentifier=gid)["version"] == "2"

    one = get_raw_guardrail(endpoint, gid, "1")
    assert one["version"] == "1" and one["name"] == "g" and one["description"] == "first"
    assert get_raw_guardrail(endpoint, gid, "2")["name"] == "g2"
    assert get_raw_guardrail(endpoint, gid, "DRAFT")["name"] == "g2"

    listed = raw(endpoint, "GET", f"/guardrails?guardrailIdentifier={gid}").json()
    check_shape(listed, output_shape("bedrock", "ListGuardrails"))
    assert [s["version"] for s in listed["guardrails"]] == ["DRAFT", "1", "2"]

    bedrock.delete_guardrail(guardrailIdentifier=gid, guardrailVersion="1")
    with pytest.raises(ClientError) as e:
        bedrock.get_guardrail(guardrailIdentifier=gid, guardrailVersion="1")
    assert error_of(e.value) == ("ResourceNotFoundException", 404)
    assert bedrock.get_guardrail(guardrailIdentifier=gid, guardrailVersion="2")["version"] == "2"

    # pagination over all guardrails (DRAFT summaries)
    for i in range(3):
        bedrock.create_guardrail(**{**MINIMAL, "name": f"p{i}"})
    seen, token, pages = [], None, 0
    while True:
        kw = {"maxResults": 2, **({"nextToken": token} if token else {})}
        page = bedrock.list_guardrails(**kw)
        pages += 1
        seen += [g["name"] for g in page["guardrails"]]
        assert all(g["version"] == "DRAFT" for g in page["guardrails"])
        token = page.get("nextToken")
        if not token:
            break
    assert sorted(seen) == ["g2", "p0", "p1", "p2"] and pages == 2

    bedrock.delete_guardrail(guardrailIdentifier=gid)
    with pytest.raises(ClientError) as e:
        bedrock.get_guardrail(guardrailIdentifier=gid)
    assert error_of(e.value) == ("ResourceNotFoundException", 404)
    assert len(bedrock.list_guardrails()["guardrails"]) == 3


@pytest.mark.parametrize("form", ["id", "arn", "alias", "alias_arn"])
def test_guardrail_kms_key_forms(endpoint: str, bedrock: Any, kms: Any, form: str) -> None:
    key = kms.create_key()["KeyMetadata"]
    kms.create_alias(AliasName="alias/guard", TargetKeyId=key["KeyId"])
    ref = {
        "id": key["KeyId"],
        "arn": key["Arn"],
        "alias": "alias/guard",
        "alias_arn": f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/guard",
    }[form]
    gid = bedrock.create_guardrail(**MINIMAL, kmsKeyId=ref)["guardrailId"]
    assert get_raw_guardrail(endpoint, gid)["kmsKeyArn"] == key["Arn"]


def test_guardrail_errors(endpoint: str, bedrock: Any) -> None:
    with pytest.raises(ClientError) as e:
        bedrock.create_guardrail(**MINIMAL, kmsKeyId="alias/unknown")
    assert error_of(e.value) == ("ValidationException", 400)
    with pytest.raises(ClientError) as e:
        bedrock.create_guardrail(**MINIMAL, kmsKeyId="11111111-2222-3333-4444-555555555555")
    assert error_of(e.value) == ("ValidationException", 400)
    assert bedrock.list_guardrails()["guardrails"] == []  # nothing stored

    bedrock.create_guardrail(**MINIMAL)
    with pytest.raises(ClientError) as e:
        bedrock.create_guardrail(**MINIMAL)
    assert error_of(e.value) == ("ConflictException", 400)

    for call in (
        lambda: bedrock.get_guardrail(guardrailIdentifier="abcdefghijkl"),
        lambda: bedrock.update_guardrail(guardrailIdentifier="abcdefghijkl", **MINIMAL),
        lambda: bedrock.delete_guardrail(guardrailIdentifier="abcdefghijkl"),
        lambda: bedrock.create_guardrail_version(guardrailIdentifier="abcdefghijkl"),
        lambda: bedrock.get_guardrail(guardrailIdentifier=f"arn:aws:bedrock:{REGION}:{ACCOUNT}:guardrail/abcdefghijkl"),
    ):
        with pytest.raises(ClientError) as e:
            call()
        assert error_of(e.value) == ("ResourceNotFoundException", 404)

    # server-side validation of required members (boto3's own validation switched off)
    loose = client(endpoint, "bedrock", parameter_validation=False)
    with pytest.raises(ClientError) as e:
        loose.create_guardrail(name="x", blockedInputMessaging="y")
    assert error_of(e.value) == ("ValidationException", 400)
    with pytest.raises(ClientError) as e:
        loose.create_guardrail(**{**MINIMAL, "name": "z"}, topicPolicyConfig={"topicsConfig": [{"name": "t"}]})
    assert error_of(e.value) == ("ValidationException", 400)

    resp = raw(endpoint, "GET", "/guardrails/nope12345678")
    assert resp.status_code == 404
    assert resp.headers["x-amzn-ErrorType"] == "ResourceNotFoundException"
    assert resp.json()["message"]


def test_guardrail_tagging_and_custom_model_tagging(endpoint: str, bedrock: Any) -> None:
    arn = bedrock.create_guardrail(**MINIMAL)["guardrailArn"]
    bedrock.tag_resource(resourceARN=arn, tags=[{"key": "a", "value": "1"}, {"key": "b", "value": "2"}])
    bedrock.untag_resource(resourceARN=arn, tagKeys=["a"])
    assert bedrock.list_tags_for_resource(resourceARN=arn)["tags"] == [{"key": "b", "value": "2"}]

    job = _create_job(bedrock, "tagjob", "tagmodel")
    model_arn = bedrock.get_custom_model(modelIdentifier="tagmodel")["modelArn"]
    bedrock.tag_resource(resourceARN=model_arn, tags=[{"key": "m", "value": "x"}])
    assert bedrock.list_tags_for_resource(resourceARN=model_arn)["tags"] == [{"key": "m", "value": "x"}]
    assert job.startswith("arn:aws:bedrock:")

    with pytest.raises(ClientError) as e:
        bedrock.tag_resource(resourceARN=arn + "x", tags=[{"key": "a", "value": "1"}])
    assert error_of(e.value) == ("ResourceNotFoundException", 404)


# --------------------------------------------------------------------------- KMS


def test_kms_aws_managed_keys(kms: Any) -> None:
    for alias in ("alias/aws/bedrock", "alias/aws/s3", "alias/aws/ebs", "alias/aws/sns"):
        meta = kms.describe_key(KeyId=alias)["KeyMetadata"]
        assert meta["KeyManager"] == "AWS", alias
        # the same key again (created once)
        assert kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"] == meta["KeyId"]
        assert kms.describe_key(KeyId=f"arn:aws:kms:{REGION}:{ACCOUNT}:{alias}")["KeyMetadata"]["Arn"] == meta["Arn"]
    assert kms.describe_key(KeyId="alias/aws/secretsmanager")["KeyMetadata"]["KeyManager"] == "AWS"
    assert kms.create_key()["KeyMetadata"]["KeyManager"] == "CUSTOMER"

    aliases = {a["AliasName"]: a for a in kms.list_aliases()["Aliases"]}
    assert aliases["alias/aws/bedrock"]["TargetKeyId"] == kms.describe_key(KeyId="alias/aws/bedrock")["KeyMetadata"]["KeyId"]
    assert "TargetKeyId" not in aliases["alias/aws/lambda"]  # not created yet

    with pytest.raises(ClientError) as e:
        kms.describe_key(KeyId="alias/aws/notaservice")
    assert error_of(e.value)[0] == "NotFoundException"


def test_kms_reserved_alias_refused(kms: Any) -> None:
    key = kms.create_key()["KeyMetadata"]
    for name in ("alias/aws/bedrock", "alias/aws/mything", "alias/aws/s3"):
        with pytest.raises(ClientError) as e:
            kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
        assert error_of(e.value)[0] == "NotAuthorizedException", name
    kms.create_alias(AliasName="alias/awsome", TargetKeyId=key["KeyId"])  # only the alias/aws/ prefix is reserved


def test_kms_key_forms(kms: Any) -> None:
    key = kms.create_key()["KeyMetadata"]
    arn, kid = key["Arn"], key["KeyId"]
    kms.create_alias(AliasName="alias/forms", TargetKeyId=kid)

    kms.disable_key(KeyId=arn)
    assert kms.describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "Disabled"
    kms.enable_key(KeyId=arn)
    assert kms.describe_key(KeyId=arn)["KeyMetadata"]["KeyState"] == "Enabled"
    kms.enable_key_rotation(KeyId=arn)
    assert kms.get_key_rotation_status(KeyId=arn)["KeyRotationEnabled"] is True
    kms.update_key_description(KeyId=arn, Description="d")
    assert kms.get_key_policy(KeyId=arn, PolicyName="default")["Policy"]

    for ref in (kid, arn, "alias/forms", f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/forms"):
        assert kms.describe_key(KeyId=ref)["KeyMetadata"]["Arn"] == arn
        assert kms.encrypt(KeyId=ref, Plaintext=b"x")["KeyId"] == arn

    out = kms.schedule_key_deletion(KeyId=arn, PendingWindowInDays=7)
    assert out["KeyId"] == arn and out["KeyState"] == "PendingDeletion" and out["PendingWindowInDays"] == 7
    assert kms.describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "PendingDeletion"
    assert kms.cancel_key_deletion(KeyId=arn)["KeyId"] == arn
    assert kms.describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "Disabled"

    other = kms.create_key()["KeyMetadata"]
    assert kms.schedule_key_deletion(KeyId=other["KeyId"])["KeyId"] == other["Arn"]

    # DisableKey does not take an alias (as in AWS) -> 4xx, not 500
    with pytest.raises(ClientError) as e:
        kms.disable_key(KeyId="alias/forms")
    assert error_of(e.value)[0] == "NotFoundException"


# --------------------------------------------------------------------------- bedrock fixes


def _create_job(bedrock: Any, job: str, model: str, **kw: Any) -> str:
    return bedrock.create_model_customization_job(
        jobName=job,
        customModelName=model,
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/r",
        baseModelIdentifier="amazon.titan-text-express-v1",
        trainingDataConfig={"s3Uri": "s3://b/train"},
        outputDataConfig={"s3Uri": "s3://b/out"},
        hyperParameters={"epochCount": "1"},
        **kw,
    )["jobArn"]


def test_customization_job_and_custom_model(endpoint: str, bedrock: Any, kms: Any) -> None:
    key = kms.create_key()["KeyMetadata"]
    kms.create_alias(AliasName="alias/cm", TargetKeyId=key["KeyId"])
    job_arn = _create_job(bedrock, "job1", "model1", customModelKmsKeyId="alias/cm")

    resp = raw(endpoint, "GET", "/model-customization-jobs/" + quote(job_arn, safe=""))
    assert resp.status_code == 200, resp.text
    job = resp.json()
    check_shape(job, output_shape("bedrock", "GetModelCustomizationJob"))
    assert job["outputModelKmsKeyArn"] == key["Arn"]
    assert bedrock.get_model_customization_job(jobIdentifier="job1")["jobArn"] == job_arn

    model = raw(endpoint, "GET", "/custom-models/model1").json()
    check_shape(model, output_shape("bedrock", "GetCustomModel"))
    assert model["modelKmsKeyArn"] == key["Arn"]
    model_by_arn = raw(endpoint, "GET", "/custom-models/" + quote(model["modelArn"], safe="")).json()
    assert model_by_arn["modelName"] == "model1"

    listed = raw(endpoint, "GET", "/custom-models").json()
    check_shape(listed, output_shape("bedrock", "ListCustomModels"))
    jobs = raw(endpoint, "GET", "/model-customization-jobs").json()
    check_shape(jobs, output_shape("bedrock", "ListModelCustomizationJobs"))

    _create_job(bedrock, "job2", "model2")  # no key -> no key ARN anywhere
    assert "outputModelKmsKeyArn" not in raw(endpoint, "GET", "/model-customization-jobs/job2").json()
    assert "modelKmsKeyArn" not in raw(endpoint, "GET", "/custom-models/model2").json()

    bedrock.stop_model_customization_job(jobIdentifier=job_arn)
    assert bedrock.get_model_customization_job(jobIdentifier=job_arn)["status"] == "Stopped"

    with pytest.raises(ClientError) as e:
        _create_job(bedrock, "job3", "model3", customModelKmsKeyId="alias/missing")
    assert error_of(e.value) == ("ValidationException", 400)


def test_bedrock_agent_timestamps_and_slash(endpoint: str) -> None:
    body = {
        "agentName": "agent1",
        "agentResourceRoleArn": f"arn:aws:iam::{ACCOUNT}:role/r",
        "foundationModel": "anthropic.claude-v2",
        "customerEncryptionKeyArn": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/abc",
    }
    resp = raw(endpoint, "PUT", "/agents/", service="bedrock", body=body)
    assert resp.status_code in (200, 202), resp.text
    agent = resp.json()["agent"]
    for k in ("createdAt", "updatedAt", "preparedAt"):
        assert isinstance(agent[k], str) and ISO_RE.match(agent[k]), (k, agent[k])
    agent_id = agent["agentId"]
    for path in (f"/agents/{agent_id}", f"/agents/{agent_id}/"):
        got = raw(endpoint, "GET", path)
        assert got.status_code == 200, (path, got.text)
        check_shape(got.json(), output_shape("bedrock-agent", "GetAgent"))
        assert got.json()["agent"]["customerEncryptionKeyArn"] == body["customerEncryptionKeyArn"]
    listed = raw(endpoint, "POST", "/agents/", body={})
    check_shape(listed.json(), output_shape("bedrock-agent", "ListAgents"))
    missing = raw(endpoint, "GET", "/agents/NOPE")
    assert missing.status_code == 404


# --------------------------------------------------------------------------- request log


def test_request_log_and_reset(endpoint: str, bedrock: Any, kms: Any) -> None:
    kms.create_key()
    gid = bedrock.create_guardrail(**MINIMAL)["guardrailId"]
    bedrock.get_guardrail(guardrailIdentifier=gid)
    sns = client(endpoint, "sns")
    sns.create_topic(Name="t")
    s3 = client(endpoint, "s3")
    s3.create_bucket(Bucket="bkt")

    log = requests.get(f"{endpoint}/_cmk_guard/requests").json()["requests"]
    assert [(r["service"], r["operation"]) for r in log] == [
        ("kms", "CreateKey"),
        ("bedrock", "CreateGuardrail"),
        ("bedrock", "GetGuardrail"),
        ("sns", "CreateTopic"),
        ("s3", "CreateBucket"),
    ]
    assert all(r["account"] == ACCOUNT for r in log)
    assert log[2]["method"] == "GET" and log[2]["path"] == f"/guardrails/{gid}"

    assert requests.post(f"{endpoint}/moto-api/reset").status_code == 200
    assert requests.get(f"{endpoint}/_cmk_guard/requests").json() == {"requests": []}
    with pytest.raises(ClientError):  # moto state is gone too
        bedrock.get_guardrail(guardrailIdentifier=gid)
    assert [r["operation"] for r in requests.get(f"{endpoint}/_cmk_guard/requests").json()["requests"]] == ["GetGuardrail"]

    # the account of a request is recorded
    requests.post(f"{endpoint}/moto-api/reset")
    other = boto3.client("kms", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    other.meta.events.register("before-sign.kms.*", lambda request, **_: request.headers.__setitem__("x-moto-account-id", "222222222222"))
    other.list_keys()
    log = requests.get(f"{endpoint}/_cmk_guard/requests").json()["requests"]
    assert log == [{"service": "kms", "operation": "ListKeys", "method": "POST", "path": "/", "account": "222222222222"}]
