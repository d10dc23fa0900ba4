"""Request parameters as Stripe takes them: form-encoded with bracket notation
(``metadata[key]=value``, ``expand[]=customer``, ``expand[0]=customer``,
``card[number]=...``) or a JSON object, checked against what an operation accepts.

A parameter the operation does not know is ``parameter_unknown``; a missing one
``parameter_missing``; a value of the wrong kind names the parameter in ``param``. Error
messages never repeat a submitted value (it may be a card number).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request

from medmesh.payments.currencies import ISO_4217, is_supported_currency
from medmesh.payments.errors import InvalidRequest, ParameterMissing, ParameterUnknown

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
#: Stripe's limits on metadata.
METADATA_KEYS, METADATA_KEY_CHARS, METADATA_VALUE_CHARS = 50, 40, 500
MAX_AMOUNT = 99_999_999
#: Parameters of one request at most (Starlette's limit on a form).
MAX_FIELDS = 1000


def nest(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Form pairs with bracket notation as nested dicts; ``a[]`` appends to a list, numeric
    keys (``a[0]``) stay dict keys until the parameter's spec asks for a list."""
    root: dict[str, Any] = {}
    for raw_key, value in pairs:
        if raw_key and "[" not in raw_key and "]" not in raw_key:
            root[raw_key] = value  # a plain name (what _KEY matches without brackets)
            continue
        match = _KEY.match(raw_key)
        if match is None:
            raise InvalidRequest("a parameter name is malformed", code="parameter_invalid")
        parts = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        node: Any = root
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            name = parts[index - 1] if index else part
            if part == "":
                if not isinstance(node, list):
                    raise InvalidRequest(f"Invalid array: {name}", param=name)
                if last:
                    node.append(value)
                    break
                node.append({})
                node = node[-1]
                continue
            if not isinstance(node, dict):
                raise InvalidRequest(f"Invalid hash: {name}", param=name)
            if last:
                node[part] = value
            else:
                following = parts[index + 1]
                node = node.setdefault(part, [] if following == "" else {})
    return root


async def read_params(request: Request) -> dict[str, Any]:
    """The parameters of a request: its query string, and for a POST its form or JSON body."""
    params = nest(request.query_params.multi_items())
    if request.method in ("POST", "DELETE"):
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "application/json":
            body = await request.body()
            try:
                loaded = orjson.loads(body) if body.strip() else {}
            except orjson.JSONDecodeError:
                raise InvalidRequest("the request body is not valid JSON") from None
            if not isinstance(loaded, dict):
                raise InvalidRequest("the request body must be a JSON object")
            params.update(loaded)
        elif kind == "application/x-www-form-urlencoded":
            # What Starlette's form parser gives, for a fraction of its cost: names and values
            # percent-decoded as UTF-8, raw bytes as Latin-1, blank values kept.
            text = (await request.body()).decode("latin-1")
            try:
                pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FIELDS)
            except ValueError:
                raise InvalidRequest(f"at most {MAX_FIELDS} parameters") from None
            params.update(nest(pairs))
        else:
            form = await request.form()
            params.update(nest((k, v) for k, v in form.multi_items() if isinstance(v, str)))
    return params


@dataclass(frozen=True, slots=True)
class Check:
    """One parameter's check, and what the OpenAPI document says of it: ``schema`` is the JSON
    Schema of one form value; ``shape`` how the parameter is spelt in a form: ``value``
    (``name=``), ``list`` (``name[]=``), ``hash`` (``name[key]=``) or ``nested``
    (``name[field]=`` for each field of ``spec``)."""

    run: Callable[[str, Any], Any]
    schema: Mapping[str, Any]
    shape: str = "value"
    spec: Spec | None = None

    def __call__(self, name: str, value: Any) -> Any:
        return self.run(name, value)


def string(max_length: int = 5000, *, choices: Iterable[str] = ()) -> Check:
    allowed = frozenset(choices)
    schema: dict[str, Any] = {"type": "string", "maxLength": max_length}
    if allowed:
        schema = {"type": "string", "enum": sorted(allowed)}

    def check(name: str, value: Any) -> str:
        if not isinstance(value, str):
            raise InvalidRequest(f"Invalid string: {name}", param=name, code="parameter_invalid")
        if len(value) > max_length:
            raise InvalidRequest(
                f"Invalid string: {name} must be at most {max_length} characters",
                param=name,
                code="parameter_invalid_string",
            )
        if allowed and value not in allowed:
            raise InvalidRequest(
                f"Invalid {name}: must be one of {', '.join(sorted(allowed))}",
                param=name,
                code="parameter_invalid",
            )
        return value

    return Check(check, schema)


def integer(minimum: int = 0, maximum: int = MAX_AMOUNT) -> Check:
    def check(name: str, value: Any) -> int:
        if isinstance(value, bool):
            raise InvalidRequest(
                f"Invalid integer: {name}", param=name, code="parameter_invalid_integer"
            )
        if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,12}", value):
            value = int(value)
        if not isinstance(value, int):
            raise InvalidRequest(
                f"Invalid integer: {name}", param=name, code="parameter_invalid_integer"
            )
        if value < minimum:
            raise InvalidRequest(
                f"This value must be greater than or equal to {minimum}.",
                param=name,
                code="parameter_invalid_integer",
            )
        if value > maximum:
            raise InvalidRequest(
                f"This value must be less than or equal to {maximum}.",
                param=name,
                code="parameter_invalid_integer",
            )
        return value

    return Check(check, {"type": "integer", "minimum": minimum, "maximum": maximum})


def _boolean(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return bool(value == "true")
    raise InvalidRequest(f"Invalid boolean: {name}", param=name, code="parameter_invalid")


boolean = Check(_boolean, {"type": "string", "enum": ["false", "true"]})


def _currency(name: str, value: Any) -> str:
    if not isinstance(value, str) or not is_supported_currency(value.lower()):
        raise InvalidRequest(
            "Invalid currency: it must be a supported ISO 4217 code in lowercase",
            param=name,
            code="parameter_invalid",
        )
    return value.lower()


currency = Check(_currency, {"type": "string", "enum": sorted(ISO_4217)})


def _metadata(name: str, value: Any) -> dict[str, str] | None:
    """A metadata hash; ``""`` (clear all) is None. A key whose value is ``""`` is unset."""
    if value == "":
        return None
    if not isinstance(value, dict):
        raise InvalidRequest(f"Invalid hash: {name}", param=name, code="parameter_invalid")
    if len(value) > METADATA_KEYS:
        raise InvalidRequest(
            f"Invalid {name}: at most {METADATA_KEYS} keys", param=name, code="parameter_invalid"
        )
    out: dict[str, str] = {}
    for key, item in value.items():
        if isinstance(item, int | float) and not isinstance(item, bool):
            item = str(item)
        if not isinstance(key, str) or not isinstance(item, str):
            raise InvalidRequest(f"Invalid {name}: values are strings", param=name)
        if len(key) > METADATA_KEY_CHARS or len(item) > METADATA_VALUE_CHARS:
            raise InvalidRequest(
                f"Invalid {name}: keys have at most {METADATA_KEY_CHARS} characters and values "
                f"at most {METADATA_VALUE_CHARS}",
                param=f"{name}[{key[:METADATA_KEY_CHARS]}]",
            )
        out[key] = item
    return out


metadata = Check(_metadata, {"type": "string", "maxLength": METADATA_VALUE_CHARS}, shape="hash")


def _string_list(name: str, value: Any) -> list[str]:
    """A list: ``a[]=x`` or ``a[0]=x`` in a form, a JSON array."""
    if isinstance(value, dict) and all(k.isdigit() for k in value):
        value = [value[k] for k in sorted(value, key=int)]
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidRequest(f"Invalid array: {name}", param=name, code="parameter_invalid")
    return list(value)


string_list = Check(_string_list, {"type": "string", "maxLength": 5000}, shape="list")


def nested(spec: Spec) -> Check:
    def check(name: str, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise InvalidRequest(f"Invalid hash: {name}", param=name, code="parameter_invalid")
        return spec.parse(value, prefix=name)

    return Check(check, {"type": "object"}, shape="nested", spec=spec)


@dataclass(frozen=True)
class Spec:
    """The parameters an operation accepts, each with its check; ``required`` names those it
    cannot do without. ``expand`` is accepted everywhere."""

    fields: Mapping[str, Check]
    required: frozenset[str] = field(default_factory=frozenset)

    def parse(self, params: Mapping[str, Any], *, prefix: str = "") -> dict[str, Any]:
        """The checked parameters (only those given)."""
        out: dict[str, Any] = {}
        for key, value in params.items():
            qualified = f"{prefix}[{key}]" if prefix else key
            if key == "expand" and not prefix:
                out[key] = string_list(key, value)
                continue
            check = self.fields.get(key)
            if check is None:
                raise ParameterUnknown(f"Received unknown parameter: {qualified}", param=qualified)
            out[key] = check.run(qualified, value)
        for key in sorted(self.required - out.keys()):
            qualified = f"{prefix}[{key}]" if prefix else key
            raise ParameterMissing(f"Missing required param: {qualified}.", param=qualified)
        return out


#: The paging parameters of every list (Stripe's ``limit`` is 1 to 100, default 10).
LIST_FIELDS: dict[str, Check] = {
    "limit": integer(1, 100),
    "starting_after": string(255),
    "ending_before": string(255),
}


def merge_metadata(current: dict[str, str], change: dict[str, str] | None) -> dict[str, str]:
    """Stripe's metadata update: ``""`` for the whole hash clears it, ``""`` for a key unsets
    it, other keys are set."""
    if change is None:
        return {}
    merged = dict(current)
    for key, value in change.items():
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged
