"""A CloudFormation template rendered for given parameter values, the way CloudFormation would:
parameters defaulted and checked, conditions decided, resources whose condition is false left
out, intrinsic functions resolved.

Shared by the deployment safety tests (tests/test_safety_net.py: what a resource's Ref or
GetAtt becomes stays a placeholder) and the least-privilege checker
(least_privilege/iam_model.py: the names and ARNs CloudFormation would give). That is the one
thing a caller decides (Stack.resource_attribute). pytest imports this module from infra/
(pytest.ini: pythonpath).

Only the intrinsic functions the two templates use are rendered; any other is an error, never
passed through.
"""

from __future__ import annotations

import re
from typing import Any, Optional


class RenderError(Exception):
    """A template or parameter value the renderer cannot render."""


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


# AWS::NoValue: the property or list item disappears.
NO_VALUE = _NoValue()


class Stack:
    """One template rendered for one stack: its parameter values, account, Region, stack name
    and partition."""

    # What the renderer raises; a caller may raise its own (iam_model: CheckError).
    error: type[Exception] = RenderError

    def __init__(self, template: dict, parameters: Optional[dict[str, Any]] = None, *, account: str,
                 region: str = "us-east-1", stack_name: str = "bedrock-cmk-guard", partition: str = "aws"):
        self.template = template
        self.account, self.region, self.stack_name, self.partition = account, region, stack_name, partition
        given = dict(parameters or {})
        self.parameters: dict[str, Any] = {}
        for name, spec in template.get("Parameters", {}).items():
            value = given.pop(name, spec.get("Default"))
            if value is None:
                raise self.error(f"parameter {name} has no value and no default")
            if spec.get("Type") == "CommaDelimitedList" and not isinstance(value, list):
                value = str(value).split(",")  # "" is [""], as in CloudFormation
            self.parameters[name] = value
        if given:
            raise self.error(f"not parameters of the template: {sorted(given)}")
        self.pseudo = {
            "AWS::AccountId": account,
            "AWS::Region": region,
            "AWS::StackName": stack_name,
            "AWS::Partition": partition,
            "AWS::URLSuffix": "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com",
            "AWS::NoValue": NO_VALUE,
        }
        self._conditions: dict[str, bool] = {}

    # ---- what the stack is made of

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            if name not in self.template.get("Conditions", {}):
                raise self.error(f"no condition {name} in the template")
            self._conditions[name] = self.truth(self.template["Conditions"][name])
        return self._conditions[name]

    def exists(self, logical: str) -> bool:
        resource = self.template["Resources"][logical]
        return "Condition" not in resource or self.condition(resource["Condition"])

    def resources(self) -> dict[str, dict]:
        return {
            name: {"Type": r["Type"], "Properties": self.resolve(r.get("Properties", {}))}
            for name, r in self.template["Resources"].items()
            if self.exists(name)
        }

    def outputs(self) -> dict:
        return {
            name: self.resolve(o["Value"])
            for name, o in self.template.get("Outputs", {}).items()
            if "Condition" not in o or self.condition(o["Condition"])
        }

    def failed_rules(self) -> list[str]:
        """The Rules assertions these parameters break (CloudFormation refuses the stack)."""
        return [
            a["AssertDescription"]
            for rule in self.template.get("Rules", {}).values()
            for a in rule["Assertions"]
            if not self.truth(a["Assert"])
        ]

    # ---- references

    def resource_attribute(self, logical: str, attribute: Optional[str]) -> Any:
        """What Ref (attribute None) or Fn::GetAtt of a resource of the template becomes: only a
        deployment knows, so each caller says."""
        raise NotImplementedError(f"{type(self).__name__} does not say what Ref/GetAtt of {logical} becomes")

    def ref(self, name: str) -> Any:
        if name.startswith("AWS::"):
            if name not in self.pseudo:
                raise self.error(f"pseudo parameter {name} is not rendered here")
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        return self.get_att(name, None)

    def get_att(self, logical: str, attribute: Optional[str]) -> Any:
        """Fn::GetAtt of a resource; Ref where attribute is None."""
        if logical not in self.template["Resources"]:
            raise self.error(f"Ref/GetAtt of unknown resource or parameter {logical}")
        return self.resource_attribute(logical, attribute)

    # ---- conditions and intrinsic functions

    def truth(self, expr: Any) -> bool:
        """A condition (Conditions, Rules assertions) decided."""
        if isinstance(expr, dict) and len(expr) == 1:
            [(fn, arg)] = expr.items()
            if fn == "Fn::Equals":
                a, b = (self.resolve(x) for x in arg)
                return a == b
            if fn == "Fn::Not":
                return not self.truth(arg[0])
            if fn == "Fn::And":
                return all(self.truth(x) for x in arg)
            if fn == "Fn::Or":
                return any(self.truth(x) for x in arg)
            if fn == "Condition":
                return self.condition(arg)
        raise self.error(f"not a condition the renderer knows: {expr!r}")

    def resolve(self, value: Any) -> Any:
        """The value with every intrinsic function applied; NO_VALUE where AWS::NoValue."""
        if isinstance(value, list):
            return [v for v in (self.resolve(x) for x in value) if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            [(fn, arg)] = value.items()
            if fn == "Ref":
                return self.ref(arg)
            if fn == "Fn::GetAtt":
                logical, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.get_att(logical, attribute)
            if fn == "Fn::If":
                name, yes, no = arg
                return self.resolve(yes if self.condition(name) else no)
            if fn == "Fn::Sub":
                text, variables = arg if isinstance(arg, list) else (arg, {})
                return self.sub(text, {k: self.resolve(v) for k, v in variables.items()})
            if fn == "Fn::Join":
                separator, items = arg
                return str(separator).join(str(i) for i in self.resolve(items))
            if fn == "Fn::Split":
                separator, text = arg
                return str(self.resolve(text)).split(separator)
            if fn == "Fn::Select":
                index, items = arg
                return self.resolve(items)[int(self.resolve(index))]
            # Condition functions only decide conditions (truth), never a value.
            if fn.startswith("Fn::") or fn == "Condition":
                raise self.error(f"intrinsic function {fn} is not rendered here")
        resolved = ((k, self.resolve(v)) for k, v in value.items())
        return {k: v for k, v in resolved if v is not NO_VALUE}

    def sub(self, text: str, variables: dict[str, Any]) -> str:
        """Fn::Sub of text, with variables already resolved."""

        def one(match: re.Match) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"  # ${!Literal}
            if name in variables:
                value = variables[name]
            elif "." in name and not name.startswith("AWS::"):
                value = self.get_att(*name.split(".", 1))
            else:
                value = self.ref(name)
            if isinstance(value, list) or value is NO_VALUE:
                raise self.error(f"Fn::Sub of a list or no value: ${{{name}}} in {text!r}")
            return str(value)

        return re.sub(r"\$\{([^}]+)\}", one, str(text))
