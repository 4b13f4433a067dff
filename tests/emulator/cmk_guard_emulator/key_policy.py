"""Key policy evaluation for services that use a customer managed key on the caller's behalf.

Real services (CloudWatch Logs, ...) refuse a KMS key whose key policy does not let their
service principal use it. This is a deliberately small evaluator (see README, "Unknown real
behaviour"): it reads Allow/Deny statements with `Principal` and `Action`, matches `*` / `?`
wildcards in actions, and does NOT evaluate `Condition` blocks, `NotAction`, `NotPrincipal`,
`Resource` (always the key itself in a key policy), grants or IAM policies.
"""

import json
import re
from functools import lru_cache
from typing import Any, Iterable, Optional


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


@lru_cache(maxsize=256)
def _action_regex(pattern: str) -> "re.Pattern[str]":
    parts = (re.escape(ch) if ch not in "*?" else (".*" if ch == "*" else ".") for ch in pattern)
    return re.compile("^" + "".join(parts) + "$", re.IGNORECASE)


def action_matches(pattern: Any, action: str) -> bool:
    """IAM action match: case-insensitive, `*` any run of characters, `?` one character."""
    return isinstance(pattern, str) and bool(_action_regex(pattern).match(action))


def principal_matches(principal: Any, service_principals: Iterable[str]) -> bool:
    """True when `principal` names one of the service principals, or everyone (`*`, {"AWS": "*"})."""
    wanted = {s.lower() for s in service_principals}
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    if any(p == "*" for p in _as_list(principal.get("AWS"))):
        return True
    return any(isinstance(p, str) and p.lower() in wanted for p in _as_list(principal.get("Service")))


def statements(policy: Any) -> list[dict[str, Any]]:
    """The statements of a key policy given as a JSON string or a dict ([] if unreadable)."""
    if isinstance(policy, (bytes, bytearray)):
        policy = policy.decode("utf-8", "replace")
    if isinstance(policy, str):
        try:
            policy = json.loads(policy)
        except ValueError:
            return []
    if not isinstance(policy, dict):
        return []
    return [s for s in _as_list(policy.get("Statement")) if isinstance(s, dict)]


def missing_actions(policy: Any, service_principals: Iterable[str], actions: Iterable[str]) -> list[str]:
    """The `actions` the policy does not allow the service principals (empty list: all allowed).

    An action is allowed when some Allow statement names the principal (or `*`) and an Action
    pattern covering it, and no Deny statement WITHOUT a Condition names the principal and
    covers it. Conditions on Allow statements are ignored (treated as satisfied); conditional
    Deny statements are ignored (treated as not applying).
    """
    principals = list(service_principals)
    stmts = statements(policy)
    missing = []
    for action in actions:
        allowed = False
        denied = False
        for st in stmts:
            if not principal_matches(st.get("Principal"), principals):
                continue
            if not any(action_matches(p, action) for p in _as_list(st.get("Action"))):
                continue
            effect = str(st.get("Effect", "")).lower()
            if effect == "allow":
                allowed = True
            elif effect == "deny" and not st.get("Condition"):
                denied = True
        if denied or not allowed:
            missing.append(action)
    return missing


def service_may_use(policy: Any, service_principals: Iterable[str], actions: Iterable[str]) -> bool:
    return not missing_actions(policy, service_principals, actions)


def find_key(account_id: str, region: str, key_ref: str) -> Optional[Any]:
    """moto's Key for a key id / key ARN / alias name / alias ARN, looked up in the account and
    Region the ARN names (default: the caller's); None when there is no such key."""
    from moto.kms.models import kms_backends

    acct, reg = account_id, region
    if key_ref.startswith("arn:"):
        parts = key_ref.split(":", 5)
        if len(parts) != 6 or parts[2] != "kms":
            return None
        reg = parts[3] or region
        acct = parts[4] or account_id
    try:
        backend = kms_backends[acct][reg]
        return backend.keys.get(backend.any_id_to_key_id(key_ref))
    except Exception:  # noqa: BLE001 - unknown alias, malformed id ...: no such key
        return None
