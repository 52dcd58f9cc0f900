"""What makes a report file acceptable to an auditor's browser: well-formed HTML, nothing
fetched from anywhere, and its text readable once the tags are gone."""

from __future__ import annotations

import re
from html.parser import HTMLParser

VOID = {"meta", "br", "hr", "img", "input", "link", "col", "area", "base", "wbr", "source"}
#: Tags a self-contained report never has (scripts run, the others fetch).
FORBIDDEN = {"script", "link", "img", "iframe", "object", "embed", "audio", "video", "base"}


class _Checker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.text: list[str] = []
        self.doctype = False
        self.in_style = False

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl.lower() == "doctype html"

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in FORBIDDEN:
            self.problems.append(f"forbidden <{tag}>")
        for name, value in attrs:
            if name in {"src", "srcset", "action", "formaction", "poster", "xlink:href"}:
                self.problems.append(f"<{tag} {name}=...> fetches")
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}> is a script")
            if name == "href" and value is not None and not value.startswith("#"):
                self.problems.append(f"<{tag} href={value!r}> leaves the file")
            if name == "style" and value and "url(" in value:
                self.problems.append(f"<{tag} style> fetches")
        self.in_style = tag == "style"
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        self.in_style = False
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        if self.in_style:
            if "url(" in data or "@import" in data:
                self.problems.append("the stylesheet fetches")
            return
        self.text.append(data)


def check_html(document: str) -> str:
    """Assert the report is well-formed and self-contained; return its text."""
    checker = _Checker()
    checker.feed(document)
    checker.close()
    assert checker.doctype, "no <!DOCTYPE html>"
    assert not checker.problems, checker.problems[:5]
    assert checker.stack == [], f"never closed: {checker.stack}"
    # A URL in text (a probe's address) is fine; none may be in a tag's attribute.
    for tag in re.findall(r"<[a-zA-Z][^>]*>", document):
        assert not re.search(r"(https?:|file:|data:|//)", tag), f"a URL in {tag[:80]}"
    try:  # a strict HTML5 parse, where html5lib is installed
        import html5lib
    except ImportError:
        pass
    else:
        html5lib.HTMLParser(strict=True).parse(document)
    return " ".join("".join(checker.text).split())
