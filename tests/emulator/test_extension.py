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
import tempfile
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


# The emulator of this session writes its call log (CMK_GUARD_CALL_LOG) here.
CALL_LOG = os.path.join(tempfile.mkdtemp(prefix="cmk-guard-emulator-test-"), "calls.jsonl")


@pytest.fixture(scope="session")
def endpoint() -> Any:
    port = _free_port()
    # stderr to a file, not a pipe: nobody reads a pipe while the tests run, and once its buffer is
    # full the server blocks writing its request log lines (and every request after them)
    log = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(
        [os.path.join(HERE, "run.sh"), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=log,
        text=True,
        env={**os.environ, "CMK_GUARD_CALL_LOG": CALL_LOG},
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
                log.seek(0)
                raise RuntimeError("emulator did not start: " + log.read())
            time.sleep(0.1)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(autouse=True)
def reset(endpoint: str) -> None:
    assert requests.post(f"{endpoint}/moto-api/reset").status_code == 200


def client(endpoint: str, service: str, **cfg: Any) -> Any:
    cfg.setdefault("retries", {"max_attempts": 1})
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(s3={"addressing_style": "path"}, **cfg),
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


def account_client(endpoint: str, service: str, account: str = ACCOUNT, region: str = REGION, **cfg: Any) -> Any:
    """A client acting in `account` (moto's x-moto-account-id header) and `region`."""
    cfg.setdefault("retries", {"max_attempts": 1})
    c = boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(**cfg),
    )
    c.meta.events.register(
        "before-sign.*.*", lambda request, **_: request.headers.__setitem__("x-moto-account-id", account)
    )
    return c


def set_options(endpoint: str, account: str = ACCOUNT, **opts: Any) -> dict[str, Any]:
    resp = requests.post(f"{endpoint}/_cmk_guard/options", json={"account": account, **opts}, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()


def request_log(endpoint: str) -> list[dict[str, Any]]:
    return requests.get(f"{endpoint}/_cmk_guard/requests", timeout=10).json()["requests"]


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
            # no action/enabled defaults for content filters (real answers leave them out)
            {"type": "PROMPT_ATTACK", "inputStrength": "HIGH", "outputStrength": "NONE"},
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

    set_options(endpoint, jobCompletionSeconds=0)  # the custom model exists once its job completed
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
    set_options(endpoint, jobCompletionSeconds=0)  # the custom model exists once its job completed
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

    set_options(endpoint, jobCompletionSeconds=None, jobStopSeconds=0)  # a running job, stopped at once
    running = _create_job(bedrock, "job4", "model4")
    bedrock.stop_model_customization_job(jobIdentifier=running)
    assert bedrock.get_model_customization_job(jobIdentifier=running)["status"] == "Stopped"

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
    for r in log:  # timings (test_request_log_times_each_answer), connection (test_connections_are_kept_alive)
        del r["received"], r["ms"], r["connection"]
    assert log == [
        {
            "service": "kms",
            "operation": "ListKeys",
            "method": "POST",
            "path": "/",
            "account": "222222222222",
            "app": None,
            "region": REGION,
            "principal": None,
            "params": {},
        }
    ]


def app_client(endpoint: str, service: str, app: str = "cmk-guard-guardrails", region: str = REGION,
               credentials: "dict[str, str] | None" = None, **cfg: Any) -> Any:
    """A client whose user agent carries `app/<app>`, as the guard's SDK clients send it."""
    cfg.setdefault("retries", {"max_attempts": 1})
    creds = credentials or {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=region,
        config=Config(user_agent_appid=app, s3={"addressing_style": "path"}, **cfg),
        **creds,
    )


def call_log_lines() -> list[dict[str, Any]]:
    if not os.path.exists(CALL_LOG):
        return []
    with open(CALL_LOG, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_request_log_says_who_called_where_and_what_was_named(endpoint: str) -> None:
    kms = app_client(endpoint, "kms", region="eu-west-1")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.describe_key(KeyId=key)
    sns = app_client(endpoint, "sns", app="cmk-guard-model-jobs")
    topic = sns.create_topic(Name="t")["TopicArn"]
    sns.publish(TopicArn=topic, Message="m" * 2000, Subject="s")
    bedrock = app_client(endpoint, "bedrock", app="cmk-guard-data-jobs")
    with pytest.raises(ClientError):
        bedrock.get_guardrail(guardrailIdentifier="abcdefabcdef", guardrailVersion="2")
    client(endpoint, "kms").list_keys()  # no app name

    log = request_log(endpoint)
    assert [(r["operation"], r["app"], r["region"]) for r in log] == [
        ("CreateKey", "cmk-guard-guardrails", "eu-west-1"),
        ("DescribeKey", "cmk-guard-guardrails", "eu-west-1"),
        ("CreateTopic", "cmk-guard-model-jobs", REGION),
        ("Publish", "cmk-guard-model-jobs", REGION),
        ("GetGuardrail", "cmk-guard-data-jobs", REGION),
        ("ListKeys", None, REGION),
    ]
    assert all(r["principal"] is None for r in log), "long-term keys: no role"
    # JSON protocols: the body; query protocol: the form without Action/Version; REST: path and
    # query string. Long strings are cut, and the record says so.
    assert log[1]["params"] == {"KeyId": key}
    publish = log[3]
    assert publish["params"]["TopicArn"] == topic and publish["params"]["Subject"] == "s"
    assert "Action" not in publish["params"] and "Version" not in publish["params"]
    assert publish["params"]["Message"].startswith("m" * 512) and publish["params"]["Message"].endswith("[2000 chars]")
    assert publish["params_truncated"] is True
    assert "params_truncated" not in log[1]
    get = log[4]["params"]
    assert get["path"] == "/guardrails/abcdefabcdef" and get["query"] == {"guardrailVersion": "2"}


def test_request_log_params_stay_small_and_keep_their_structure(endpoint: str) -> None:
    ddb = app_client(endpoint, "dynamodb", app="cmk-guard-guardrails")
    items = [{"Put": {"TableName": f"t{i}", "Item": {"id": {"S": "x" * 400}}}} for i in range(40)]
    with pytest.raises(ClientError):
        ddb.transact_write_items(TransactItems=items)
    [record] = request_log(endpoint)
    params = record["params"]
    assert record["params_truncated"] is True
    assert len(json.dumps(params)) <= 16384
    # shorter strings and lists, but every level is still there to read the names from
    assert [i["Put"]["TableName"] for i in params["TransactItems"]] == [f"t{i}" for i in range(10)]


def test_request_log_names_the_role_behind_assumed_role_credentials(endpoint: str) -> None:
    sts = app_client(endpoint, "sts")
    role = "arn:aws:iam::333333333333:role/bedrock-cmk-guard-guardrails-member"
    creds = sts.assume_role(RoleArn=role, RoleSessionName="bedrock-cmk-guard")["Credentials"]
    member = app_client(
        endpoint,
        "kms",
        credentials={
            "aws_access_key_id": creds["AccessKeyId"],
            "aws_secret_access_key": creds["SecretAccessKey"],
            "aws_session_token": creds["SessionToken"],
        },
    )
    member.list_keys()
    assume, listed = request_log(endpoint)
    assert (assume["operation"], assume["account"], assume["principal"]) == ("AssumeRole", ACCOUNT, None)
    assert assume["params"]["RoleArn"] == role and assume["params"]["RoleSessionName"] == "bedrock-cmk-guard"
    assert (listed["operation"], listed["account"], listed["principal"]) == ("ListKeys", "333333333333", role)


def test_call_log_file_keeps_every_app_request_across_resets(endpoint: str) -> None:
    marker = f"marker-{time.time_ns()}"
    ssm = app_client(endpoint, "ssm", app="cmk-guard-invocation-logging")
    with pytest.raises(ClientError):
        ssm.get_parameter(Name=f"/{marker}/before-reset")
    client(endpoint, "ssm").put_parameter(Name=f"/{marker}/no-app", Value="v", Type="String")
    assert requests.delete(f"{endpoint}/_cmk_guard/requests").status_code == 200
    assert requests.post(f"{endpoint}/moto-api/reset").status_code == 200
    set_options(endpoint, faults=[{"operation": "ssm:GetParameter", "code": "ThrottlingException", "count": 1}])
    with pytest.raises(ClientError):
        ssm.get_parameter(Name=f"/{marker}/after-reset")

    mine = [r for r in call_log_lines() if marker in json.dumps(r)]
    assert [(r["operation"], r["params"]["Name"], r.get("fault")) for r in mine] == [
        ("GetParameter", f"/{marker}/before-reset", None),
        ("GetParameter", f"/{marker}/after-reset", "ThrottlingException"),
        ("GetParameter", f"/{marker}/after-reset", None),  # botocore's retry
    ], "only requests with an app (faults and retries included), and resets never clear the file"
    assert all(r["app"] == "cmk-guard-invocation-logging" and r["account"] == ACCOUNT for r in mine)
    assert set(mine[0]) >= {"service", "operation", "method", "path", "account", "app", "region", "principal", "params"}


def test_call_log_file_lines_stay_whole_under_concurrent_requests(endpoint: str) -> None:
    import concurrent.futures

    marker = f"concurrent-{time.time_ns()}"

    def work(n: int) -> None:
        ddb = app_client(endpoint, "dynamodb", app="cmk-guard-model-jobs")
        for i in range(10):
            with pytest.raises(ClientError):
                ddb.get_item(TableName=f"{marker}-{n}-{i}", Key={"id": {"S": "x" * 300}})

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(work, range(8)))
    mine = [r for r in call_log_lines() if marker in r["params"].get("TableName", "")]
    assert sorted(r["params"]["TableName"] for r in mine) == sorted(
        f"{marker}-{n}-{i}" for n in range(8) for i in range(10)
    )


# --------------------------------------------------------------------------- options endpoint

OTHER = "222222222222"


def test_options_endpoint(endpoint: str) -> None:
    url = f"{endpoint}/_cmk_guard/options"
    assert requests.get(f"{url}?account={ACCOUNT}").json() == {}
    assert set_options(endpoint, guardrailTransitionSeconds=2) == {"guardrailTransitionSeconds": 2.0}
    merged = set_options(endpoint, guardrailUpdateFailure="boom")
    assert merged == {"guardrailTransitionSeconds": 2.0, "guardrailUpdateFailure": "boom"}
    assert requests.get(f"{url}?account={ACCOUNT}").json() == merged
    assert set_options(endpoint, guardrailTransitionSeconds=None) == {"guardrailUpdateFailure": "boom"}

    # per account
    assert requests.get(f"{url}?account={OTHER}").json() == {}
    set_options(endpoint, account=OTHER, getGuardrailExtraMembers={"x": 1})
    assert requests.get(f"{url}?account={OTHER}").json() == {"getGuardrailExtraMembers": {"x": 1}}
    assert requests.get(f"{url}?account={ACCOUNT}").json() == {"guardrailUpdateFailure": "boom"}

    # refused: unknown names, bad values, bad accounts -> 400 and nothing changes
    for body in (
        {"account": ACCOUNT, "guardrailTransitionSecs": 1},
        {"account": ACCOUNT, "guardrailTransitionSeconds": -1},
        {"account": ACCOUNT, "guardrailTransitionSeconds": "1"},
        {"account": ACCOUNT, "guardrailUpdateFailure": 3},
        {"account": ACCOUNT, "getGuardrailExtraMembers": ["x"]},
        {"account": ACCOUNT, "getGuardrailExtraMembers": {"a..b": 1}},
        {"account": ACCOUNT, "faults": {"operation": "kms:DescribeKey"}},
        {"account": ACCOUNT, "faults": [{"operation": "kms:DescribeKeys", "code": "X"}]},
        {"account": ACCOUNT, "faults": [{"operation": "kmz:DescribeKey", "code": "X"}]},
        {"account": ACCOUNT, "faults": [{"operation": "DescribeKey", "code": "X"}]},
        {"account": ACCOUNT, "faults": [{"operation": "kms:DescribeKey"}]},
        {"account": ACCOUNT, "faults": [{"operation": "kms:DescribeKey", "code": "X", "status": 200}]},
        {"account": ACCOUNT, "faults": [{"operation": "kms:DescribeKey", "code": "X", "count": -1}]},
        {"account": ACCOUNT, "faults": [{"operation": "kms:DescribeKey", "code": "X", "times": 1}]},
        {"account": ACCOUNT, "guardrailUpdateFailure": None, "typo": 1},
        {"account": "1234", "guardrailTransitionSeconds": 1},
        {"guardrailTransitionSeconds": 1},
    ):
        resp = requests.post(url, json=body)
        assert resp.status_code == 400, body
        assert resp.json()["message"], body
    assert requests.post(url, data="not json").status_code == 400
    assert requests.get(url).status_code == 400
    assert requests.get(f"{url}?account={ACCOUNT}").json() == {"guardrailUpdateFailure": "boom"}

    # not in the request log; reset clears every account's options
    assert request_log(endpoint) == []
    assert requests.post(f"{endpoint}/moto-api/reset").status_code == 200
    assert requests.get(f"{url}?account={ACCOUNT}").json() == {}
    assert requests.get(f"{url}?account={OTHER}").json() == {}


# --------------------------------------------------------------------------- guardrail status transitions

TRANSITION = 1.5  # seconds; long enough for a loaded machine, short enough for a test


def _status(endpoint: str, gid: str, version: str | None = None) -> str:
    return get_raw_guardrail(endpoint, gid, version)["status"]


def _conflict(call: Any) -> None:
    with pytest.raises(ClientError) as e:
        call()
    assert error_of(e.value) == ("ConflictException", 400)


def test_guardrail_status_transitions(endpoint: str, bedrock: Any) -> None:
    set_options(endpoint, guardrailTransitionSeconds=TRANSITION)
    gid = bedrock.create_guardrail(**MINIMAL)["guardrailId"]
    body = get_raw_guardrail(endpoint, gid)
    assert body["status"] == "CREATING"
    assert [g["status"] for g in bedrock.list_guardrails()["guardrails"]] == ["CREATING"]
    update = lambda: bedrock.update_guardrail(guardrailIdentifier=gid, **MINIMAL)  # noqa: E731
    _conflict(update)
    _conflict(lambda: bedrock.create_guardrail_version(guardrailIdentifier=gid))
    _conflict(lambda: bedrock.delete_guardrail(guardrailIdentifier=gid))
    time.sleep(TRANSITION + 0.2)
    ready = get_raw_guardrail(endpoint, gid)
    assert ready["status"] == "READY" and ready["updatedAt"] == body["updatedAt"]

    upd = update()
    body = get_raw_guardrail(endpoint, gid)
    assert body["status"] == "UPDATING" and body["updatedAt"] == iso_of(upd["updatedAt"])
    assert bedrock.list_guardrails(guardrailIdentifier=gid)["guardrails"][0]["status"] == "UPDATING"
    _conflict(update)
    time.sleep(TRANSITION + 0.2)
    after = get_raw_guardrail(endpoint, gid)
    assert after["status"] == "READY" and after["updatedAt"] == body["updatedAt"]

    version = bedrock.create_guardrail_version(guardrailIdentifier=gid)["version"]
    assert _status(endpoint, gid, version) == "VERSIONING"
    assert _status(endpoint, gid) == "READY"  # the DRAFT is not changing
    listed = {g["version"]: g["status"] for g in bedrock.list_guardrails(guardrailIdentifier=gid)["guardrails"]}
    assert listed == {"DRAFT": "READY", version: "VERSIONING"}
    _conflict(lambda: bedrock.delete_guardrail(guardrailIdentifier=gid, guardrailVersion=version))
    _conflict(lambda: bedrock.delete_guardrail(guardrailIdentifier=gid))
    time.sleep(TRANSITION + 0.2)
    assert _status(endpoint, gid, version) == "READY"
    bedrock.delete_guardrail(guardrailIdentifier=gid)


def iso_of(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_guardrail_transitions_are_per_account(endpoint: str, bedrock: Any) -> None:
    set_options(endpoint, account=OTHER, guardrailTransitionSeconds=60)
    other = account_client(endpoint, "bedrock", OTHER)
    gid_other = other.create_guardrail(**MINIMAL)["guardrailId"]
    gid = bedrock.create_guardrail(**MINIMAL)["guardrailId"]
    assert other.get_guardrail(guardrailIdentifier=gid_other)["status"] == "CREATING"
    assert bedrock.get_guardrail(guardrailIdentifier=gid)["status"] == "READY"  # default: no transition


def test_guardrail_update_failure(endpoint: str, bedrock: Any) -> None:
    gid = bedrock.create_guardrail(**MINIMAL)["guardrailId"]
    set_options(endpoint, guardrailUpdateFailure="The KMS key is not usable")
    bedrock.update_guardrail(guardrailIdentifier=gid, **{**MINIMAL, "name": "failing"}, description="new")
    body = get_raw_guardrail(endpoint, gid)
    assert body["status"] == "FAILED"
    assert body["statusReasons"] == ["The KMS key is not usable"]
    assert len(body["failureRecommendations"]) == 1 and body["failureRecommendations"][0]
    assert body["name"] == "failing" and body["description"] == "new"  # the content is stored
    assert bedrock.list_guardrails()["guardrails"][0]["status"] == "FAILED"
    _conflict(lambda: bedrock.create_guardrail_version(guardrailIdentifier=gid))

    # with a transition: UPDATING first, then FAILED
    set_options(endpoint, guardrailTransitionSeconds=TRANSITION)
    bedrock.update_guardrail(guardrailIdentifier=gid, **{**MINIMAL, "name": "failing2"})
    assert _status(endpoint, gid) == "UPDATING"
    time.sleep(TRANSITION + 0.2)
    assert _status(endpoint, gid) == "FAILED"

    # a later update without the option brings it back
    set_options(endpoint, guardrailUpdateFailure=None, guardrailTransitionSeconds=None)
    bedrock.update_guardrail(guardrailIdentifier=gid, **MINIMAL)
    body = get_raw_guardrail(endpoint, gid)
    assert body["status"] == "READY" and body["statusReasons"] == [] and body["failureRecommendations"] == []
    assert bedrock.create_guardrail_version(guardrailIdentifier=gid)["version"] == "1"

    # a FAILED guardrail can be deleted
    set_options(endpoint, guardrailUpdateFailure="again")
    bedrock.update_guardrail(guardrailIdentifier=gid, **MINIMAL)
    assert _status(endpoint, gid) == "FAILED"
    bedrock.delete_guardrail(guardrailIdentifier=gid)


# --------------------------------------------------------------------------- unknown future members


def test_get_guardrail_extra_members(endpoint: str, bedrock: Any) -> None:
    gid = bedrock.create_guardrail(
        **MINIMAL,
        contentPolicyConfig={"filtersConfig": [{"type": "HATE", "inputStrength": "HIGH", "outputStrength": "HIGH"}]},
    )["guardrailId"]
    bedrock.create_guardrail_version(guardrailIdentifier=gid)
    set_options(
        endpoint,
        getGuardrailExtraMembers={
            "futurePolicy": {"enabled": True},
            "contentPolicy.filters.0.futureSetting": "x",
            "contentPolicy.filters.5.futureSetting": "skipped: no such filter",
            "wordPolicy.futureList": ["skipped: no wordPolicy"],
            "status": "FUTURE_STATUS",
        },
    )
    for version in (None, "1"):
        path = f"/guardrails/{gid}" + (f"?guardrailVersion={version}" if version else "")
        body = raw(endpoint, "GET", path).json()
        assert body["futurePolicy"] == {"enabled": True}
        assert body["contentPolicy"]["filters"][0]["futureSetting"] == "x"
        assert len(body["contentPolicy"]["filters"]) == 1 and "wordPolicy" not in body
        assert body["status"] == "FUTURE_STATUS"  # an enum value the SDK does not know
    # boto3 (like the Rust SDK) skips members it does not know
    got = bedrock.get_guardrail(guardrailIdentifier=gid)
    assert "futurePolicy" not in got and got["contentPolicy"]["filters"][0]["type"] == "HATE"
    # other accounts and other operations are untouched
    other = account_client(endpoint, "bedrock", OTHER)
    ogid = other.create_guardrail(**MINIMAL)["guardrailId"]
    assert "futurePolicy" not in get_raw_guardrail_as(endpoint, ogid, OTHER)
    listed = raw(endpoint, "GET", "/guardrails").json()
    check_shape(listed, output_shape("bedrock", "ListGuardrails"))


def get_raw_guardrail_as(endpoint: str, gid: str, account: str) -> dict[str, Any]:
    resp = requests.get(
        f"{endpoint}/guardrails/{gid}",
        headers={
            "Authorization": f"AWS4-HMAC-SHA256 Credential=testing/20260101/{REGION}/bedrock/aws4_request, "
            "SignedHeaders=host, Signature=0",
            "x-moto-account-id": account,
        },
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_content_filter_defaults_not_invented(endpoint: str, bedrock: Any) -> None:
    gid = bedrock.create_guardrail(
        **MINIMAL,
        contentPolicyConfig={"filtersConfig": [{"type": "VIOLENCE", "inputStrength": "LOW", "outputStrength": "HIGH"}]},
        topicPolicyConfig={"topicsConfig": [{"name": "t", "definition": "d", "type": "DENY"}]},
    )["guardrailId"]
    body = get_raw_guardrail(endpoint, gid)
    assert body["contentPolicy"] == {
        "filters": [{"type": "VIOLENCE", "inputStrength": "LOW", "outputStrength": "HIGH"}],
        "tier": {"tierName": "CLASSIC"},
    }
    # topics keep their (assumed) defaults
    assert body["topicPolicy"]["topics"][0]["inputAction"] == "BLOCK"


# --------------------------------------------------------------------------- fault injection

FAULT_MESSAGE = "slow down <please> & retry"


def _ddb_table(ddb: Any) -> None:
    ddb.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


FAULT_CASES = {
    "bedrock:GetGuardrail": (
        "bedrock",
        lambda c, ctx: c.get_guardrail(guardrailIdentifier=ctx["gid"]),
    ),
    "kms:DescribeKey": ("kms", lambda c, ctx: c.describe_key(KeyId=ctx["key"])),
    "dynamodb:PutItem": ("dynamodb", lambda c, ctx: c.put_item(TableName="t", Item={"pk": {"S": "a"}})),
    "ssm:GetParameter": ("ssm", lambda c, ctx: c.get_parameter(Name="p")),
    "sns:Publish": ("sns", lambda c, ctx: c.publish(TopicArn=ctx["topic"], Message="m")),
    "sts:GetCallerIdentity": ("sts", lambda c, ctx: c.get_caller_identity()),
}


@pytest.mark.parametrize("operation", sorted(FAULT_CASES))
@pytest.mark.parametrize("status", [400, 503])
def test_fault_injection_per_protocol(endpoint: str, bedrock: Any, kms: Any, operation: str, status: int) -> None:
    ctx = {
        "gid": bedrock.create_guardrail(**MINIMAL)["guardrailId"],
        "key": kms.create_key()["KeyMetadata"]["KeyId"],
        "topic": client(endpoint, "sns").create_topic(Name="t")["TopicArn"],
    }
    _ddb_table(client(endpoint, "dynamodb"))
    client(endpoint, "ssm").put_parameter(Name="p", Value="v", Type="String")
    service, call = FAULT_CASES[operation]
    code = "ThrottlingException" if status == 400 else "ServiceUnavailable"
    set_options(endpoint, faults=[{"operation": operation, "code": code, "status": status, "message": FAULT_MESSAGE, "count": 1}])
    c = client(endpoint, service, retries={"total_max_attempts": 1})  # no SDK retries
    with pytest.raises(ClientError) as e:
        call(c, ctx)
    assert error_of(e.value) == (code, status)
    assert e.value.response["Error"]["Message"] == FAULT_MESSAGE
    call(c, ctx)  # count 1: consumed
    log = [r for r in request_log(endpoint) if f"{r['service']}:{r['operation']}" == operation]
    assert [r.get("fault") for r in log][-2:] == [code, None]
    assert set_options(endpoint)["faults"][0]["count"] == 0


def test_fault_wire_formats(endpoint: str, bedrock: Any) -> None:
    set_options(
        endpoint,
        faults=[
            {"operation": "bedrock:ListGuardrails", "code": "ThrottlingException"},  # no status: the model's (429)
            {"operation": "dynamodb:GetItem", "code": "ProvisionedThroughputExceededException", "message": "m"},
            {"operation": "kms:ListKeys", "code": "KMSInternalException", "status": 500},
            {"operation": "sns:ListTopics", "code": "Throttled", "status": 400},
            {"operation": "sts:GetCallerIdentity", "code": "InternalFailure", "status": 500},
        ],
    )
    resp = raw(endpoint, "GET", "/guardrails")
    assert resp.status_code == 429
    assert resp.headers["x-amzn-ErrorType"] == "ThrottlingException"
    assert resp.json() == {"message": "Injected by the cmk-guard emulator (option faults)"}

    def target(service: str, prefix: str, op: str, version: str) -> requests.Response:
        return requests.post(
            endpoint + "/",
            data="{}",
            headers={
                "Authorization": f"AWS4-HMAC-SHA256 Credential=testing/20260101/{REGION}/{service}/aws4_request, "
                "SignedHeaders=host, Signature=0",
                "X-Amz-Target": f"{prefix}.{op}",
                "Content-Type": f"application/x-amz-json-{version}",
            },
            timeout=10,
        )

    resp = target("dynamodb", "DynamoDB_20120810", "GetItem", "1.0")
    assert resp.status_code == 400 and resp.headers["Content-Type"] == "application/x-amz-json-1.0"
    assert resp.json() == {
        "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        "message": "m",
    }
    resp = target("kms", "TrentService", "ListKeys", "1.1")
    assert resp.status_code == 500 and resp.json()["__type"] == "KMSInternalException"

    def query(service: str, action: str, version: str) -> requests.Response:
        return requests.post(
            endpoint + "/",
            data=f"Action={action}&Version={version}",
            headers={
                "Authorization": f"AWS4-HMAC-SHA256 Credential=testing/20260101/{REGION}/{service}/aws4_request, "
                "SignedHeaders=host, Signature=0",
                "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
            },
            timeout=10,
        )

    resp = query("sns", "ListTopics", "2010-03-31")
    assert resp.status_code == 400
    assert re.search(r"<Error><Type>Sender</Type><Code>Throttled</Code><Message>[^<]+</Message></Error>", resp.text)
    assert re.search(r"</Error><RequestId>[^<]+</RequestId></ErrorResponse>$", resp.text)
    resp = query("sts", "GetCallerIdentity", "2011-06-15")
    assert resp.status_code == 500 and "<Type>Receiver</Type><Code>InternalFailure</Code>" in resp.text

    # the SDKs read all of these
    with pytest.raises(ClientError) as e:
        client(endpoint, "sts", retries={"total_max_attempts": 1}).get_caller_identity()
    assert error_of(e.value) == ("InternalFailure", 500)
    with pytest.raises(ClientError) as e:
        client(endpoint, "dynamodb", retries={"total_max_attempts": 1}).get_item(TableName="x", Key={"k": {"S": "v"}})
    assert error_of(e.value) == ("ProvisionedThroughputExceededException", 400)


def test_fault_counts_retries_and_accounts(endpoint: str, kms: Any) -> None:
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    set_options(endpoint, faults=[{"operation": "kms:DescribeKey", "code": "ThrottlingException", "status": 400, "count": 2}])
    # the SDK's standard retry mode retries throttling: 2 faults, then the real answer
    retrying = client(endpoint, "kms", retries={"mode": "standard", "total_max_attempts": 3})
    assert retrying.describe_key(KeyId=key)["KeyMetadata"]["KeyId"] == key
    attempts = [r for r in request_log(endpoint) if r["operation"] == "DescribeKey"]
    assert [r.get("fault") for r in attempts] == ["ThrottlingException", "ThrottlingException", None]

    # count absent: forever; other accounts and other operations are not affected
    set_options(endpoint, faults=[{"operation": "kms:DescribeKey", "code": "AccessDeniedException"}])
    once = client(endpoint, "kms", retries={"total_max_attempts": 1})
    for _ in range(3):
        with pytest.raises(ClientError) as e:
            once.describe_key(KeyId=key)
        assert error_of(e.value) == ("AccessDeniedException", 400)
    assert once.list_keys()["Keys"]
    other = account_client(endpoint, "kms", OTHER)
    other_key = other.create_key()["KeyMetadata"]["KeyId"]
    assert other.describe_key(KeyId=other_key)["KeyMetadata"]["KeyId"] == other_key
    # removing the option ends it
    set_options(endpoint, faults=None)
    assert once.describe_key(KeyId=key)["KeyMetadata"]["KeyId"] == key


def test_fault_does_not_reach_moto(endpoint: str, bedrock: Any) -> None:
    set_options(endpoint, faults=[{"operation": "bedrock:CreateGuardrail", "code": "ServiceQuotaExceededException", "count": 1}])
    with pytest.raises(ClientError) as e:
        client(endpoint, "bedrock", retries={"total_max_attempts": 1}).create_guardrail(**MINIMAL)
    assert error_of(e.value) == ("ServiceQuotaExceededException", 400)
    assert bedrock.list_guardrails()["guardrails"] == []  # nothing was created
    bedrock.create_guardrail(**MINIMAL)  # and the name is still free


def test_fault_delay_answers_late_then_normally(endpoint: str, kms: Any) -> None:
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    set_options(endpoint, faults=[{"operation": "kms:DescribeKey", "delaySeconds": 0.4, "count": 1}])
    started = time.monotonic()
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyId"] == key
    assert time.monotonic() - started >= 0.4
    started = time.monotonic()
    kms.describe_key(KeyId=key)
    assert time.monotonic() - started < 0.4, "count 1: only the first answer is late"
    log = [r for r in request_log(endpoint) if r["operation"] == "DescribeKey"]
    assert [r.get("delayed") for r in log] == [0.4, None]
    # a delay and a code: late, then the error
    set_options(endpoint, faults=[{"operation": "kms:DescribeKey", "delaySeconds": 0.1, "code": "ThrottlingException", "count": 1}])
    with pytest.raises(ClientError) as e:
        client(endpoint, "kms", retries={"total_max_attempts": 1}).describe_key(KeyId=key)
    assert error_of(e.value)[0] == "ThrottlingException"
    # neither: refused
    r = requests.post(f"{endpoint}/_cmk_guard/options", json={"account": ACCOUNT, "faults": [{"operation": "kms:DescribeKey"}]})
    assert r.status_code == 400 and "delaySeconds" in r.json()["message"]


# --------------------------------------------------------------------------- KMS key kinds, origins, accounts, Regions


def test_kms_key_specs_and_usages(kms: Any) -> None:
    meta = kms.create_key()["KeyMetadata"]
    assert (meta["KeySpec"], meta["CustomerMasterKeySpec"], meta["KeyUsage"]) == ("SYMMETRIC_DEFAULT", "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")
    assert meta["EncryptionAlgorithms"] == ["SYMMETRIC_DEFAULT"] and "SigningAlgorithms" not in meta
    assert meta["MultiRegion"] is False and meta["Origin"] == "AWS_KMS"

    cases = [
        ("RSA_2048", "SIGN_VERIFY", "SigningAlgorithms"),
        ("RSA_2048", "ENCRYPT_DECRYPT", "EncryptionAlgorithms"),
        ("ECC_NIST_P256", "SIGN_VERIFY", "SigningAlgorithms"),
        ("ECC_NIST_P256", "KEY_AGREEMENT", "KeyAgreementAlgorithms"),
        ("HMAC_256", "GENERATE_VERIFY_MAC", "MacAlgorithms"),
    ]
    lists = {"EncryptionAlgorithms", "SigningAlgorithms", "MacAlgorithms", "KeyAgreementAlgorithms"}
    for spec, usage, algos in cases:
        created = kms.create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]
        meta = kms.describe_key(KeyId=created["KeyId"])["KeyMetadata"]
        assert (meta["KeySpec"], meta["CustomerMasterKeySpec"], meta["KeyUsage"]) == (spec, spec, usage)
        assert meta[algos], (spec, usage)
        assert lists & set(meta) == {algos}, (spec, usage)
    assert kms.describe_key(KeyId=kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]["KeyId"])["KeyMetadata"]["MacAlgorithms"] == ["HMAC_SHA_256"]
    # the deprecated CustomerMasterKeySpec works the same way
    meta = kms.create_key(CustomerMasterKeySpec="RSA_4096", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]
    assert meta["KeySpec"] == "RSA_4096" and meta["EncryptionAlgorithms"] == ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"]

    # pairs the model's KeyUsage documentation rules out
    for kw in (
        {"KeySpec": "SYMMETRIC_DEFAULT", "KeyUsage": "SIGN_VERIFY"},
        {"KeySpec": "HMAC_256"},  # KeyUsage is required for all but symmetric encryption keys
        {"KeySpec": "ECC_NIST_P256"},
        {"KeySpec": "ECC_NIST_P256", "KeyUsage": "ENCRYPT_DECRYPT"},
        {"KeySpec": "RSA_2048", "KeyUsage": "GENERATE_VERIFY_MAC"},
    ):
        with pytest.raises(ClientError) as e:
            kms.create_key(**kw)
        assert error_of(e.value) == ("ValidationException", 400), kw


def test_kms_external_origin_is_pending_import(kms: Any) -> None:
    meta = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]
    assert (meta["Origin"], meta["KeyState"], meta["Enabled"]) == ("EXTERNAL", "PendingImport", False)
    described = kms.describe_key(KeyId=meta["Arn"])["KeyMetadata"]
    assert (described["KeyState"], described["Enabled"]) == ("PendingImport", False)
    assert kms.describe_key(KeyId=kms.create_key()["KeyMetadata"]["KeyId"])["KeyMetadata"]["KeyState"] == "Enabled"


def test_bedrock_refuses_non_symmetric_keys(endpoint: str, bedrock: Any, kms: Any) -> None:
    good = kms.create_key()["KeyMetadata"]
    gid = bedrock.create_guardrail(**MINIMAL, kmsKeyId=good["Arn"])["guardrailId"]
    for kw in (
        {"KeySpec": "RSA_2048", "KeyUsage": "ENCRYPT_DECRYPT"},
        {"KeySpec": "RSA_2048", "KeyUsage": "SIGN_VERIFY"},
        {"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"},
        {"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"},
    ):
        bad = kms.create_key(**kw)["KeyMetadata"]
        for ref in (bad["KeyId"], bad["Arn"]):
            with pytest.raises(ClientError) as e:
                bedrock.create_guardrail(**{**MINIMAL, "name": "other"}, kmsKeyId=ref)
            assert error_of(e.value) == ("ValidationException", 400), kw
            with pytest.raises(ClientError) as e:
                bedrock.update_guardrail(guardrailIdentifier=gid, **MINIMAL, kmsKeyId=ref)
            assert error_of(e.value) == ("ValidationException", 400), kw
    assert get_raw_guardrail(endpoint, gid)["kmsKeyArn"] == good["Arn"]  # unchanged
    assert [g["name"] for g in bedrock.list_guardrails()["guardrails"]] == ["g"]


def test_kms_describe_key_in_another_account(endpoint: str, kms: Any) -> None:
    other = account_client(endpoint, "kms", OTHER)
    key = other.create_key(Description="theirs")["KeyMetadata"]
    other.create_alias(AliasName="alias/theirs", TargetKeyId=key["KeyId"])
    alias_arn = f"arn:aws:kms:{REGION}:{OTHER}:alias/theirs"
    for ref in (key["Arn"], alias_arn):
        meta = kms.describe_key(KeyId=ref)["KeyMetadata"]
        assert (meta["Arn"], meta["AWSAccountId"], meta["Description"]) == (key["Arn"], OTHER, "theirs")
    # a bare key id or alias name always means the caller's own account
    for ref in (key["KeyId"], "alias/theirs"):
        with pytest.raises(ClientError) as e:
            kms.describe_key(KeyId=ref)
        assert error_of(e.value)[0] == "NotFoundException"
    # our own key by ARN still works, and the other account can describe ours
    mine = kms.create_key()["KeyMetadata"]
    assert kms.describe_key(KeyId=mine["Arn"])["KeyMetadata"]["KeyId"] == mine["KeyId"]
    assert other.describe_key(KeyId=mine["Arn"])["KeyMetadata"]["AWSAccountId"] == ACCOUNT
    with pytest.raises(ClientError) as e:
        kms.describe_key(KeyId=f"arn:aws:kms:{REGION}:{OTHER}:key/{mine['KeyId']}")
    assert error_of(e.value)[0] == "NotFoundException"


def test_kms_arn_of_another_region(endpoint: str, bedrock: Any, kms: Any) -> None:
    west = account_client(endpoint, "kms", ACCOUNT, region="us-west-2")
    key = west.create_key()["KeyMetadata"]
    west.create_alias(AliasName="alias/west", TargetKeyId=key["KeyId"])
    assert key["Arn"].startswith("arn:aws:kms:us-west-2:")
    assert west.describe_key(KeyId=key["Arn"])["KeyMetadata"]["KeyId"] == key["KeyId"]
    for ref in (key["Arn"], f"arn:aws:kms:us-west-2:{ACCOUNT}:alias/west", f"arn:aws:kms:us-west-2:{OTHER}:key/{key['KeyId']}"):
        with pytest.raises(ClientError) as e:
            kms.describe_key(KeyId=ref)
        assert error_of(e.value) == ("NotFoundException", 400), ref
        assert e.value.response["Error"]["Message"] == "Invalid arn us-west-2"
    with pytest.raises(ClientError) as e:
        kms.disable_key(KeyId=key["Arn"])
    assert error_of(e.value)[0] == "NotFoundException"
    assert west.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "Enabled"
    # Bedrock in us-east-1 cannot use it either
    with pytest.raises(ClientError) as e:
        bedrock.create_guardrail(**MINIMAL, kmsKeyId=key["Arn"])
    assert error_of(e.value) == ("ValidationException", 400)


def test_guardrail_key_of_another_account(endpoint: str, bedrock: Any) -> None:
    other = account_client(endpoint, "kms", OTHER)
    key = other.create_key()["KeyMetadata"]
    gid = bedrock.create_guardrail(**MINIMAL, kmsKeyId=key["Arn"])["guardrailId"]
    assert get_raw_guardrail(endpoint, gid)["kmsKeyArn"] == key["Arn"]


# --------------------------------------------------------------------------- DynamoDB (what the Rust ledger relies on)


def test_dynamodb_ledger_features(endpoint: str) -> None:
    ddb = client(endpoint, "dynamodb")
    ddb.create_table(
        TableName="ledger",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    key = {"pk": {"S": "a"}, "sk": {"S": "1"}}

    def failed_check(call: Any) -> dict[str, Any]:
        with pytest.raises(ClientError) as e:
            call()
        assert error_of(e.value) == ("ConditionalCheckFailedException", 400)
        return e.value.response

    # PutItem with attribute_not_exists: first wins, second fails
    ddb.put_item(TableName="ledger", Item={**key, "n": {"N": "1"}, "exp": {"N": "100"}}, ConditionExpression="attribute_not_exists(pk)")
    put_again = lambda **kw: ddb.put_item(  # noqa: E731
        TableName="ledger", Item={**key, "n": {"N": "2"}}, ConditionExpression="attribute_not_exists(pk)", **kw
    )
    assert "Item" not in failed_check(put_again)
    # ReturnValuesOnConditionCheckFailure=ALL_OLD: the error carries the item
    assert failed_check(lambda: put_again(ReturnValuesOnConditionCheckFailure="ALL_OLD"))["Item"] == {
        **key, "n": {"N": "1"}, "exp": {"N": "100"}
    }

    # UpdateItem: OR / AND / < conditions, ReturnValues ALL_NEW / ALL_OLD / UPDATED_NEW
    lease = lambda now, **kw: ddb.update_item(  # noqa: E731
        TableName="ledger",
        Key=key,
        UpdateExpression="SET n = :n, exp = :exp",
        ConditionExpression="attribute_not_exists(pk) OR (attribute_exists(exp) AND exp < :now)",
        ExpressionAttributeValues={":n": {"N": "3"}, ":exp": {"N": str(now + 100)}, ":now": {"N": str(now)}},
        **kw,
    )
    assert lease(200, ReturnValues="ALL_NEW")["Attributes"] == {**key, "n": {"N": "3"}, "exp": {"N": "300"}}
    held = failed_check(lambda: lease(250, ReturnValues="ALL_NEW", ReturnValuesOnConditionCheckFailure="ALL_OLD"))
    assert held["Item"]["exp"] == {"N": "300"}
    assert lease(400, ReturnValues="ALL_OLD")["Attributes"]["exp"] == {"N": "300"}

    # SET with if_not_exists and list_append, REMOVE
    append = lambda v: ddb.update_item(  # noqa: E731
        TableName="ledger",
        Key=key,
        UpdateExpression="SET seen = list_append(if_not_exists(seen, :empty), :v), c = if_not_exists(c, :zero) + :one REMOVE exp",
        ExpressionAttributeValues={":empty": {"L": []}, ":v": {"L": [{"S": v}]}, ":zero": {"N": "0"}, ":one": {"N": "1"}},
        ReturnValues="UPDATED_NEW",
    )["Attributes"]
    assert append("x") == {"seen": {"L": [{"S": "x"}]}, "c": {"N": "1"}}
    assert append("y") == {"seen": {"L": [{"S": "x"}, {"S": "y"}]}, "c": {"N": "2"}}
    item = ddb.get_item(TableName="ledger", Key=key, ConsistentRead=True)["Item"]
    assert "exp" not in item and item["n"] == {"N": "3"}

    # TransactWriteItems with conditions: all or nothing; reasons per item
    new = {"pk": {"S": "b"}, "sk": {"S": "1"}}
    ddb.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": "ledger", "Item": new, "ConditionExpression": "attribute_not_exists(pk)"}},
            {"ConditionCheck": {"TableName": "ledger", "Key": key, "ConditionExpression": "c = :two", "ExpressionAttributeValues": {":two": {"N": "2"}}}},
        ]
    )
    with pytest.raises(ClientError) as e:
        ddb.transact_write_items(
            TransactItems=[
                {"Update": {"TableName": "ledger", "Key": key, "UpdateExpression": "SET c = :nine", "ExpressionAttributeValues": {":nine": {"N": "9"}}}},
                {"Put": {"TableName": "ledger", "Item": new, "ConditionExpression": "attribute_not_exists(pk)", "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}},
            ]
        )
    assert error_of(e.value) == ("TransactionCanceledException", 400)
    reasons = e.value.response["CancellationReasons"]
    assert [r["Code"] for r in reasons] == ["None", "ConditionalCheckFailed"] and reasons[1]["Item"] == new
    assert ddb.get_item(TableName="ledger", Key=key, ConsistentRead=True)["Item"]["c"] == {"N": "2"}  # nothing written
    # a new item put before the failing check is taken back too, and a table of another
    # transaction is untouched
    fresh = {"pk": {"S": "c"}, "sk": {"S": "1"}}
    with pytest.raises(ClientError) as e:
        ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": "ledger", "Item": fresh}},
                {"Update": {"TableName": "ledger", "Key": key, "UpdateExpression": "SET c = :nine", "ExpressionAttributeValues": {":nine": {"N": "9"}}}},
                {"ConditionCheck": {"TableName": "ledger", "Key": new, "ConditionExpression": "attribute_not_exists(pk)"}},
            ]
        )
    assert [r["Code"] for r in e.value.response["CancellationReasons"]] == ["None", "None", "ConditionalCheckFailed"]
    assert "Item" not in ddb.get_item(TableName="ledger", Key=fresh, ConsistentRead=True)
    assert ddb.get_item(TableName="ledger", Key=key, ConsistentRead=True)["Item"]["c"] == {"N": "2"}
    assert ddb.get_item(TableName="ledger", Key=new, ConsistentRead=True)["Item"] == new


# --------------------------------------------------------------------------- the Rust tests' fixture


def test_every_member_fixture_sets_every_member_of_the_model(endpoint: str, bedrock: Any) -> None:
    """tests/fixtures/guardrails/every-member.json is what the Rust remediation test writes back
    member for member: it must set every member CreateGuardrailRequest has (but the key and the
    idempotency token), with two elements in every list, and the emulator must accept it."""
    path = os.path.join(HERE, "..", "fixtures", "guardrails", "every-member.json")
    with open(path) as f:
        doc = json.loads(f.read().replace("ACCOUNT", ACCOUNT))
    shape = Session().get_service_model("bedrock").operation_model("CreateGuardrail").input_shape
    missing: list[str] = []

    def walk(value: Any, s: Any, at: str) -> None:
        if s.type_name == "structure":
            for name, member in s.members.items():
                if not at and name in ("kmsKeyId", "clientRequestToken"):
                    continue
                if name not in value:
                    missing.append(at + name)
                else:
                    walk(value[name], member, f"{at}{name}.")
        elif s.type_name == "list":
            if len(value) < min(2, s.metadata.get("max", 2)):
                missing.append(f"{at} has fewer than two elements")
            for item in value:
                walk(item, s.member, at)

    walk(doc, shape, "")
    assert missing == [], f"every-member.json misses {missing}"
    created = bedrock.create_guardrail(**doc)
    got = get_raw_guardrail(endpoint, created["guardrailId"])
    assert len(got["topicPolicy"]["topics"]) == 2 and "crossRegionDetails" in got


# --------------------------------------------------------------------------- CloudWatch Logs: customer managed keys

LOGS_ACTIONS = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]


def key_policy(*statements: dict[str, Any], account: str = ACCOUNT) -> str:
    """The default key policy (account root may do everything) plus `statements`."""
    root = {
        "Sid": "Enable IAM User Permissions",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }
    return json.dumps({"Version": "2012-10-17", "Id": "key-default-1", "Statement": [root, *statements]})


def logs_statement(principal: Any = None, actions: Any = None, **extra: Any) -> dict[str, Any]:
    """The statement the CloudWatch Logs guide gives (encrypt-log-data-kms.html, with its Condition)."""
    return {
        "Effect": "Allow",
        "Principal": principal if principal is not None else {"Service": f"logs.{REGION}.amazonaws.com"},
        "Action": actions if actions is not None else LOGS_ACTIONS,
        "Resource": "*",
        "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:{REGION}:{ACCOUNT}:*"}},
        **extra,
    }


def logs_key(kms: Any, *statements: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return kms.create_key(Policy=key_policy(*(statements or (logs_statement(),))), **kw)["KeyMetadata"]


@pytest.fixture
def logs(endpoint: str) -> Any:
    return client(endpoint, "logs")


def raw_json_target(endpoint: str, service: str, target: str, body: dict[str, Any], version: str = "1.1") -> requests.Response:
    return requests.post(
        endpoint + "/",
        data=json.dumps(body),
        headers={
            "Authorization": f"AWS4-HMAC-SHA256 Credential=testing/20260101/{REGION}/{service}/aws4_request, "
            "SignedHeaders=host, Signature=0",
            "X-Amz-Target": target,
            "Content-Type": f"application/x-amz-json-{version}",
        },
        timeout=10,
    )


def log_groups(endpoint: str) -> dict[str, dict[str, Any]]:
    """Raw DescribeLogGroups (checked against the model's shape), by name."""
    resp = raw_json_target(endpoint, "logs", "Logs_20140328.DescribeLogGroups", {})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    check_shape(body, output_shape("logs", "DescribeLogGroups"))
    return {g["logGroupName"]: g for g in body["logGroups"]}


def test_logs_associate_and_disassociate_kms_key(endpoint: str, logs: Any, kms: Any) -> None:
    key = logs_key(kms)
    other = logs_key(kms)
    kms.create_alias(AliasName="alias/logs-key", TargetKeyId=other["KeyId"])
    alias_arn = f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/logs-key"
    logs.create_log_group(logGroupName="/app/one")
    logs.create_log_group(logGroupName="/app/two")
    group_arn = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/app/two"
    assert all("kmsKeyId" not in g for g in log_groups(endpoint).values())  # only when set

    logs.associate_kms_key(logGroupName="/app/one", kmsKeyId=key["Arn"])
    logs.associate_kms_key(resourceIdentifier=group_arn, kmsKeyId=alias_arn)
    groups = log_groups(endpoint)
    assert groups["/app/one"]["kmsKeyId"] == key["Arn"]
    assert groups["/app/two"]["kmsKeyId"] == alias_arn  # the ARN as given
    # associating again overrides the association
    logs.associate_kms_key(logGroupName="/app/two", kmsKeyId=key["Arn"])
    assert log_groups(endpoint)["/app/two"]["kmsKeyId"] == key["Arn"]

    logs.disassociate_kms_key(logGroupName="/app/one")
    logs.disassociate_kms_key(resourceIdentifier=group_arn)
    logs.disassociate_kms_key(logGroupName="/app/one")  # nothing associated: accepted
    assert all("kmsKeyId" not in g for g in log_groups(endpoint).values())

    # the account's query results
    query_results = f"arn:aws:logs:{REGION}:{ACCOUNT}:query-result:*"
    logs.associate_kms_key(resourceIdentifier=query_results, kmsKeyId=key["Arn"])
    logs.disassociate_kms_key(resourceIdentifier=query_results)

    # CreateLogGroup with an acceptable key
    logs.create_log_group(logGroupName="/app/three", kmsKeyId=key["Arn"])
    assert log_groups(endpoint)["/app/three"]["kmsKeyId"] == key["Arn"]

    def refused(call: Any) -> tuple[str, int]:
        with pytest.raises(ClientError) as e:
            call()
        return error_of(e.value)

    for kw in ({}, {"logGroupName": "/app/one", "resourceIdentifier": group_arn}):
        assert refused(lambda: logs.associate_kms_key(kmsKeyId=key["Arn"], **kw)) == ("InvalidParameterException", 400)
        assert refused(lambda: logs.disassociate_kms_key(**kw)) == ("InvalidParameterException", 400)
    for ident in ("not-an-arn", f"arn:aws:logs:{REGION}:{ACCOUNT}:destination:d"):
        assert refused(lambda: logs.associate_kms_key(resourceIdentifier=ident, kmsKeyId=key["Arn"]))[0] == "InvalidParameterException"
    for kw in (
        {"logGroupName": "/app/none"},
        {"resourceIdentifier": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/app/none"},
        {"resourceIdentifier": f"arn:aws:logs:us-west-2:{ACCOUNT}:log-group:/app/one"},
        {"resourceIdentifier": f"arn:aws:logs:{REGION}:{OTHER}:log-group:/app/one"},
    ):
        assert refused(lambda: logs.associate_kms_key(kmsKeyId=key["Arn"], **kw)) == ("ResourceNotFoundException", 400), kw
        assert refused(lambda: logs.disassociate_kms_key(**kw)) == ("ResourceNotFoundException", 400), kw
    # the model's constraints (kmsKeyId max 256, logGroupName min 1)
    resp = raw_json_target(endpoint, "logs", "Logs_20140328.AssociateKmsKey", {"logGroupName": "/app/one"})
    assert resp.status_code == 400 and resp.json()["__type"].endswith("InvalidParameterException")
    resp = raw_json_target(endpoint, "logs", "Logs_20140328.AssociateKmsKey", {"logGroupName": "/app/one", "kmsKeyId": "x" * 257})
    assert resp.status_code == 400 and resp.json()["__type"].endswith("InvalidParameterException")


ALLOWED_POLICIES = {
    "guide statement": [logs_statement()],
    "global service principal, list": [logs_statement({"Service": ["ec2.amazonaws.com", "logs.amazonaws.com"]})],
    "everyone": [logs_statement("*")],
    "AWS *": [logs_statement({"AWS": ["*"]})],
    "kms:*": [logs_statement(actions="kms:*")],
    "*": [logs_statement(actions="*")],
    "exact actions": [logs_statement(actions=["kms:encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:GenerateDataKey", "kms:DescribeKey"])],
    "split over statements": [
        logs_statement(actions=["kms:Encrypt", "kms:Decrypt"]),
        logs_statement(actions=["kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]),
    ],
    "conditional deny": [
        logs_statement(),
        {**logs_statement(actions="kms:Decrypt"), "Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
    ],
}
REFUSED_POLICIES = {
    "default key policy": [],
    "other Region's principal": [logs_statement({"Service": "logs.us-west-2.amazonaws.com"})],
    "another service": [logs_statement({"Service": "bedrock.amazonaws.com"})],
    "account root only": [logs_statement({"AWS": f"arn:aws:iam::{ACCOUNT}:root"})],
    "no DescribeKey": [logs_statement(actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*"])],
    "no ReEncryptTo": [logs_statement(actions=["kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:GenerateDataKey*", "kms:Describe*"])],
    "Deny statement": [logs_statement(), {"Effect": "Deny", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"}],
}


@pytest.mark.parametrize("case", sorted(ALLOWED_POLICIES) + sorted(REFUSED_POLICIES))
def test_logs_key_policy_must_allow_the_logs_service(endpoint: str, logs: Any, kms: Any, case: str) -> None:
    allowed = case in ALLOWED_POLICIES
    statements = ALLOWED_POLICIES.get(case) or REFUSED_POLICIES[case]
    key = kms.create_key(Policy=key_policy(*statements))["KeyMetadata"] if statements else kms.create_key()["KeyMetadata"]
    logs.create_log_group(logGroupName="g")
    group_arn = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:g"
    calls = {
        "associate": lambda: logs.associate_kms_key(logGroupName="g", kmsKeyId=key["Arn"]),
        "create": lambda: logs.create_log_group(logGroupName="g2", kmsKeyId=key["Arn"]),
    }
    for name, call in calls.items():
        if allowed:
            call()
            continue
        with pytest.raises(ClientError) as e:
            call()
        assert error_of(e.value) == ("AccessDeniedException", 400), (case, name)
        arn = group_arn if name == "associate" else group_arn.replace(":g", ":g2")
        assert e.value.response["Error"]["Message"] == (
            f"The specified KMS key does not exist or is not allowed to be used with Arn '{arn}'"
        )
    groups = log_groups(endpoint)
    if allowed:
        assert groups["g"]["kmsKeyId"] == groups["g2"]["kmsKeyId"] == key["Arn"]
    else:
        assert "kmsKeyId" not in groups["g"] and "g2" not in groups  # nothing changed or created


def test_logs_refuses_unusable_keys(endpoint: str, logs: Any, kms: Any) -> None:
    good = logs_key(kms)
    logs.create_log_group(logGroupName="g", kmsKeyId=good["Arn"])
    kms.create_alias(AliasName="alias/good", TargetKeyId=good["KeyId"])
    disabled = logs_key(kms)
    kms.disable_key(KeyId=disabled["KeyId"])
    deleting = logs_key(kms)
    kms.schedule_key_deletion(KeyId=deleting["KeyId"], PendingWindowInDays=7)
    rsa = logs_key(kms, KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")
    west = account_client(endpoint, "kms", region="us-west-2").create_key(
        Policy=key_policy(logs_statement({"Service": "logs.us-west-2.amazonaws.com"}))
    )["KeyMetadata"]
    cases = [
        (good["KeyId"], "InvalidParameterException"),  # a key id: CloudWatch Logs wants the ARN
        ("alias/good", "InvalidParameterException"),
        (f"arn:aws:kms:{REGION}:{ACCOUNT}:key/00000000-0000-0000-0000-000000000000", "AccessDeniedException"),
        (f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/missing", "AccessDeniedException"),
        (west["Arn"], "AccessDeniedException"),  # a key of another Region
        (disabled["Arn"], "InvalidParameterException"),
        (deleting["Arn"], "InvalidParameterException"),
        (rsa["Arn"], "InvalidParameterException"),  # CloudWatch Logs supports only symmetric keys
    ]
    for ref, code in cases:
        for call in (
            lambda: logs.associate_kms_key(logGroupName="g", kmsKeyId=ref),
            lambda: logs.create_log_group(logGroupName="new", kmsKeyId=ref),
        ):
            with pytest.raises(ClientError) as e:
                call()
            assert error_of(e.value) == (code, 400), ref
    assert e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        logs.associate_kms_key(logGroupName="g", kmsKeyId=good["KeyId"])
    assert e.value.response["Error"]["Message"] == "The specified KMS Key Id could not be found."
    groups = log_groups(endpoint)
    assert groups["g"]["kmsKeyId"] == good["Arn"] and "new" not in groups  # nothing changed or created
    # a key of another account whose policy allows the logs service is usable (by its ARN)
    theirs = account_client(endpoint, "kms", OTHER).create_key(Policy=key_policy(logs_statement(), account=OTHER))["KeyMetadata"]
    logs.associate_kms_key(logGroupName="g", kmsKeyId=theirs["Arn"])
    assert log_groups(endpoint)["g"]["kmsKeyId"] == theirs["Arn"]


def test_logs_kms_request_log_and_faults(endpoint: str, logs: Any, kms: Any) -> None:
    key = logs_key(kms)
    logs.create_log_group(logGroupName="g")
    requests.delete(f"{endpoint}/_cmk_guard/requests")
    logs.associate_kms_key(logGroupName="g", kmsKeyId=key["Arn"])
    logs.disassociate_kms_key(logGroupName="g")
    logs.delete_log_group(logGroupName="g")
    assert [(r["service"], r["operation"]) for r in request_log(endpoint)] == [
        ("logs", "AssociateKmsKey"),
        ("logs", "DisassociateKmsKey"),
        ("logs", "DeleteLogGroup"),
    ]
    logs.create_log_group(logGroupName="g")
    set_options(
        endpoint,
        faults=[
            {"operation": "logs:AssociateKmsKey", "code": "OperationAbortedException", "count": 1},
            {"operation": "logs:DisassociateKmsKey", "code": "ServiceUnavailableException", "status": 503, "count": 1},
        ],
    )
    once = client(endpoint, "logs", retries={"total_max_attempts": 1})
    with pytest.raises(ClientError) as e:
        once.associate_kms_key(logGroupName="g", kmsKeyId=key["Arn"])
    assert error_of(e.value) == ("OperationAbortedException", 400)
    assert "kmsKeyId" not in log_groups(endpoint)["g"]  # the fault did not reach moto
    once.associate_kms_key(logGroupName="g", kmsKeyId=key["Arn"])
    with pytest.raises(ClientError) as e:
        once.disassociate_kms_key(logGroupName="g")
    assert error_of(e.value) == ("ServiceUnavailableException", 503)
    assert log_groups(endpoint)["g"]["kmsKeyId"] == key["Arn"]
    faulted = [r for r in request_log(endpoint) if r.get("fault")]
    assert [(r["operation"], r["fault"]) for r in faulted] == [
        ("AssociateKmsKey", "OperationAbortedException"),
        ("DisassociateKmsKey", "ServiceUnavailableException"),
    ]


# --------------------------------------------------------------------------- S3 default encryption

DEFAULT_RULE = {
    "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
    "BucketKeyEnabled": False,
    "BlockedEncryptionTypes": {"EncryptionType": ["SSE-C"]},
}


@pytest.fixture
def s3(endpoint: str) -> Any:
    return client(endpoint, "s3")


def raw_s3(endpoint: str, method: str, path: str, body: str | None = None) -> requests.Response:
    headers = {
        "Authorization": f"AWS4-HMAC-SHA256 Credential=testing/20260101/{REGION}/s3/aws4_request, "
        "SignedHeaders=host, Signature=0"
    }
    return requests.request(method, endpoint + path, data=body, headers=headers, timeout=10)


def encryption_rules(s3: Any, bucket: str = "bkt") -> list[dict[str, Any]]:
    return s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]


def put_rule(s3: Any, rule: dict[str, Any], bucket: str = "bkt") -> None:
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [rule]})


def test_s3_every_bucket_has_default_encryption(endpoint: str, s3: Any) -> None:
    s3.create_bucket(Bucket="bkt")
    assert encryption_rules(s3) == [DEFAULT_RULE]
    resp = raw_s3(endpoint, "GET", "/bkt?encryption")
    assert resp.status_code == 200
    assert (
        "<Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256</SSEAlgorithm></ApplyServerSideEncryptionByDefault>"
        "<BucketKeyEnabled>false</BucketKeyEnabled><BlockedEncryptionTypes><EncryptionType>SSE-C</EncryptionType>"
        "</BlockedEncryptionTypes></Rule>"
    ) in resp.text
    # objects written without SSE headers get SSE-S3
    assert s3.put_object(Bucket="bkt", Key="k", Body=b"x")["ServerSideEncryption"] == "AES256"
    assert s3.head_object(Bucket="bkt", Key="k")["ServerSideEncryption"] == "AES256"


def test_s3_bucket_encryption_round_trips_every_member(endpoint: str, s3: Any, kms: Any) -> None:
    s3.create_bucket(Bucket="bkt")
    key = kms.create_key()["KeyMetadata"]
    shape = Session().get_service_model("s3").shape_for("ServerSideEncryptionRule")
    full = {
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key["Arn"]},
        "BucketKeyEnabled": True,
        "BlockedEncryptionTypes": {"EncryptionType": ["NONE"]},
    }
    assert set(full) == set(shape.members), "the fixture sets every member of the model's rule"
    assert set(full["ApplyServerSideEncryptionByDefault"]) == set(shape.members["ApplyServerSideEncryptionByDefault"].members)
    put_rule(s3, full)
    assert encryption_rules(s3) == [full]
    out = s3.put_object(Bucket="bkt", Key="k", Body=b"x")
    assert (out["ServerSideEncryption"], out["SSEKMSKeyId"]) == ("aws:kms", key["Arn"])

    # KMSMasterKeyID is kept as given (key id, alias) and not validated (S3 does not)
    for ref in (key["KeyId"], "alias/whatever", "arn:aws:kms:us-west-2:111122223333:key/nope"):
        put_rule(s3, {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms:dsse", "KMSMasterKeyID": ref}})
        assert encryption_rules(s3) == [
            {
                "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms:dsse", "KMSMasterKeyID": ref},
                "BucketKeyEnabled": False,  # not sent: reported false
                "BlockedEncryptionTypes": {"EncryptionType": ["NONE"]},  # not sent: the bucket's stays
            }
        ]
    # aws:kms without a key (the AWS managed key aws/s3 is used)
    put_rule(s3, {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}, "BlockedEncryptionTypes": {"EncryptionType": ["SSE-C"]}})
    assert encryption_rules(s3) == [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}, "BucketKeyEnabled": False, "BlockedEncryptionTypes": {"EncryptionType": ["SSE-C"]}}
    ]
    # only the blocked types: the bucket keeps SSE-S3
    put_rule(s3, {"BlockedEncryptionTypes": {"EncryptionType": ["NONE"]}})
    assert encryption_rules(s3) == [{**DEFAULT_RULE, "BlockedEncryptionTypes": {"EncryptionType": ["NONE"]}}]


def test_s3_delete_bucket_encryption_resets_to_sse_s3(endpoint: str, s3: Any) -> None:
    s3.create_bucket(Bucket="bkt")
    put_rule(s3, {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "k"}, "BucketKeyEnabled": True})
    resp = s3.delete_bucket_encryption(Bucket="bkt")
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert encryption_rules(s3) == [DEFAULT_RULE]
    assert s3.delete_bucket_encryption(Bucket="bkt")["ResponseMetadata"]["HTTPStatusCode"] == 204  # idempotent
    # the blocked encryption types are a separate setting: the reset keeps them
    put_rule(s3, {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}, "BlockedEncryptionTypes": {"EncryptionType": ["NONE"]}})
    s3.delete_bucket_encryption(Bucket="bkt")
    assert encryption_rules(s3) == [{**DEFAULT_RULE, "BlockedEncryptionTypes": {"EncryptionType": ["NONE"]}}]


def test_s3_bucket_encryption_errors(endpoint: str, s3: Any) -> None:
    s3.create_bucket(Bucket="bkt")
    put_rule(s3, {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "k"}})
    before = encryption_rules(s3)

    def refused(call: Any) -> tuple[str, int]:
        with pytest.raises(ClientError) as e:
            call()
        return error_of(e.value)

    for name, call in {
        "get": lambda: s3.get_bucket_encryption(Bucket="nobkt"),
        "delete": lambda: s3.delete_bucket_encryption(Bucket="nobkt"),
        "put": lambda: s3.put_bucket_encryption(Bucket="nobkt", ServerSideEncryptionConfiguration={"Rules": []}),
    }.items():
        assert refused(call) == ("NoSuchBucket", 404), name
    malformed = ("MalformedXML", 400)
    assert refused(lambda: s3.put_bucket_encryption(Bucket="bkt", ServerSideEncryptionConfiguration={"Rules": []})) == malformed
    two = {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    assert refused(lambda: s3.put_bucket_encryption(Bucket="bkt", ServerSideEncryptionConfiguration={"Rules": [two, two]})) == malformed
    with pytest.raises(ClientError) as e:
        put_rule(s3, {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256", "KMSMasterKeyID": "k"}})
    assert error_of(e.value) == ("InvalidArgument", 400)
    assert e.value.response["Error"]["Message"] == (
        "a KMSMasterKeyID is not applicable if the default sse algorithm is not aws:kms or aws:kms:dsse"
    )
    assert e.value.response["Error"]["ArgumentName"] == "ApplyServerSideEncryptionByDefault"

    def xml(rule: str) -> str:
        return f'<ServerSideEncryptionConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Rule>{rule}</Rule></ServerSideEncryptionConfiguration>'

    for body in (
        xml("<ApplyServerSideEncryptionByDefault><SSEAlgorithm>aws:nope</SSEAlgorithm></ApplyServerSideEncryptionByDefault>"),
        xml("<ApplyServerSideEncryptionByDefault><KMSMasterKeyID>k</KMSMasterKeyID></ApplyServerSideEncryptionByDefault>"),
        xml("<ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256</SSEAlgorithm></ApplyServerSideEncryptionByDefault><BucketKeyEnabled>maybe</BucketKeyEnabled>"),
        xml("<BlockedEncryptionTypes><EncryptionType>SSE-KMS</EncryptionType></BlockedEncryptionTypes>"),
        xml("<ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256</SSEAlgorithm></ApplyServerSideEncryptionByDefault><Extra>1</Extra>"),
        xml(""),
        "<ServerSideEncryptionConfiguration><Rule>",
    ):
        resp = raw_s3(endpoint, "PUT", "/bkt?encryption", body)
        assert resp.status_code == 400 and "<Code>MalformedXML</Code>" in resp.text, body
    assert encryption_rules(s3) == before  # nothing changed


def test_s3_encryption_request_log_and_faults(endpoint: str, s3: Any) -> None:
    s3.create_bucket(Bucket="bkt")
    requests.delete(f"{endpoint}/_cmk_guard/requests")
    put_rule(s3, {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}})
    encryption_rules(s3)
    s3.delete_bucket_encryption(Bucket="bkt")
    assert [(r["service"], r["operation"]) for r in request_log(endpoint)] == [
        ("s3", "PutBucketEncryption"),
        ("s3", "GetBucketEncryption"),
        ("s3", "DeleteBucketEncryption"),
    ]
    set_options(
        endpoint,
        faults=[
            {"operation": "s3:GetBucketEncryption", "code": "AccessDenied", "status": 403, "message": FAULT_MESSAGE, "count": 1},
            {"operation": "s3:PutBucketEncryption", "code": "SlowDown", "status": 503, "count": 1},
        ],
    )
    once = client(endpoint, "s3", retries={"total_max_attempts": 1})
    with pytest.raises(ClientError) as e:
        once.get_bucket_encryption(Bucket="bkt")
    assert error_of(e.value) == ("AccessDenied", 403) and e.value.response["Error"]["Message"] == FAULT_MESSAGE
    with pytest.raises(ClientError) as e:
        put_rule(once, {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}})
    assert error_of(e.value) == ("SlowDown", 503)
    assert encryption_rules(once) == [DEFAULT_RULE]  # the faulted Put did not reach moto
    resp = raw_s3(endpoint, "GET", "/bkt?encryption")
    assert resp.status_code == 200  # count 1: consumed
    log = [(r["operation"], r.get("fault")) for r in request_log(endpoint)]
    assert log[-4:] == [
        ("GetBucketEncryption", "AccessDenied"),
        ("PutBucketEncryption", "SlowDown"),
        ("GetBucketEncryption", None),
        ("GetBucketEncryption", None),
    ]


# --------------------------------------------------------------------------- Bedrock model invocation logging

FULL_LOGGING = {
    "cloudWatchConfig": {
        "logGroupName": "/bedrock/invocations",
        "roleArn": f"arn:aws:iam::{ACCOUNT}:role/bedrock-logging",
        "largeDataDeliveryS3Config": {"bucketName": "large-data", "keyPrefix": "large/"},
    },
    "s3Config": {"bucketName": "invocation-logs", "keyPrefix": "logs/"},
    "textDataDeliveryEnabled": True,
    "imageDataDeliveryEnabled": False,
    "embeddingDataDeliveryEnabled": True,
    "videoDataDeliveryEnabled": False,
    "audioDataDeliveryEnabled": True,
}
LOGGING_PATH = "/logging/modelinvocations"


def logging_destinations(endpoint: str) -> None:
    client(endpoint, "logs").create_log_group(logGroupName="/bedrock/invocations")
    s3 = client(endpoint, "s3")
    s3.create_bucket(Bucket="large-data")
    s3.create_bucket(Bucket="invocation-logs")


def raw_logging_config(endpoint: str) -> dict[str, Any]:
    resp = raw(endpoint, "GET", LOGGING_PATH)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    check_shape(body, output_shape("bedrock", "GetModelInvocationLoggingConfiguration"))
    return body


def test_bedrock_logging_config_round_trip(endpoint: str, bedrock: Any) -> None:
    # every member of the model's LoggingConfig (and of its nested structures) is in the fixture
    shape = Session().get_service_model("bedrock").shape_for("LoggingConfig")

    def members(s: Any, value: dict[str, Any], at: str) -> None:
        for name, member in s.members.items():
            assert name in value, f"FULL_LOGGING misses {at}{name}"
            if member.type_name == "structure":
                members(member, value[name], f"{at}{name}.")

    members(shape, FULL_LOGGING, "")

    assert raw_logging_config(endpoint) == {}  # never configured: no loggingConfig member
    assert "loggingConfig" not in bedrock.get_model_invocation_logging_configuration()
    logging_destinations(endpoint)
    bedrock.put_model_invocation_logging_configuration(loggingConfig=FULL_LOGGING)
    assert raw_logging_config(endpoint) == {"loggingConfig": FULL_LOGGING}
    # a Put replaces the whole configuration
    s3_only = {"s3Config": {"bucketName": "invocation-logs"}}
    bedrock.put_model_invocation_logging_configuration(loggingConfig=s3_only)
    assert raw_logging_config(endpoint) == {"loggingConfig": s3_only}
    bedrock.delete_model_invocation_logging_configuration()
    assert raw_logging_config(endpoint) == {}
    bedrock.delete_model_invocation_logging_configuration()  # nothing configured: accepted
    assert raw_logging_config(endpoint) == {}
    # per account and Region
    bedrock.put_model_invocation_logging_configuration(loggingConfig=s3_only)
    assert "loggingConfig" not in account_client(endpoint, "bedrock", region="us-west-2").get_model_invocation_logging_configuration()
    assert "loggingConfig" not in account_client(endpoint, "bedrock", OTHER).get_model_invocation_logging_configuration()


def test_bedrock_logging_config_validation(endpoint: str, bedrock: Any) -> None:
    logging_destinations(endpoint)
    bedrock.put_model_invocation_logging_configuration(loggingConfig=FULL_LOGGING)
    cw = FULL_LOGGING["cloudWatchConfig"]
    for body in (
        {},
        {"loggingConfig": "on"},
        {"loggingConfig": {"cloudWatchConfig": {"logGroupName": cw["logGroupName"]}}},  # roleArn is required
        {"loggingConfig": {"cloudWatchConfig": {**cw, "roleArn": "not-a-role-arn"}}},  # the model's pattern
        {"loggingConfig": {"cloudWatchConfig": {**cw, "largeDataDeliveryS3Config": {"keyPrefix": "p"}}}},
        {"loggingConfig": {"s3Config": {"bucketName": "ab"}}},  # min length 3
        {"loggingConfig": {"s3Config": {"bucketName": "invocation-logs", "keyPrefix": 5}}},
        {"loggingConfig": {"textDataDeliveryEnabled": "true"}},
    ):
        resp = raw(endpoint, "PUT", LOGGING_PATH, body=body)
        assert resp.status_code == 400, body
        assert resp.headers["x-amzn-ErrorType"].startswith("ValidationException"), body
        assert "validation error" in resp.json()["message"], body
    assert raw_logging_config(endpoint) == {"loggingConfig": FULL_LOGGING}  # nothing changed


def test_bedrock_logging_destinations_must_exist(endpoint: str, bedrock: Any) -> None:
    west_logs = account_client(endpoint, "logs", region="us-west-2")
    west_logs.create_log_group(logGroupName="/bedrock/invocations")  # another Region's does not count
    cw = FULL_LOGGING["cloudWatchConfig"]

    def refused(config: dict[str, Any]) -> str:
        with pytest.raises(ClientError) as e:
            bedrock.put_model_invocation_logging_configuration(loggingConfig=config)
        assert error_of(e.value) == ("ValidationException", 400)
        return str(e.value.response["Error"]["Message"])

    assert refused(FULL_LOGGING) == (
        f"Failed to validate permissions for log group: {cw['logGroupName']}, with role: {cw['roleArn']}. "
        "Verify the IAM role permissions are correct."
    )
    client(endpoint, "logs").create_log_group(logGroupName="/bedrock/invocations")
    assert refused(FULL_LOGGING).startswith("Failed to validate permissions for bucket: invocation-logs")
    s3 = client(endpoint, "s3")
    s3.create_bucket(Bucket="invocation-logs")
    assert refused(FULL_LOGGING).startswith("Failed to validate permissions for bucket: large-data")
    assert raw_logging_config(endpoint) == {}  # nothing stored
    # "only destinations from the same account and Region": a bucket of another account or Region is refused
    other_s3 = account_client(endpoint, "s3", OTHER, s3={"addressing_style": "path"})
    other_s3.create_bucket(Bucket="large-data")
    assert refused(FULL_LOGGING).startswith("Failed to validate permissions for bucket: large-data")
    other_s3.delete_bucket(Bucket="large-data")
    s3.create_bucket(Bucket="large-data", CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    assert refused(FULL_LOGGING).startswith("Failed to validate permissions for bucket: large-data")
    s3.delete_bucket(Bucket="large-data")
    s3.create_bucket(Bucket="large-data")
    bedrock.put_model_invocation_logging_configuration(loggingConfig=FULL_LOGGING)
    assert raw_logging_config(endpoint) == {"loggingConfig": FULL_LOGGING}


def test_bedrock_logging_request_log_and_faults(endpoint: str, bedrock: Any) -> None:
    logging_destinations(endpoint)
    requests.delete(f"{endpoint}/_cmk_guard/requests")
    bedrock.put_model_invocation_logging_configuration(loggingConfig=FULL_LOGGING)
    bedrock.get_model_invocation_logging_configuration()
    bedrock.delete_model_invocation_logging_configuration()
    assert [(r["service"], r["operation"]) for r in request_log(endpoint)] == [
        ("bedrock", "PutModelInvocationLoggingConfiguration"),
        ("bedrock", "GetModelInvocationLoggingConfiguration"),
        ("bedrock", "DeleteModelInvocationLoggingConfiguration"),
    ]
    set_options(endpoint, faults=[{"operation": "bedrock:PutModelInvocationLoggingConfiguration", "code": "AccessDeniedException", "count": 1}])
    with pytest.raises(ClientError) as e:
        client(endpoint, "bedrock", retries={"total_max_attempts": 1}).put_model_invocation_logging_configuration(loggingConfig=FULL_LOGGING)
    assert error_of(e.value) == ("AccessDeniedException", 403)  # the model's status for it
    assert raw_logging_config(endpoint) == {}


# --------------------------------------------------------------------------- bedrock jobs and models

ROLE = f"arn:aws:iam::{ACCOUNT}:role/bedrock-jobs"
FM_ID = "amazon.titan-text-express-v1:0:8k"
FM_ARN = f"arn:aws:bedrock:{REGION}::foundation-model/{FM_ID}"
SUFFIX = "[a-z0-9]{12}"
MISSING_KEY = "alias/no-such-key"

CUSTOMIZATION: dict[str, Any] = {
    "jobName": "tune-1",
    "customModelName": "tuned-1",
    "roleArn": ROLE,
    "baseModelIdentifier": FM_ARN,
    "trainingDataConfig": {"s3Uri": "s3://train-bucket/train.jsonl"},
    "outputDataConfig": {"s3Uri": "s3://out-bucket/out/"},
    "hyperParameters": {"epochCount": "2", "batchSize": "1"},
}
IMPORT: dict[str, Any] = {
    "jobName": "import-1",
    "importedModelName": "imported-1",
    "roleArn": ROLE,
    "modelDataSource": {"s3DataSource": {"s3Uri": "s3://model-bucket/llama/"}},
}
EVALUATION: dict[str, Any] = {
    "jobName": "eval-1",
    "roleArn": ROLE,
    "evaluationConfig": {
        "automated": {
            "datasetMetricConfigs": [
                {"taskType": "Summarization", "dataset": {"name": "Builtin.Gigaword"}, "metricNames": ["Builtin.Accuracy"]}
            ]
        }
    },
    "inferenceConfig": {"models": [{"bedrockModel": {"modelIdentifier": FM_ID, "inferenceParams": "{}"}}]},
    "outputDataConfig": {"s3Uri": "s3://eval-bucket/out/"},
}
INVOCATION: dict[str, Any] = {
    "jobName": "batch-1",
    "roleArn": ROLE,
    "modelId": FM_ID,
    "inputDataConfig": {"s3InputDataConfig": {"s3Uri": "s3://batch-bucket/in/", "s3InputFormat": "JSONL"}},
    "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": "s3://batch-bucket/out/"}},
}
CUSTOM_MODEL: dict[str, Any] = {
    "modelName": "own-model-1",
    "modelSourceConfig": {"s3DataSource": {"s3Uri": "s3://model-bucket/own/"}},
    "roleArn": ROLE,
}


def job_answer(endpoint: str, op: str, path: str, method: str = "GET", status: int = 200) -> Any:
    """A raw answer (what the Rust SDK reads), checked against the model's output shape."""
    resp = raw(endpoint, method, path)
    assert resp.status_code == status, resp.text
    body = resp.json()
    check_shape(body, output_shape("bedrock", op))
    return body


def enc(arn: str) -> str:
    return quote(arn, safe="")


def source_model(endpoint: str) -> str:
    """A completed custom model in us-west-2 (what a copy job copies into us-east-1)."""
    west = account_client(endpoint, "bedrock", region="us-west-2")
    set_options(endpoint, jobCompletionSeconds=0)
    west.create_model_customization_job(**{**CUSTOMIZATION, "jobName": "src-job", "customModelName": "src-model"})
    set_options(endpoint, jobCompletionSeconds=None)
    return str(west.get_custom_model(modelIdentifier="src-model")["modelArn"])


def with_key(kind: str, params: dict[str, Any], key: Any) -> dict[str, Any]:
    """params with the kind's KMS key member set to `key` (None: left out)."""
    params = json.loads(json.dumps(params))
    if key is None:
        return params
    if kind == "invocation":
        params["outputDataConfig"]["s3OutputDataConfig"]["s3EncryptionKeyId"] = key
    else:
        params[KEY_MEMBER[kind]] = key
    return params


KEY_MEMBER = {
    "customization": "customModelKmsKeyId",
    "custom_model": "modelKmsKeyArn",
    "import": "importedModelKmsKeyId",
    "copy": "modelKmsKeyId",
    "evaluation": "customerEncryptionKeyId",
}


def create_kind(kind: str, bedrock: Any, ctx: dict[str, Any], key: Any = None, **kw: Any) -> str:
    """Create one job (or, for custom_model, one model) of `kind`; its ARN."""
    if kind == "customization":
        return str(bedrock.create_model_customization_job(**with_key(kind, {**CUSTOMIZATION, **kw}, key))["jobArn"])
    if kind == "custom_model":
        return str(bedrock.create_custom_model(**with_key(kind, {**CUSTOM_MODEL, **kw}, key))["modelArn"])
    if kind == "import":
        return str(bedrock.create_model_import_job(**with_key(kind, {**IMPORT, **kw}, key))["jobArn"])
    if kind == "copy":
        params = {"sourceModelArn": ctx["source"], "targetModelName": "copied-1", **kw}
        return str(bedrock.create_model_copy_job(**with_key(kind, params, key))["jobArn"])
    if kind == "evaluation":
        return str(bedrock.create_evaluation_job(**with_key(kind, {**EVALUATION, **kw}, key))["jobArn"])
    assert kind == "invocation"
    return str(bedrock.create_model_invocation_job(**with_key(kind, {**INVOCATION, **kw}, key))["jobArn"])


GET_OF = {
    "customization": ("GetModelCustomizationJob", "/model-customization-jobs/"),
    "custom_model": ("GetCustomModel", "/custom-models/"),
    "import": ("GetModelImportJob", "/model-import-jobs/"),
    "copy": ("GetModelCopyJob", "/model-copy-jobs/"),
    "evaluation": ("GetEvaluationJob", "/evaluation-jobs/"),
    "invocation": ("GetModelInvocationJob", "/model-invocation-job/"),
}
LIST_OF = {
    "customization": ("ListModelCustomizationJobs", "/model-customization-jobs", "modelCustomizationJobSummaries"),
    "custom_model": ("ListCustomModels", "/custom-models", "modelSummaries"),
    "import": ("ListModelImportJobs", "/model-import-jobs", "modelImportJobSummaries"),
    "copy": ("ListModelCopyJobs", "/model-copy-jobs", "modelCopyJobSummaries"),
    "evaluation": ("ListEvaluationJobs", "/evaluation-jobs", "jobSummaries"),
    "invocation": ("ListModelInvocationJobs", "/model-invocation-jobs", "invocationJobSummaries"),
}
STOP_OF = {
    "customization": ("StopModelCustomizationJob", "/model-customization-jobs/{}/stop"),
    "evaluation": ("StopEvaluationJob", "/evaluation-job/{}/stop"),
    "invocation": ("StopModelInvocationJob", "/model-invocation-job/{}/stop"),
}
KINDS = sorted(GET_OF)


def get_kind(endpoint: str, kind: str, ident: str) -> dict[str, Any]:
    op, prefix = GET_OF[kind]
    return dict(job_answer(endpoint, op, prefix + enc(ident)))


def list_kind(endpoint: str, kind: str, query: str = "") -> list[dict[str, Any]]:
    op, path, member = LIST_OF[kind]
    resp = raw(endpoint, "GET", path + query)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    if kind != "custom_model":  # see test_create_custom_model for its summaries
        check_shape(body, output_shape("bedrock", op))
    return list(body[member])


def key_in_answer(kind: str, answer: dict[str, Any]) -> Any:
    if kind == "invocation":
        return answer["outputDataConfig"]["s3OutputDataConfig"].get("s3EncryptionKeyId")
    member = {
        "customization": "outputModelKmsKeyArn",
        "custom_model": "modelKmsKeyArn",
        "import": "importedModelKmsKeyArn",
        "copy": "targetModelKmsKeyArn",
        "evaluation": "customerEncryptionKeyId",
    }[kind]
    return answer.get(member)


@pytest.fixture
def job_ctx(endpoint: str, kms: Any) -> dict[str, Any]:
    key = kms.create_key(Description="bedrock jobs")["KeyMetadata"]
    kms.create_alias(AliasName="alias/bedrock-jobs", TargetKeyId=key["KeyId"])
    return {"key": key, "source": source_model(endpoint)}


@pytest.mark.parametrize("kind", KINDS)
def test_job_kms_key_reported_or_absent(endpoint: str, bedrock: Any, job_ctx: dict[str, Any], kind: str) -> None:
    key = job_ctx["key"]
    # the form a caller typically sends; custom models take a key ARN only (KmsKeyArn)
    sent = {"customization": "alias/bedrock-jobs", "custom_model": key["Arn"], "import": key["KeyId"],
            "copy": f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/bedrock-jobs", "evaluation": "alias/bedrock-jobs",
            "invocation": key["KeyId"]}[kind]  # fmt: skip
    with_cmk = create_kind(kind, bedrock, job_ctx, sent)
    # key ARN members report the key's ARN; key id members (evaluation, batch inference) what was sent
    expected = sent if kind in ("evaluation", "invocation") else key["Arn"]
    assert key_in_answer(kind, get_kind(endpoint, kind, with_cmk)) == expected

    names = {"customization": {"jobName": "tune-2", "customModelName": "tuned-2"}, "custom_model": {"modelName": "own-2"},
             "import": {"jobName": "import-2", "importedModelName": "imported-2"}, "copy": {"targetModelName": "copied-2"},
             "evaluation": {"jobName": "eval-2"}, "invocation": {"jobName": "batch-2"}}[kind]  # fmt: skip
    without = create_kind(kind, bedrock, job_ctx, None, **names)
    answer = get_kind(endpoint, kind, without)
    assert key_in_answer(kind, answer) is None
    assert "arn:aws:kms" not in json.dumps(answer)  # no invented key anywhere


@pytest.mark.parametrize("kind", KINDS)
def test_job_unknown_key_refused(endpoint: str, bedrock: Any, job_ctx: dict[str, Any], kind: str) -> None:
    missing = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/11111111-2222-3333-4444-555555555555" if kind == "custom_model" else MISSING_KEY
    with pytest.raises(ClientError) as e:
        create_kind(kind, bedrock, job_ctx, missing)
    assert error_of(e.value) == ("ValidationException", 400)
    # a key ARN of another Region is refused like an unknown key
    west_key = account_client(endpoint, "kms", region="us-west-2").create_key()["KeyMetadata"]["Arn"]
    with pytest.raises(ClientError) as e:
        create_kind(kind, bedrock, job_ctx, west_key)
    assert error_of(e.value) == ("ValidationException", 400)
    assert list_kind(endpoint, kind) == []  # nothing was created


def test_customization_job_running_then_completed(endpoint: str, bedrock: Any, kms: Any) -> None:
    key = kms.create_key()["KeyMetadata"]
    full = {
        **CUSTOMIZATION,
        "clientRequestToken": "token-1",
        "customizationType": "DISTILLATION",
        "customModelKmsKeyId": key["KeyId"],
        "validationDataConfig": {"validators": [{"s3Uri": "s3://train-bucket/validation.jsonl"}]},
        "vpcConfig": {"subnetIds": ["subnet-1", "subnet-2"], "securityGroupIds": ["sg-1"]},
        "customizationConfig": {
            "distillationConfig": {"teacherModelConfig": {"teacherModelIdentifier": "amazon.nova-pro-v1:0", "maxResponseLengthForInference": 1000}}
        },
        "jobTags": [{"key": "kind", "value": "job"}],
        "customModelTags": [{"key": "kind", "value": "model"}],
    }
    # never completes by itself (jobCompletionSeconds unset)
    running = bedrock.create_model_customization_job(**full)["jobArn"]
    job = get_kind(endpoint, "customization", running)
    assert job["status"] == "InProgress"
    for absent in ("outputModelArn", "endTime", "failureMessage", "trainingMetrics", "validationMetrics"):
        assert absent not in job, absent
    assert job["outputModelName"] == "tuned-1" and job["outputModelKmsKeyArn"] == key["Arn"]
    for member in ("jobName", "roleArn", "clientRequestToken", "customizationType", "hyperParameters",
                   "trainingDataConfig", "validationDataConfig", "outputDataConfig", "vpcConfig", "customizationConfig"):
        assert job[member] == full[member], member  # exactly as sent
    assert ISO_RE.match(job["creationTime"]) and job["lastModifiedTime"] == job["creationTime"]
    with pytest.raises(ClientError) as e:
        bedrock.get_custom_model(modelIdentifier="tuned-1")
    assert error_of(e.value) == ("ResourceNotFoundException", 404)
    assert list_kind(endpoint, "custom_model") == []
    summary = list_kind(endpoint, "customization")[0]
    assert summary["status"] == "InProgress" and "customModelArn" not in summary and "endTime" not in summary

    # completes after jobCompletionSeconds; the custom model appears then, not before
    set_options(endpoint, jobCompletionSeconds=1)
    done = bedrock.create_model_customization_job(**{**full, "jobName": "tune-2", "customModelName": "tuned-2", "clientRequestToken": "token-2"})["jobArn"]
    assert get_kind(endpoint, "customization", done)["status"] == "InProgress"
    assert [m["modelName"] for m in list_kind(endpoint, "custom_model")] == []
    time.sleep(1.1)
    job = get_kind(endpoint, "customization", done)
    assert job["status"] == "Completed" and ISO_RE.match(job["endTime"]) and job["lastModifiedTime"] == job["endTime"]
    model_arn = job["outputModelArn"]
    assert re.fullmatch(rf"arn:aws:bedrock:{REGION}:{ACCOUNT}:custom-model/{re.escape(FM_ID)}/{SUFFIX}", model_arn)
    assert "failureMessage" not in job
    model = get_kind(endpoint, "custom_model", "tuned-2")
    assert model["modelArn"] == model_arn and model["modelStatus"] == "Active"
    assert model["modelKmsKeyArn"] == key["Arn"] and model["jobArn"] == done and model["jobName"] == "tune-2"
    assert model["baseModelArn"] == FM_ARN and model["creationTime"] == job["endTime"]
    for member in ("hyperParameters", "trainingDataConfig", "validationDataConfig", "outputDataConfig",
                   "customizationType", "customizationConfig"):
        assert model[member] == full[member], member
    assert get_kind(endpoint, "custom_model", model_arn)["modelName"] == "tuned-2"  # by ARN too
    assert bedrock.list_tags_for_resource(resourceARN=done)["tags"] == [{"key": "kind", "value": "job"}]
    assert bedrock.list_tags_for_resource(resourceARN=model_arn)["tags"] == [{"key": "kind", "value": "model"}]
    summary = [s for s in list_kind(endpoint, "customization") if s["jobArn"] == done][0]
    assert summary["status"] == "Completed" and summary["customModelArn"] == model_arn
    assert [m["modelName"] for m in list_kind(endpoint, "custom_model")] == ["tuned-2"]
    # the first job is still running (the option is read at creation)
    assert get_kind(endpoint, "customization", running)["status"] == "InProgress"


def test_customization_job_arns_and_base_model(endpoint: str, bedrock: Any) -> None:
    set_options(endpoint, jobCompletionSeconds=0)
    by_arn = bedrock.create_model_customization_job(**CUSTOMIZATION)["jobArn"]
    assert re.fullmatch(rf"arn:aws:bedrock:{REGION}:{ACCOUNT}:model-customization-job/{re.escape(FM_ID)}/{SUFFIX}", by_arn)
    assert get_kind(endpoint, "customization", by_arn)["baseModelArn"] == FM_ARN  # kept as given
    by_id = bedrock.create_model_customization_job(
        **{**CUSTOMIZATION, "jobName": "tune-2", "customModelName": "tuned-2", "baseModelIdentifier": "cohere.command-text-v14:7:4k"}
    )["jobArn"]
    assert re.fullmatch(rf"arn:aws:bedrock:{REGION}:{ACCOUNT}:model-customization-job/cohere\.command-text-v14:7:4k/{SUFFIX}", by_id)
    job = get_kind(endpoint, "customization", by_id)
    assert job["baseModelArn"] == f"arn:aws:bedrock:{REGION}::foundation-model/cohere.command-text-v14:7:4k"
    assert re.fullmatch(rf"arn:aws:bedrock:{REGION}:{ACCOUNT}:custom-model/cohere\.command-text-v14:7:4k/{SUFFIX}", job["outputModelArn"])
    # a custom model as the base (continued customization): its foundation model is the base
    again = bedrock.create_model_customization_job(
        **{**CUSTOMIZATION, "jobName": "tune-3", "customModelName": "tuned-3", "baseModelIdentifier": job["outputModelArn"]}
    )["jobArn"]
    assert get_kind(endpoint, "customization", again)["baseModelArn"] == f"arn:aws:bedrock:{REGION}::foundation-model/cohere.command-text-v14:7:4k"
    with pytest.raises(ClientError) as e:
        bedrock.create_model_customization_job(**{**CUSTOMIZATION, "jobName": "tune-4", "customModelName": "tuned-4", "baseModelIdentifier": "no-such-model"})
    assert error_of(e.value) == ("ResourceNotFoundException", 404)
    summaries = list_kind(endpoint, "custom_model")
    assert {s["baseModelName"] for s in summaries} == {FM_ID, "cohere.command-text-v14:7:4k"}


@pytest.mark.parametrize("kind", sorted(STOP_OF))
def test_job_get_and_stop_by_name_and_encoded_arn(endpoint: str, bedrock: Any, kind: str) -> None:
    set_options(endpoint, jobStopSeconds=0)
    ctx: dict[str, Any] = {}
    first = create_kind(kind, bedrock, ctx)
    second = create_kind(kind, bedrock, ctx, **({"customModelName": "tuned-2"} if kind == "customization" else {}), jobName=f"{kind[:4]}-2")
    name = get_kind(endpoint, kind, first)["jobName"]
    assert get_kind(endpoint, kind, name)["jobArn"] == first  # by name
    assert get_kind(endpoint, kind, first)["jobArn"] == first  # by URL-encoded ARN
    op, path = STOP_OF[kind]
    assert raw(endpoint, "POST", path.format(enc(first))).status_code == 200  # ARN, URL-encoded
    assert raw(endpoint, "POST", path.format(f"{kind[:4]}-2")).status_code == 200  # name
    assert get_kind(endpoint, kind, first)["status"] == "Stopped"
    assert get_kind(endpoint, kind, second)["status"] == "Stopped"
    # missing jobs: 404 for Get and Stop
    other = first[:-12] + "abcdefghijkl"
    for resp in (raw(endpoint, "GET", GET_OF[kind][1] + enc(other)), raw(endpoint, "POST", path.format(enc(other))),
                 raw(endpoint, "POST", path.format("no-such-job"))):  # fmt: skip
        assert resp.status_code == 404, resp.text
        assert resp.headers["x-amzn-ErrorType"] == "ResourceNotFoundException"


@pytest.mark.parametrize("kind", sorted(STOP_OF))
def test_job_stop_timing_and_refusals(endpoint: str, bedrock: Any, kind: str) -> None:
    set_options(endpoint, jobStopSeconds=1)
    job = create_kind(kind, bedrock, {})
    stop = {"customization": bedrock.stop_model_customization_job, "evaluation": bedrock.stop_evaluation_job,
            "invocation": bedrock.stop_model_invocation_job}[kind]  # fmt: skip
    stop(jobIdentifier=job)
    stopping = get_kind(endpoint, kind, job)
    assert stopping["status"] == "Stopping" and "endTime" not in stopping
    with pytest.raises(ClientError) as e:  # already stopping
        stop(jobIdentifier=job)
    assert error_of(e.value) == ("ConflictException", 400)
    time.sleep(1.1)
    stopped = get_kind(endpoint, kind, job)
    assert stopped["status"] == "Stopped"
    if kind != "evaluation":  # GetEvaluationJob has no endTime member
        assert ISO_RE.match(stopped["endTime"]) and stopped["lastModifiedTime"] == stopped["endTime"]
    with pytest.raises(ClientError) as e:  # already stopped
        stop(jobIdentifier=job)
    assert error_of(e.value) == ("ValidationException", 400)
    # a completed job cannot be stopped
    set_options(endpoint, jobCompletionSeconds=0)
    done = create_kind(kind, bedrock, {}, **({"customModelName": "tuned-2"} if kind == "customization" else {}), jobName=f"{kind[:4]}-2")
    assert get_kind(endpoint, kind, done)["status"] == "Completed"
    with pytest.raises(ClientError) as e:
        stop(jobIdentifier=done)
    assert error_of(e.value) == ("ValidationException", 400)
    assert [s["status"] for s in list_kind(endpoint, kind, "?statusEquals=Stopped")] == ["Stopped"]


def test_stopped_customization_job_makes_no_model(endpoint: str, bedrock: Any) -> None:
    set_options(endpoint, jobCompletionSeconds=1, jobStopSeconds=0)
    job = bedrock.create_model_customization_job(**CUSTOMIZATION)["jobArn"]
    bedrock.stop_model_customization_job(jobIdentifier=job)
    time.sleep(1.1)
    answer = get_kind(endpoint, "customization", job)
    assert answer["status"] == "Stopped" and "outputModelArn" not in answer
    assert list_kind(endpoint, "custom_model") == []
    # the model name is free again
    bedrock.create_model_customization_job(**{**CUSTOMIZATION, "jobName": "tune-2"})


@pytest.mark.parametrize("kind", KINDS)
def test_client_request_token_returns_first_arn(endpoint: str, bedrock: Any, job_ctx: dict[str, Any], kind: str) -> None:
    first = create_kind(kind, bedrock, job_ctx, clientRequestToken="same-token")
    assert create_kind(kind, bedrock, job_ctx, clientRequestToken="same-token") == first
    # a different body with the same token: still the first one, nothing new
    other = {"customization": {"jobName": "tune-9", "customModelName": "tuned-9"}, "custom_model": {"modelName": "own-9"},
             "import": {"jobName": "import-9", "importedModelName": "imported-9"}, "copy": {"targetModelName": "copied-9"},
             "evaluation": {"jobName": "eval-9"}, "invocation": {"jobName": "batch-9"}}[kind]  # fmt: skip
    assert create_kind(kind, bedrock, job_ctx, clientRequestToken="same-token", **other) == first
    assert len(list_kind(endpoint, kind)) == 1
    # another token makes another one
    assert create_kind(kind, bedrock, job_ctx, clientRequestToken="other-token", **other) != first
    assert len(list_kind(endpoint, kind)) == 2
    # tokens are per account and Region
    west = account_client(endpoint, "bedrock", region="us-west-2")
    if kind not in ("copy", "customization"):  # (us-west-2 already has the copy source's job)
        assert create_kind(kind, west, job_ctx, clientRequestToken="same-token") != first


@pytest.mark.parametrize("kind", ["customization", "import", "evaluation", "invocation"])
def test_duplicate_job_name_refused(endpoint: str, bedrock: Any, kind: str) -> None:
    create_kind(kind, bedrock, {}, clientRequestToken="token-1")
    rename = {"customization": {"customModelName": "tuned-2"}, "import": {"importedModelName": "imported-2"}}.get(kind, {})
    for token in ("token-2", None):
        kw = {"clientRequestToken": token} if token else {}
        with pytest.raises(ClientError) as e:
            create_kind(kind, bedrock, {}, **rename, **kw)
        assert error_of(e.value) == ("ValidationException", 400)
        assert e.value.response["Error"]["Message"] == "The provided job name is currently in use."
    assert len(list_kind(endpoint, kind)) == 1
    # names are per account and Region
    create_kind(kind, account_client(endpoint, "bedrock", OTHER), {})


def test_duplicate_model_name_refused(endpoint: str, bedrock: Any, job_ctx: dict[str, Any]) -> None:
    bedrock.create_model_customization_job(**CUSTOMIZATION)  # will make tuned-1
    for call in (
        lambda: bedrock.create_model_customization_job(**{**CUSTOMIZATION, "jobName": "tune-2"}),
        lambda: bedrock.create_custom_model(**{**CUSTOM_MODEL, "modelName": "tuned-1"}),
        lambda: bedrock.create_model_copy_job(sourceModelArn=job_ctx["source"], targetModelName="tuned-1"),
    ):
        with pytest.raises(ClientError) as e:
            call()
        assert error_of(e.value) == ("ValidationException", 400)
    bedrock.create_model_import_job(**IMPORT)
    with pytest.raises(ClientError) as e:
        bedrock.create_model_import_job(**{**IMPORT, "jobName": "import-2"})
    assert error_of(e.value) == ("ValidationException", 400)
    bedrock.create_model_import_job(**{**IMPORT, "jobName": "import-3", "importedModelName": "tuned-1"})  # another namespace


def test_model_import_job_and_imported_model(endpoint: str, bedrock: Any, kms: Any) -> None:
    key = kms.create_key()["KeyMetadata"]
    set_options(endpoint, jobCompletionSeconds=1)
    full = {**IMPORT, "importedModelKmsKeyId": key["Arn"], "vpcConfig": {"subnetIds": ["subnet-1"], "securityGroupIds": ["sg-1"]},
            "jobTags": [{"key": "t", "value": "job"}], "importedModelTags": [{"key": "t", "value": "model"}]}  # fmt: skip
    arn = bedrock.create_model_import_job(**full)["jobArn"]
    assert re.fullmatch(rf"arn:aws:bedrock:{REGION}:{ACCOUNT}:model-import-job/{SUFFIX}", arn)
    job = get_kind(endpoint, "import", "import-1")  # by name
    assert job["status"] == "InProgress" and "importedModelArn" not in job and "endTime" not in job
    for member in ("jobName", "importedModelName", "roleArn", "modelDataSource", "vpcConfig"):
        assert job[member] == full[member], member
    assert job["importedModelKmsKeyArn"] == key["Arn"]
    with pytest.raises(ClientError) as e:
        bedrock.get_imported_model(modelIdentifier="imported-1")
    assert error_of(e.value) == ("ResourceNotFoundException", 404)
    time.sleep(1.1)
    job = get_kind(endpoint, "import", arn)  # by URL-encoded ARN
    assert job["status"] == "Completed" and ISO_RE.match(job["endTime"])
    model_arn = job["importedModelArn"]
    assert re.fullmatch(rf"arn:aws:bedrock:{REGION}:{ACCOUNT}:imported-model/{SUFFIX}", model_arn)
    model = dict(job_answer(endpoint, "GetImportedModel", "/imported-models/" + enc(model_arn)))
    assert model == dict(job_answer(endpoint, "GetImportedModel", "/imported-models/imported-1"))
    assert model["modelKmsKeyArn"] == key["Arn"] and model["jobArn"] == arn and model["modelName"] == "imported-1"
    assert model["modelDataSource"] == IMPORT["modelDataSource"]
    listed = job_answer(endpoint, "ListImportedModels", "/imported-models")["modelSummaries"]
    assert [m["modelArn"] for m in listed] == [model_arn]
    assert bedrock.list_tags_for_resource(resourceARN=arn)["tags"] == [{"key": "t", "value": "job"}]
    assert bedrock.list_tags_for_resource(resourceARN=model_arn)["tags"] == [{"key": "t", "value": "model"}]
    assert [s["importedModelArn"] for s in list_kind(endpoint, "import", "?statusEquals=Completed")] == [model_arn]
    # the model has no operation to stop an import job, and none is answered
    assert not [op for op in Session().get_service_model("bedrock").operation_names if "Stop" in op and "Import" in op]
    assert raw(endpoint, "POST", f"/model-import-jobs/{enc(arn)}/stop").status_code >= 400
    bedrock.delete_imported_model(modelIdentifier="imported-1")
    assert list_kind(endpoint, "import")[0]["status"] == "Completed"
    assert job_answer(endpoint, "ListImportedModels", "/imported-models")["modelSummaries"] == []


def test_model_copy_job(endpoint: str, bedrock: Any, kms: Any) -> None:
    source = source_model(endpoint)
    key = kms.create_key()["KeyMetadata"]
    set_options(endpoint, jobCompletionSeconds=1)
    arn = bedrock.create_model_copy_job(
        sourceModelArn=source, targetModelName="copied-1", modelKmsKeyId=key["KeyId"],
        targetModelTags=[{"key": "copy", "value": "yes"}],
    )["jobArn"]  # fmt: skip
    assert re.fullmatch(rf"arn:aws:bedrock:{REGION}:{ACCOUNT}:model-copy-job/{SUFFIX}", arn)
    job = get_kind(endpoint, "copy", arn)  # (GetModelCopyJob takes the job ARN only)
    assert job["status"] == "InProgress" and job["sourceModelArn"] == source and job["sourceAccountId"] == ACCOUNT
    assert job["sourceModelName"] == "src-model" and job["targetModelName"] == "copied-1"
    assert job["targetModelKmsKeyArn"] == key["Arn"] and job["targetModelTags"] == [{"key": "copy", "value": "yes"}]
    target = job["targetModelArn"]
    assert re.fullmatch(rf"arn:aws:bedrock:{REGION}:{ACCOUNT}:custom-model/amazon\.titan-text-express-v1:0:8k/{SUFFIX}", target)
    with pytest.raises(ClientError):
        bedrock.get_custom_model(modelIdentifier=target)
    time.sleep(1.1)
    assert get_kind(endpoint, "copy", arn)["status"] == "Completed"
    model = get_kind(endpoint, "custom_model", target)
    assert model["modelName"] == "copied-1" and model["modelKmsKeyArn"] == key["Arn"] and model["baseModelArn"] == FM_ARN
    assert bedrock.list_tags_for_resource(resourceARN=target)["tags"] == [{"key": "copy", "value": "yes"}]
    assert [s["jobArn"] for s in list_kind(endpoint, "copy", f"?sourceAccountEquals={ACCOUNT}&outputModelNameContains=copied")] == [arn]
    assert list_kind(endpoint, "copy", f"?sourceAccountEquals={OTHER}") == []
    with pytest.raises(ClientError) as e:  # the source must exist in the account and Region its ARN names
        bedrock.create_model_copy_job(sourceModelArn=source[:-12] + "abcdefghijkl", targetModelName="copied-2")
    assert error_of(e.value) == ("ResourceNotFoundException", 404)


def test_evaluation_job(endpoint: str, bedrock: Any) -> None:
    arn = bedrock.create_evaluation_job(
        **EVALUATION, customerEncryptionKeyId="alias/aws/bedrock", applicationType="ModelEvaluation",
        jobDescription="d", jobTags=[{"key": "e", "value": "1"}],
    )["jobArn"]  # fmt: skip
    assert re.fullmatch(rf"arn:aws:bedrock:{REGION}:{ACCOUNT}:evaluation-job/{SUFFIX}", arn)
    job = get_kind(endpoint, "evaluation", arn)
    assert job["status"] == "InProgress" and job["jobType"] == "Automated" and job["customerEncryptionKeyId"] == "alias/aws/bedrock"
    for member in ("jobName", "roleArn", "evaluationConfig", "inferenceConfig", "outputDataConfig", "applicationType"):
        assert job[member] == {**EVALUATION, "applicationType": "ModelEvaluation"}[member], member
    summary = list_kind(endpoint, "evaluation", "?applicationTypeEquals=ModelEvaluation")[0]
    assert summary["evaluationTaskTypes"] == ["Summarization"] and summary["modelIdentifiers"] == [FM_ID]
    assert list_kind(endpoint, "evaluation", "?applicationTypeEquals=RagEvaluation") == []
    assert bedrock.list_tags_for_resource(resourceARN=arn)["tags"] == [{"key": "e", "value": "1"}]
    # BatchDeleteEvaluationJob: only Completed, Failed or Stopped jobs
    out = bedrock.batch_delete_evaluation_job(jobIdentifiers=[arn, arn[:-12] + "abcdefghijkl"])
    assert out["evaluationJobs"] == [] and [e["code"] for e in out["errors"]] == ["400", "404"]
    set_options(endpoint, jobStopSeconds=0)
    bedrock.stop_evaluation_job(jobIdentifier=arn)
    out = bedrock.batch_delete_evaluation_job(jobIdentifiers=[arn])
    assert out["evaluationJobs"] == [{"jobIdentifier": arn, "jobStatus": "Deleting"}] and out["errors"] == []
    assert list_kind(endpoint, "evaluation") == []


def test_batch_inference_job_statuses(endpoint: str, bedrock: Any) -> None:
    set_options(endpoint, jobCompletionSeconds=1)
    full = {**INVOCATION, "timeoutDurationInHours": 24, "modelInvocationType": "Converse", "clientRequestToken": "t1",
            "vpcConfig": {"subnetIds": ["subnet-1"], "securityGroupIds": ["sg-1"]}, "tags": [{"key": "b", "value": "1"}]}  # fmt: skip
    arn = bedrock.create_model_invocation_job(**full)["jobArn"]
    assert re.fullmatch(rf"arn:aws:bedrock:{REGION}:{ACCOUNT}:model-invocation-job/{SUFFIX}", arn)
    first = get_kind(endpoint, "invocation", arn)
    assert first["status"] == "Submitted" and ISO_RE.match(first["submitTime"]) and "creationTime" not in first
    for member in ("jobName", "roleArn", "modelId", "inputDataConfig", "outputDataConfig", "vpcConfig",
                   "timeoutDurationInHours", "modelInvocationType", "clientRequestToken"):
        assert first[member] == full[member], member
    assert "s3EncryptionKeyId" not in first["outputDataConfig"]["s3OutputDataConfig"]
    assert get_kind(endpoint, "invocation", arn[-12:])["status"] == "InProgress"  # by job id; then InProgress
    assert list_kind(endpoint, "invocation")[0]["status"] == "InProgress"
    time.sleep(1.1)
    done = get_kind(endpoint, "invocation", "batch-1")
    assert done["status"] == "Completed" and ISO_RE.match(done["endTime"])
    assert bedrock.list_tags_for_resource(resourceARN=arn)["tags"] == [{"key": "b", "value": "1"}]


def test_create_custom_model(endpoint: str, bedrock: Any, kms: Any) -> None:
    key = kms.create_key()["KeyMetadata"]
    set_options(endpoint, jobCompletionSeconds=1)
    resp = raw(endpoint, "POST", "/custom-models/create-custom-model", body={**CUSTOM_MODEL, "modelKmsKeyArn": key["Arn"],
                                                                         "modelTags": [{"key": "m", "value": "1"}]})  # fmt: skip
    assert resp.status_code == 202, resp.text
    check_shape(resp.json(), output_shape("bedrock", "CreateCustomModel"))
    arn = resp.json()["modelArn"]
    assert re.fullmatch(rf"arn:aws:bedrock:{REGION}:{ACCOUNT}:custom-model/imported/{SUFFIX}", arn)
    model = get_kind(endpoint, "custom_model", "own-model-1")
    assert model["modelStatus"] == "Creating" and model["modelKmsKeyArn"] == key["Arn"]
    assert model["customizationType"] == "IMPORTED" and "jobArn" not in model
    assert [m["modelStatus"] for m in list_kind(endpoint, "custom_model", "?modelStatus=Creating")] == ["Creating"]
    time.sleep(1.1)
    assert get_kind(endpoint, "custom_model", arn)["modelStatus"] == "Active"
    (summary,) = list_kind(endpoint, "custom_model", "?modelStatus=Active")
    # no base model is known for such a model: the summary's baseModelArn/baseModelName are left out
    assert summary["modelArn"] == arn and "baseModelArn" not in summary and summary["ownerAccountId"] == ACCOUNT
    assert bedrock.list_tags_for_resource(resourceARN=arn)["tags"] == [{"key": "m", "value": "1"}]
    # never Active by itself when jobCompletionSeconds is unset; no key -> no modelKmsKeyArn
    set_options(endpoint, jobCompletionSeconds=None)
    bedrock.create_custom_model(**{**CUSTOM_MODEL, "modelName": "own-2"})
    second = get_kind(endpoint, "custom_model", "own-2")
    assert second["modelStatus"] == "Creating" and "modelKmsKeyArn" not in second
    bedrock.delete_custom_model(modelIdentifier=arn)
    assert [m["modelName"] for m in list_kind(endpoint, "custom_model")] == ["own-2"]


def test_job_requests_validated_against_the_model(endpoint: str) -> None:
    for path, body in (
        ("/model-customization-jobs", {k: v for k, v in CUSTOMIZATION.items() if k != "roleArn"}),  # required
        ("/model-customization-jobs", {**CUSTOMIZATION, "customizationType": "MAGIC"}),  # enum
        ("/model-customization-jobs", {**CUSTOMIZATION, "jobName": ""}),  # length
        ("/model-import-jobs", {**IMPORT, "modelDataSource": {}}),  # union: exactly one member
        ("/evaluation-jobs", {**EVALUATION, "inferenceConfig": {"models": EVALUATION["inferenceConfig"]["models"], "ragConfigs": [{}]}}),
        ("/model-invocation-job", {**INVOCATION, "timeoutDurationInHours": 2}),  # range 24-168
        ("/model-copy-jobs", {"targetModelName": "x"}),
        ("/custom-models/create-custom-model", {"modelName": 5}),
    ):
        resp = raw(endpoint, "POST", path, body=body)
        assert resp.status_code == 400, (path, body, resp.text)
        assert resp.headers["x-amzn-ErrorType"] == "ValidationException", body
        assert "validation error" in resp.json()["message"]
    resp = raw(endpoint, "GET", "/model-customization-jobs?statusEquals=Running")
    assert resp.status_code == 400 and resp.headers["x-amzn-ErrorType"] == "ValidationException"
    for kind in KINDS:
        assert list_kind(endpoint, kind) == []


def test_jobs_per_account_and_region(endpoint: str, bedrock: Any) -> None:
    arn = create_kind("evaluation", bedrock, {})
    for other in (account_client(endpoint, "bedrock", OTHER), account_client(endpoint, "bedrock", region="us-west-2")):
        assert other.list_evaluation_jobs()["jobSummaries"] == []
        with pytest.raises(ClientError) as e:
            other.get_evaluation_job(jobIdentifier=arn)
        assert error_of(e.value) == ("ResourceNotFoundException", 404)


def test_job_list_pagination_and_sorting(endpoint: str, bedrock: Any) -> None:
    arns = [create_kind("invocation", bedrock, {}, jobName=f"batch-{i}") for i in range(3)]
    page = bedrock.list_model_invocation_jobs(maxResults=2)
    assert [j["jobArn"] for j in page["invocationJobSummaries"]] == arns[:2]
    rest = bedrock.list_model_invocation_jobs(maxResults=2, nextToken=page["nextToken"])
    assert [j["jobArn"] for j in rest["invocationJobSummaries"]] == arns[2:] and "nextToken" not in rest
    newest_first = bedrock.list_model_invocation_jobs(sortBy="CreationTime", sortOrder="Descending")
    assert [j["jobArn"] for j in newest_first["invocationJobSummaries"]] == arns[::-1]
    assert [j["jobName"] for j in bedrock.list_model_invocation_jobs(nameContains="batch-1")["invocationJobSummaries"]] == ["batch-1"]
    after = bedrock.list_model_invocation_jobs(submitTimeAfter=datetime(2000, 1, 1))["invocationJobSummaries"]
    assert len(after) == 3 and bedrock.list_model_invocation_jobs(submitTimeBefore=datetime(2000, 1, 1))["invocationJobSummaries"] == []


def test_job_options_validation(endpoint: str) -> None:
    url = f"{endpoint}/_cmk_guard/options"
    for body in (
        {"account": ACCOUNT, "jobCompletionSeconds": -1},
        {"account": ACCOUNT, "jobCompletionSeconds": "5"},
        {"account": ACCOUNT, "jobCompletionSeconds": True},
        {"account": ACCOUNT, "jobStopSeconds": -0.5},
        {"account": ACCOUNT, "jobStopSeconds": [1]},
        {"account": ACCOUNT, "jobCompletionSecs": 1},
    ):
        resp = requests.post(url, json=body)
        assert resp.status_code == 400, body
        assert resp.json()["message"], body
    assert requests.get(f"{url}?account={ACCOUNT}").json() == {}
    assert set_options(endpoint, jobCompletionSeconds=0, jobStopSeconds=2.5) == {"jobCompletionSeconds": 0.0, "jobStopSeconds": 2.5}
    assert set_options(endpoint, jobCompletionSeconds=None) == {"jobStopSeconds": 2.5}  # null: never complete


def test_jobs_request_log_and_faults(endpoint: str, bedrock: Any) -> None:
    requests.delete(f"{endpoint}/_cmk_guard/requests")
    set_options(endpoint, faults=[{"operation": "bedrock:CreateModelInvocationJob", "code": "ServiceQuotaExceededException", "count": 1},
                                  {"operation": "bedrock:GetEvaluationJob", "code": "ThrottlingException", "count": 1}])  # fmt: skip
    once = client(endpoint, "bedrock", retries={"total_max_attempts": 1})
    with pytest.raises(ClientError) as e:
        create_kind("invocation", once, {})
    assert error_of(e.value) == ("ServiceQuotaExceededException", 400)
    assert bedrock.list_model_invocation_jobs()["invocationJobSummaries"] == []  # nothing was created
    create_kind("invocation", once, {})  # count 1: consumed; and the name is still free
    arn = create_kind("evaluation", once, {})
    with pytest.raises(ClientError) as e:
        once.get_evaluation_job(jobIdentifier=arn)
    assert error_of(e.value) == ("ThrottlingException", 429)  # the model's status
    once.get_evaluation_job(jobIdentifier=arn)
    once.stop_evaluation_job(jobIdentifier=arn)
    log = [(r["operation"], r.get("fault")) for r in request_log(endpoint) if r["service"] == "bedrock"]
    assert log == [
        ("CreateModelInvocationJob", "ServiceQuotaExceededException"),
        ("ListModelInvocationJobs", None),
        ("CreateModelInvocationJob", None),
        ("CreateEvaluationJob", None),
        ("GetEvaluationJob", "ThrottlingException"),
        ("GetEvaluationJob", None),
        ("StopEvaluationJob", None),
    ]


def test_job_handlers_go_through_model_conformance() -> None:
    """Every handler bedrock_jobs adds is wrapped by conform.py (it must be registered before
    bedrock_fixes.apply), so members the model lacks and nulls never reach the SDK."""
    from moto.bedrock.responses import BedrockResponse

    from cmk_guard_emulator import apply_patches, bedrock_jobs

    apply_patches()  # (in this test process only; the server patched itself the same way)
    handlers = bedrock_jobs._handlers()
    assert len(handlers) == 26  # 5 kinds x Create/Get/List, 3 Stops, custom and imported models, batch delete
    for name in handlers:
        assert getattr(getattr(BedrockResponse, name), "_cmk_conformed", False), name


def test_dynamodb_conditional_writes_are_atomic_under_concurrency(endpoint: str) -> None:
    """Many clients race one conditional transaction per item: exactly one wins each item,
    as in DynamoDB (the ledger's "told once" and fix lock rest on it)."""
    import threading

    ddb = client(endpoint, "dynamodb")
    ddb.create_table(
        TableName="race",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    items, racers = 40, 24
    wins: dict[str, list[str]] = {f"item-{i}": [] for i in range(items)}
    start = threading.Barrier(racers)

    def race(me: str) -> None:
        own = client(endpoint, "dynamodb")
        start.wait()
        for pk in wins:
            try:
                own.transact_write_items(
                    TransactItems=[
                        {"Put": {"TableName": "race", "Item": {"pk": {"S": f"claim-{pk}-{me}"}}}},
                        {
                            "Update": {
                                "TableName": "race",
                                "Key": {"pk": {"S": pk}},
                                "UpdateExpression": "SET winner = :me",
                                "ConditionExpression": "attribute_not_exists(winner)",
                                "ExpressionAttributeValues": {":me": {"S": me}},
                            }
                        },
                    ]
                )
                wins[pk].append(me)
            except ClientError as e:
                assert error_of(e) == ("TransactionCanceledException", 400)

    threads = [threading.Thread(target=race, args=(f"r{i}",)) for i in range(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {pk: len(w) for pk, w in wins.items()} == {pk: 1 for pk in wins}
    for pk, winners in wins.items():
        item = ddb.get_item(TableName="race", Key={"pk": {"S": pk}}, ConsistentRead=True)["Item"]
        assert item["winner"] == {"S": winners[0]}


def test_request_log_times_each_answer(endpoint: str) -> None:
    """`received` and `ms` tell the emulator's time from the caller's: a request answered 0.3 s
    late (an injected delay) says so."""
    kms = client(endpoint, "kms")
    kms.list_keys()
    set_options(endpoint, faults=[{"operation": "kms:ListAliases", "delaySeconds": 0.3, "count": 1}])
    before = time.time()
    kms.list_aliases()
    after = time.time()
    log = requests.get(f"{endpoint}/_cmk_guard/requests", timeout=10).json()["requests"]
    quick = next(r for r in log if r["operation"] == "ListKeys")
    slow = next(r for r in log if r["operation"] == "ListAliases")
    assert 0 <= quick["ms"] < 300
    assert 300 <= slow["ms"] <= (after - before) * 1000 + 1
    assert before <= slow["received"] <= after


def test_connections_are_kept_alive(endpoint: str) -> None:
    """One connection carries request after request, as a real endpoint's does: the benchmarks
    time the functions, not a TCP connect and a server thread per call."""
    import http.client

    host, port = endpoint.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        for _ in range(3):
            conn.request("GET", "/_cmk_guard/requests")
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 200
            assert resp.getheader("Connection", "").lower() != "close"
        sock = conn.sock
        conn.request("GET", "/_cmk_guard/requests")
        conn.getresponse().read()
        assert conn.sock is sock  # not reconnected
    finally:
        conn.close()
    kms = client(endpoint, "kms")
    kms.list_keys()
    kms.list_keys()
    log = requests.get(f"{endpoint}/_cmk_guard/requests", timeout=10).json()["requests"]
    connections = {r["connection"] for r in log if r["operation"] == "ListKeys"}
    assert len(connections) == 1 and connections.pop().startswith("127.0.0.1:"), log


def test_an_encoded_slash_in_a_path_reaches_moto_decoded(endpoint: str, bedrock: Any) -> None:
    """A job ARN in a path arrives with `/` as `%2F`; moto and the request log see the path
    decoded (PEP 3333's PATH_INFO), as under werkzeug's server."""
    arn = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:evaluation-job/abcdefghijkl"
    raw(endpoint, "GET", "/evaluation-jobs/" + quote(arn, safe=""))
    log = requests.get(f"{endpoint}/_cmk_guard/requests", timeout=10).json()["requests"]
    assert log[-1]["path"] == f"/evaluation-jobs/{arn}", log[-1]
    assert log[-1]["operation"] == "GetEvaluationJob", log[-1]
