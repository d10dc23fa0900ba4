"""The resource type a Reference's ``reference`` names, and whether its shape is one R4 allows.

R4 §2.3.0 (References): a literal reference is a relative URL ``Type/id`` (with an optional
``/_history/version``), an absolute URL (a FHIR server's ``.../Type/id``, or any other URL),
an internal fragment ``#id`` or a URN (``urn:uuid:``, ``urn:oid:``); in a transaction or batch,
a conditional reference ``Type?query`` too.
"""

from __future__ import annotations

import re

_ID = r"[A-Za-z0-9\-.]{1,64}"
_RELATIVE = re.compile(rf"([A-Za-z]+)/{_ID}(?:/_history/{_ID})?")
_ABSOLUTE = re.compile(
    rf"[A-Za-z][A-Za-z0-9+.\-]*://[^\s]*?/([A-Z][A-Za-z]+)/{_ID}(?:/_history/{_ID})?"
)
_CONDITIONAL = re.compile(r"([A-Za-z]+)\?\S*")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:\S+")

#: What :func:`referenced_type` answers for a reference that names no type.
NO_TYPE = ""


def referenced_type(reference: str) -> str | None:
    """The resource type ``reference`` names; :data:`NO_TYPE` for a fragment, a URN or a URL
    that is not a FHIR server's; None when its shape is not a reference's."""
    if reference.startswith("#"):
        return NO_TYPE if len(reference) > 1 else None
    found = _RELATIVE.fullmatch(reference) or _CONDITIONAL.fullmatch(reference)
    if found is not None:
        return found.group(1)
    found = _ABSOLUTE.fullmatch(reference)
    if found is not None:
        return found.group(1)
    return NO_TYPE if _URL.fullmatch(reference) else None
