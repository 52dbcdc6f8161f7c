"""What a real API server does with a custom object before storing it, for the CRD's schema:
defaulting, then OpenAPI validation, then the CEL rules (`x-kubernetes-validations`) and the
uniqueness of list-map keys.

On an update, a rule that reads `oldSelf` (a transition rule) sees the stored version of the
same field and is checked only where that field existed before and can be correlated (object
properties, map values, list-map items by key), as on a real server; on a create it is not
checked. Rules may call the Kubernetes `quantity` library (`cel_library`).

OpenAPI v3.0 schemas are translated to JSON Schema (`nullable`, boolean `exclusiveMinimum`,
`x-kubernetes-list-type: set`) and checked with `jsonschema`; CEL runs on `cel-python`.
Unknown fields are refused rather than pruned: a real server prunes them silently, which would
hide an operator writing a field the CRD does not declare.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import celpy
import jsonschema

from tests.operator import cel_library

TRANSITION = re.compile(r"\boldSelf\b")
_ABSENT = object()  # no old value: a create, or a field that did not exist before


class CrdSchema:
    def __init__(self, crd: dict[str, Any]) -> None:
        version = crd["spec"]["versions"][0]
        self.openapi: dict[str, Any] = version["schema"]["openAPIV3Schema"]
        self.validator = jsonschema.Draft202012Validator(_json_schema(self.openapi))
        self.cel = celpy.Environment()
        self._programs: dict[str, Any] = {}

    def admit(
        self, obj: dict[str, Any], old: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], list[str]]:
        """The object as it would be stored (defaulted), and why the server refuses it; `old`
        is the stored version on an update (for the transition rules)."""
        stored = _defaulted(copy.deepcopy(obj), self.openapi)
        problems = [
            f"{_path(error.absolute_path)}: {error.message}"
            for error in sorted(self.validator.iter_errors(stored), key=lambda e: e.path)
        ]
        if not problems:
            problems = self._rules(stored, self.openapi, "", _ABSENT if old is None else old)
        return stored, problems

    def _program(self, rule: str) -> Any:
        if rule not in self._programs:
            ast = self.cel.compile(rule)
            self._programs[rule] = self.cel.program(ast, functions=cel_library.FUNCTIONS)
        return self._programs[rule]

    def _rules(self, value: Any, schema: dict[str, Any], path: str, old: Any) -> list[str]:
        problems: list[str] = []
        for rule in schema.get("x-kubernetes-validations", []):
            variables = {"self": celpy.json_to_cel(value)}
            if TRANSITION.search(rule["rule"]):
                if old is _ABSENT:
                    continue  # nothing to compare with: a transition rule does not apply
                variables["oldSelf"] = celpy.json_to_cel(old)
            outcome = self._program(rule["rule"]).evaluate(variables)
            if isinstance(outcome, celpy.CELEvalError) or not outcome:
                where = path + rule.get("fieldPath", "")
                problems.append(f"{where or '(root)'}: {rule['message']}")
        if isinstance(value, dict):
            for name, sub in schema.get("properties", {}).items():
                if name in value:
                    problems += self._rules(
                        value[name], sub, f"{path}.{name}".lstrip("."), _item(old, name)
                    )
            extra = schema.get("additionalProperties")
            if isinstance(extra, dict):
                for name, item in value.items():
                    problems += self._rules(
                        item, extra, f"{path}.{name}".lstrip("."), _item(old, name)
                    )
        elif isinstance(value, list) and "items" in schema:
            keys = schema.get("x-kubernetes-list-map-keys", [])
            if schema.get("x-kubernetes-list-type") == "map":
                seen = [tuple(item.get(key) for key in keys) for item in value]
                if len(set(seen)) < len(seen):
                    problems.append(f"{path}: duplicate entries for keys {keys}")
            for index, item in enumerate(value):
                before = _ABSENT
                if schema.get("x-kubernetes-list-type") == "map" and isinstance(old, list):
                    key = tuple(item.get(k) for k in keys)
                    before = next((o for o in old if tuple(o.get(k) for k in keys) == key), before)
                problems += self._rules(item, schema["items"], f"{path}[{index}]", before)
        return problems


def _item(old: Any, name: str) -> Any:
    return old[name] if isinstance(old, dict) and name in old else _ABSENT


def _defaulted(value: Any, schema: dict[str, Any]) -> Any:
    """Structural defaulting: a missing field with a default gets it, recursively."""
    if isinstance(value, dict):
        for name, sub in schema.get("properties", {}).items():
            if name not in value and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
            if name in value:
                value[name] = _defaulted(value[name], sub)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for name in value:
                value[name] = _defaulted(value[name], extra)
    elif isinstance(value, list) and "items" in schema:
        return [_defaulted(item, schema["items"]) for item in value]
    return value


def _json_schema(node: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in node.items():
        if key == "properties":
            result[key] = {name: _json_schema(sub) for name, sub in value.items()}
        elif key in {"items", "additionalProperties"} and isinstance(value, dict):
            result[key] = _json_schema(value)
        elif key == "anyOf":
            result[key] = [_json_schema(sub) for sub in value]
        elif key in {"exclusiveMinimum", "exclusiveMaximum"}:
            bound = "minimum" if key == "exclusiveMinimum" else "maximum"
            if value is True:
                result[key] = node[bound]
        elif key in {"minimum", "maximum"}:
            if node.get(f"exclusive{key.capitalize()}") is not True:
                result[key] = value
        elif key not in {"nullable", "default", "description"} and not key.startswith("x-"):
            result[key] = value
    if "properties" in node and not node.get("x-kubernetes-preserve-unknown-fields"):
        result["additionalProperties"] = False
    list_type = node.get("x-kubernetes-list-type")
    if list_type == "set":
        result["uniqueItems"] = True
    if node.get("nullable"):
        return {"anyOf": [result, {"type": "null"}]}
    return result


def _path(parts: Any) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text.lstrip(".") or "(root)"
