"""The HTML pages (`/dashboard`, `/desk`): served with headers that keep a page holding an
API key to itself. Its Content-Security-Policy admits only the page's own inline script
and style (by their SHA-256, computed from the file, so an edited page stays allowed) and
calls to this service; no page may frame it; no referrer leaves it."""

from __future__ import annotations

import base64
import hashlib
import re
from functools import cache
from importlib.resources import files

from fastapi.responses import HTMLResponse

_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)
_STYLE = re.compile(r"<style>(.*?)</style>", re.DOTALL)
_STYLE_ATTRIBUTE = re.compile(r'\sstyle="([^"]*)"')


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def policy(html: str) -> str:
    """The page's Content-Security-Policy: its inline blocks and style attributes by hash."""
    scripts = " ".join(sorted({_sha256(s) for s in _SCRIPT.findall(html)})) or "'none'"
    styles = sorted({_sha256(s) for s in _STYLE.findall(html)})
    attributes = sorted({_sha256(s) for s in _STYLE_ATTRIBUTE.findall(html)})
    style_src = " ".join(styles + (["'unsafe-hashes'", *attributes] if attributes else []))
    style_src = style_src or "'none'"
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src {scripts}",
            f"style-src {style_src}",
            "img-src 'self' data:",
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


@cache
def _page(name: str) -> tuple[str, dict[str, str]]:
    html = files("dialer").joinpath(f"static/{name}").read_text(encoding="utf-8")
    headers = {
        "Content-Security-Policy": policy(html),
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }
    return html, headers


def html_page(name: str) -> HTMLResponse:
    """The static page `dialer/static/<name>` with its security headers."""
    html, headers = _page(name)
    return HTMLResponse(html, headers=headers)
