"""/docs and /redoc load everything from this service (no CDN), so they work offline;
the browser test (tests/e2e/test_dashboard_browser.py) renders them with the network cut."""

from __future__ import annotations

import re

from tests.dialer.support import Api


async def test_docs_pages_name_only_local_assets_and_those_are_served(api: Api) -> None:
    for page in ("/docs", "/redoc"):
        r = await api.client.get(page)
        assert r.status_code == 200 and "text/html" in r.headers["content-type"]
        urls = re.findall(r"""(?:src|href)\s*[=:]\s*['"]([^'"]+)['"]""", r.text)
        assert urls, f"{page} names no asset"
        remote = [u for u in urls if re.match(r"(https?:)?//", u)]
        assert remote == [], f"{page} loads from the internet: {remote}"
        for url in urls:
            asset = await api.client.get(url)
            assert asset.status_code == 200, (page, url)
            assert len(asset.content) > 1000, (page, url)
    assert "/openapi.json" in (await api.client.get("/docs")).text
    # The docs pages are not part of the API's own description.
    paths = (await api.client.get("/openapi.json")).json()["paths"]
    assert not {"/docs", "/redoc"} & set(paths)
