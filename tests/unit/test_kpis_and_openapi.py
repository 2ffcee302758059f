"""KPI gauges as Prometheus text, day boundaries per timezone, and the OpenAPI document."""

from __future__ import annotations

from datetime import UTC, date, datetime

from prometheus_client import CollectorRegistry, generate_latest

from services.common.settings import GatewaySettings
from services.gateway.app import create_app
from services.gateway.kpis import KpiCollector, ProjectKpis, today_in


def test_collector_exports_one_gauge_per_project_and_window() -> None:
    registry = CollectorRegistry()
    collector = KpiCollector()
    registry.register(collector)
    assert b"pulse_active_users" not in generate_latest(registry)  # nothing before the first run
    collector.snapshot = [
        ProjectKpis(1, "shop", {1: 3, 7: 10, 30: 42}, {1: 0.5, 7: 0.25}),
        ProjectKpis(2, 'app "two"', {1: 0, 7: 0, 30: 0}, {}),
    ]
    collector.refreshed_at = 1_700_000_000.0
    text = generate_latest(registry).decode()
    for line in [
        'pulse_active_users{project="1",window="1d"} 3.0',
        'pulse_active_users{project="1",window="7d"} 10.0',
        'pulse_active_users{project="1",window="30d"} 42.0',
        'pulse_active_users{project="2",window="30d"} 0.0',
        'pulse_project_info{name="shop",project="1"} 1.0',
        'pulse_retention_ratio{day="1",project="1"} 0.5',
        'pulse_retention_ratio{day="7",project="1"} 0.25',
        'pulse_project_info{name="app \\"two\\"",project="2"} 1.0',
        "pulse_gateway_kpi_refreshed_timestamp_seconds 1.7e+09",
    ]:
        assert line in text.splitlines(), line
    assert 'pulse_retention_ratio{day="30"' not in text  # an empty cohort has no ratio
    collector.snapshot = [ProjectKpis(2, "app", {1: 1, 7: 1, 30: 1}, {})]
    assert 'project="1"' not in generate_latest(registry).decode()  # a deleted project goes away


def test_today_follows_the_project_timezone() -> None:
    now = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
    assert today_in("UTC", now) == date(2026, 3, 10)
    assert today_in("America/New_York", now) == date(2026, 3, 9)
    assert today_in("Asia/Tokyo", datetime(2026, 3, 9, 16, 0, tzinfo=UTC)) == date(2026, 3, 10)


def test_openapi_documents_credentials_errors_csv_and_caching() -> None:
    schema = create_app(GatewaySettings()).openapi()
    assert schema["components"]["schemas"]["Error"]["required"] == ["code", "message"]
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    assert set(schema["components"]["securitySchemes"]) == {"readKey", "adminToken"}
    activity = schema["paths"]["/v1/activity"]["get"]
    assert activity["security"] == [{"readKey": []}]
    assert set(activity["responses"]) >= {"200", "304", "401", "422"}
    assert activity["responses"]["422"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }
    ok = activity["responses"]["200"]
    assert set(ok["content"]) == {"application/json", "text/csv"}
    assert set(ok["headers"]) == {"ETag", "Cache-Control"}
    params = {p["name"]: p for p in activity["parameters"]}
    assert {"from", "to", "format", "If-None-Match"} <= set(params)
    assert all(p.get("description") for p in params.values())
    assert schema["paths"]["/v1/projects"]["post"]["security"] == [{"adminToken": []}]
    assert "304" not in schema["paths"]["/v1/projects"]["get"]["responses"]
    status = schema["paths"]["/v1/status"]["get"]["responses"]["200"]
    assert status["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Status"
    }
    # Every operation under /v1 names what its 200 (or 201) holds; a DELETE answers 204, empty.
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if method == "delete":
                assert set(operation["responses"]) >= {"204", "401", "404"}, path
                assert "content" not in operation["responses"]["204"], path
                continue
            ok_status = "201" if method == "post" and "rotate" not in path else "200"
            assert operation["responses"][ok_status]["content"], (method, path)
            # Only reads with a read key are cached: a write or an admin call never answers 304.
            cached = method == "get" and not path.startswith("/v1/projects")
            assert ("304" in operation["responses"]) == cached, (method, path)
    assert "/" not in schema["paths"] and "/metrics" not in schema["paths"]
