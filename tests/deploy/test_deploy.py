"""Checks of the deployment files: deploy/kubernetes/, deploy/systemd/ and the PrometheusRule
rendered from the mixin with alerts/appproxy.rules.yml.

Run from the repository's root:

    python3 -m unittest discover -s tests/deploy -v

YAML is parsed with PyYAML when this Python has it, else through Debian's /usr/bin/python3 (package
python3-yaml), else the few facts needed are read from the text. The configmap test runs the
exporter (target/debug/appproxy_exporter, or $APPPROXY_EXPORTER_BIN), which must be built first.
`systemd-analyze` checks run where it is installed and are skipped, with the reason, elsewhere.
kubectl must be installed (scripts/test installs it); the manifests' schemas and `kubectl apply
--dry-run=client` are test_schemas.py.
"""

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

ROOT = pathlib.Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "kubernetes"
UNIT = ROOT / "deploy" / "systemd" / "appproxy_exporter.service"
RULES = ROOT / "alerts" / "appproxy.rules.yml"
MIXIN = ROOT / "scripts" / "mixin"
BINARY = pathlib.Path(os.environ.get("APPPROXY_EXPORTER_BIN", ROOT / "target" / "debug" / "appproxy_exporter"))

CONFIG_FILE = "/etc/appproxy_exporter/appproxy_exporter.yml"
PORT = 9869
# The image's user: the Dockerfile's `USER nonroot`, which is uid and gid 65532 in
# gcr.io/distroless (its documented nonroot user), and what scripts/test-packages runs it as.
IMAGE_USER = 65532


def _yaml_loader():
    """A function path -> list of documents, and a description of it; (None, reason) without YAML."""
    try:
        import yaml  # noqa: PLC0415

        return (lambda path: list(yaml.safe_load_all(path.read_text(encoding="utf-8"))),
                f"PyYAML in {sys.executable}")
    except ImportError:
        pass
    debian = "/usr/bin/python3"
    if os.path.exists(debian) and subprocess.run([debian, "-c", "import yaml"], capture_output=True).returncode == 0:
        script = "import json, sys, yaml; json.dump(list(yaml.safe_load_all(open(sys.argv[1], encoding='utf-8'))), sys.stdout)"

        def load(path):
            result = subprocess.run([debian, "-c", script, str(path)], capture_output=True, text=True, check=True)
            return json.loads(result.stdout)

        return load, f"PyYAML in {debian}"
    return None, "no PyYAML here nor in /usr/bin/python3 (apt-get install python3-yaml)"


LOAD_YAML, YAML_SOURCE = _yaml_loader()
if LOAD_YAML is None:
    print(f"tests/deploy: {YAML_SOURCE}; reading the manifests as text", file=sys.stderr)


def needs_yaml(test):
    return unittest.skipIf(LOAD_YAML is None, YAML_SOURCE)(test)


def skip(case, reason):
    """Skip with the reason also on stderr, so that it shows without -v."""
    print(f"\nSKIPPED {case.id()}: {reason}", file=sys.stderr)
    case.skipTest(reason)


def one_document(path, kind):
    documents = [d for d in LOAD_YAML(path) if d]
    found = [d for d in documents if d.get("kind") == kind]
    assert len(found) == 1, f"{path.name}: expected one {kind}, found {len(found)}"
    return found[0]


def text(path):
    return path.read_text(encoding="utf-8")


def alert_names(path):
    return re.findall(r"^\s*(?:-\s+)?alert:\s*['\"]?([A-Za-z0-9_]+)", text(path), re.M)


def read_unit(path):
    """systemd's syntax: [Section], Key=Value lines (a key may repeat), # and ; comments."""
    sections, current = {}, None
    for number, raw in enumerate(text(path).splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None and "=" in line, f"{path.name}:{number}: not Key=Value in a section: {raw!r}"
        key, value = line.split("=", 1)
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def configmap_config_text():
    """The exporter's config embedded in configmap.yaml (data key appproxy_exporter.yml)."""
    if LOAD_YAML is not None:
        return one_document(K8S / "configmap.yaml", "ConfigMap")["data"]["appproxy_exporter.yml"]
    lines = text(K8S / "configmap.yaml").splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r"^\s+appproxy_exporter\.yml:\s*\|\s*$", line))
    key_indent = len(lines[start]) - len(lines[start].lstrip())
    block = []
    for line in lines[start + 1:]:
        if line.strip() and len(line) - len(line.lstrip()) <= key_indent:
            break
        block.append(line)
    indent = min(len(line) - len(line.lstrip()) for line in block if line.strip())
    return "\n".join(line[indent:] for line in block).strip("\n") + "\n"


class PrometheusRuleTest(unittest.TestCase):
    def test_the_rendered_files_are_up_to_date_with_the_mixin(self):
        result = subprocess.run([str(MIXIN), "--check"], cwd=ROOT, capture_output=True, text=True)
        self.assertEqual(result.returncode, 0,
                         f"alerts/, dashboards/ or deploy/kubernetes/prometheusrule.yaml drifted from mixin/; "
                         f"run scripts/mixin\n{result.stdout}{result.stderr}")

    def test_every_alert_of_the_rule_file_is_in_the_prometheusrule(self):
        in_rules = alert_names(RULES)
        in_resource = alert_names(K8S / "prometheusrule.yaml")
        self.assertGreaterEqual(len(in_rules), 9, "the rule file's alerts were not found")
        for name in in_rules:
            self.assertIn(name, in_resource)
        self.assertCountEqual(in_rules, in_resource)

    def test_the_prometheusrule_says_it_is_generated_and_by_what(self):
        head = text(K8S / "prometheusrule.yaml").splitlines()[0]
        self.assertIn("GENERATED by scripts/mixin from mixin/", head)

    @needs_yaml
    def test_the_prometheusrule_groups_equal_the_rule_files_groups(self):
        resource = one_document(K8S / "prometheusrule.yaml", "PrometheusRule")
        rules = LOAD_YAML(RULES)[0]
        self.assertEqual(resource["apiVersion"], "monitoring.coreos.com/v1")
        self.assertEqual(list(resource["spec"]), ["groups"])
        self.assertEqual(list(rules), ["groups"])
        self.assertEqual(resource["spec"]["groups"], rules["groups"])


class DeploymentTest(unittest.TestCase):
    def setUp(self):
        if LOAD_YAML is None:
            return
        self.deployment = one_document(K8S / "deployment.yaml", "Deployment")
        self.pod = self.deployment["spec"]["template"]["spec"]
        (self.container,) = self.pod["containers"]

    def effective(self, key):
        """A securityContext field as Kubernetes applies it: the container's, else the pod's."""
        container = self.container.get("securityContext", {})
        return container[key] if key in container else self.pod.get("securityContext", {}).get(key)

    def test_the_deployment_runs_as_non_root_with_a_read_only_root_filesystem_and_no_capabilities(self):
        if LOAD_YAML is None:
            manifest = text(K8S / "deployment.yaml")
            for pattern in (r"runAsNonRoot: true", rf"runAsUser: {IMAGE_USER}", r"readOnlyRootFilesystem: true",
                            r"allowPrivilegeEscalation: false", r"drop: \[ALL\]|drop:\s*\n\s*- ALL",
                            r"type: RuntimeDefault"):
                self.assertRegex(manifest, pattern)
            return
        self.assertIs(self.effective("runAsNonRoot"), True)
        self.assertEqual(self.effective("runAsUser"), IMAGE_USER)
        self.assertIs(self.effective("readOnlyRootFilesystem"), True)
        self.assertIs(self.effective("allowPrivilegeEscalation"), False)
        self.assertEqual(self.container["securityContext"]["capabilities"]["drop"], ["ALL"])
        self.assertNotIn("add", self.container["securityContext"]["capabilities"])
        self.assertEqual(self.effective("seccompProfile"), {"type": "RuntimeDefault"})
        self.assertIs(self.pod.get("hostNetwork", False), False)

    def test_the_deployment_runs_as_the_images_user_as_the_docs_say(self):
        dockerfile = text(ROOT / "Dockerfile")
        self.assertRegex(dockerfile, r"(?m)^FROM gcr\.io/distroless/[^ ]+:nonroot$")
        self.assertRegex(dockerfile, r"(?m)^USER nonroot:nonroot$")
        self.assertIn(f"nonroot ({IMAGE_USER})", dockerfile)
        self.assertIn(f"--userspec={IMAGE_USER}:{IMAGE_USER}", text(ROOT / "scripts" / "test-packages"))
        readme = text(K8S / "README.md")
        self.assertEqual(set(re.findall(r"\b655\d\d\b", readme)), {str(IMAGE_USER)}, "deploy/kubernetes/README.md")
        if LOAD_YAML is None:
            users = set(re.findall(r"(?:runAsUser|runAsGroup|fsGroup): (\d+)", text(K8S / "deployment.yaml")))
            self.assertEqual(users, {str(IMAGE_USER)})
            return
        for key in ("runAsUser", "runAsGroup", "fsGroup"):
            with self.subTest(key=key):
                self.assertEqual(self.pod["securityContext"][key], IMAGE_USER)
        self.assertEqual(self.container["securityContext"].get("runAsUser", IMAGE_USER), IMAGE_USER)

    def test_the_deployment_probes_healthy_and_ready_on_port_9869(self):
        if LOAD_YAML is None:
            manifest = text(K8S / "deployment.yaml")
            self.assertRegex(manifest, r"livenessProbe:\s*\n\s*httpGet:\s*\n\s*path: /-/healthy")
            self.assertRegex(manifest, r"readinessProbe:\s*\n\s*httpGet:\s*\n\s*path: /-/ready")
            self.assertRegex(manifest, r"containerPort: 9869")
            return
        ports = {p.get("name"): p["containerPort"] for p in self.container["ports"]}
        self.assertEqual(ports.get("http-metrics"), PORT)
        for probe, path in (("livenessProbe", "/-/healthy"), ("readinessProbe", "/-/ready")):
            get = self.container[probe]["httpGet"]
            self.assertEqual(get["path"], path)
            self.assertEqual(ports.get(get["port"], get["port"]), PORT, f"{probe} is not on port {PORT}")

    @needs_yaml
    def test_the_deployment_reads_the_configmap_and_the_optional_secret_read_only(self):
        self.assertEqual(self.deployment["metadata"]["name"], "appproxy-exporter")
        self.assertEqual(self.deployment["spec"]["replicas"], 1)
        self.assertIn(f"--config.file={CONFIG_FILE}", self.container["args"])
        volumes = {v["name"]: v for v in self.pod["volumes"]}
        mounts = {m["mountPath"]: m for m in self.container["volumeMounts"]}

        config_mount = mounts[os.path.dirname(CONFIG_FILE)]
        self.assertIs(config_mount.get("readOnly"), True)
        configmap = volumes[config_mount["name"]]["configMap"]
        self.assertEqual(configmap["name"], "appproxy-exporter-config")
        data = one_document(K8S / "configmap.yaml", "ConfigMap")
        self.assertEqual(data["metadata"]["name"], "appproxy-exporter-config")
        self.assertIn(os.path.basename(CONFIG_FILE), data["data"], "the ConfigMap has no key for --config.file")

        secret_mount = mounts["/etc/appproxy_exporter/secret"]
        self.assertIs(secret_mount.get("readOnly"), True)
        secret = volumes[secret_mount["name"]]["secret"]
        self.assertEqual(secret["secretName"], "appproxy-exporter-graph")
        self.assertIs(secret.get("optional"), True)

        state = volumes[mounts["/var/lib/appproxy_exporter"]["name"]]
        self.assertIn("emptyDir", state)

    def test_the_deployment_runs_the_image_the_release_workflow_pushes_at_this_version(self):
        workflow = text(ROOT / ".github" / "workflows" / "release.yml")
        image = re.search(r"^\s+IMAGE:\s*(\S+)\s*$", workflow, re.M).group(1)
        version = re.search(r'^version = "([^"]+)"', text(ROOT / "Cargo.toml"), re.M).group(1)
        self.assertRegex(text(K8S / "deployment.yaml"), rf"(?m)^\s+image: {re.escape(image)}:{re.escape(version)}$")
        self.assertIn(f"{image}:VERSION", text(K8S / "README.md"))

    @needs_yaml
    def test_the_deployment_has_small_requests_and_limits(self):
        self.assertEqual(self.container["resources"], {
            "requests": {"cpu": "50m", "memory": "32Mi"},
            "limits": {"cpu": "500m", "memory": "128Mi"},
        })

    @needs_yaml
    def test_the_service_and_servicemonitor_select_the_deployments_pods_on_http_metrics(self):
        pod_labels = self.deployment["spec"]["template"]["metadata"]["labels"]
        service = one_document(K8S / "service.yaml", "Service")
        self.assertEqual(service["spec"].get("type", "ClusterIP"), "ClusterIP")
        self.assertLessEqual(service["spec"]["selector"].items(), pod_labels.items())
        (port,) = service["spec"]["ports"]
        self.assertEqual((port["name"], port["port"], port["targetPort"]), ("http-metrics", PORT, "http-metrics"))
        self.assertEqual(service["metadata"]["labels"]["app.kubernetes.io/name"], "appproxy-exporter")

        monitor = one_document(K8S / "servicemonitor.yaml", "ServiceMonitor")
        self.assertEqual(monitor["apiVersion"], "monitoring.coreos.com/v1")
        self.assertLessEqual(monitor["spec"]["selector"]["matchLabels"].items(), service["metadata"]["labels"].items())
        (endpoint,) = monitor["spec"]["endpoints"]
        self.assertEqual((endpoint["port"], endpoint["path"], endpoint["interval"]), ("http-metrics", "/metrics", "60s"))


class SystemdUnitTest(unittest.TestCase):
    def setUp(self):
        self.unit = read_unit(UNIT)
        self.service = self.unit["Service"]

    def value(self, key):
        values = self.service.get(key)
        self.assertIsNotNone(values, f"{key}= is missing from [Service]")
        return values[-1]

    def test_the_unit_runs_as_the_dedicated_user_and_reloads_with_sighup(self):
        self.assertEqual(self.value("User"), "appproxy_exporter")
        self.assertEqual(self.value("Group"), "appproxy_exporter")
        self.assertEqual(self.value("DynamicUser"), "no")
        self.assertEqual(self.value("ExecStart"), f"/usr/bin/appproxy_exporter --config.file={CONFIG_FILE} $ARGS")
        self.assertEqual(self.value("EnvironmentFile"), "-/etc/default/appproxy_exporter")
        self.assertRegex(self.value("ExecReload"), r"^/bin/kill -HUP \$MAINPID$")
        self.assertEqual(self.value("Restart"), "on-failure")
        self.assertEqual(self.value("StateDirectory"), "appproxy_exporter")
        self.assertIn("network-online.target", self.unit["Unit"]["After"][-1].split())
        self.assertIn("network-online.target", self.unit["Unit"]["Wants"][-1].split())

    def test_the_unit_is_hardened_with_no_capabilities_and_a_read_only_system(self):
        expected = {
            "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
            "PrivateDevices": "yes", "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes",
            "ProtectKernelLogs": "yes", "ProtectControlGroups": "yes", "ProtectClock": "yes",
            "ProtectHostname": "yes", "RestrictNamespaces": "yes", "LockPersonality": "yes",
            "MemoryDenyWriteExecute": "yes", "RestrictRealtime": "yes", "RestrictSUIDSGID": "yes",
            "SystemCallArchitectures": "native", "SystemCallFilter": "@system-service",
            "CapabilityBoundingSet": "", "AmbientCapabilities": "",
            "ReadWritePaths": "/var/lib/appproxy_exporter",
        }
        for key, value in expected.items():
            with self.subTest(key=key):
                self.assertEqual(self.value(key), value)
        self.assertEqual(self.service["CapabilityBoundingSet"], [""], "CapabilityBoundingSet= must be set once, empty")
        self.assertEqual(set(self.value("RestrictAddressFamilies").split()),
                         {"AF_INET", "AF_INET6", "AF_UNIX", "AF_NETLINK"})

    def test_systemd_analyze_verify_accepts_the_unit(self):
        analyze = shutil.which("systemd-analyze")
        if analyze is None:
            skip(self, "systemd-analyze is not installed (Debian package systemd)")
        with tempfile.TemporaryDirectory() as directory:
            # verify insists that ExecStart's program exists: point it at a stand-in, the unit
            # being otherwise the committed one.
            stand_in = pathlib.Path(directory) / "appproxy_exporter"
            stand_in.write_text("#!/bin/sh\nexit 0\n")
            stand_in.chmod(0o755)
            unit = pathlib.Path(directory) / UNIT.name
            unit.write_text(text(UNIT).replace("/usr/bin/appproxy_exporter", str(stand_in)))
            result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, cwd=directory)
        # verify exits 0 on unknown keys and unparsable values, only printing them: any output fails.
        self.assertEqual((result.returncode, result.stdout + result.stderr), (0, ""))

    def test_systemd_analyze_security_rates_the_unit_at_most_2_5(self):
        analyze = shutil.which("systemd-analyze")
        if analyze is None:
            skip(self, "systemd-analyze is not installed (Debian package systemd)")
        result = subprocess.run([analyze, "security", "--offline=yes", "--threshold=25", str(UNIT)],
                                capture_output=True, text=True)
        if "--offline" in result.stderr and "unrecognized" in result.stderr:
            skip(self, "this systemd-analyze has no --offline (systemd older than 250)")
        summary = [line for line in result.stdout.splitlines() if "Overall exposure level" in line]
        self.assertEqual(result.returncode, 0, f"exposure above 2.5: {summary}\n{result.stderr}")


class KustomizationTest(unittest.TestCase):
    def resources(self):
        if LOAD_YAML is not None:
            return LOAD_YAML(K8S / "kustomization.yaml")[0]["resources"]
        block = re.search(r"^resources:\s*\n((?:\s+-\s*\S+\s*\n)+)", text(K8S / "kustomization.yaml"), re.M)
        return re.findall(r"-\s*(\S+)", block.group(1))

    def test_the_kustomization_lists_every_manifest(self):
        manifests = sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
        self.assertEqual(sorted(self.resources()), manifests)
        for name in ("deployment.yaml", "configmap.yaml", "service.yaml", "servicemonitor.yaml", "prometheusrule.yaml"):
            self.assertIn(name, manifests)

    def test_kubectl_kustomize_builds_the_five_resources(self):
        kubectl = shutil.which("kubectl")
        self.assertIsNotNone(kubectl, "kubectl is not installed (scripts/test installs Debian's kubernetes-client)")
        result = subprocess.run([kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        kinds = re.findall(r"^kind: (\S+)$", result.stdout, re.M)
        self.assertCountEqual(kinds, ["ConfigMap", "Deployment", "Service", "ServiceMonitor", "PrometheusRule"])


class ConfigMapTest(unittest.TestCase):
    def test_the_configmaps_config_passes_check_config(self):
        self.assertTrue(BINARY.is_file() and os.access(BINARY, os.X_OK),
                        f"{BINARY} is missing: build it first (cargo build), or set APPPROXY_EXPORTER_BIN")
        with tempfile.TemporaryDirectory() as directory:
            config = pathlib.Path(directory) / os.path.basename(CONFIG_FILE)
            config.write_text(configmap_config_text(), encoding="utf-8")
            result = subprocess.run([str(BINARY), "check-config", f"--config.file={config}"],
                                    capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 0, f"{result.stdout}{result.stderr}")

    def test_the_configmaps_config_states_the_proxy_route_as_no_connector_files_exist_in_a_pod(self):
        self.assertRegex(configmap_config_text(), r"(?m)^connector:\n(?:\s+.*\n)*?\s+proxy:\s*(direct|https?://\S+)")


if __name__ == "__main__":
    unittest.main()
