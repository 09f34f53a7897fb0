"""English left on a French page: text that is a msgid of our catalogue whose French differs.

Shared by the French page checks (tests/test_translations.py renders every page with the
test client; tests/browser/test_french_tour.py reads them in Chromium). The catalogue is the
compiled locale/fr (what the site serves), so a msgid marked for translation but never given
French, a translation not compiled, or a text built around gettext all show up here.

- A whole text (a text node, a title, an aria-label, a placeholder) equal to a msgid is
  English left, however short ("Name" for "Nom").
- A msgid of four words or more is English left wherever it appears in a text; a msgid with
  placeholders ("%(at)s has no healthcheck") counts by its longest fixed part of three words
  or more (" has no healthcheck")."""

from __future__ import annotations

import functools
import gettext
import re
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CATALOGUE = ROOT / "locale" / "fr" / "LC_MESSAGES" / "django.mo"
PLACEHOLDER = re.compile(r"%(?:\(\w+\))?[sd]|\{\{?\s*\w+\s*\}?\}")
ATTRIBUTES = ("title", "aria-label", "placeholder", "alt")
SKIPPED_ELEMENTS = {"script", "style", "textarea", "template"}
# Routes that are no page of the organisation: sign-in (allauth's), OIDC, probes.
NOT_PAGES = ("oidc/", "accounts/", "healthz", "favicon.ico")


def _words(text: str) -> int:
    return len(text.split())


@functools.cache
def catalogue() -> tuple[frozenset[str], tuple[tuple[str, str], ...]]:
    """(whole msgids, (fixed part, msgid) pairs) of the English that has other French."""
    with CATALOGUE.open("rb") as handle:
        entries = gettext.GNUTranslations(handle)._catalog
    whole, parts = set(), []
    for key, french in entries.items():
        msgid = key[0] if isinstance(key, tuple) else key
        if not msgid or not french or msgid == french or "\x04" in msgid:
            continue
        if not PLACEHOLDER.search(msgid):
            whole.add(" ".join(msgid.split()))
        fixed = max(PLACEHOLDER.split(msgid), key=len).strip(" .:,;")
        fixed = " ".join(fixed.split())
        if _words(fixed) >= (3 if PLACEHOLDER.search(msgid) else 4) and fixed not in french:
            parts.append((fixed, msgid))
    return frozenset(whole), tuple(parts)


def english_left(texts: list[str]) -> list[str]:
    """The English msgids found in `texts` (text nodes and attribute values of a page)."""
    whole, parts = catalogue()
    found = []
    shown = [" ".join(text.split()) for text in texts]
    for text in shown:
        if text in whole:
            found.append(text)
    joined = "\n".join(shown)
    for fixed, msgid in parts:
        if fixed in joined:
            found.append(msgid)
    return sorted(set(found))


class _Texts(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []
        self.skipping: list[str] = []
        self.language: str | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "html":
            self.language = dict(attrs).get("lang")
            return
        if tag in SKIPPED_ELEMENTS or dict(attrs).get("lang", self.language) != self.language:
            self.skipping.append(tag)  # a text in another language on purpose (English)
        for name, value in attrs:
            if name in ATTRIBUTES and value and value.strip():
                self.texts.append(value)

    def handle_endtag(self, tag):
        if self.skipping and self.skipping[-1] == tag:
            self.skipping.pop()

    def handle_data(self, data):
        if not self.skipping and data.strip():
            self.texts.append(data)


def html_texts(html: str) -> list[str]:
    """The text nodes and readable attributes of an HTML page (scripts, styles, the text of
    form fields, and what is marked in another language than the page's, left out)."""
    parser = _Texts()
    parser.feed(html)
    return parser.texts


def organization_pages(victim, membership) -> list[str]:
    """The path of every page of an organisation's host (API, admin, sign-in and OIDC left
    out), its parameters filled with the objects of `victim` (tests/security/world.py);
    `membership` is the member page's. Some answer only POST: callers skip what is not 200."""
    from tests.security.routes import fill, url_routes

    paths = []
    for route in url_routes("windflow.urls"):
        if route.is_api or route.is_admin or route.pattern.startswith(NOT_PAGES):
            continue
        values = dict(victim.fills())
        values["pk"] = values["id"] = values["slug"] = victim.pk_for(route.pattern)
        if route.pattern.startswith("settings/members/"):
            values["pk"] = membership.pk
        paths.append(fill(route.pattern, {k: v for k, v in values.items() if v is not None}))
    return paths


def fail_with_a_diagnosis(deployment) -> None:
    """Make `deployment` a failed one whose diagnosis the engine wrote (a container that
    exited with code 3), as the runner stores it."""
    from windflow.engine.diagnose import diagnose_container

    diagnosis = diagnose_container(
        {"State": {"Status": "exited", "ExitCode": 3}}, service="web", log_tail=["boom"]
    )
    deployment.status = "failed"
    deployment.reason = diagnosis.summary
    deployment.diagnosis = diagnosis.as_dict()
    deployment.save(update_fields=["status", "reason", "diagnosis"])


# The same in a browser: visible text nodes and readable attributes of the page.
BROWSER_TEXTS = """() => {
  const skipped = new Set(["SCRIPT", "STYLE", "TEXTAREA", "TEMPLATE", "NOSCRIPT"]);
  const texts = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    if (!node.textContent.trim() || skipped.has(node.parentElement.tagName)) continue;
    const marked = node.parentElement.closest("[lang]");  // another language on purpose
    if (marked && marked.lang !== document.documentElement.lang) continue;
    texts.push(node.textContent);
  }
  for (const element of document.querySelectorAll("[title], [aria-label], [placeholder], [alt]")) {
    for (const name of ["title", "aria-label", "placeholder", "alt"]) {
      const value = element.getAttribute(name);
      if (value && value.trim()) texts.push(value);
    }
  }
  texts.push(document.title);
  return texts;
}"""
