"""Fixes to moto 5.2.5's bedrock and bedrock-agent answers so the Rust SDK can read them.

Customization jobs and custom models are answered by bedrock_jobs.py (which replaces moto's
handlers for them); this module wraps every bedrock answer in the model conformance step."""

from typing import Any, Callable
from urllib.parse import unquote

import moto.bedrock.exceptions as bedrock_exc
import moto.bedrockagent.exceptions as agent_exc
from moto.bedrock.models import BedrockBackend
from moto.bedrock.responses import BedrockResponse
from moto.bedrockagent.models import Agent, KnowledgeBase
from moto.bedrockagent.responses import AgentsforBedrockResponse

from .conform import wrap_responses
from .util import iso

TIMESTAMP_KEYS = ("createdAt", "updatedAt", "preparedAt", "creationTime", "lastModifiedTime", "endTime")


def _iso_keys(d: dict[str, Any]) -> dict[str, Any]:
    for k in TIMESTAMP_KEYS:
        if k in d and d[k] is not None:
            d[k] = iso(d[k])
    return d


def _wrap_dict_method(cls: type, name: str) -> None:
    orig: Callable[..., dict[str, Any]] = getattr(cls, name)

    def wrapper(self: Any, *a: Any, **kw: Any) -> dict[str, Any]:
        return _iso_keys(orig(self, *a, **kw))

    setattr(cls, name, wrapper)


def _uri_param(resp: Any, name: str, index: int) -> str:
    """Path parameter, URL-decoded: from moto's model router if it matched, else from the path.

    index counts from the end of the path with trailing slashes removed (-1 = last segment).
    """
    value = (getattr(resp, "uri_match", None) or {}).get(name)
    if value is None:
        value = unquote(resp.path.rstrip("/").split("/")[index])
    return value


def apply() -> None:
    if getattr(BedrockBackend, "_cmk_guard_fixes", False):
        return
    BedrockBackend._cmk_guard_fixes = True  # type: ignore[attr-defined]

    # --- error status codes as in the models (moto sends 400 for ResourceNotFound)
    bedrock_exc.ResourceNotFoundException.code = 404
    agent_exc.ResourceNotFoundException.code = 404
    agent_exc.ConflictException.code = 409

    # --- bedrock-agent: idleSessionTTLInSeconds is required in the output; AWS's default is 600
    orig_agent_init = Agent.__init__

    def agent_init(self: Any, *args: Any, **kwargs: Any) -> None:
        orig_agent_init(self, *args, **kwargs)
        if not self.idle_session_ttl_in_seconds:
            self.idle_session_ttl_in_seconds = 600

    Agent.__init__ = agent_init  # type: ignore[method-assign]

    # --- bedrock-agent: timestamps are ISO strings in the model, moto sends epoch floats
    for cls in (Agent, KnowledgeBase):
        _wrap_dict_method(cls, "to_dict")
        _wrap_dict_method(cls, "dict_summary")

    # --- bedrock-agent: /agents/{id} with or without the trailing slash (moto read path[-2])
    def get_agent(self: Any) -> str:
        import json

        agent_id = _uri_param(self, "agentId", -1)
        agent = self.bedrockagent_backend.get_agent(agent_id=agent_id)
        return json.dumps({"agent": dict(agent.to_dict())})

    def delete_agent(self: Any) -> str:
        import json

        params = self._get_params()
        skip = params.get("skipResourceInUseCheck")
        agent_id = _uri_param(self, "agentId", -1)
        agent_id, status = self.bedrockagent_backend.delete_agent(
            agent_id=agent_id, skip_resource_in_use_check=skip
        )
        return json.dumps({"agentId": agent_id, "agentStatus": status})

    def get_knowledge_base(self: Any) -> str:
        import json

        kb_id = _uri_param(self, "knowledgeBaseId", -1)
        kb = self.bedrockagent_backend.get_knowledge_base(knowledge_base_id=kb_id)
        return json.dumps({"knowledgeBase": kb.to_dict()})

    def delete_knowledge_base(self: Any) -> str:
        import json

        kb_id = _uri_param(self, "knowledgeBaseId", -1)
        kb_id, status = self.bedrockagent_backend.delete_knowledge_base(knowledge_base_id=kb_id)
        return json.dumps({"knowledgeBaseId": kb_id, "status": status})

    AgentsforBedrockResponse.get_agent = get_agent  # type: ignore[method-assign]
    AgentsforBedrockResponse.delete_agent = delete_agent  # type: ignore[method-assign]
    AgentsforBedrockResponse.get_knowledge_base = get_knowledge_base  # type: ignore[method-assign]
    AgentsforBedrockResponse.delete_knowledge_base = delete_knowledge_base  # type: ignore[method-assign]

    # finally: every answer of both services follows its botocore output shape
    # (no unknown members, no JSON nulls, ISO timestamps)
    wrap_responses(BedrockResponse, "bedrock")
    wrap_responses(AgentsforBedrockResponse, "bedrock-agent")
