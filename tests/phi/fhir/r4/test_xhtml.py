"""Narrative XHTML: what R4 lets a ``text.div`` hold."""

from __future__ import annotations

import pytest

from medmesh.phi.fhir.r4.xhtml import narrative_problem

NS = 'xmlns="http://www.w3.org/1999/xhtml"'


@pytest.mark.parametrize(
    "div",
    [
        f"<div {NS}><p>Blood pressure <b>120/80</b></p></div>",
        f'<div {NS}><table class="grid"><tr><td style="color: red">x</td></tr></table></div>',
        f'<div {NS}><a href="https://example.org/info">more</a> <a name="top">top</a></div>',
        f'<div {NS}><img src="#photo" alt="photo"/></div>',
        f'<div {NS} xml:lang="en" lang="en">text &amp; more</div>',
    ],
)
def test_narrative_r4_allows(div: str) -> None:
    assert narrative_problem(div) is None


@pytest.mark.parametrize(
    ("div", "problem"),
    [
        (f"<div {NS}><script>alert(1)</script></div>", "holds a <script> element"),
        (f'<div {NS}><p onclick="x()">hi</p></div>', "event attribute"),
        (f'<div {NS} onmouseover="x()">hi</div>', "event attribute"),
        (f'<div {NS}><img src="https://tracker.example/p.gif"/>hi</div>', "from elsewhere"),
        (f'<div {NS}><p style="background: url(https://x.example/i.png)">hi</p></div>', "style"),
        (f'<div {NS}><a href="javascript:alert(1)">hi</a></div>', "script link"),
        (f"<div {NS}><iframe>hi</iframe></div>", "holds a <iframe> element"),
        (f"<div {NS}><form>hi</form></div>", "holds a <form> element"),
        (f"<div {NS}><p>unclosed</div>", "not well-formed"),
        ("<div><p>no namespace</p></div>", "XHTML namespace"),
        (f"<p {NS}>not a div</p>", "one div"),
        (f"<div {NS}>   </div>", "no text"),
        (
            f'<!DOCTYPE d [<!ENTITY a "aaaa">]><div {NS}>&a;</div>',
            "declares a document type",
        ),
    ],
)
def test_narrative_r4_refuses(div: str, problem: str) -> None:
    found = narrative_problem(div)
    assert found is not None
    assert problem in found
