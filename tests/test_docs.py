"""The OpenAPI pages work offline: Swagger UI and ReDoc come from the wheel, not a CDN."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from server.app import create_app
from server.runner import ServerHandle
from tests.conftest import render_offline


async def test_docs_pages_reference_only_the_servers_own_assets(
    client: httpx.AsyncClient,
) -> None:
    for page in ("/docs", "/redoc"):
        html = (await client.get(page)).text
        assets = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert assets, page
        assert all(url.startswith("/") for url in assets), (page, assets)
        for url in assets:
            response = await client.get(url)
            assert response.status_code == 200, url
            assert len(response.content) > 1000 or url.endswith(".png"), url


async def test_swagger_ui_renders_in_a_browser_with_the_network_off(
    server: ServerHandle, chromium: str, tmp_path: Path
) -> None:
    dom = await render_offline(chromium, f"{server.url}/docs", tmp_path / "profile")
    # Swagger UI drew the operations from /openapi.json: its script ran without a CDN
    paths = set(re.findall(r'class="opblock-summary-path" data-path="([^"]+)"', dom))
    assert {"/basics/async", "/monitor", "/ws/token"} <= paths, dom[-2000:]
    scripts = re.findall(r'<script[^>]*src="([^"]+)"', dom)
    assert scripts
    assert all(src.startswith("/") for src in scripts), scripts


async def test_redoc_renders_in_a_browser_with_the_network_off(
    server: ServerHandle, chromium: str, tmp_path: Path
) -> None:
    dom = await render_offline(chromium, f"{server.url}/redoc", tmp_path / "profile")
    # ReDoc drew a section per operation (its script ran without a CDN)
    sections = set(re.findall(r'data-section-id="operation/([^"]+)"', dom))
    assert "read_monitor_monitor_get" in sections, dom[-2000:]
    assert len(sections) >= 40


def test_every_operation_that_reads_a_body_documents_its_400() -> None:
    """An unparseable body is a 400 FastAPI answers itself; /docs says so for every such
    operation, those of the routers a pattern's router includes too."""
    spec = create_app().openapi()
    with_body = [
        (path, method, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if "requestBody" in operation
    ]
    assert len(with_body) >= 10
    undocumented = [f"{m.upper()} {p}" for p, m, op in with_body if "400" not in op["responses"]]
    assert not undocumented
