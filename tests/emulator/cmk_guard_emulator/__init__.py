"""moto 5.2.5 plus the cmk-guard extension (guardrails, bedrock jobs and models, KMS and bedrock
fixes, CloudWatch Logs key association, S3 default encryption, atomic DynamoDB requests, request log,
per-account options and fault injection; moto's dispatcher without a directory scan per request)."""

_applied = False


def apply_patches() -> None:
    """Patch moto's classes. Call before the server builds its apps/URL maps (idempotent)."""
    global _applied
    if _applied:
        return
    from . import (
        bedrock_fixes,
        bedrock_jobs,
        bedrock_logging,
        dispatch_cache,
        dynamodb_atomic,
        dynamodb_transact,
        guardrails,
        kms_patches,
        logs_kms,
        request_log,
        s3_encryption,
    )

    guardrails.apply()
    bedrock_jobs.apply()  # before bedrock_fixes: its handlers go through model conformance too
    bedrock_logging.apply()  # before bedrock_fixes: its handlers go through model conformance too
    bedrock_fixes.apply()  # wraps every bedrock answer in the model conformance step
    guardrails.apply_extra_members()  # after it: extra members must survive conformance
    kms_patches.apply()
    logs_kms.apply()
    s3_encryption.apply()
    request_log.apply()
    dynamodb_atomic.apply()
    dynamodb_transact.apply()
    dispatch_cache.apply()
    _applied = True


def make_app():  # type: ignore[no-untyped-def]
    """The WSGI app: moto's domain dispatcher wrapped in the request log."""
    apply_patches()
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    from .request_log import RequestLogMiddleware

    return RequestLogMiddleware(DomainDispatcherApplication(create_backend_app))
