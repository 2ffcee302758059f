"""deploy/: the alert rules pass promtool (syntax and their unit tests), the Grafana dashboard is
valid, and every metric either one names is one the services export."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import REGISTRY

import services.common.http
import services.gateway.kpis
import services.ingest.metric_defs
import services.metrics.metric_defs  # noqa: F401  (registers the catalogues)

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "pulse.json"
# Exported by the gateway's KPI collector while it runs, and by features still to come.
COLLECTED = {
    "pulse_active_users",
    "pulse_project_info",
    "pulse_gateway_kpi_refreshed_timestamp_seconds",
    "pulse_funnel_conversion_ratio",
    "pulse_retention_ratio",
}


def promtool(*args: str, cwd: Path) -> None:
    tool = shutil.which("promtool")
    assert tool, "promtool is missing: `make test` installs Debian's prometheus package"
    result = subprocess.run([tool, *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def known_metrics() -> set[str]:
    names = set(COLLECTED)
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"], "gauge": [""]}
    for family in REGISTRY.collect():
        names.update(family.name + suffix for suffix in suffixes.get(family.type, [""]))
    return names


def panel_exprs(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def test_alert_rules_are_valid_and_fire_as_their_tests_say() -> None:
    promtool("check", "rules", RULES.name, cwd=RULES.parent)
    promtool("test", "rules", "alerts_test.yml", cwd=RULES.parent)
    rules = yaml.safe_load(RULES.read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    assert {
        "PulseIngestDown",
        "PulseProcessingBehind",
        "PulseEndToEndLatencyHigh",
        "PulseFunnelConversionDrop",
        "PulseDailyActiveUsersDrop",
    } <= alerts


def test_grafana_dashboard_is_valid_and_its_queries_parse(tmp_path: Path) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    datasource = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"][0]["uid"]
    for panel in panels:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == datasource, panel["title"]
            assert panel["targets"], panel["title"]
    # Every query as a recording rule, so promtool parses the PromQL.
    exprs = [
        e.replace("$project", ".*").replace("$__rate_interval", "1m")
        for e in panel_exprs(dashboard)
    ]
    rules = {
        "groups": [
            {
                "name": "grafana",
                "rules": [{"record": f"panel:query_{i}", "expr": e} for i, e in enumerate(exprs)],
            }
        ]
    }
    (tmp_path / "panels.yml").write_text(yaml.safe_dump(rules))
    promtool("check", "rules", "panels.yml", cwd=tmp_path)
    queried = " ".join(exprs)
    for wanted in (
        "rate(pulse_ingest_events_accepted_total[1m])",
        "pulse_ingest_events_rejected_total",
        "pulse_consumer_lag_events",
        "pulse_metrics_end_to_end_latency_seconds_bucket",
        "pulse_metrics_batch_apply_duration_seconds_bucket",
        "pulse_active_users",
    ):
        assert wanted in queried, wanted


def test_every_metric_named_in_deploy_is_exported() -> None:
    text = RULES.read_text() + json.dumps(panel_exprs(json.loads(DASHBOARD.read_text())))
    named = set(re.findall(r"\bpulse_[a-z0-9_]+", text))
    assert named, "no metric found"
    assert named - known_metrics() == set()
