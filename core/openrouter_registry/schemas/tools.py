"""Tools a call declares: OpenAI-style function dicts or Python callables, checked before anything is sent.

    def add(a: int, b: int = 0) -> int:
        '''Add two integers.'''
        return a + b

    tools = check_tools([add])
    tools[0].spec()
    # {'type': 'function', 'function': {'name': 'add', 'description': 'Add two integers.',
    #  'parameters': {'type': 'object', 'properties': {'a': {'type': 'integer'},
    #  'b': {'type': 'integer', 'default': 0}}, 'required': ['a'], 'additionalProperties': False}}}

A callable's parameters become the JSON Schema through the schema code of `schema` (the same types a
schema class's fields take: type hints, attrs classes, dataclasses, pydantic models, defaults); its
docstring's first paragraph is the description, and ``name: text`` lines of an ``Args:`` section
describe the parameters. `Tool.arguments` turns validated JSON arguments back into the Python values
the function takes. Every problem is a `ConfigurationError` naming the tool and what is wrong.
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from ..errors import ConfigurationError
from .inputs import json_copy
from .validation import compiled_validator

__all__ = ["Tool", "check_tools", "check_tool_choice", "tool_request", "TOOL_NAME"]

#: What OpenAI-compatible providers accept as a function name.
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_TOOL_CHOICES = ("auto", "none", "required")
_ARG_LINE = re.compile(r"^\s*\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.+)$")


@attrs.frozen
class Tool:
    """One declared tool: its name, description, parameters schema and, for a callable, the function."""

    name: str
    description: str | None
    parameters: dict[str, Any]
    function: Callable[..., Any] | None = attrs.field(default=None, eq=False, repr=False)
    #: parameter name -> (annotation, is a pydantic model), for building the call's Python values.
    annotations: Mapping[str, Any] = attrs.field(factory=dict, eq=False, repr=False)
    strict: bool | None = None

    def spec(self) -> dict[str, Any]:
        """The ``tools`` entry sent to OpenRouter."""
        function: dict[str, Any] = {"name": self.name}
        if self.description:
            function["description"] = self.description
        function["parameters"] = self.parameters
        if self.strict is not None:
            function["strict"] = self.strict
        return {"type": "function", "function": function}

    def arguments(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """Validated JSON arguments as the keyword arguments of `function` (attrs classes, dataclasses
        and pydantic models built from their objects). Raises `ConfigurationError` when they do not fit."""
        from .schema import converter

        out: dict[str, Any] = {}
        for name, value in data.items():
            annotation = _pydantic_in(self.annotations.get(name, Any), value)
            try:
                if _is_pydantic(annotation):
                    out[name] = annotation.model_validate(value)
                elif annotation is Any or annotation is inspect.Parameter.empty:
                    out[name] = value
                else:
                    out[name] = converter.structure(value, annotation)
            except Exception as exc:
                raise ConfigurationError(f"argument {name!r} of {self.name} does not fit {annotation!r}: {exc}") from None
        return out


def _is_pydantic(annotation: Any) -> bool:
    return isinstance(annotation, type) and callable(getattr(annotation, "model_json_schema", None))


def _pydantic_in(annotation: Any, value: Any) -> Any:
    """``Model | None`` given an object: the pydantic ``Model`` (cattrs does not build pydantic models)."""
    args = typing.get_args(annotation)
    if value is not None and args and type(None) in args:
        models = [arg for arg in args if _is_pydantic(arg)]
        if len(models) == 1 and len(args) == 2:
            return models[0]
    return annotation


def _deriver(name: str) -> Any:
    """A schema deriver (`schema._Deriver`) that also takes pydantic models, inlined, their $defs hoisted."""
    from .schema import _Deriver

    class _ToolDeriver(_Deriver):
        def of_type(self, annotation: Any, where: str) -> dict[str, Any]:
            if _is_pydantic(annotation):
                found = dict(annotation.model_json_schema())
                for def_name, definition in found.pop("$defs", {}).items():
                    self.defs.setdefault(def_name, definition)
                return found
            return super().of_type(annotation, where)

    return _ToolDeriver(type(name, (), {}))


def _docs(function: Callable[..., Any]) -> tuple[str | None, dict[str, str]]:
    """The first paragraph of a docstring and the ``name: text`` lines of its ``Args:`` section."""
    doc = inspect.getdoc(function)
    if not doc:
        return None, {}
    paragraphs = doc.split("\n\n")
    summary = " ".join(paragraphs[0].split()) or None
    described: dict[str, str] = {}
    in_args = False
    for line in doc.splitlines():
        stripped = line.strip()
        if stripped.lower() in ("args:", "arguments:", "parameters:", "params:"):
            in_args = True
            continue
        if in_args:
            if stripped.endswith(":") and not line.startswith((" ", "\t")):
                break  # the next section (Returns:, Raises:)
            found = _ARG_LINE.match(line)
            if found is not None:
                described[found.group(1)] = found.group(2).strip()
    return summary, described


def _from_callable(function: Callable[..., Any], where: str) -> Tool:
    name = getattr(function, "__name__", None)
    if not isinstance(name, str) or not TOOL_NAME.match(name):
        raise ConfigurationError(
            f"{where} is a callable named {name!r}: a tool's name must be 1 to 64 letters, digits, '_' or '-' "
            "(wrap a lambda in a def)"
        )
    try:
        signature = inspect.signature(function)
        hints = typing.get_type_hints(function, include_extras=True)
    except (TypeError, ValueError, NameError) as exc:
        raise ConfigurationError(f"tool {name}: cannot read its signature ({exc})") from None
    summary, described = _docs(function)
    deriver = _deriver(name)
    properties: dict[str, Any] = {}
    required: list[str] = []
    annotations: dict[str, Any] = {}
    for parameter in signature.parameters.values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD, parameter.POSITIONAL_ONLY):
            raise ConfigurationError(
                f"tool {name}: parameter {parameter.name!r} is {parameter.kind.description}; a tool takes named "
                "parameters only (the model sends a JSON object)"
            )
        annotation = hints.get(parameter.name, Any)
        annotations[parameter.name] = annotation
        prop = deriver.of_type(annotation, f"tool {name}, parameter {parameter.name}")
        if parameter.name in described:
            prop = {**prop, "description": described[parameter.name]}
        if parameter.default is parameter.empty:
            required.append(parameter.name)
        elif parameter.default is None or isinstance(parameter.default, (str, int, float, bool)):
            prop = {**prop, "default": parameter.default}
        properties[parameter.name] = prop
    parameters: dict[str, Any] = {
        "type": "object", "properties": properties, "required": required, "additionalProperties": False,
    }
    if deriver.defs:
        parameters["$defs"] = deriver.defs
    parameters = json_copy(parameters, f"tool {name}'s parameters")
    return Tool(name, summary, parameters, function, annotations)


def _from_dict(spec: Mapping[str, Any], where: str) -> Tool:
    function = spec.get("function")
    if spec.get("type", "function") != "function" or not isinstance(function, Mapping):
        raise ConfigurationError(
            f"{where} must be {{'type': 'function', 'function': {{'name': ..., 'description': ..., 'parameters': "
            "<JSON Schema>}}}} or a Python function"
        )
    name = function.get("name")
    if not isinstance(name, str) or not TOOL_NAME.match(name):
        raise ConfigurationError(f"{where}.function.name must be 1 to 64 letters, digits, '_' or '-', got {name!r}")
    description = function.get("description")
    if description is not None and not isinstance(description, str):
        raise ConfigurationError(f"tool {name}: description must be a string, got {type(description).__name__}")
    parameters = function.get("parameters", {"type": "object", "properties": {}})
    if not isinstance(parameters, Mapping):
        raise ConfigurationError(f"tool {name}: parameters must be a JSON Schema object, got {type(parameters).__name__}")
    parameters = json_copy(parameters, f"tool {name}'s parameters")
    if parameters.get("type", "object") != "object":
        raise ConfigurationError(f"tool {name}: parameters must describe an object (type 'object'), got {parameters.get('type')!r}")
    try:
        compiled_validator(parameters)
    except ConfigurationError as exc:
        raise ConfigurationError(f"tool {name}: parameters are not a valid JSON Schema ({exc})") from None
    strict = function.get("strict")
    if strict is not None and not isinstance(strict, bool):
        raise ConfigurationError(f"tool {name}: strict must be true or false, got {strict!r}")
    return Tool(name, description, parameters, None, {}, strict)


def check_tools(tools: Sequence[Any] | None) -> tuple[Tool, ...]:
    """The declared tools, checked: each a function dict or a callable (sync or async), names unique.
    None or an empty list is no tools. Raises `ConfigurationError` naming the tool and the problem."""
    if tools is None:
        return ()
    if isinstance(tools, (str, bytes, Mapping)) or not isinstance(tools, Sequence):
        raise ConfigurationError("tools must be a list of functions or {'type': 'function', 'function': {...}} dicts")
    checked: list[Tool] = []
    for index, item in enumerate(tools):
        where = f"tools[{index}]"
        if isinstance(item, Tool):
            tool = item
        elif isinstance(item, Mapping):
            tool = _from_dict(item, where)
        elif callable(item):
            tool = _from_callable(item, where)
        else:
            raise ConfigurationError(f"{where} is a {type(item).__name__}: give a function or a function dict")
        if any(existing.name == tool.name for existing in checked):
            raise ConfigurationError(f"tools[{index}]: two tools are named {tool.name!r}; tool names must be unique")
        checked.append(tool)
    return tuple(checked)


def check_tool_choice(choice: Any, tools: Sequence[Tool]) -> Any:
    """``tool_choice`` as sent: "auto", "none", "required", a declared tool's name (sent as the forcing
    object) or ``{"type": "function", "function": {"name": ...}}`` naming a declared tool."""
    if choice is None:
        return None
    if not tools:
        raise ConfigurationError("tool_choice was given without tools=; declare the tools it chooses from")
    names = [tool.name for tool in tools]
    if isinstance(choice, str):
        if choice in _TOOL_CHOICES:
            return choice
        if choice in names:
            return {"type": "function", "function": {"name": choice}}
    elif isinstance(choice, Mapping):
        function = choice.get("function")
        name = function.get("name") if isinstance(function, Mapping) else None
        if choice.get("type") == "function" and name in names:
            return {"type": "function", "function": {"name": name}}
    raise ConfigurationError(
        f"tool_choice must be 'auto', 'none', 'required' or the name of a declared tool ({', '.join(names)}), "
        f"got {choice!r}"
    )


def tool_request(
    tools: Sequence[Tool], tool_choice: Any = None, parallel_tool_calls: bool | None = None
) -> dict[str, Any]:
    """The request fields for ``tools`` (``tools``, ``tool_choice``, ``parallel_tool_calls``); {} for none."""
    if parallel_tool_calls is not None and not isinstance(parallel_tool_calls, bool):
        raise ConfigurationError(f"parallel_tool_calls must be True or False, got {parallel_tool_calls!r}")
    choice = check_tool_choice(tool_choice, tools)
    if not tools:
        if parallel_tool_calls is not None:
            raise ConfigurationError("parallel_tool_calls was given without tools=")
        return {}
    fields: dict[str, Any] = {"tools": [tool.spec() for tool in tools]}
    if choice is not None:
        fields["tool_choice"] = choice
    if parallel_tool_calls is not None:
        fields["parallel_tool_calls"] = parallel_tool_calls
    return fields
