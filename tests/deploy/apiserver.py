"""A stand-in for the Kubernetes API server's read-only side, for `kubectl apply --dry-run=client`.

Even with a client-side dry run, kubectl asks a server which resources exist (discovery) and
whether each object is already there, before printing what it would do; no cluster is
reachable here. This answers those reads as an empty cluster with the Prometheus Operator's
CRDs installed would, in the forms of the Kubernetes API reference ("API Concepts": discovery
at /api, /api/v1, /apis and /apis/GROUP/VERSION as APIVersions, APIGroupList and
APIResourceList; a missing object as a 404 Status with reason NotFound). It lists only the
group versions a current cluster serves, so a manifest of an unknown kind or a removed
apiVersion fails as it would on a cluster. It records every request: a dry run must not write.

OpenAPI is not served (kubectl then runs with --validate=false): the manifests' schemas are
checked by test_schemas.py instead.
"""

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# group/version -> [(plural, kind, namespaced)]
RESOURCES = {
    "v1": [("configmaps", "ConfigMap", True), ("services", "Service", True), ("secrets", "Secret", True),
           ("namespaces", "Namespace", False)],
    "apps/v1": [("deployments", "Deployment", True)],
    "monitoring.coreos.com/v1": [("servicemonitors", "ServiceMonitor", True),
                                 ("prometheusrules", "PrometheusRule", True)],
}
VERSION = {"major": "1", "minor": "32", "gitVersion": "v1.32.0", "platform": "linux/amd64"}


def _resource_list(group_version):
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": [
            {"name": plural, "singularName": kind.lower(), "namespaced": namespaced, "kind": kind,
             "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]}
            for plural, kind, namespaced in RESOURCES[group_version]
        ],
    }


def _group_list():
    groups = []
    for group_version in RESOURCES:
        if "/" not in group_version:
            continue
        group, version = group_version.split("/")
        entry = {"groupVersion": group_version, "version": version}
        groups.append({"name": group, "versions": [entry], "preferredVersion": entry})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def _not_found(path):
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": f"{path} not found", "reason": "NotFound", "code": 404}


class _Handler(BaseHTTPRequestHandler):
    def _send(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _answer(self):
        self.server.requests.append((self.command, self.path))
        path = self.path.split("?", 1)[0].rstrip("/")
        if self.command != "GET":
            # A dry run never writes; refuse so that a write shows as a failure too.
            return self._send(405, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                    "message": f"{self.command} refused by the test's API server",
                                    "reason": "MethodNotAllowed", "code": 405})
        if path == "/version":
            return self._send(200, VERSION)
        if path == "/api":
            return self._send(200, {"kind": "APIVersions", "versions": ["v1"],
                                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                                    "serverAddress": "127.0.0.1"}]})
        if path == "/apis":
            return self._send(200, _group_list())
        match = re.fullmatch(r"/api/(v1)|/apis/([^/]+/[^/]+)", path)
        if match:
            group_version = match.group(1) or match.group(2)
            if group_version in RESOURCES:
                return self._send(200, _resource_list(group_version))
        return self._send(404, _not_found(path))

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


class ApiServer:
    """Serves on 127.0.0.1, a free port, until closed; `requests` lists (method, path)."""

    def __init__(self):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.requests = []
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def requests(self):
        return list(self.httpd.requests)

    def kubeconfig(self):
        """A kubeconfig naming this server, with no credentials."""
        return (
            "apiVersion: v1\nkind: Config\n"
            f"clusters:\n- name: test\n  cluster:\n    server: {self.url}\n"
            "contexts:\n- name: test\n  context:\n    cluster: test\n    user: test\n    namespace: monitoring\n"
            "current-context: test\nusers:\n- name: test\n  user: {}\n"
        )

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
