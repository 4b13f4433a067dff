#!/usr/bin/env python3
"""Writes fuzz/corpus/: the event fixtures and public CloudTrail samples as they are, and seeds
made to start the fuzzer at the edges real events do not reach. Deterministic; run it again
after a fixture changes (python3 fuzz/make_corpus.py) and commit what it wrote.

Made seeds (made-*), each a valid event with one thing wrong, so that intake gets past its
first checks and the fuzzer mutates from there:
- a 1 MB string (the resource ARN), under AFL++'s 1 MiB input limit;
- nesting 127 deep (the most serde_json takes: it refuses the 128th level) and 128 deep, at
  the root and inside a record field;
- bytes that are not UTF-8 in a string (a lone 0xFF, a truncated sequence, an overlong
  encoding, an escaped lone surrogate);
- numbers, arrays, objects, booleans and null where strings or objects belong;
- envelopes whose source is another service's, or that say nothing of it;
- the shapes intake refuses early: not an object, no detail-type and no eventName, a
  detail-type of another kind, a bare record.
"""

import copy
import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "fuzz" / "corpus"
BASE = json.loads((ROOT / "tests/fixtures/events/CreateGuardrail.json").read_text())

# serde_json refuses the 128th level of nesting (its recursion limit is 128).
DEPTH_LIMIT = 128
ONE_MB = 1_000_000


def dump(value) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def write(name: str, data: bytes) -> None:
    assert len(data) < 1024 * 1024, f"{name}: AFL++ reads at most 1 MiB of a seed"
    (OUT / name).write_bytes(data)


def with_value(path: list, value):
    """BASE with the member at path (keys from the root) set to value."""
    event = copy.deepcopy(BASE)
    node = event
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return event


def without(path: list):
    event = copy.deepcopy(BASE)
    node = event
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return event


def nested(depth: int, open_: str, close: str, inner: str = "0") -> str:
    return open_ * depth + inner + close * depth


def main() -> None:
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)

    for folder, prefix in [("events", "event"), ("cloudtrail-samples", "sample")]:
        for path in sorted((ROOT / "tests/fixtures" / folder).glob("*.json")):
            shutil.copyfile(path, OUT / f"{prefix}-{path.name}")

    # Oversized: 1 MB in the field intake returns as the resource (one such seed: AFL++
    # mutates every seed, and a 1 MB one costs it a thousand small ones).
    write("made-big-resource-arn.json",
          dump(with_value(["detail", "responseElements", "guardrailArn"], "a" * ONE_MB)))

    # Nesting: `d` levels in all, counting the containers around the field.
    write("made-nest-127-arrays.json", nested(DEPTH_LIMIT - 1, "[", "]").encode())
    write("made-nest-128-arrays.json", nested(DEPTH_LIMIT, "[", "]").encode())
    write("made-nest-127-objects.json", nested(DEPTH_LIMIT - 1, '{"a":', "}").encode())
    write("made-nest-128-objects.json", nested(DEPTH_LIMIT, '{"a":', "}").encode())
    # Inside the record: envelope > detail > requestParameters (3 levels) > arrays.
    field = dump(with_value(["detail", "requestParameters", "kmsKeyId"], "@@"))
    for depth in (DEPTH_LIMIT - 1, DEPTH_LIMIT):
        inner = nested(depth - 3, "[", "]", '"k"')
        write(f"made-nest-{depth}-in-record.json", field.replace(b'"@@"', inner.encode()))

    # Not UTF-8: raw bytes in strings, and an escaped lone surrogate (valid JSON text,
    # no Unicode scalar).
    marker = dump(with_value(["detail", "eventName"], "@@"))
    for name, raw in [
        ("ff", b'"Create\xffGuardrail"'),
        ("truncated", b'"CreateGuardrail\xe2\x82"'),
        ("overlong", b'"Create\xc0\xafGuardrail"'),
        ("surrogate", b'"CreateGuardrail\\ud800"'),
    ]:
        write(f"made-utf8-{name}-event-name.json", marker.replace(b'"@@"', raw))
    arn = dump(with_value(["detail", "responseElements", "guardrailArn"], "@@"))
    write("made-utf8-ff-resource-arn.json",
          arn.replace(b'"@@"', b'"arn:aws:bedrock:us-east-1:111122223333:guardrail/\xff"'))

    # Wrong types where strings or objects belong.
    wrong = {
        "event-name-number": (["detail", "eventName"], 42),
        "event-name-null": (["detail", "eventName"], None),
        "event-name-array": (["detail", "eventName"], ["CreateGuardrail"]),
        "event-source-object": (["detail", "eventSource"], {"name": "bedrock.amazonaws.com"}),
        "event-id-number": (["detail", "eventID"], 1),
        "event-time-bool": (["detail", "eventTime"], True),
        "region-array": (["detail", "awsRegion"], ["us-east-1"]),
        "user-identity-string": (["detail", "userIdentity"], "alice"),
        "user-identity-arn-number": (["detail", "userIdentity", "arn"], 3.5),
        "error-code-number": (["detail", "errorCode"], 403),
        "error-code-empty": (["detail", "errorCode"], ""),
        "request-parameters-null": (["detail", "requestParameters"], None),
        "response-elements-array": (["detail", "responseElements"], []),
        "resource-arn-object": (["detail", "responseElements", "guardrailArn"], {"arn": "x"}),
        "resource-arn-hidden": (["detail", "responseElements", "guardrailArn"],
                                "HIDDEN_DUE_TO_SECURITY_REASONS"),
        "key-hint-number": (["detail", "requestParameters", "kmsKeyId"], 12345),
        "key-hint-arn": (["detail", "requestParameters", "kmsKeyId"],
                         "arn:aws:kms:us-east-1:111122223333:key/"
                         "1234abcd-12ab-34cd-56ef-1234567890ab"),
        "detail-array": (["detail"], []),
        "detail-null": (["detail"], None),
        "detail-type-number": (["detail-type"], 7),
        "detail-type-other": (["detail-type"], "AWS Service Event via CloudTrail"),
        "account-number": (["account"], 111122223333),
        "account-empty": (["account"], " "),
        "region-null": (["region"], None),
        "time-not-a-time": (["time"], "yesterday"),
        "time-number": (["time"], 0),
        "resources-object": (["resources"], {}),
        "version-number": (["version"], 0),
        "id-null": (["id"], None),
    }
    for name, (path, value) in wrong.items():
        write(f"made-type-{name}.json", dump(with_value(path, value)))
    for name, path in {
        "no-source": ["source"],
        "no-account": ["account"],
        "no-time": ["time"],
        "no-detail": ["detail"],
        "no-event-id": ["detail", "eventID"],
        "no-user-identity": ["detail", "userIdentity"],
    }.items():
        write(f"made-missing-{name}.json", dump(without(path)))

    # Envelopes whose source is not the record's service.
    for name, source in [
        ("kms", "aws.kms"),
        ("empty", ""),
        ("custom", "my.app"),
        ("bedrock-runtime", "aws.bedrock-runtime"),
    ]:
        write(f"made-source-mismatch-{name}.json", dump(with_value(["source"], source)))
    write("made-source-mismatch-record-service.json",
          dump(with_value(["detail", "eventSource"], "kms.amazonaws.com")))
    write("made-source-no-dot.json", dump(with_value(["detail", "eventSource"], "bedrock")))

    # Early refusals.
    write("made-bare-record.json", dump(BASE["detail"]))
    write("made-not-object-null.json", b"null")
    write("made-not-object-array.json", b"[]")
    write("made-not-object-string.json", b'"AWS API Call via CloudTrail"')
    write("made-empty-object.json", b"{}")
    write("made-empty.json", b"")
    write("made-detail-type-and-event-name.json",
          dump({**BASE, "eventName": "CreateGuardrail"}))
    write("made-duplicate-keys.json",
          dump(BASE).replace(b'"source":"aws.bedrock"',
                             b'"source":"aws.bedrock","source":"aws.kms"'))


if __name__ == "__main__":
    main()
