"""Scopes in plain words, for the consent page."""

from __future__ import annotations

import re

_FIXED = {
    "openid": "Confirm who you are",
    "profile": "See your name and user name",
    "fhirUser": "Know which person you are in the health record",
    "launch": "Open with the record you are looking at",
    "launch/patient": "Know which patient's record to open",
    "offline_access": "Stay connected when you are not using it, until you disconnect it",
    "online_access": "Stay connected while you are signed in",
}
_RESOURCE = re.compile(r"^(patient|user|system)/([A-Za-z]+|\*)\.([a-z*]+)(\?.*)?$")
_VERBS = {"c": "create", "r": "read", "u": "change", "d": "delete", "s": "search"}
_V1 = {"read": "rs", "write": "cud", "*": "cruds"}
_WHOSE = {
    "patient": "your",
    "user": "the",
    "system": "all",
}


def _spaced(name: str) -> str:
    """``AllergyIntolerance`` as ``allergy intolerance``."""
    return re.sub(r"(?<!^)(?=[A-Z])", " ", name).lower()


def describe(scope: str) -> str:
    """What ``scope`` lets the app do, in a sentence a person understands."""
    if scope in _FIXED:
        return _FIXED[scope]
    match = _RESOURCE.match(scope)
    if match is None:
        return f"Use the permission “{scope}”"
    context, resource, perms, query = match.groups()
    letters = _V1.get(perms, perms)
    verbs = [word for letter, word in _VERBS.items() if letter in letters]
    if len(verbs) > 1:
        action = ", ".join(verbs[:-1]) + " and " + verbs[-1]
    else:
        action = verbs[0] if verbs else "use"
    what = "health records" if resource == "*" else _spaced(resource) + " records"
    suffix = " you may see" if context == "user" else ""
    words = f"{action.capitalize()} {_WHOSE[context]} {what}{suffix}"
    return words + (" (some of them)" if query else "")
