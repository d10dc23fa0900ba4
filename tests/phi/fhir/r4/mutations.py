"""Seeded mutations of valid resources, each of one kind a client gets wrong."""

from __future__ import annotations

import copy
import random
from collections.abc import Iterator
from typing import Any

from medmesh.phi.fhir.r4 import definitions

KINDS = ("wrong-type", "unknown-element", "bad-code", "bad-date", "empty-array", "two-choices")

#: A value of each type a second ``[x]`` element is given.
_CHOICE_VALUES: dict[str, Any] = {
    "String": "x",
    "Boolean": True,
    "DateTime": "2020-01-01",
    "Integer": 1,
    "CodeableConcept": {"text": "x"},
    "Period": {"start": "2020-01-01"},
    "Quantity": {"value": 1},
    "Reference": {"display": "x"},
}


class Slot:
    """A place in a resource: the object that holds it, its key, and what R4 says of it."""

    def __init__(self, holder: dict[str, Any], key: str, kind: str, binding: bool) -> None:
        self.holder, self.key, self.kind, self.binding = holder, key, kind, binding


def _slots(value: dict[str, Any], owner: str) -> Iterator[Slot]:
    elements = definitions().types.get(owner, {})
    for key, item in value.items():
        info = elements.get(key)
        if info is None:
            continue
        yield Slot(value, key, info.kind, info.codes is not None)
        entries = item if isinstance(item, list) else [item]
        for entry in entries:
            if isinstance(entry, dict):
                inner = entry.get("resourceType") if info.kind == "Resource" else info.kind
                if isinstance(inner, str):
                    yield from _slots(entry, inner)


def mutate(resource: dict[str, Any], kind: str, rng: random.Random) -> dict[str, Any] | None:
    """A copy of ``resource`` with one mistake of ``kind``; None when it has no place for it."""
    copied = copy.deepcopy(resource)
    slots = list(_slots(copied, copied["resourceType"]))
    model = definitions().types
    if kind == "wrong-type":
        found = [s for s in slots if s.kind in ("string", "boolean", "decimal", "dateTime")]
        found = [s for s in found if not isinstance(s.holder[s.key], list)]
        if not found:
            return None
        slot = rng.choice(found)
        slot.holder[slot.key] = "yes" if slot.kind in ("boolean", "decimal") else 12345
    elif kind == "unknown-element":
        holders = [copied] + [s.holder[s.key] for s in slots if isinstance(s.holder[s.key], dict)]
        rng.choice(holders)["unknownElement"] = "x"
    elif kind == "bad-code":
        found = [s for s in slots if s.binding and isinstance(s.holder[s.key], str)]
        if not found:
            return None
        slot = rng.choice(found)
        slot.holder[slot.key] = "bogus-code"
    elif kind == "bad-date":
        found = [s for s in slots if s.kind in ("date", "dateTime", "instant")]
        found = [s for s in found if isinstance(s.holder[s.key], str)]
        if not found:
            return None
        slot = rng.choice(found)
        slot.holder[slot.key] = rng.choice(["2020-13-01", "2021-02-30", "20200101", "not-a-date"])
    elif kind == "empty-array":
        found = [s for s in slots if isinstance(s.holder[s.key], list)]
        if not found:
            return None
        slot = rng.choice(found)
        slot.holder[slot.key] = []
    elif kind == "two-choices":
        choices = []
        for slot in slots:
            owner = _owner_of(slot, copied, model)
            info = model.get(owner, {}).get(slot.key)
            if info is None or not info.choice:
                continue
            for name, other in model[owner].items():
                suffix = name[len(other.choice) :]
                if other.choice == info.choice and name != slot.key and suffix in _CHOICE_VALUES:
                    choices.append((slot.holder, name, _CHOICE_VALUES[suffix]))
        if not choices:
            return None
        holder, name, value = rng.choice(choices)
        holder[name] = copy.deepcopy(value)
    else:
        raise ValueError(kind)
    return copied


def _owner_of(slot: Slot, resource: dict[str, Any], model: dict[str, Any]) -> str:
    """The type whose element ``slot.key`` is (found again by walking, slots keep no owner)."""
    for owner, elements in _owners(resource, resource["resourceType"], model):
        if elements is slot.holder:
            return owner
    return ""


def _owners(
    value: dict[str, Any], owner: str, model: dict[str, Any]
) -> Iterator[tuple[str, dict[str, Any]]]:
    yield owner, value
    elements = model.get(owner, {})
    for key, item in value.items():
        info = elements.get(key)
        if info is None:
            continue
        for entry in item if isinstance(item, list) else [item]:
            if isinstance(entry, dict):
                inner = entry.get("resourceType") if info.kind == "Resource" else info.kind
                if isinstance(inner, str):
                    yield from _owners(entry, inner, model)
