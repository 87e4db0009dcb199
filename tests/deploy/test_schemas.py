"""Every Kubernetes manifest of deploy/kubernetes/, as `kubectl kustomize` renders them, checked
against its schema, rejecting unknown fields (what `kubectl apply --validate=strict` does on a
cluster), and `kubectl apply --dry-run=client -k` run for real against a stand-in API server.

Built-in kinds are checked with kubernetes-validate (PyPI: the Kubernetes API's OpenAPI schemas as
JSON Schema, strict variant) for KUBERNETES_VERSION; the Prometheus Operator's kinds against the
CRD schemas vendored in crds/ (see crds/README.md). A kind with no schema fails, never passes
unchecked. scripts/test installs kubectl (Debian's kubernetes-client) and kubernetes-validate
(into target/python-deploy) and runs this with that Python.
"""

import copy
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from apiserver import ApiServer  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "kubernetes"
CRDS = pathlib.Path(__file__).resolve().parent / "crds"
# The Kubernetes minor version the built-in kinds are checked against.
KUBERNETES_VERSION = "1.32.0"
KINDS = ["ConfigMap", "Deployment", "Service", "ServiceMonitor", "PrometheusRule"]

MISSING = []
try:
    import yaml
except ImportError:
    MISSING.append("PyYAML")
try:
    import jsonschema
except ImportError:
    MISSING.append("jsonschema")
try:
    import kubernetes_validate
except ImportError:
    MISSING.append("kubernetes-validate")


def kubectl():
    found = shutil.which("kubectl")
    if found is None:
        raise AssertionError("kubectl is not installed (scripts/test installs Debian's kubernetes-client)")
    return found


def rendered():
    """The documents `kubectl kustomize deploy/kubernetes` renders."""
    result = subprocess.run([kubectl(), "kustomize", str(K8S)], capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise AssertionError(f"kubectl kustomize: {result.stderr}")
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def strict(schema):
    """A CRD's OpenAPI v3 schema as JSON Schema that rejects unknown fields, as the API server's
    strict field validation does (it prunes them otherwise): every object schema with
    `properties` gets additionalProperties: false unless it keeps unknown fields."""
    schema = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            if ("properties" in node and "additionalProperties" not in node
                    and not node.get("x-kubernetes-preserve-unknown-fields")):
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return schema


def crd_schemas():
    """(apiVersion, kind) -> strict JSON Schema, from the vendored CRDs."""
    schemas = {}
    for path in sorted(CRDS.glob("*.yaml")):
        (crd,) = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version.get("served"):
                schemas[(f"{group}/{version['name']}", kind)] = strict(version["schema"]["openAPIV3Schema"])
    return schemas


def errors_of(document, schemas):
    """Every schema error of one document, as 'path: message' (empty when it conforms)."""
    key = (document.get("apiVersion"), document.get("kind"))
    if key in schemas:
        validator = jsonschema.Draft202012Validator(schemas[key])
        found = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]
        # A CRD's schema leaves metadata to the API server, which checks it as ObjectMeta.
        carrier = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": document.get("metadata", {})}
        return found + errors_of(carrier, {})
    try:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        return [f"no schema for {key[1]} {key[0]}: neither a Kubernetes {KUBERNETES_VERSION} kind nor a vendored CRD"]
    except kubernetes_validate.ValidationError as error:
        return [f"{'.'.join(map(str, error.path))}: {error.message}"]
    return []


class ManifestSchemaTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if MISSING:
            raise AssertionError(f"{', '.join(MISSING)} missing from {sys.executable}: run scripts/test, "
                                 "which installs them into target/python-deploy")
        cls.schemas = crd_schemas()
        cls.documents = rendered()

    def test_the_kustomization_renders_the_five_kinds(self):
        self.assertCountEqual([d["kind"] for d in self.documents], KINDS)

    def test_every_manifest_conforms_to_its_schema_with_no_unknown_field(self):
        for document in self.documents:
            with self.subTest(kind=document["kind"]):
                self.assertEqual(errors_of(document, self.schemas), [])

    def test_the_check_finds_an_unknown_field_a_wrong_type_and_an_unknown_kind(self):
        # The check must be able to fail: one mistake of each kind in a copy of each manifest.
        by_kind = {d["kind"]: d for d in self.documents}
        deployment = copy.deepcopy(by_kind["Deployment"])
        deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]["runAsUsr"] = 65532
        monitor = copy.deepcopy(by_kind["ServiceMonitor"])
        monitor["spec"]["endpoints"][0]["intervall"] = "60s"
        rule = copy.deepcopy(by_kind["PrometheusRule"])
        rule["spec"]["groups"][0]["rules"] = "not a list"
        labels = copy.deepcopy(by_kind["ServiceMonitor"])
        labels["metadata"]["lables"] = {"release": "x"}
        service = copy.deepcopy(by_kind["Service"])
        service["spec"]["ports"][0]["port"] = "9869"
        unknown = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitr", "metadata": {"name": "x"}}
        for broken, expected in ((deployment, "runAsUsr"), (monitor, "intervall"), (rule, "not a list"),
                                 (labels, "lables"), (service, "9869"), (unknown, "no schema for PodMonitr")):
            with self.subTest(kind=broken["kind"], expected=expected):
                self.assertIn(expected, "\n".join(errors_of(broken, self.schemas)))


class KubectlApplyDryRunTest(unittest.TestCase):
    def test_kubectl_apply_dry_run_client_would_create_the_five_resources_and_writes_nothing(self):
        server = ApiServer()
        self.addCleanup(server.close)
        with tempfile.TemporaryDirectory() as home:
            config = pathlib.Path(home) / "config"
            config.write_text(server.kubeconfig(), encoding="utf-8")
            # As deploy/kubernetes/README.md says to apply it; the schemas are test_schemas'
            # job (the stand-in serves no OpenAPI).
            result = subprocess.run(
                [kubectl(), "apply", "--dry-run=client", "--validate=false", "-k", str(K8S), "-n", "monitoring"],
                capture_output=True, text=True, timeout=120,
                env=dict(os.environ, KUBECONFIG=str(config), HOME=home))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertCountEqual(result.stdout.splitlines(), [
            "configmap/appproxy-exporter-config created (dry run)",
            "service/appproxy-exporter created (dry run)",
            "deployment.apps/appproxy-exporter created (dry run)",
            "servicemonitor.monitoring.coreos.com/appproxy-exporter created (dry run)",
            "prometheusrule.monitoring.coreos.com/appproxy-exporter created (dry run)",
        ])
        writes = [r for r in server.requests if r[0] != "GET"]
        self.assertEqual(writes, [], "a client-side dry run wrote to the API server")
        looked_up = {path.split("?")[0] for method, path in server.requests}
        self.assertIn("/apis/apps/v1/namespaces/monitoring/deployments/appproxy-exporter", looked_up)


if __name__ == "__main__":
    unittest.main()
