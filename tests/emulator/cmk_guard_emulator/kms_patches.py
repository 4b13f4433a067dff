"""KMS fixes: AWS managed keys (alias/aws/*), every key form AWS accepts, reserved alias names,
key spec / usage / origin as created, cross-account and cross-Region key ARNs."""

import functools
import json
import re
from typing import Any, Callable

import moto.kms.utils as kms_utils
from moto.kms.exceptions import NotAuthorizedException, NotFoundException, ValidationException
from moto.kms.models import Key, KmsBackend
from moto.kms.responses import KmsResponse

# AWS managed keys that moto creates on first use, in addition to moto's 14.
EXTRA_AWS_MANAGED_ALIASES = {
    "alias/aws/bedrock": "b3d1e0c2-6f0a-4c8e-9b7d-2a5e8f1c4d90",
    "alias/aws/sns": "5a6c0d3e-8b1f-4e2a-9c7d-1f3b5e7a9c02",
    "alias/aws/sqs": "9e2f4a6c-1b3d-4f5e-8a7c-0d2e4f6a8b13",
}

# Backend methods whose first argument (or key_id=/arn=) is a key identifier that moto
# indexes self.keys with directly. The response layer has already checked which forms
# the operation allows (DisableKey & co: key id or key ARN; Encrypt & co: also aliases),
# so normalising to the raw key id here only fixes the lookup.
KEY_ID_METHODS = (
    "disable_key",
    "enable_key",
    "cancel_key_deletion",
    "schedule_key_deletion",
    "replicate_key",
    "update_key_description",
    "enable_key_rotation",
    "disable_key_rotation",
    "get_key_rotation_status",
    "put_key_policy",
    "get_key_policy",
    "rotate_key_on_demand",
    "list_key_rotations",
    "generate_mac",
    "verify_mac",
    "delete_key",
)


def allowed_key_usages(key_spec: str) -> tuple[str, ...]:
    """KeyUsage values CreateKey accepts for a KeySpec (the KMS model's KeyUsage documentation)."""
    if key_spec == "SYMMETRIC_DEFAULT":
        return ("ENCRYPT_DECRYPT",)
    if key_spec.startswith("HMAC_"):
        return ("GENERATE_VERIFY_MAC",)
    if key_spec.startswith("RSA_"):
        return ("ENCRYPT_DECRYPT", "SIGN_VERIFY")
    if key_spec in ("ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521"):
        return ("SIGN_VERIFY", "KEY_AGREEMENT")
    if key_spec in ("ECC_NIST_EDWARDS25519", "ECC_SECG_P256K1") or key_spec.startswith("ML_DSA_"):
        return ("SIGN_VERIFY",)
    if key_spec.startswith("ML_KEM_"):
        return ("ENCAPSULATE_DECAPSULATE",)
    if key_spec == "SM2":
        return ("ENCRYPT_DECRYPT", "SIGN_VERIFY", "KEY_AGREEMENT")
    return ()  # unknown spec: moto's own KeySpec validation answers


def arn_parts(key_ref: Any) -> "tuple[str, str] | None":
    """(region, account) of a KMS key ARN or alias ARN, None for key ids and alias names."""
    if not isinstance(key_ref, str) or not key_ref.startswith("arn:"):
        return None
    parts = key_ref.split(":", 5)
    if len(parts) != 6 or parts[2] != "kms":
        return None
    return parts[3], parts[4]


def _check_arn_region(resp: KmsResponse, key_ref: Any) -> None:
    """A key/alias ARN of another Region is refused as real KMS does ("Invalid arn REGION")."""
    parts = arn_parts(key_ref)
    if parts and parts[0] and parts[0] != resp.region:
        raise NotFoundException(f"Invalid arn {parts[0]}")


def _normalise(backend: KmsBackend, key_ref: Any) -> Any:
    if not isinstance(key_ref, str) or key_ref in backend.keys:
        return key_ref
    try:
        key_id = backend.any_id_to_key_id(key_ref)
    except Exception:  # noqa: BLE001 - unknown alias etc.: let moto report it
        return key_ref
    return key_id if key_id in backend.keys else key_ref


def _wrap_key_method(name: str) -> None:
    orig: Callable[..., Any] = getattr(KmsBackend, name)

    @functools.wraps(orig)
    def wrapper(self: KmsBackend, *args: Any, **kwargs: Any) -> Any:
        if args:
            args = (_normalise(self, args[0]),) + args[1:]
        for kw in ("key_id", "arn"):
            if kw in kwargs:
                kwargs[kw] = _normalise(self, kwargs[kw])
        return orig(self, *args, **kwargs)

    setattr(KmsBackend, name, wrapper)


def _key_arn(resp: KmsResponse, key_ref: str) -> str:
    backend = resp.kms_backend
    key_id = _normalise(backend, key_ref)
    key = backend.keys.get(key_id)
    return key.arn if key else key_ref


def apply() -> None:
    if getattr(KmsBackend, "_cmk_guard_kms", False):
        return
    KmsBackend._cmk_guard_kms = True  # type: ignore[attr-defined]

    # (a) more AWS managed aliases; mutate moto's objects in place (imported by name elsewhere)
    for alias, fake_target in EXTRA_AWS_MANAGED_ALIASES.items():
        if alias not in kms_utils.RESERVED_ALIASE_TARGET_KEY_IDS:
            kms_utils.RESERVED_ALIASE_TARGET_KEY_IDS[alias] = fake_target
        if alias not in kms_utils.RESERVED_ALIASES:
            kms_utils.RESERVED_ALIASES.append(alias)

    # ... and the keys moto creates behind them are AWS managed, not customer managed
    def _generate_default_keys(self: KmsBackend, alias_name: str) -> Any:
        if alias_name not in kms_utils.RESERVED_ALIASES:
            return None
        service = alias_name.split("/", 2)[-1]
        key = self.create_key(
            None,
            "ENCRYPT_DECRYPT",
            "SYMMETRIC_DEFAULT",
            f"Default key that protects my {service} resources when no other key is defined",
            None,
        )
        key.key_manager = "AWS"
        self.create_alias(key.id, alias_name)
        return key.id

    KmsBackend._generate_default_keys = _generate_default_keys  # type: ignore[method-assign]

    # (b) every key form AWS accepts
    for name in KEY_ID_METHODS:
        _wrap_key_method(name)

    orig_schedule = KmsResponse.schedule_key_deletion

    def schedule_key_deletion(self: KmsResponse) -> str:
        window = self._get_param("PendingWindowInDays")
        if window is not None and not (7 <= int(window) <= 30):
            raise ValidationException(
                f"1 validation error detected: Value '{window}' at 'pendingWindowInDays' failed to "
                "satisfy constraint: Member must have value between 7 and 30"
            )
        out = json.loads(orig_schedule(self))
        key_ref = self._get_param("KeyId")
        backend = self.kms_backend
        key = backend.keys.get(_normalise(backend, key_ref))
        out["KeyId"] = _key_arn(self, key_ref)
        if key is not None:
            out["KeyState"] = key.key_state
            out["PendingWindowInDays"] = int(window) if window is not None else 30
        return json.dumps(out)

    orig_cancel = KmsResponse.cancel_key_deletion

    def cancel_key_deletion(self: KmsResponse) -> str:
        out = json.loads(orig_cancel(self))
        out["KeyId"] = _key_arn(self, self._get_param("KeyId"))
        return json.dumps(out)

    KmsResponse.schedule_key_deletion = schedule_key_deletion  # type: ignore[method-assign]
    KmsResponse.cancel_key_deletion = cancel_key_deletion  # type: ignore[method-assign]

    # ListAliases: AWS managed aliases whose key does not exist yet carry no TargetKeyId
    # (moto invents target ids that no DescribeKey can find).
    orig_list_aliases = KmsResponse.list_aliases

    def list_aliases(self: KmsResponse) -> str:
        out = json.loads(orig_list_aliases(self))
        backend = self.kms_backend
        for alias in out.get("Aliases", []):
            name = alias.get("AliasName", "")
            if name in kms_utils.RESERVED_ALIASES and not backend.alias_exists(name):
                alias.pop("TargetKeyId", None)
        return json.dumps(out)

    KmsResponse.list_aliases = list_aliases  # type: ignore[method-assign]

    # (c) alias names beginning with alias/aws/ are reserved for AWS managed keys
    orig_set_alias = KmsResponse._set_alias

    def _set_alias(self: KmsResponse, update: bool = False) -> str:
        alias_name = self._get_param("AliasName") or ""
        if re.match(r"^alias/aws/", alias_name, re.IGNORECASE):
            raise NotAuthorizedException()
        return orig_set_alias(self, update)

    KmsResponse._set_alias = _set_alias  # type: ignore[method-assign]

    # (d) CreateKey: KeyUsage defaults to ENCRYPT_DECRYPT (moto stored null), the KeySpec/KeyUsage
    # pairs the model documents, Origin=EXTERNAL starts in PendingImport (moto: Enabled)
    orig_create_key_resp = KmsResponse.create_key

    def create_key_resp(self: KmsResponse) -> str:
        spec = self._get_param("KeySpec") or self._get_param("CustomerMasterKeySpec") or "SYMMETRIC_DEFAULT"
        usage = self._get_param("KeyUsage") or "ENCRYPT_DECRYPT"
        allowed = allowed_key_usages(spec)
        if allowed and usage not in allowed:
            raise ValidationException(
                f"KeyUsage {usage} is not compatible with KeySpec {spec}; "
                f"valid values: {', '.join(allowed)}"
            )
        return orig_create_key_resp(self)

    KmsResponse.create_key = create_key_resp  # type: ignore[method-assign]

    orig_create_key = KmsBackend.create_key

    def create_key(
        self: KmsBackend,
        policy: Any,
        key_usage: Any,
        key_spec: Any,
        description: Any,
        tags: Any,
        multi_region: bool = False,
        origin: str = "AWS_KMS",
    ) -> Key:
        key = orig_create_key(
            self, policy, key_usage or "ENCRYPT_DECRYPT", key_spec, description, tags, bool(multi_region), origin
        )
        if origin == "EXTERNAL":  # no key material until ImportKeyMaterial (not in moto)
            key.key_state = "PendingImport"
            key.enabled = False
        return key

    KmsBackend.create_key = create_key  # type: ignore[method-assign]

    # KeyMetadata: only the algorithm list that fits the key usage (moto listed RSA
    # encryption algorithms for HMAC and ECC keys and no MacAlgorithms at all)
    orig_to_dict = Key.to_dict

    def key_to_dict(self: Key) -> dict[str, Any]:
        out = orig_to_dict(self)
        meta = out["KeyMetadata"]
        usage = self.key_usage or "ENCRYPT_DECRYPT"
        meta["KeyUsage"] = usage
        meta["MultiRegion"] = bool(self.multi_region)
        lists = {
            name: meta.pop(name, None)
            for name in ("EncryptionAlgorithms", "SigningAlgorithms", "MacAlgorithms", "KeyAgreementAlgorithms")
        }
        if usage == "ENCRYPT_DECRYPT":
            meta["EncryptionAlgorithms"] = ["SM2PKE"] if self.key_spec == "SM2" else lists["EncryptionAlgorithms"]
        elif usage == "SIGN_VERIFY":
            meta["SigningAlgorithms"] = lists["SigningAlgorithms"]
        elif usage == "GENERATE_VERIFY_MAC":
            meta["MacAlgorithms"] = [f"HMAC_SHA_{self.key_spec.split('_', 1)[1]}"]
        elif usage == "KEY_AGREEMENT":
            meta["KeyAgreementAlgorithms"] = ["ECDH"]
        for name in list(meta):
            if meta[name] is None:
                del meta[name]
        return out

    Key.to_dict = key_to_dict  # type: ignore[method-assign]

    # (e) a key ARN / alias ARN of another Region: NotFoundException "Invalid arn REGION" (as KMS)
    for name in ("_validate_key_id", "_validate_cmk_id", "_validate_alias"):
        orig_validate = getattr(KmsResponse, name)

        def make(orig_validate: Callable[..., Any]) -> Callable[..., Any]:
            @functools.wraps(orig_validate)
            def validate(self: KmsResponse, key_id: str) -> Any:
                _check_arn_region(self, key_id)
                return orig_validate(self, key_id)

            return validate

        setattr(KmsResponse, name, make(orig_validate))

    # (f) DescribeKey with the key ARN or alias ARN of a key in another account: that account's key
    # (no key policy evaluation: any account may describe any key)
    orig_describe_key = KmsResponse.describe_key

    def describe_key(self: KmsResponse) -> str:
        key_ref = self._get_param("KeyId")
        _check_arn_region(self, key_ref)
        parts = arn_parts(key_ref)
        owner = parts[1] if parts else None
        if not owner or owner == self.current_account:
            return orig_describe_key(self)
        caller = self.current_account
        self.current_account = owner  # kms_backend follows current_account
        try:
            return orig_describe_key(self)
        finally:
            self.current_account = caller

    KmsResponse.describe_key = describe_key  # type: ignore[method-assign]
