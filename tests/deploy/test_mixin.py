"""Checks of the monitoring mixin (mixin/) and what it renders: every alert carries the labels and
annotations the contract asks for, links no exporter by its scrape address, is tested firing (in
each severity) and quiet by alerts/tests/, and the mixin's _config really reaches every rule.

Run from the repository's root:

    python3 -m unittest discover -s tests/deploy -v
"""

import json
import pathlib
import re
import shutil
import subprocess
import tempfile
import unittest

from test_deploy import LOAD_YAML, MIXIN, ROOT, RULES, needs_yaml

TESTS = sorted((ROOT / "alerts" / "tests").glob("*.yml"))


def alerting_rules():
    return [rule for group in LOAD_YAML(RULES)[0]["groups"] for rule in group["rules"] if "alert" in rule]


def alert_tests():
    """(alertname, expected alerts) of every alert_rule_test."""
    for path in TESTS:
        for test in LOAD_YAML(path)[0]["tests"]:
            for case in test.get("alert_rule_test", []):
                yield case["alertname"], case.get("exp_alerts") or []


class AlertRulesTest(unittest.TestCase):
    @needs_yaml
    def test_every_alert_has_severity_flow_step_summary_description_and_runbook(self):
        for rule in alerting_rules():
            with self.subTest(alert=rule["alert"]):
                self.assertIn(rule["labels"]["severity"], ("critical", "warning", "info"))
                self.assertTrue(rule["labels"]["flow_step"])
                for key in ("summary", "description", "runbook_url"):
                    self.assertTrue(rule["annotations"].get(key), key)
                self.assertNotIn("{{", rule["annotations"]["summary"], "the summary is a static sentence")

    @needs_yaml
    def test_no_link_is_built_from_the_scrape_address(self):
        for rule in alerting_rules():
            for key, value in rule["annotations"].items():
                with self.subTest(alert=rule["alert"], annotation=key):
                    self.assertNotRegex(value, r"https?://\{\{ *\$labels\.instance")

    @needs_yaml
    def test_the_contracts_alerts_exist(self):
        names = {rule["alert"] for rule in alerting_rules()}
        for name in ("AppProxyFlowStepFailing", "AppProxyNoActiveConnector", "AppProxyPortBlocked",
                     "AppProxyRequiredEndpointUnreachable", "AppProxyForwardProxyDown",
                     "AppProxyForwardProxyMismatch", "AppProxyBackendDown", "AppProxyBackendTimeoutRisk",
                     "AppProxyInventoryStale", "AppProxyExporterDown", "AppProxyConfigReloadFailed",
                     "AppProxyProbesStale", "AppProxyTlsIntercepted", "AppProxyConnectorConfigInvalid",
                     "AppProxyConnectorServiceStopped"):
            self.assertIn(name, names)

    @needs_yaml
    def test_every_alert_is_tested_firing_in_each_severity_and_quiet(self):
        fired, quiet = set(), set()
        for name, expected in alert_tests():
            if not expected:
                quiet.add(name)
            for alert in expected:
                fired.add((name, alert["exp_labels"].get("severity")))
        for rule in alerting_rules():
            with self.subTest(alert=rule["alert"], severity=rule["labels"]["severity"]):
                self.assertIn((rule["alert"], rule["labels"]["severity"]), fired, "no test sees it fire")
                self.assertIn(rule["alert"], quiet, "no test sees it quiet")


class MixinConfigTest(unittest.TestCase):
    def render(self, config):
        jsonnet = shutil.which("jsonnet")
        self.assertIsNotNone(jsonnet, "jsonnet is not installed (Debian package jsonnet)")
        code = "local m = (import 'mixin.libsonnet') + { _config+:: %s }; " \
               "{ rules: m.prometheusRules.groups + m.prometheusAlerts.groups, dashboards: m.grafanaDashboards }" % config
        result = subprocess.run([jsonnet, "-J", str(ROOT / "mixin"), "-e", code], capture_output=True, text=True)
        self.assertEqual(result.returncode, 0, result.stderr)
        return json.loads(result.stdout)

    def test_the_selector_runbook_pattern_and_ratios_of_config_reach_every_rule(self):
        rendered = self.render("{ selector: 'job=\"connectors\"', runbookURLPattern: 'https://wiki.example/appproxy/%s',"
                               " timeoutRiskRatio: 0.75, grafanaURL: 'https://grafana.example' }")
        rules = [rule for group in rendered["rules"] for rule in group["rules"]]
        self.assertGreater(len(rules), 20)
        for rule in rules:
            name = rule.get("alert") or rule.get("record")
            with self.subTest(rule=name):
                selectors = re.findall(r"[a-z_:0-9]+\{([^}]*)\}", rule["expr"])
                self.assertTrue(selectors, rule["expr"])
                for selector in selectors:
                    self.assertTrue(selector.startswith('job="connectors"'), rule["expr"])
                self.assertNotIn("appproxy-exporter", rule["expr"])
                if "alert" in rule:
                    self.assertTrue(rule["annotations"]["runbook_url"].startswith("https://wiki.example/appproxy/"))
                    self.assertTrue(rule["annotations"]["dashboard_url"].startswith("https://grafana.example/d/"))
                if rule.get("alert") == "AppProxyBackendTimeoutRisk" and rule["labels"]["severity"] == "critical":
                    self.assertIn(">= 0.75", rule["expr"])
        links = json.dumps(rendered["dashboards"])
        self.assertIn("https://grafana.example/d/appproxy-app?", links)
        self.assertIn("https://grafana.example/d/appproxy-overview", links)
        self.assertIn("https://wiki.example/appproxy/${__data.fields.step_name}", links)
        self.assertIn('"value": 0.75', json.dumps(rendered["dashboards"], indent=1))

    @needs_yaml
    def test_scripts_mixin_renders_every_shipped_file_for_another_config_into_a_directory(self):
        with tempfile.TemporaryDirectory() as tmp:
            config = pathlib.Path(tmp) / "config.jsonnet"
            config.write_text("{ selector: 'job=\"connectors\"', runbookURLPattern: 'https://wiki.example/appproxy/%s' }\n")
            out = pathlib.Path(tmp) / "out"
            result = subprocess.run([str(MIXIN), "--config", str(config), "--out", str(out)],
                                    capture_output=True, text=True)
            self.assertEqual(result.returncode, 0, result.stderr)
            rendered = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
            self.assertEqual(rendered, ["alerts/appproxy.rules.yml", "dashboards/appproxy-app.json",
                                        "dashboards/appproxy-overview.json", "deploy/kubernetes/prometheusrule.yaml"])
            rules = [rule for group in LOAD_YAML(out / "alerts" / "appproxy.rules.yml")[0]["groups"]
                     for rule in group["rules"]]
            for rule in rules:
                with self.subTest(rule=rule.get("alert") or rule.get("record")):
                    self.assertNotIn("appproxy-exporter", rule["expr"])
                    self.assertIn('job="connectors"', rule["expr"])
                    if "alert" in rule:
                        self.assertTrue(rule["annotations"]["runbook_url"].startswith("https://wiki.example/appproxy/"))
            self.assertIn('job=\\"connectors\\"', (out / "dashboards" / "appproxy-overview.json").read_text())

    def test_scripts_mixin_never_writes_another_config_over_the_committed_files(self):
        with tempfile.TemporaryDirectory() as tmp:
            config = pathlib.Path(tmp) / "config.jsonnet"
            config.write_text("{ selector: 'job=\"connectors\"' }\n")
            before = RULES.read_text()
            result = subprocess.run([str(MIXIN), "--config", str(config)], capture_output=True, text=True)
            self.assertEqual(result.returncode, 2, result.stderr)
            self.assertEqual(RULES.read_text(), before)


if __name__ == "__main__":
    unittest.main()
