"""Bedrock jobs and the models they make, per account and Region in moto's BedrockBackend.

moto 5.2.5 has model customization jobs and custom models only, and gets them wrong for
KMS checks: it invents `outputModelKmsKeyArn`/`modelKmsKeyArn`, creates the custom model
together with the job, doubles the foundation-model ARN prefix, and reports members a
running job does not have. It has no import, copy, evaluation or batch inference jobs.

Here (bedrock 2023-04-20 model; see README "Bedrock jobs and models"):

- customization, import, copy, evaluation and batch inference (model invocation) jobs;
  custom models (from customization / copy jobs and CreateCustomModel) and imported models;
- KMS members as the service reports them: key ARNs resolved through moto's KMS where the
  output member is a key ARN, the id as sent where it is a key id, absent when none was sent;
- a running job reports what a running job has; it completes (and its model appears) after
  the per-account option `jobCompletionSeconds`, never by itself when that is unset;
  Stop -> `Stopping` for `jobStopSeconds`, then `Stopped`;
- `clientRequestToken` idempotency, unique job and model names, model validation of every
  request (required members, types, enums, lengths, unions).

Every handler is in place before bedrock_fixes wraps the bedrock answers in the model
conformance step (conform.py), so its answers follow the botocore output shapes.
"""

import base64
import copy
import json
import threading
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Optional

from moto.bedrock.models import BedrockBackend
from moto.bedrock.responses import BedrockResponse
from moto.core.common_models import BaseModel
from moto.moto_api._internal import mock_random
from moto.utilities.utils import get_partition

from . import options
from .bedrock_fixes import _uri_param
from .guardrails import validate
from .util import (
    ConflictException,
    ResourceNotFoundException,
    ValidationException,
    iso,
    resolve_kms_key_arn,
    service_model,
    utcnow,
)

DEFAULT_STOP_SECONDS = 60.0
DEFAULT_MAX_RESULTS = 100
JOB_NAME_IN_USE = "The provided job name is currently in use."  # real CreateModelImportJob text (README)
MODEL_NAME_IN_USE = "The provided model name is currently in use."

# one lock for every create/stop/delete: idempotency tokens and name checks must not race
_lock = threading.RLock()


# --------------------------------------------------------------------------- helpers


def parse_arn(arn: str) -> Optional[dict[str, str]]:
    """Split an ARN at its first five colons (resource parts such as
    `custom-model/amazon.titan-text-express-v1:0:8k/abc` contain colons themselves)."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        return None
    keys = ("arn", "partition", "service", "region", "account", "resource")
    return dict(zip(keys, parts))


def _new_id() -> str:
    return mock_random.get_random_string(length=12, lower_case=True)


def _bedrock_arn(region: str, account: str, resource: str) -> str:
    return f"arn:{get_partition(region)}:bedrock:{region}:{account}:{resource}"


def foundation_model_arn(region: str, model_id: str) -> str:
    return f"arn:{get_partition(region)}:bedrock:{region}::foundation-model/{model_id}"


def _pick(params: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """The members `names` exactly as sent (absent when not sent)."""
    return {n: copy.deepcopy(params[n]) for n in names if params.get(n) is not None}


def _tag(backend: Any, arn: str, tags: Optional[list[dict[str, str]]]) -> None:
    if tags:
        backend.tagger.tag_resource(arn, [{"Key": t["key"], "Value": t["value"]} for t in tags])


def _union_errors(value: Any, shape: Any, path: str, errors: list[str]) -> None:
    """Union structures (the model's `union` trait) need exactly one member set."""
    t = shape.type_name
    if t == "structure" and isinstance(value, dict):
        if shape.metadata.get("union"):
            set_members = [k for k in shape.members if value.get(k) is not None]
            if len(set_members) != 1:
                errors.append(
                    f"Value at '{path}' failed to satisfy constraint: exactly one of "
                    f"[{', '.join(shape.members)}] must be set"
                )
        for name, member in shape.members.items():
            if value.get(name) is not None:
                _union_errors(value[name], member, f"{path}.{name}" if path else name, errors)
    elif t == "list" and isinstance(value, list):
        for i, item in enumerate(value):
            _union_errors(item, shape.member, f"{path}.{i + 1}.member", errors)


def check_request(params: dict[str, Any], op: str) -> None:
    """Model validation: required members, types, enums, lengths, ranges and unions."""
    shape = service_model("bedrock").operation_model(op).input_shape
    errors: list[str] = []
    validate(params, shape, "", errors)
    _union_errors(params, shape, "", errors)
    if errors:
        n = len(errors)
        raise ValidationException(f"{n} validation error{'s' if n > 1 else ''} detected: " + "; ".join(errors))


def _key_arn(job: Any, ref: Optional[str], what: str) -> Optional[str]:
    """ARN of the key `ref` names (unknown key or another Region -> ValidationException)."""
    if ref is None:
        return None
    return resolve_kms_key_arn(job.account_id, job.region_name, ref, what, require_symmetric=True)


# --------------------------------------------------------------------------- status over time


class Lifecycle(BaseModel):
    """Status over wall-clock time. Running (RUNNING) until `complete_at` - option
    jobCompletionSeconds read at creation, None = never - then COMPLETED; after a Stop
    `Stopping` until `stopped_at` (option jobStopSeconds read at the Stop), then `Stopped`."""

    RUNNING = "InProgress"
    COMPLETED = "Completed"

    def __init__(self, account_id: str):
        self.account_id = account_id
        self.created: datetime = utcnow()
        seconds = options.get(account_id, "jobCompletionSeconds")
        self.complete_at: Optional[datetime] = (
            None if seconds is None else self.created + timedelta(seconds=seconds)
        )
        self.stop_requested: Optional[datetime] = None
        self.stopped_at: Optional[datetime] = None

    def status(self) -> str:
        now = utcnow()
        if self.stop_requested is not None:
            return "Stopping" if now < self.stopped_at else "Stopped"  # type: ignore[operator]
        if self.complete_at is not None and now >= self.complete_at:
            return self.COMPLETED
        return self.RUNNING

    def end_time(self) -> Optional[datetime]:
        status = self.status()
        if status == self.COMPLETED:
            return self.complete_at
        if status == "Stopped":
            return self.stopped_at
        return None

    def last_modified(self) -> datetime:
        """The time of the latest status change that has happened."""
        changes = [self.created, self.stop_requested, self.end_time()]
        return max(t for t in changes if t is not None)


# --------------------------------------------------------------------------- models


class CustomModel(BaseModel):
    """A custom model: made by a completed customization or copy job (Active at once) or by
    CreateCustomModel (Creating until jobCompletionSeconds have passed, then Active)."""

    def __init__(
        self,
        account_id: str,
        arn: str,
        name: str,
        created: datetime,
        details: dict[str, Any],
        key_arn: Optional[str],
        active_at: Optional[datetime],
    ):
        self.account_id = account_id
        self.arn = arn
        self.name = name
        self.created = created
        self.details = details  # jobName, jobArn, baseModelArn, customizationType, configs ...
        self.key_arn = key_arn
        self.active_at = active_at

    def status(self) -> str:
        return "Active" if self.active_at is not None and utcnow() >= self.active_at else "Creating"

    def describe(self) -> dict[str, Any]:
        out = copy.deepcopy(self.details)
        out.update(
            {
                "modelArn": self.arn,
                "modelName": self.name,
                "creationTime": iso(self.created),
                "modelStatus": self.status(),
            }
        )
        if self.key_arn:
            out["modelKmsKeyArn"] = self.key_arn
        return out

    def summary(self) -> dict[str, Any]:
        out = {
            "modelArn": self.arn,
            "modelName": self.name,
            "creationTime": iso(self.created),
            "ownerAccountId": self.account_id,
            "modelStatus": self.status(),
        }
        base = self.details.get("baseModelArn")
        if base:
            out["baseModelArn"] = base
            out["baseModelName"] = base.split("foundation-model/", 1)[-1]
        if self.details.get("customizationType"):
            out["customizationType"] = self.details["customizationType"]
        return out


class ImportedModel(BaseModel):
    """The model a completed import job made."""

    def __init__(self, job: "ImportJob"):
        self.arn = job.imported_model_arn
        self.name = job.params["importedModelName"]
        self.created: datetime = job.complete_at  # type: ignore[assignment]
        self.job = job

    def describe(self) -> dict[str, Any]:
        out = {
            "modelArn": self.arn,
            "modelName": self.name,
            "jobName": self.job.name,
            "jobArn": self.job.arn,
            "modelDataSource": copy.deepcopy(self.job.params["modelDataSource"]),
            "creationTime": iso(self.created),
        }
        if self.job.key_arn:
            out["modelKmsKeyArn"] = self.job.key_arn
        return out

    def summary(self) -> dict[str, Any]:
        return {"modelArn": self.arn, "modelName": self.name, "creationTime": iso(self.created)}


# --------------------------------------------------------------------------- jobs


class Job(Lifecycle):
    """One job. Subclasses name their operations, ARN resource type and members."""

    RESOURCE = ""  # ARN resource type, e.g. "model-import-job"
    CREATE_OP = GET_OP = LIST_OP = ""
    STOP_OP: Optional[str] = None  # None: the model has no Stop operation for this kind
    LIST_MEMBER = ""  # list member of the List answer
    ID_PARAM = "jobIdentifier"  # URI label of Get/Stop
    NAME_MEMBER: Optional[str] = "jobName"  # copy jobs have no name
    TIME_FILTER = "creationTime"  # <TIME_FILTER>After / <TIME_FILTER>Before query members
    NAME_FILTER = "nameContains"
    TAGS_MEMBER = "jobTags"  # request member with the job's own tags
    MODEL_NAME_MEMBER: Optional[str] = None  # request member naming the model the job makes
    MODEL_NAMESPACE = "custom"  # custom models and imported models have separate names

    def __init__(self, backend: Any, params: dict[str, Any]):
        super().__init__(backend.account_id)
        self.region_name: str = backend.region_name
        self.params = copy.deepcopy(params)
        self.name: Optional[str] = params.get(self.NAME_MEMBER) if self.NAME_MEMBER else None
        self.job_id = _new_id()
        self.arn = _bedrock_arn(self.region_name, self.account_id, f"{self.RESOURCE}/{self.job_id}")
        self.completed_seen = False  # the job's model was created (on completion)

    # -- what a subclass adds
    def requested_model(self) -> Optional[tuple[str, str]]:
        """(namespace, name) of the model this job is to make, if it makes one."""
        if self.MODEL_NAME_MEMBER is None:
            return None
        return self.MODEL_NAMESPACE, self.params[self.MODEL_NAME_MEMBER]

    def reserved_model(self) -> Optional[tuple[str, str]]:
        """The requested model while the job may still make it (its name is taken meanwhile)."""
        return self.requested_model() if self.status() in (self.RUNNING, "Submitted") else None

    def filter_name(self) -> str:
        """What the List operation's name filter looks at."""
        return self.name or ""

    def on_complete(self, backend: Any) -> None:
        """Create the job's model (called once, when the job is first seen Completed)."""

    def describe(self) -> dict[str, Any]:
        raise NotImplementedError

    def summary(self) -> dict[str, Any]:
        raise NotImplementedError

    def matches(self, q: dict[str, Any]) -> bool:
        """List filters common to every kind (subclasses add theirs)."""
        after, before = q.get(self.TIME_FILTER + "After"), q.get(self.TIME_FILTER + "Before")
        if after is not None and not self.created > after:
            return False
        if before is not None and not self.created < before:
            return False
        if q.get("statusEquals") is not None and self.status() != q["statusEquals"]:
            return False
        contains = q.get(self.NAME_FILTER)
        return contains is None or contains in self.filter_name()

    # -- Stop
    def stop(self) -> None:
        status = self.status()
        if status == "Stopping":
            raise ConflictException(f"The job {self.arn} is already being stopped (status Stopping).")
        if status not in (self.RUNNING, "Submitted"):
            raise ValidationException(
                f"The job {self.arn} is in status {status}; only a job in progress can be stopped."
            )
        now = utcnow()
        seconds = options.get(self.account_id, "jobStopSeconds", DEFAULT_STOP_SECONDS)
        self.stop_requested = now
        self.stopped_at = now + timedelta(seconds=seconds)

    def _times(self) -> dict[str, Any]:
        out = {"creationTime": iso(self.created), "lastModifiedTime": iso(self.last_modified())}
        end = self.end_time()
        if end is not None:
            out["endTime"] = iso(end)
        return out


class CustomizationJob(Job):
    RESOURCE = "model-customization-job"
    CREATE_OP, GET_OP, LIST_OP = "CreateModelCustomizationJob", "GetModelCustomizationJob", "ListModelCustomizationJobs"
    STOP_OP = "StopModelCustomizationJob"
    LIST_MEMBER = "modelCustomizationJobSummaries"
    MODEL_NAME_MEMBER = "customModelName"
    ECHO = (
        "jobName", "roleArn", "clientRequestToken", "hyperParameters", "trainingDataConfig",
        "validationDataConfig", "outputDataConfig", "customizationType", "vpcConfig", "customizationConfig",
    )  # fmt: skip

    def __init__(self, backend: Any, params: dict[str, Any]):
        super().__init__(backend, params)
        self.base_model_arn, base_id = backend.cmk_base_model(params["baseModelIdentifier"])
        # the ARN embeds the base model id, colons included (recorded real ARNs)
        self.arn = _bedrock_arn(self.region_name, self.account_id, f"{self.RESOURCE}/{base_id}/{self.job_id}")
        self.model_arn = _bedrock_arn(self.region_name, self.account_id, f"custom-model/{base_id}/{_new_id()}")
        self.key_arn = _key_arn(self, params.get("customModelKmsKeyId"), "customModelKmsKeyId")

    def on_complete(self, backend: Any) -> None:
        details = _pick(
            self.params,
            ("hyperParameters", "trainingDataConfig", "validationDataConfig", "outputDataConfig",
             "customizationType", "customizationConfig"),
        )  # fmt: skip
        details.update({"jobName": self.name, "jobArn": self.arn, "baseModelArn": self.base_model_arn})
        model = CustomModel(
            self.account_id, self.model_arn, self.params["customModelName"], self.complete_at,  # type: ignore[arg-type]
            details, self.key_arn, active_at=self.complete_at,
        )  # fmt: skip
        backend.cmk_add_custom_model(model, self.params.get("customModelTags"))

    def describe(self) -> dict[str, Any]:
        out = _pick(self.params, self.ECHO)
        # required in the output; the service reports an empty validator list when none was given
        out.setdefault("validationDataConfig", {"validators": []})
        out.update(
            {
                "jobArn": self.arn,
                "outputModelName": self.params["customModelName"],
                "status": self.status(),
                "baseModelArn": self.base_model_arn,
                **self._times(),
            }
        )
        if self.key_arn:
            out["outputModelKmsKeyArn"] = self.key_arn
        if out["status"] == self.COMPLETED:
            out["outputModelArn"] = self.model_arn
        return out

    def summary(self) -> dict[str, Any]:
        out = {
            "jobArn": self.arn,
            "baseModelArn": self.base_model_arn,
            "jobName": self.name,
            "status": self.status(),
            "customModelName": self.params["customModelName"],
            **self._times(),
        }
        if out["status"] == self.COMPLETED:
            out["customModelArn"] = self.model_arn
        if self.params.get("customizationType"):
            out["customizationType"] = self.params["customizationType"]
        return out


class ImportJob(Job):
    RESOURCE = "model-import-job"
    CREATE_OP, GET_OP, LIST_OP = "CreateModelImportJob", "GetModelImportJob", "ListModelImportJobs"
    LIST_MEMBER = "modelImportJobSummaries"
    MODEL_NAME_MEMBER = "importedModelName"
    MODEL_NAMESPACE = "imported"
    ECHO = ("jobName", "importedModelName", "roleArn", "modelDataSource", "vpcConfig")

    def __init__(self, backend: Any, params: dict[str, Any]):
        super().__init__(backend, params)
        self.imported_model_arn = _bedrock_arn(self.region_name, self.account_id, f"imported-model/{_new_id()}")
        self.key_arn = _key_arn(self, params.get("importedModelKmsKeyId"), "importedModelKmsKeyId")

    def on_complete(self, backend: Any) -> None:
        model = ImportedModel(self)
        backend.cmk_imported_models[model.arn] = model
        _tag(backend, model.arn, self.params.get("importedModelTags"))

    def describe(self) -> dict[str, Any]:
        out = _pick(self.params, self.ECHO)
        out.update({"jobArn": self.arn, "status": self.status(), **self._times()})
        if self.key_arn:
            out["importedModelKmsKeyArn"] = self.key_arn
        if out["status"] == self.COMPLETED:
            out["importedModelArn"] = self.imported_model_arn
        return out

    def summary(self) -> dict[str, Any]:
        out = {
            "jobArn": self.arn,
            "jobName": self.name,
            "status": self.status(),
            "importedModelName": self.params["importedModelName"],
            **self._times(),
        }
        if out["status"] == self.COMPLETED:
            out["importedModelArn"] = self.imported_model_arn
        return out


class CopyJob(Job):
    RESOURCE = "model-copy-job"
    CREATE_OP, GET_OP, LIST_OP = "CreateModelCopyJob", "GetModelCopyJob", "ListModelCopyJobs"
    LIST_MEMBER = "modelCopyJobSummaries"
    ID_PARAM = "jobArn"
    NAME_MEMBER = None
    NAME_FILTER = "targetModelNameContains"
    TAGS_MEMBER = ""  # targetModelTags belong to the copied model
    MODEL_NAME_MEMBER = "targetModelName"

    def __init__(self, backend: Any, params: dict[str, Any]):
        super().__init__(backend, params)
        self.source = backend.cmk_copy_source(params["sourceModelArn"])
        self.source_account = parse_arn(params["sourceModelArn"])["account"]  # type: ignore[index]
        base_id = self._base_model_id()
        self.target_arn = _bedrock_arn(self.region_name, self.account_id, f"custom-model/{base_id}/{_new_id()}")
        self.key_arn = _key_arn(self, params.get("modelKmsKeyId"), "modelKmsKeyId")

    def _base_model_id(self) -> str:
        """The base model id of the source: `custom-model/<id>/<suffix>` or `foundation-model/<id>`."""
        resource = parse_arn(self.params["sourceModelArn"])["resource"]  # type: ignore[index]
        kind, _, rest = resource.partition("/")
        return rest.rsplit("/", 1)[0] if kind == "custom-model" else rest

    def filter_name(self) -> str:
        return self.params["targetModelName"]

    def on_complete(self, backend: Any) -> None:
        details: dict[str, Any] = {}
        if self.source is not None:
            details = _pick(self.source.details, ("baseModelArn", "customizationType"))
        else:  # a foundation model was copied
            details = {"baseModelArn": self.params["sourceModelArn"]}
        model = CustomModel(
            self.account_id, self.target_arn, self.params["targetModelName"], self.complete_at,  # type: ignore[arg-type]
            details, self.key_arn, active_at=self.complete_at,
        )  # fmt: skip
        backend.cmk_add_custom_model(model, self.params.get("targetModelTags"))

    def matches(self, q: dict[str, Any]) -> bool:
        if q.get("sourceAccountEquals") is not None and q["sourceAccountEquals"] != self.source_account:
            return False
        if q.get("sourceModelArnEquals") is not None and q["sourceModelArnEquals"] != self.params["sourceModelArn"]:
            return False
        return super().matches(q)

    def describe(self) -> dict[str, Any]:
        out = _pick(self.params, ("targetModelName", "sourceModelArn", "targetModelTags"))
        out.update(
            {
                "jobArn": self.arn,
                "status": self.status(),
                "creationTime": iso(self.created),
                "targetModelArn": self.target_arn,
                "sourceAccountId": self.source_account,
            }
        )
        if self.source is not None:
            out["sourceModelName"] = self.source.name
        if self.key_arn:
            out["targetModelKmsKeyArn"] = self.key_arn
        return out

    summary = describe  # ModelCopyJobSummary has the same members


class EvaluationJob(Job):
    RESOURCE = "evaluation-job"
    CREATE_OP, GET_OP, LIST_OP = "CreateEvaluationJob", "GetEvaluationJob", "ListEvaluationJobs"
    STOP_OP = "StopEvaluationJob"
    LIST_MEMBER = "jobSummaries"
    ECHO = (
        "jobName", "jobDescription", "roleArn", "customerEncryptionKeyId", "applicationType",
        "evaluationConfig", "inferenceConfig", "outputDataConfig",
    )  # fmt: skip

    def __init__(self, backend: Any, params: dict[str, Any]):
        super().__init__(backend, params)
        # the output member is the key id as sent; an unknown key is still refused
        _key_arn(self, params.get("customerEncryptionKeyId"), "customerEncryptionKeyId")

    def job_type(self) -> str:
        return "Human" if "human" in self.params["evaluationConfig"] else "Automated"

    def matches(self, q: dict[str, Any]) -> bool:
        wanted = q.get("applicationTypeEquals")
        if wanted is not None and self.params.get("applicationType") != wanted:
            return False
        return super().matches(q)

    def describe(self) -> dict[str, Any]:
        out = _pick(self.params, self.ECHO)
        out.update(
            {
                "jobArn": self.arn,
                "status": self.status(),
                "jobType": self.job_type(),
                "creationTime": iso(self.created),
                "lastModifiedTime": iso(self.last_modified()),
            }
        )
        return out

    def summary(self) -> dict[str, Any]:
        config = self.params["evaluationConfig"]
        method = config.get("automated") or config.get("human") or {}
        task_types = list(dict.fromkeys(c["taskType"] for c in method.get("datasetMetricConfigs", [])))
        models = self.params["inferenceConfig"].get("models") or []
        rags = self.params["inferenceConfig"].get("ragConfigs") or []
        bedrock_models = [m["bedrockModel"]["modelIdentifier"] for m in models if m.get("bedrockModel")]
        precomputed = [
            m["precomputedInferenceSource"]["inferenceSourceIdentifier"]
            for m in models
            if m.get("precomputedInferenceSource")
        ]
        kbs = [kb for kb in (_knowledge_base_id(r) for r in rags) if kb]
        evaluators = [
            e["modelIdentifier"]
            for e in ((config.get("automated") or {}).get("evaluatorModelConfig") or {}).get("bedrockEvaluatorModels", [])
        ]
        out: dict[str, Any] = {
            "jobArn": self.arn,
            "jobName": self.name,
            "status": self.status(),
            "creationTime": iso(self.created),
            "jobType": self.job_type(),
            "evaluationTaskTypes": task_types,
            "modelIdentifiers": bedrock_models,
            "ragIdentifiers": kbs,
            "evaluatorModelIdentifiers": evaluators,
            "inferenceConfigSummary": _inference_summary(bedrock_models, precomputed, kbs, rags),
        }
        if self.params.get("applicationType"):
            out["applicationType"] = self.params["applicationType"]
        return out


def _knowledge_base_id(rag: dict[str, Any]) -> Optional[str]:
    kb = rag.get("knowledgeBaseConfig") or {}
    if kb.get("retrieveConfig"):
        return kb["retrieveConfig"].get("knowledgeBaseId")
    return ((kb.get("retrieveAndGenerateConfig") or {}).get("knowledgeBaseConfiguration") or {}).get("knowledgeBaseId")


def _inference_summary(models: list[str], precomputed: list[str], kbs: list[str], rags: list[dict[str, Any]]) -> dict[str, Any]:
    if rags:
        sources = [
            src.get("ragSourceIdentifier")
            for r in rags
            for src in (r.get("precomputedRagSourceConfig") or {}).values()
            if isinstance(src, dict)
        ]
        return {"ragConfigSummary": {"bedrockKnowledgeBaseIdentifiers": kbs, "precomputedRagSourceIdentifiers": sources}}
    return {"modelConfigSummary": {"bedrockModelIdentifiers": models, "precomputedInferenceSourceIdentifiers": precomputed}}


class InvocationJob(Job):
    """Batch inference. The first answer (Get or List) that shows a running job says
    `Submitted`, every later one `InProgress` (see README)."""

    RESOURCE = "model-invocation-job"
    CREATE_OP, GET_OP, LIST_OP = "CreateModelInvocationJob", "GetModelInvocationJob", "ListModelInvocationJobs"
    STOP_OP = "StopModelInvocationJob"
    LIST_MEMBER = "invocationJobSummaries"
    TIME_FILTER = "submitTime"
    TAGS_MEMBER = "tags"
    ECHO = (
        "jobName", "roleArn", "clientRequestToken", "modelId", "inputDataConfig", "outputDataConfig",
        "vpcConfig", "timeoutDurationInHours", "modelInvocationType",
    )  # fmt: skip

    def __init__(self, backend: Any, params: dict[str, Any]):
        super().__init__(backend, params)
        s3 = params["outputDataConfig"].get("s3OutputDataConfig") or {}
        # echoed as sent (the member is a key id); an unknown key is still refused
        _key_arn(self, s3.get("s3EncryptionKeyId"), "outputDataConfig.s3OutputDataConfig.s3EncryptionKeyId")
        self.in_progress_since: Optional[datetime] = None  # set by the first answer showing the job

    def status(self) -> str:
        status = super().status()
        return "Submitted" if status == self.RUNNING and self.in_progress_since is None else status

    def last_modified(self) -> datetime:
        changes = [super().last_modified(), self.in_progress_since]
        return max(t for t in changes if t is not None)

    def describe(self) -> dict[str, Any]:
        out = _pick(self.params, self.ECHO)
        out.update(
            {
                "jobArn": self.arn,
                "status": self.status(),
                "submitTime": iso(self.created),
                "lastModifiedTime": iso(self.last_modified()),
            }
        )
        end = self.end_time()
        if end is not None:
            out["endTime"] = iso(end)
        if out["status"] == "Submitted":  # this answer showed it: the job moves on to InProgress
            self.in_progress_since = utcnow()
        return out

    summary = describe  # ModelInvocationJobSummary has the same members


JOB_KINDS: tuple[type[Job], ...] = (CustomizationJob, ImportJob, CopyJob, EvaluationJob, InvocationJob)


# --------------------------------------------------------------------------- backend methods (mixed into BedrockBackend)


class JobsBackendMixin:
    account_id: str
    region_name: str
    tagger: Any
    cmk_jobs: dict[str, dict[str, Job]]  # RESOURCE -> job ARN -> job
    cmk_tokens: dict[tuple[str, str], str]  # (RESOURCE, clientRequestToken) -> ARN created first
    cmk_custom_models: dict[str, CustomModel]  # ARN -> model
    cmk_imported_models: dict[str, ImportedModel]  # ARN -> model

    def _init_jobs(self) -> None:
        self.cmk_jobs = {cls.RESOURCE: {} for cls in JOB_KINDS}
        self.cmk_tokens = {}
        self.cmk_custom_models = {}
        self.cmk_imported_models = {}

    def cmk_settle(self) -> None:
        """Create the models of jobs that have completed since the last request."""
        with _lock:
            for jobs in self.cmk_jobs.values():
                for job in jobs.values():
                    if not job.completed_seen and job.status() == job.COMPLETED:
                        job.completed_seen = True
                        job.on_complete(self)

    # -- lookups
    def cmk_find_job(self, cls: type[Job], identifier: str) -> Job:
        """By ARN, by name, or by the ARN's last segment (the job id)."""
        jobs = self.cmk_jobs[cls.RESOURCE]
        if identifier in jobs:
            return jobs[identifier]
        if not identifier.startswith("arn:"):
            for job in jobs.values():
                if identifier in (job.name, job.job_id):
                    return job
        raise ResourceNotFoundException(f"Could not find the {cls.RESOURCE} {identifier}.")

    def cmk_find_custom_model(self, identifier: str) -> CustomModel:
        for model in self.cmk_custom_models.values():
            if identifier in (model.arn, model.name):
                return model
        raise ResourceNotFoundException(f"Could not find the custom model {identifier}.")

    def cmk_find_imported_model(self, identifier: str) -> ImportedModel:
        for model in self.cmk_imported_models.values():
            if identifier in (model.arn, model.name):
                return model
        raise ResourceNotFoundException(f"Could not find the imported model {identifier}.")

    def cmk_base_model(self, identifier: str) -> tuple[str, str]:
        """(foundation-model ARN, base model id) of a customization job's baseModelIdentifier:
        a foundation-model ARN (kept as given), a model id, or a custom model (ARN or name) whose
        base model is then the job's base model."""
        arn = parse_arn(identifier)
        if arn is not None and arn["resource"].startswith("foundation-model/"):
            return identifier, arn["resource"].split("/", 1)[1]
        if arn is None and "." in identifier:  # provider.model[:version...]
            return foundation_model_arn(self.region_name, identifier), identifier
        model = self.cmk_find_custom_model(identifier)
        base = model.details.get("baseModelArn")
        if not base or "foundation-model/" not in base:
            raise ValidationException(f"The model {identifier} cannot be customized: it has no base model.")
        return base, base.split("foundation-model/", 1)[1]

    def cmk_copy_source(self, source_arn: str) -> Optional[CustomModel]:
        """The custom model a copy job copies, looked up in the account and Region its ARN names
        (None for a foundation model)."""
        from moto.bedrock.models import bedrock_backends

        arn = parse_arn(source_arn)
        if arn is None or arn["service"] != "bedrock":
            raise ValidationException(f"Value '{source_arn}' at 'sourceModelArn' is not a model ARN.")
        if arn["resource"].startswith("foundation-model/"):
            return None
        try:
            backend = bedrock_backends[arn["account"]][arn["region"]]
        except KeyError:
            raise ResourceNotFoundException(f"Could not find the model {source_arn}.")
        if backend is not self:
            backend.cmk_settle()
        model = backend.cmk_custom_models.get(source_arn)
        if model is None:
            raise ResourceNotFoundException(f"Could not find the model {source_arn}.")
        return model

    # -- names
    def _model_name_in_use(self, namespace: str, name: str) -> bool:
        models = self.cmk_custom_models if namespace == "custom" else self.cmk_imported_models
        if any(m.name == name for m in models.values()):
            return True
        return any(j.reserved_model() == (namespace, name) for jobs in self.cmk_jobs.values() for j in jobs.values())

    def _check_names(self, job: Job) -> None:
        if job.name is not None and any(j.name == job.name for j in self.cmk_jobs[job.RESOURCE].values()):
            raise ValidationException(JOB_NAME_IN_USE)
        requested = job.requested_model()
        if requested and self._model_name_in_use(*requested):
            raise ValidationException(MODEL_NAME_IN_USE)

    # -- create / stop / delete
    def cmk_create_job(self, cls: type[Job], params: dict[str, Any]) -> str:
        check_request(params, cls.CREATE_OP)
        token = params.get("clientRequestToken")
        with _lock:
            self.cmk_settle()
            if token and (cls.RESOURCE, token) in self.cmk_tokens:
                return self.cmk_tokens[(cls.RESOURCE, token)]  # idempotent retry: nothing new
            job = cls(self, params)  # resolves keys and base/source models; may raise
            self._check_names(job)
            self.cmk_jobs[cls.RESOURCE][job.arn] = job
            if cls.TAGS_MEMBER:
                _tag(self, job.arn, params.get(cls.TAGS_MEMBER))
            if token:
                self.cmk_tokens[(cls.RESOURCE, token)] = job.arn
            self.cmk_settle()  # jobCompletionSeconds 0: the model exists when Create answers
            return job.arn

    def cmk_stop_job(self, cls: type[Job], identifier: str) -> None:
        with _lock:
            self.cmk_settle()
            self.cmk_find_job(cls, identifier).stop()

    def cmk_create_custom_model(self, params: dict[str, Any]) -> str:
        check_request(params, "CreateCustomModel")
        token = params.get("clientRequestToken")
        with _lock:
            self.cmk_settle()
            if token and ("custom-model", token) in self.cmk_tokens:
                return self.cmk_tokens[("custom-model", token)]
            if self._model_name_in_use("custom", params["modelName"]):
                raise ValidationException(MODEL_NAME_IN_USE)
            lifecycle = Lifecycle(self.account_id)  # Creating until jobCompletionSeconds have passed
            arn = _bedrock_arn(self.region_name, self.account_id, f"custom-model/imported/{_new_id()}")
            key_arn = None
            if params.get("modelKmsKeyArn") is not None:
                key_arn = resolve_kms_key_arn(
                    self.account_id, self.region_name, params["modelKmsKeyArn"], "modelKmsKeyArn", require_symmetric=True
                )
            # the model documentation: such models are listed with customizationType imported
            model = CustomModel(
                self.account_id, arn, params["modelName"], lifecycle.created,
                {"customizationType": "IMPORTED"}, key_arn, active_at=lifecycle.complete_at,
            )  # fmt: skip
            self.cmk_add_custom_model(model, params.get("modelTags"))
            if token:
                self.cmk_tokens[("custom-model", token)] = arn
            return arn

    def cmk_add_custom_model(self, model: CustomModel, tags: Optional[list[dict[str, str]]]) -> None:
        self.cmk_custom_models[model.arn] = model
        _tag(self, model.arn, tags)

    def cmk_delete_custom_model(self, identifier: str) -> None:
        with _lock:
            self.cmk_settle()
            model = self.cmk_find_custom_model(identifier)
            del self.cmk_custom_models[model.arn]
            self.tagger.delete_all_tags_for_resource(model.arn)

    def cmk_delete_imported_model(self, identifier: str) -> None:
        with _lock:
            self.cmk_settle()
            model = self.cmk_find_imported_model(identifier)
            del self.cmk_imported_models[model.arn]
            self.tagger.delete_all_tags_for_resource(model.arn)

    def cmk_batch_delete_evaluation_jobs(self, identifiers: list[str]) -> dict[str, Any]:
        """The model: "An evaluation job can only be deleted if it has following status FAILED,
        COMPLETED, and STOPPED"; the others are reported in `errors` with an HTTP status code."""
        deleted, errors = [], []
        with _lock:
            self.cmk_settle()
            for ident in identifiers:
                try:
                    job = self.cmk_find_job(EvaluationJob, ident)
                except ResourceNotFoundException as e:
                    errors.append({"jobIdentifier": ident, "code": "404", "message": e.message})
                    continue
                status = job.status()
                if status not in ("Completed", "Failed", "Stopped"):
                    errors.append({
                        "jobIdentifier": ident,
                        "code": "400",
                        "message": f"The job is in status {status}; only Completed, Failed or Stopped jobs can be deleted.",
                    })  # fmt: skip
                    continue
                del self.cmk_jobs[EvaluationJob.RESOURCE][job.arn]
                self.tagger.delete_all_tags_for_resource(job.arn)
                deleted.append({"jobIdentifier": ident, "jobStatus": "Deleting"})
        return {"errors": errors, "evaluationJobs": deleted}

    def cmk_arns(self) -> list[str]:
        """Every ARN this module made (taggable resources)."""
        self.cmk_settle()
        arns = [arn for jobs in self.cmk_jobs.values() for arn in jobs]
        return arns + list(self.cmk_custom_models) + list(self.cmk_imported_models)


# --------------------------------------------------------------------------- listing


def _query(resp: Any, op: str) -> dict[str, Any]:
    """The querystring members of `op`'s input, typed and validated against the model."""
    shape = service_model("bedrock").operation_model(op).input_shape
    params: dict[str, Any] = {}
    for name, member in shape.members.items():
        if member.serialization.get("location") != "querystring":
            continue
        raw = resp.querystring.get(member.serialization.get("name", name))
        value = raw[0] if isinstance(raw, list) and raw else raw
        if value is None:
            continue
        params[name] = _typed(value, member, name)
    errors: list[str] = []
    for name, value in params.items():  # (validate() skips members bound to the URI or querystring)
        validate(value, shape.members[name], name, errors)
    if errors:
        raise ValidationException(f"{len(errors)} validation error(s) detected: " + "; ".join(errors))
    return params


def _typed(value: str, shape: Any, name: str) -> Any:
    try:
        if shape.type_name in ("integer", "long"):
            return int(value)
        if shape.type_name == "boolean":
            if value.lower() not in ("true", "false"):
                raise ValueError(value)
            return value.lower() == "true"
        if shape.type_name == "timestamp":
            if value.replace(".", "", 1).isdigit():
                return datetime.fromtimestamp(float(value), tz=timezone.utc)
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    except ValueError:
        raise ValidationException(f"Value '{value}' at '{name}' is not a valid {shape.type_name}")
    return value


def _page(items: list[Any], q: dict[str, Any], created: Callable[[Any], datetime]) -> tuple[list[Any], Optional[str]]:
    """Sort by creation time (Ascending unless asked otherwise) and cut one page."""
    items = sorted(items, key=created, reverse=q.get("sortOrder") == "Descending")
    start = 0
    if q.get("nextToken"):
        try:
            start = int(base64.urlsafe_b64decode(q["nextToken"].encode()).decode())
        except Exception:  # noqa: BLE001 - any malformed token
            raise ValidationException("Invalid pagination token")
    limit = q.get("maxResults") or DEFAULT_MAX_RESULTS
    token = None
    if start + limit < len(items):
        token = base64.urlsafe_b64encode(str(start + limit).encode()).decode()
    return items[start : start + limit], token


def _list_answer(member: str, page: list[dict[str, Any]], token: Optional[str]) -> str:
    out: dict[str, Any] = {member: page}
    if token:
        out["nextToken"] = token
    return json.dumps(out)


def _custom_model_matches(model: CustomModel, q: dict[str, Any]) -> bool:
    if q.get("creationTimeAfter") is not None and not model.created > q["creationTimeAfter"]:
        return False
    if q.get("creationTimeBefore") is not None and not model.created < q["creationTimeBefore"]:
        return False
    if q.get("nameContains") is not None and q["nameContains"] not in model.name:
        return False
    base = model.details.get("baseModelArn")
    for member in ("baseModelArnEquals", "foundationModelArnEquals"):
        if q.get(member) is not None and q[member] != base:
            return False
    if q.get("modelStatus") is not None and model.status() != q["modelStatus"]:
        return False
    return q.get("isOwned") is not False  # every model here is owned; none is shared


def _imported_model_matches(model: ImportedModel, q: dict[str, Any]) -> bool:
    if q.get("creationTimeAfter") is not None and not model.created > q["creationTimeAfter"]:
        return False
    if q.get("creationTimeBefore") is not None and not model.created < q["creationTimeBefore"]:
        return False
    return q.get("nameContains") is None or q["nameContains"] in model.name


# --------------------------------------------------------------------------- responses (set on BedrockResponse)


def _backend(resp: Any) -> Any:
    backend = resp.bedrock_backend
    backend.cmk_settle()
    return backend


def _body(resp: Any) -> dict[str, Any]:
    try:
        data = json.loads(resp.body or "{}")
    except ValueError:
        raise ValidationException("Request body is not valid JSON")
    if not isinstance(data, dict):
        raise ValidationException("Request body must be a JSON object")
    return data


def _answer(op: str, body: dict[str, Any]) -> Any:
    """The model's success status code (201 / 202 for most Create operations)."""
    status = int(service_model("bedrock").operation_model(op).http.get("responseCode", 200))
    return status, {"status": status, "Content-Type": "application/json"}, json.dumps(body)


def _create_handler(cls: type[Job]) -> Callable[[Any], Any]:
    def handler(self: Any) -> Any:
        arn = self.bedrock_backend.cmk_create_job(cls, _body(self))
        return _answer(cls.CREATE_OP, {"jobArn": arn})

    return handler


def _get_handler(cls: type[Job]) -> Callable[[Any], str]:
    def handler(self: Any) -> str:
        with _lock:  # batch inference moves on from Submitted when read
            job = _backend(self).cmk_find_job(cls, _uri_param(self, cls.ID_PARAM, -1))
            return json.dumps(job.describe())

    return handler


def _stop_handler(cls: type[Job]) -> Callable[[Any], str]:
    def handler(self: Any) -> str:
        self.bedrock_backend.cmk_stop_job(cls, _uri_param(self, cls.ID_PARAM, -2))
        return "{}"

    return handler


def _list_handler(cls: type[Job]) -> Callable[[Any], str]:
    def handler(self: Any) -> str:
        q = _query(self, cls.LIST_OP)
        with _lock:
            jobs = [j for j in _backend(self).cmk_jobs[cls.RESOURCE].values() if j.matches(q)]
            page, token = _page(jobs, q, lambda j: j.created)
            return _list_answer(cls.LIST_MEMBER, [j.summary() for j in page], token)

    return handler


def create_custom_model(self: Any) -> Any:
    arn = self.bedrock_backend.cmk_create_custom_model(_body(self))
    return _answer("CreateCustomModel", {"modelArn": arn})


def get_custom_model(self: Any) -> str:
    model = _backend(self).cmk_find_custom_model(_uri_param(self, "modelIdentifier", -1))
    return json.dumps(model.describe())


def list_custom_models(self: Any) -> str:
    q = _query(self, "ListCustomModels")
    models = [m for m in _backend(self).cmk_custom_models.values() if _custom_model_matches(m, q)]
    page, token = _page(models, q, lambda m: m.created)
    return _list_answer("modelSummaries", [m.summary() for m in page], token)


def delete_custom_model(self: Any) -> str:
    self.bedrock_backend.cmk_delete_custom_model(_uri_param(self, "modelIdentifier", -1))
    return "{}"


def get_imported_model(self: Any) -> str:
    model = _backend(self).cmk_find_imported_model(_uri_param(self, "modelIdentifier", -1))
    return json.dumps(model.describe())


def list_imported_models(self: Any) -> str:
    q = _query(self, "ListImportedModels")
    models = [m for m in _backend(self).cmk_imported_models.values() if _imported_model_matches(m, q)]
    page, token = _page(models, q, lambda m: m.created)
    return _list_answer("modelSummaries", [m.summary() for m in page], token)


def delete_imported_model(self: Any) -> str:
    self.bedrock_backend.cmk_delete_imported_model(_uri_param(self, "modelIdentifier", -1))
    return "{}"


def batch_delete_evaluation_job(self: Any) -> Any:
    params = _body(self)
    check_request(params, "BatchDeleteEvaluationJob")
    out = self.bedrock_backend.cmk_batch_delete_evaluation_jobs(params["jobIdentifiers"])
    return _answer("BatchDeleteEvaluationJob", out)


def _handlers() -> dict[str, Callable[..., Any]]:
    """BedrockResponse method name -> handler, for every operation this module answers."""
    from moto.core.utils import camelcase_to_underscores

    out: dict[str, Callable[..., Any]] = {}
    for cls in JOB_KINDS:
        out[camelcase_to_underscores(cls.CREATE_OP)] = _create_handler(cls)
        out[camelcase_to_underscores(cls.GET_OP)] = _get_handler(cls)
        out[camelcase_to_underscores(cls.LIST_OP)] = _list_handler(cls)
        if cls.STOP_OP:
            out[camelcase_to_underscores(cls.STOP_OP)] = _stop_handler(cls)
    for fn in (
        create_custom_model, get_custom_model, list_custom_models, delete_custom_model,
        get_imported_model, list_imported_models, delete_imported_model, batch_delete_evaluation_job,
    ):  # fmt: skip
        out[fn.__name__] = fn
    return out


def apply() -> None:
    """Call before bedrock_fixes.apply(), so the model conformance step wraps these handlers."""
    if getattr(BedrockBackend, "_cmk_guard_jobs", False):
        return
    BedrockBackend._cmk_guard_jobs = True  # type: ignore[attr-defined]

    for name, fn in vars(JobsBackendMixin).items():
        if callable(fn) and not name.startswith("__"):
            setattr(BedrockBackend, name, fn)
    model = service_model("bedrock")
    for name, fn in _handlers().items():
        assert any(name == _method(op) for op in model.operation_names), name  # never invent operations
        fn.__name__ = name
        setattr(BedrockResponse, name, fn)

    orig_init = BedrockBackend.__init__

    def __init__(self: Any, region_name: str, account_id: str) -> None:
        orig_init(self, region_name, account_id)
        self._init_jobs()

    BedrockBackend.__init__ = __init__  # type: ignore[method-assign]

    # Tagging: every job and model ARN made here is a taggable resource (moto's own
    # customization jobs and custom models are no longer used).
    orig_list_arns = BedrockBackend._list_arns

    def _list_arns(self: Any) -> list[str]:
        return orig_list_arns(self) + self.cmk_arns()

    BedrockBackend._list_arns = _list_arns  # type: ignore[method-assign]


def _method(op: str) -> str:
    from moto.core.utils import camelcase_to_underscores

    return camelcase_to_underscores(op)
