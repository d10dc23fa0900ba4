"""Narrative XHTML (``Narrative.div``): well-formed, and only what R4 allows.

R4 §2.4 (Narrative, txt-1 and txt-2): the content is one XHTML ``div`` in the XHTML
namespace, with the basic formatting elements and attributes of HTML 4.0 (chapters 7-11 and
15), ``<a>`` (``name``, ``href``), images and inline ``style``; no scripts, forms, frames,
objects, ``base``/``link``, event attributes (``on*``), and no resource loaded from elsewhere
(an image is a contained Binary, ``#id``, or a ``data:`` URL); and some non-whitespace text.
A document type or entity declaration is refused before it is expanded.
"""

from __future__ import annotations

import re
from xml.parsers import expat

XHTML = "http://www.w3.org/1999/xhtml"
_SEP = " "  # expat's namespace separator: "{namespace} {local name}"

ELEMENTS = frozenset(
    [
        "a",
        "abbr",
        "acronym",
        "address",
        "b",
        "big",
        "blockquote",
        "br",
        "caption",
        "cite",
        "code",
        "col",
        "colgroup",
        "dd",
        "dfn",
        "div",
        "dl",
        "dt",
        "em",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "i",
        "img",
        "kbd",
        "li",
        "ol",
        "p",
        "pre",
        "q",
        "samp",
        "small",
        "span",
        "strong",
        "sub",
        "sup",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "tt",
        "ul",
        "var",
        "bdo",
        "map",
        "area",
    ]
)
ATTRIBUTES = frozenset(
    [
        "title",
        "style",
        "class",
        "id",
        "lang",
        "xml:lang",
        "dir",
        "accesskey",
        "tabindex",
        "rowspan",
        "colspan",
        "abbr",
        "axis",
        "headers",
        "scope",
        "align",
        "valign",
        "char",
        "charoff",
        "width",
        "height",
        "border",
        "cellpadding",
        "cellspacing",
        "frame",
        "rules",
        "summary",
        "span",
        "alt",
        "src",
        "name",
        "href",
        "shape",
        "coords",
        "nowrap",
        "start",
        "type",
        "value",
        "cite",
        "datetime",
        "compact",
        "hreflang",
        "rel",
        "rev",
        "usemap",
        "ismap",
    ]
)
_LINK_ATTRIBUTES = frozenset({"src", "usemap", "cite"})
_CSS_URL = re.compile(r"url\s*\(|@import|expression\s*\(", re.IGNORECASE)
_SCHEMES_OF_LINKS = re.compile(r"\s*(javascript|vbscript|data\s*:\s*text/html)", re.IGNORECASE)


class _Refused(Exception):
    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


def _local_name(name: str) -> tuple[str, str]:
    namespace, _, local = name.rpartition(_SEP)
    return namespace, local


def narrative_problem(div: str) -> str | None:
    """What makes ``div`` unacceptable as R4 narrative, or None when it is acceptable."""
    parser = expat.ParserCreate(namespace_separator=_SEP)
    depth = 0
    text: list[bool] = [False]

    def start(name: str, attributes: dict[str, str]) -> None:
        nonlocal depth
        namespace, local = _local_name(name)
        if depth == 0 and (local != "div" or namespace != XHTML):
            raise _Refused("the narrative is not one div in the XHTML namespace")
        if namespace != XHTML:
            raise _Refused("the narrative holds an element outside the XHTML namespace")
        if local not in ELEMENTS:
            raise _Refused(f"the narrative holds a <{local}> element, which R4 does not allow")
        for attribute, value in attributes.items():
            attribute_ns, attribute_name = _local_name(attribute)
            if attribute_ns == "http://www.w3.org/XML/1998/namespace":
                attribute_name = f"xml:{attribute_name}"
            elif attribute_ns:
                raise _Refused("the narrative holds an attribute of another namespace")
            if attribute_name.lower().startswith("on"):
                raise _Refused("the narrative holds an event attribute")
            if attribute_name not in ATTRIBUTES:
                raise _Refused(f"the narrative holds a {attribute_name!r} attribute")
            if attribute_name in _LINK_ATTRIBUTES and not (
                value.startswith("#") or value.startswith("data:")
            ):
                raise _Refused("the narrative loads a resource from elsewhere")
            if attribute_name == "href" and _SCHEMES_OF_LINKS.match(value):
                raise _Refused("the narrative holds a script link")
            if attribute_name == "style" and _CSS_URL.search(value):
                raise _Refused("the narrative's style loads a resource from elsewhere")
        depth += 1

    def end(name: str) -> None:
        nonlocal depth
        depth -= 1

    def characters(data: str) -> None:
        if not text[0] and not data.isspace():
            text[0] = True

    def declaration(*_: object) -> None:
        raise _Refused("the narrative declares a document type or entities")

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = characters
    parser.StartDoctypeDeclHandler = declaration
    parser.EntityDeclHandler = declaration
    parser.ExternalEntityRefHandler = declaration  # type: ignore[assignment]
    try:
        parser.Parse(div, True)
    except _Refused as refused:
        return refused.problem
    except expat.ExpatError:
        return "the narrative is not well-formed XHTML"
    if not text[0]:
        # txt-2 counts images as content too
        return None if "<img" in div else "the narrative has no text (txt-2)"
    return None
