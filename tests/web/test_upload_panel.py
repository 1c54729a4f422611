"""The upload panel's markup: a plain multipart form that works without JavaScript (CSRF
token first), and the hooks and translated words that upload.js takes over with."""

from __future__ import annotations

import re
import uuid
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import httpx

from tests.fixtures.app import World
from tests.fixtures.signin import sign_in
from web.pages.render import environment

STATIC = Path(__file__).resolve().parents[2] / "web" / "static"

# Every data-text-* key that upload.js reads with t("...").
JS_SOURCE = (STATIC / "upload.js").read_text(encoding="utf-8")


class _Markup(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.inside_form: list[tuple[str, dict[str, str]]] = []
        self._in_form = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        self.elements.append((tag, values))
        if tag == "form" and values.get("class") == "upload-form":
            self._in_form = True
        elif self._in_form and tag in ("input", "button"):
            self.inside_form.append((tag, values))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False


def _parse(html: str) -> _Markup:
    parser = _Markup()
    parser.feed(html)
    return parser


def _panel_html(lang: str = "en") -> str:
    folder = SimpleNamespace(id=uuid.uuid4(), client_id=uuid.uuid4(), name="Tax 2026")
    template = environment(lang).get_template("_upload.html")
    return template.render(folder=folder, csrf_token="tok-123", lang=lang)


def _check_panel(html: str, folder_id: str, csrf: str) -> None:
    markup = _parse(html)
    forms = [a for tag, a in markup.elements if tag == "form" and a.get("class") == "upload-form"]
    assert len(forms) == 1
    form = forms[0]
    assert form["method"] == "post"
    assert form["action"] == f"/folders/{folder_id}/upload"
    assert form["enctype"] == "multipart/form-data"
    controls = markup.inside_form
    # The token first: the server refuses any file part before it.
    assert controls[0] == ("input", {"type": "hidden", "name": "csrf_token", "value": csrf})
    file_inputs = [a for tag, a in controls if a.get("type") == "file"]
    assert len(file_inputs) == 1
    assert file_inputs[0]["name"] == "file"
    assert "multiple" in file_inputs[0]
    # Labelled: the drop zone is the file input's label, so it opens the picker.
    label_for = [a.get("for") for tag, a in markup.elements if tag == "label"]
    assert file_inputs[0]["id"] in label_for
    assert any(tag == "button" and a.get("type") == "submit" for tag, a in controls)

    panels = [a for tag, a in markup.elements if a.get("id") == "upload-panel"]
    assert len(panels) == 1
    panel = panels[0]
    assert panel["data-folder-id"] == folder_id
    assert panel["data-endpoint"] == "/api/v1/uploads"
    used = set(re.findall(r'\bt\("([a-zA-Z]+)"', JS_SOURCE))
    used |= {"unitTb", "unitGb", "unitMb", "unitKb"}
    for key in used:
        attribute = "data-text-" + re.sub(r"([A-Z])", lambda m: "-" + m.group(1).lower(), key)
        assert panel.get(attribute), f"{attribute} is missing: upload.js would show {key!r}"
    assert any(a.get("aria-live") == "polite" for _, a in markup.elements)
    scripts = [a["src"] for tag, a in markup.elements if tag == "script"]
    ours = [
        s for s in scripts if s in ("/static/vendor/tus-js-client/tus.min.js", "/static/upload.js")
    ]
    # tus-js-client defines `window.tus` before upload.js runs (deferred scripts keep order).
    assert ours == ["/static/vendor/tus-js-client/tus.min.js", "/static/upload.js"]
    assert all("defer" in a for tag, a in markup.elements if tag == "script")
    # CSP: no inline script, style or handler.
    assert "<script>" not in html
    assert not any("style" in a or any(k.startswith("on") for k in a) for _, a in markup.elements)


def test_the_panel_renders_as_a_plain_form_with_its_words() -> None:
    html = _panel_html()
    folder_id = re.search(r'data-folder-id="([^"]+)"', html)
    assert folder_id is not None
    _check_panel(html, folder_id.group(1), "tok-123")
    assert 'data-text-left="{time} left"' in html
    assert "Unfinished uploads: choose the same file again to resume" in html


async def test_the_folder_page_carries_the_panel(http: httpx.AsyncClient, world: World) -> None:
    await sign_in(http, world["alice"])
    page = await http.get(f"/folders/{world.acme_folder}")
    assert page.status_code == 200, page.text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf is not None
    _check_panel(page.text, str(world.acme_folder), csrf.group(1))
    assert 'id="folder-listing"' in page.text, "upload.js refreshes this element"


async def test_an_auditor_sees_no_panel(http: httpx.AsyncClient, world: World) -> None:
    await sign_in(http, world["otto"])
    page = await http.get(f"/folders/{world.acme_folder}")
    assert 'id="upload-panel"' not in page.text


async def test_the_scripts_and_the_licence_are_served(http: httpx.AsyncClient) -> None:
    for path in (
        "/static/upload.js",
        "/static/upload.css",
        "/static/vendor/tus-js-client/tus.min.js",
        "/static/vendor/tus-js-client/LICENSE",
    ):
        response = await http.get(path)
        assert response.status_code == 200, path
        assert response.content
    licence = await http.get("/static/vendor/tus-js-client/LICENSE")
    assert "MIT" in licence.text or "Permission is hereby granted" in licence.text


def test_the_upload_styles_mirror_for_right_to_left() -> None:
    css = (STATIC / "upload.css").read_text(encoding="utf-8")
    body = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    for physical in ("left", "right"):
        assert not re.search(rf"(margin|padding|border)-{physical}\b", body)
        assert not re.search(rf"text-align:\s*{physical}\b", body)
        assert not re.search(rf"(^|[;{{\s]){physical}:", body)


def test_the_script_never_writes_html_strings() -> None:
    # Names of files are untrusted: they go in as text, never as markup.
    assert "innerHTML" not in JS_SOURCE
    assert "insertAdjacentHTML" not in JS_SOURCE
    assert "document.write" not in JS_SOURCE
