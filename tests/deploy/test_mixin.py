"""Checks of the monitoring mixin (mixin/) and what it renders: every alert carries the labels and
annotations the contract asks for, links no exporter by its scrape address, is tested firing (in
each severity) and quiet by alerts/tests/, and the mixin's _config really reaches every rule. The
Alertmanager file never lets a ticket silence a page, every runbook link leads to a runbook
section that exists, and the mixin renders for older rulers and for per-site fleets.

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
ALERTMANAGER = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
# Where the default runbookURLPattern points: this repository's files on GitHub.
REPOSITORY_URL = "https://github.com/appproxy-exporter/appproxy_exporter/blob/main/"
STEP_NAMES = ["connector_group_assigned", "connector_installed", "port_test", "required_endpoints",
              "forward_proxy", "proxy_consistency", "internal_url", "internal_network", "backend_timeout",
              "escalate_app_flow"]
SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}


def github_slug(heading):
    """The anchor GitHub gives a Markdown heading: lower case, spaces to -, other punctuation dropped."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def runbook_targets(url):
    """Every link `url` can become at alert time: a label template stands for any step name."""
    # A template (a label, or a lookup that ends in a step name) is one placeholder, however long.
    template = re.compile(r"\{\{.*\}\}|\$\{__data\.fields\.step_name\}")
    if not template.search(url):
        return [url]
    return [template.sub(name, url) for name in STEP_NAMES]


def matcher_values(matchers, label):
    """The values a list of matchers allows for `label`, or None when they do not constrain it."""
    for matcher in matchers:
        m = re.fullmatch(r'(\w+)(=~|=)"(.*)"', matcher)
        if m and m.group(1) == label:
            return m.group(3).split("|") if m.group(2) == "=~" else [m.group(3)]
    return None


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


class AlertmanagerTest(unittest.TestCase):
    """deploy/alertmanager/alertmanager.yml, rendered from mixin/alertmanager.libsonnet."""

    @needs_yaml
    def test_no_inhibition_lets_an_alert_silence_one_of_higher_severity(self):
        severities = {}
        for rule in alerting_rules():
            severities.setdefault(rule["alert"], set()).add(rule["labels"]["severity"])
        every = set(SEVERITY_RANK)
        rules = LOAD_YAML(ALERTMANAGER)[0]["inhibit_rules"]
        self.assertGreater(len(rules), 5)
        for rule in rules:
            with self.subTest(rule=rule):
                def possible(matchers):
                    names = matcher_values(matchers, "alertname")
                    by_name = set().union(*(severities.get(n, set()) for n in names)) if names else every
                    allowed = matcher_values(matchers, "severity")
                    return by_name & set(allowed) if allowed else by_name
                source, target = possible(rule["source_matchers"]), possible(rule["target_matchers"])
                self.assertTrue(source and target, "a side of this rule matches no alert of the rule file")
                lowest_source = min(SEVERITY_RANK[s] for s in source)
                highest_target = max(SEVERITY_RANK[s] for s in target)
                self.assertGreaterEqual(lowest_source, highest_target,
                                        f"a {sorted(source)} source may silence a {sorted(target)} target")

    @needs_yaml
    def test_every_inhibition_names_alerts_that_exist_and_keys_on_what_explains_them(self):
        names = {rule["alert"] for rule in alerting_rules()}
        for rule in LOAD_YAML(ALERTMANAGER)[0]["inhibit_rules"]:
            with self.subTest(rule=rule):
                for side in ("source_matchers", "target_matchers"):
                    for name in matcher_values(rule[side], "alertname") or []:
                        self.assertIn(name, names)
                # The same host, or the same connector group or app: never a rule for everything.
                self.assertTrue({"instance", "connector_group", "app"} & set(rule["equal"]), rule["equal"])

    @needs_yaml
    def test_pages_go_to_the_pager_and_everything_else_to_tickets(self):
        config = LOAD_YAML(ALERTMANAGER)[0]
        self.assertEqual(config["route"]["receiver"], "tickets")
        self.assertEqual(config["route"]["routes"], [{"receiver": "pager", "matchers": ['severity="critical"']}])
        result = subprocess.run(["amtool", "check-config", str(ALERTMANAGER)], capture_output=True, text=True)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)


class RunbookLinkTest(unittest.TestCase):
    @needs_yaml
    def test_every_runbook_link_of_rules_and_dashboards_leads_to_a_runbook_section_that_exists(self):
        links = [rule["annotations"]["runbook_url"] for rule in alerting_rules()]
        for board in (ROOT / "dashboards").glob("*.json"):
            links += [link["url"] for link in re.findall(r'\{[^{}]*"url": "([^"]*runbooks[^"]*)"', board.read_text())
                      for link in [{"url": link}]]
        followed = 0
        for link in links:
            for url in runbook_targets(link):
                with self.subTest(link=url):
                    self.assertTrue(url.startswith(REPOSITORY_URL), url)
                    path, _, anchor = url[len(REPOSITORY_URL):].partition("#")
                    runbook = ROOT / path
                    self.assertTrue(runbook.is_file(), f"{url}: no file {path}")
                    if anchor:
                        headings = [github_slug(h) for h in re.findall(r"^#+ (.*)$", runbook.read_text(), re.M)]
                        self.assertIn(anchor, headings, f"{url}: no such section in {path}")
                    followed += 1
        self.assertGreater(followed, 100, "too few runbook links found to trust this test")

    def test_the_lookup_of_a_runbook_named_at_alert_time_resolves_to_a_step(self):
        # AppProxyBackendDown names step 7 or 8 by a query at alert time; both have runbooks.
        for name in ("internal_url", "internal_network"):
            self.assertTrue((ROOT / "docs" / "runbooks" / f"{name}.md").is_file())


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
                                        "dashboards/appproxy-overview.json", "deploy/alertmanager/alertmanager.yml",
                                        "deploy/kubernetes/prometheusrule.yaml"])
            rules = [rule for group in LOAD_YAML(out / "alerts" / "appproxy.rules.yml")[0]["groups"]
                     for rule in group["rules"]]
            for rule in rules:
                with self.subTest(rule=rule.get("alert") or rule.get("record")):
                    self.assertNotIn("appproxy-exporter", rule["expr"])
                    self.assertIn('job="connectors"', rule["expr"])
                    if "alert" in rule:
                        self.assertTrue(rule["annotations"]["runbook_url"].startswith("https://wiki.example/appproxy/"))
            self.assertIn('job=\\"connectors\\"', (out / "dashboards" / "appproxy-overview.json").read_text())

    def render_files(self, config, tmp):
        path = pathlib.Path(tmp) / "config.jsonnet"
        path.write_text(config)
        out = pathlib.Path(tmp) / "out"
        return subprocess.run([str(MIXIN), "--config", str(path), "--out", str(out)], capture_output=True, text=True), out

    def test_an_unknown_key_or_an_empty_selector_fails_rendering_naming_it(self):
        for config, message in (("{ hostLabels: ['instance'] }", "unknown _config key(s): hostLabels"),
                                ("{ selectr: 'job=\"x\"' }", "unknown _config key(s): selectr"),
                                ("{ selector: '  ' }", "_config.selector is empty"),
                                ("{ fleetLabels: ['site', 'app'] }", "_config.fleetLabels must not name"),
                                ("{ runbookURLPattern: 'https://wiki.example/appproxy' }", "must hold %s exactly once")):
            with self.subTest(config=config), tempfile.TemporaryDirectory() as tmp:
                result, out = self.render_files(config, tmp)
                self.assertNotEqual(result.returncode, 0)
                self.assertIn(message, result.stderr)
                self.assertFalse(out.exists() and any(out.rglob("*.yml")), "a refused config wrote files")

    def test_rendered_without_keep_firing_for_the_rules_pass_promtool_for_rulers_before_2_42(self):
        with tempfile.TemporaryDirectory() as tmp:
            result, out = self.render_files("{ keepFiringFor: '' }", tmp)
            self.assertEqual(result.returncode, 0, result.stderr)
            rules = (out / "alerts" / "appproxy.rules.yml").read_text()
            self.assertNotIn("keep_firing_for", rules)
            self.assertIn("keep_firing_for", RULES.read_text(), "the default keeps it")
            check = subprocess.run(["promtool", "check", "rules", "--lint=all", str(out / "alerts" / "appproxy.rules.yml")],
                                   capture_output=True, text=True)
            self.assertEqual(check.returncode, 0, check.stdout + check.stderr)

    def test_with_fleet_labels_an_app_every_host_of_one_site_fails_pages_for_that_site(self):
        with tempfile.TemporaryDirectory() as tmp:
            result, out = self.render_files("{ fleetLabels: ['site'] }", tmp)
            self.assertEqual(result.returncode, 0, result.stderr)
            am = (out / "deploy" / "alertmanager" / "alertmanager.yml").read_text()
            self.assertIn("equal: [connector_group, flow_step, site]", am)
            test = pathlib.Path(tmp) / "site.test.yml"
            test.write_text(SITE_TEST % (out / "alerts" / "appproxy.rules.yml"))
            check = subprocess.run(["promtool", "test", "rules", str(test)], capture_output=True, text=True)
            self.assertEqual(check.returncode, 0, check.stdout + check.stderr)

    def test_scripts_mixin_never_writes_another_config_over_the_committed_files(self):
        with tempfile.TemporaryDirectory() as tmp:
            config = pathlib.Path(tmp) / "config.jsonnet"
            config.write_text("{ selector: 'job=\"connectors\"' }\n")
            before = RULES.read_text()
            result = subprocess.run([str(MIXIN), "--config", str(config)], capture_output=True, text=True)
            self.assertEqual(result.returncode, 2, result.stderr)
            self.assertEqual(RULES.read_text(), before)


# payroll fails on both hosts of site ams and loads from site nyc: with fleetLabels ['site'], ams
# pages and nyc stays quiet (with the default, the same input is two tickets: tests/fleet).
SITE_TEST = """
rule_files: [%s]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'appproxy_backend_up{job="appproxy",instance="a1",site="ams",connector_group="G",app="payroll"}'
        values: '0x20'
      - series: 'appproxy_backend_up{job="appproxy",instance="a2",site="ams",connector_group="G",app="payroll"}'
        values: '0x20'
      - series: 'appproxy_backend_up{job="appproxy",instance="n1",site="nyc",connector_group="G",app="payroll"}'
        values: '1x20'
    alert_rule_test:
      - eval_time: 12m
        alertname: AppProxyBackendDown
        exp_alerts:
          - exp_labels: {severity: critical, flow_step: internal_url, connector_group: G, app: payroll, site: ams}
            exp_annotations:
              summary: An app's internal URL does not load from a connector host.
              description: "App payroll (connector group G) does not load from any connector host that serves it (the least affected failed 100%% of the requests over 5m; failing now: none at the moment), so its walk stops at step 7 (internal_url) or 8 (internal_network): its users cannot reach it."
              runbook_url: https://github.com/appproxy-exporter/appproxy_exporter/blob/main/docs/runbooks/internal_url.md
"""


if __name__ == "__main__":
    unittest.main()
