#!/usr/bin/env python3
"""Local stand-in for Microsoft Graph (beta, Application Proxy endpoints) and the
Microsoft Entra ID v2.0 token endpoints, for the appproxy_exporter tests.

Python 3.11 standard library only (plus the `openssl` command line, used solely to
verify RS256 client assertions). Listens on 127.0.0.1 by default and prints exactly
one line, `listening http://HOST:PORT`, once it accepts connections.

Response shapes follow Microsoft's public documentation (microsoft-graph-docs-contrib
beta pages for connector / connectorGroup / application, the OData paging rules, the
Graph error body, and the Microsoft identity platform v2.0 token, device-code and
AADSTS error bodies). See README.md next to this file.
"""

from __future__ import annotations

import argparse
import base64
import copy
import datetime as _dt
import hashlib
import hmac
import json
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, urlencode, urlsplit

GRAPH_PREFIX = "/beta"
PROFILE_PREFIX = "/beta/onpremisespublishingprofiles/applicationproxy"
ODATA_JSON = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
STS_JSON = "application/json; charset=utf-8"
GRAPH_RESOURCE = "00000003-0000-0000-c000-000000000000"
WWW_AUTHENTICATE = ('Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
                    f'client_id="{GRAPH_RESOURCE}"')
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
OIDC_SCOPES = {"openid", "profile", "offline_access", "email"}

# Keys that only the server uses; never served.
BOOKKEEPING_KEYS = ("memberOf", "connectorGroupId", "ipApplicationSegments", "webApplicationSegments")

STAT_ROUTES = ("connectorGroups", "connectorGroups/members", "connectorGroups/applications",
               "connectors", "connectors/memberOf", "applications", "applications/connectorGroup",
               "applications/webApplicationSegments",
               "$batch", "token", "devicecode")

# JSON batching, "Batch size limitations": "JSON batch requests are currently limited to 20
# individual requests" (learn.microsoft.com/graph/json-batching, ms.date 02/21/2025).
BATCH_LIMIT = 20

DEFAULT_FAULTS = {
    "token_expires_in": 3599,
    "device_code_pending_polls": 1,
    "device_code_interval": 1,
}

# Control keys that trigger an action instead of being stored in the faults.
ACTION_KEYS = ("reset_stats", "expire_access_tokens", "revoke_refresh_tokens")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    text = text.strip()
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def utc_now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def sts_timestamp() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def served(obj: dict) -> dict:
    """The object as Graph would show it: without the server's bookkeeping keys."""
    return {k: v for k, v in obj.items() if k not in BOOKKEEPING_KEYS}


# --------------------------------------------------------------------------------------
# Tenant
# --------------------------------------------------------------------------------------

class TenantError(ValueError):
    pass


class Tenant:
    """Precomputed, read-only view of a tenant."""

    def __init__(self, data: dict, base_dir: str = "."):
        if not isinstance(data, dict):
            raise TenantError("tenant file must hold a JSON object")
        for key in ("tenant_id", "client_id"):
            if not isinstance(data.get(key), str) or not data[key]:
                raise TenantError(f"tenant file needs a non-empty string {key!r}")
        self.tenant_id: str = data["tenant_id"]
        self.tenant_aliases = {self.tenant_id.lower()} | {
            str(a).lower() for a in data.get("tenant_aliases", []) or []}
        self.client_id: str = data["client_id"]
        self.client_secret = data.get("client_secret")
        self.certificate_pem_file = None
        if data.get("certificate_pem_file"):
            path = data["certificate_pem_file"]
            if not os.path.isabs(path):
                path = os.path.join(base_dir, path)
            self.certificate_pem_file = path
        self.initial_faults = dict(data.get("faults") or {})

        groups = data.get("groups") or []
        connectors = data.get("connectors") or []
        apps = data.get("applications") or []

        self.groups: list[dict] = []
        self.groups_by_id: dict[str, dict] = {}
        for g in groups:
            if "id" not in g:
                raise TenantError(f"group without id: {g!r}")
            s = served(g)
            self.groups.append(s)
            self.groups_by_id[str(g["id"])] = s

        self.connectors: list[dict] = []
        self.connectors_by_id: dict[str, dict] = {}
        self.connector_groups: dict[str, list[dict]] = {}
        self.group_members: dict[str, list[dict]] = {gid: [] for gid in self.groups_by_id}
        for c in connectors:
            if "id" not in c:
                raise TenantError(f"connector without id: {c!r}")
            s = served(c)
            cid = str(c["id"])
            self.connectors.append(s)
            self.connectors_by_id[cid] = s
            member_of = c.get("memberOf") or []
            if isinstance(member_of, str):
                member_of = [member_of]
            gl = []
            for gid in member_of:
                if gid not in self.groups_by_id:
                    raise TenantError(f"connector {cid!r} is a member of unknown group {gid!r}")
                gl.append(self.groups_by_id[gid])
                self.group_members[gid].append(s)
            self.connector_groups[cid] = gl

        self.apps_by_id: dict[str, dict] = {}
        self.apps_list: list[dict] = []
        self.app_group: dict[str, str | None] = {}
        self.app_segments: dict[str, list[dict]] = {}
        self.app_web_segments: dict[str, list[dict]] = {}
        self.group_apps: dict[str, list[dict]] = {gid: [] for gid in self.groups_by_id}
        for a in apps:
            if "id" not in a:
                raise TenantError(f"application without id: {a!r}")
            aid = str(a["id"])
            full = served(a)
            self.apps_by_id[aid] = full
            listed = {"@odata.type": "#microsoft.graph.application"}
            listed.update({k: v for k, v in full.items() if k != "onPremisesPublishing"})
            self.apps_list.append(listed)
            gid = a.get("connectorGroupId")
            if gid is not None:
                if gid not in self.groups_by_id:
                    raise TenantError(f"application {aid!r} assigned to unknown group {gid!r}")
                self.group_apps[gid].append(full)
            self.app_group[aid] = gid
            if "ipApplicationSegments" in a:
                self.app_segments[aid] = list(a["ipApplicationSegments"] or [])
            if "webApplicationSegments" in a:
                self.app_web_segments[aid] = list(a["webApplicationSegments"] or [])

        # case-insensitive id lookups (Graph ids are GUIDs, compared case-insensitively)
        self._ci = {
            "group": {k.lower(): k for k in self.groups_by_id},
            "connector": {k.lower(): k for k in self.connectors_by_id},
            "app": {k.lower(): k for k in self.apps_by_id},
        }

    def resolve(self, kind: str, ident: str, table: dict):
        if ident in table:
            return ident
        return self._ci[kind].get(ident.lower())

    @classmethod
    def from_file(cls, path: str) -> "Tenant":
        with open(path, "r", encoding="utf-8") as fh:
            data = json.load(fh)
        return cls(data, base_dir=os.path.dirname(os.path.abspath(path)))

    @classmethod
    def generate(cls, spec: str) -> "Tenant":
        counts = {"groups": 1, "apps": 0, "connectors": 0}
        for part in spec.split(","):
            part = part.strip()
            if not part:
                continue
            key, _, val = part.partition("=")
            key = key.strip()
            if key not in counts:
                raise TenantError(f"--generate: unknown key {key!r} (use groups, apps, connectors)")
            counts[key] = int(val)
        ng, na, nc = counts["groups"], counts["apps"], counts["connectors"]
        if ng < 1 and (na or nc):
            raise TenantError("--generate: need at least one group")
        regions = ["nam", "eur", "aus", "asia", "ind"]
        groups = []
        for i in range(ng):
            groups.append({
                "id": f"10000000-0000-0000-0000-{i + 1:012d}",
                "name": f"group-{i + 1:03d}",
                "connectorGroupType": "applicationProxy",
                "isDefault": i == 0,
                "region": regions[i % len(regions)],
            })
        connectors = []
        for i in range(nc):
            connectors.append({
                "id": f"20000000-0000-0000-0000-{i + 1:012d}",
                "machineName": f"CONN-{i + 1:04d}",
                "externalIp": f"203.0.113.{(i % 254) + 1}",
                "status": "active",
                "version": "1.5.3829.0",
                "memberOf": [groups[i % ng]["id"]],
            })
        apps = []
        for i in range(na):
            n = f"{i + 1:05d}"
            apps.append({
                "id": f"30000000-0000-0000-0000-{i + 1:012d}",
                "appId": f"40000000-0000-0000-0000-{i + 1:012d}",
                "displayName": f"app-{n}",
                "connectorGroupId": groups[i % ng]["id"],
                "onPremisesPublishing": {
                    "internalUrl": f"https://app-{n}.corp.example/",
                    "externalUrl": f"https://app-{n}-contoso.msappproxy.net/",
                    "applicationServerTimeout": "default" if i % 2 == 0 else "long",
                    "isBackendCertificateValidationEnabled": True,
                    "externalAuthenticationType": "aadPreAuthentication",
                    "isOnPremPublishingEnabled": True,
                },
            })
        return cls({
            "tenant_id": "00000000-0000-0000-0000-0000000000aa",
            "client_id": "00000000-0000-0000-0000-0000000000cc",
            "client_secret": "test-secret",
            "groups": groups, "connectors": connectors, "applications": apps, "faults": {},
        })


# --------------------------------------------------------------------------------------
# Mutable server state
# --------------------------------------------------------------------------------------

class State:
    def __init__(self, tenant: Tenant, page_size: int, verbose: bool, extra_faults: dict | None = None):
        self.tenant = tenant
        self.page_size = max(1, page_size)
        self.verbose = verbose
        self.lock = threading.Lock()
        self.faults: dict = dict(DEFAULT_FAULTS)
        self.fault_counters: dict[str, int] = {}
        self.page_cache: dict = {}
        self._merge_faults(tenant.initial_faults)
        if extra_faults:
            self._merge_faults(extra_faults)
        self.access_tokens: dict[str, float] = {}
        self.refresh_tokens: dict[str, dict] = {}
        self.device_codes: dict[str, dict] = {}
        self.secret = secrets.token_bytes(16)
        self.base_url = ""  # set once bound
        self.reset_stats()
        self.tmpdir = tempfile.mkdtemp(prefix="graph_server_")
        self.cert_x5t = None
        self.cert_x5t_s256 = None
        self.pubkey_file = None
        if tenant.certificate_pem_file:
            self._load_certificate(tenant.certificate_pem_file)

    # -- certificate ---------------------------------------------------------------
    def _load_certificate(self, path: str) -> None:
        with open(path, "r", encoding="ascii", errors="replace") as fh:
            pem = fh.read()
        begin = pem.find("-----BEGIN CERTIFICATE-----")
        end = pem.find("-----END CERTIFICATE-----")
        if begin < 0 or end < 0:
            raise TenantError(f"{path}: no PEM certificate found")
        der = ssl.PEM_cert_to_DER_cert(pem[begin:end + len("-----END CERTIFICATE-----")] + "\n")
        self.cert_x5t = b64url(hashlib.sha1(der).digest())
        self.cert_x5t_s256 = b64url(hashlib.sha256(der).digest())
        if shutil.which("openssl") is None:
            raise TenantError("certificate_pem_file given but the openssl command is not installed")
        out = subprocess.run(["openssl", "x509", "-pubkey", "-noout", "-in", path],
                             capture_output=True, timeout=20)
        if out.returncode != 0:
            raise TenantError(f"openssl could not read {path}: {out.stderr.decode(errors='replace')}")
        self.pubkey_file = os.path.join(self.tmpdir, "cert_pub.pem")
        with open(self.pubkey_file, "wb") as fh:
            fh.write(out.stdout)

    def cleanup(self) -> None:
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    # -- faults --------------------------------------------------------------------
    def _merge_faults(self, update: dict) -> None:
        for key, val in update.items():
            if key in ACTION_KEYS:
                continue
            if val is None:
                self.faults.pop(key, None)
                if key in DEFAULT_FAULTS:
                    self.faults[key] = DEFAULT_FAULTS[key]
            else:
                self.faults[key] = val
            self.fault_counters.pop(key, None)
        self.page_cache.clear()

    def control(self, update: dict) -> dict:
        with self.lock:
            if update.get("reset_stats"):
                self.reset_stats()
            if update.get("expire_access_tokens"):
                for tok in self.access_tokens:
                    self.access_tokens[tok] = 0.0
            if update.get("revoke_refresh_tokens"):
                self.refresh_tokens.clear()
            self._merge_faults(update)
            return copy.deepcopy(self.faults)

    def fault(self, key: str, default=None):
        return self.faults.get(key, default)

    def take_counted(self, key: str, path: str):
        """For counted faults (throttle, server_error): return the fault dict if it fires now."""
        with self.lock:
            f = self.faults.get(key)
            if not isinstance(f, dict):
                return None
            pc = f.get("path_contains")
            if pc and str(pc).lower() not in path.lower():
                return None
            times = f.get("times", 1)
            used = self.fault_counters.get(key, 0)
            if times is not None and used >= int(times):
                return None
            self.fault_counters[key] = used + 1
            return f

    def path_fault(self, key: str, path: str) -> bool:
        f = self.faults.get(key)
        if not f:
            return False
        if isinstance(f, dict):
            pc = f.get("path_contains")
            return not pc or str(pc).lower() in path.lower()
        return bool(f)

    # -- stats ---------------------------------------------------------------------
    def reset_stats(self) -> None:
        self.stats = {"requests": 0, "inner_requests": 0, "by_route": {r: 0 for r in STAT_ROUTES},
                      "by_status": {}, "tokens_issued": 0}

    def count_inner(self, route: str, status: int) -> None:
        """A request inside a batch: counted by route and status, not as an HTTP request."""
        with self.lock:
            self.stats["inner_requests"] += 1
            self.stats["by_route"][route] = self.stats["by_route"].get(route, 0) + 1
            k = str(status)
            self.stats["by_status"][k] = self.stats["by_status"].get(k, 0) + 1

    def count(self, route: str, status: int) -> None:
        with self.lock:
            self.stats["requests"] += 1
            self.stats["by_route"][route] = self.stats["by_route"].get(route, 0) + 1
            k = str(status)
            self.stats["by_status"][k] = self.stats["by_status"].get(k, 0) + 1

    def stats_snapshot(self) -> dict:
        with self.lock:
            return copy.deepcopy(self.stats)

    # -- tokens --------------------------------------------------------------------
    def issue_access_token(self, subject: dict) -> tuple[str, int]:
        expires_in = int(self.fault("token_expires_in", 3599))
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5t": "graph-server-test", "kid": "graph-server-test"}
        payload = {"aud": "https://graph.microsoft.com", "iss": f"https://sts.windows.net/{self.tenant.tenant_id}/",
                   "iat": now, "nbf": now, "exp": now + expires_in, "tid": self.tenant.tenant_id,
                   "appid": self.tenant.client_id, "ver": "1.0", "uti": uuid.uuid4().hex}
        payload.update(subject)
        token = ".".join([b64url(json.dumps(header, separators=(",", ":")).encode()),
                          b64url(json.dumps(payload, separators=(",", ":")).encode()),
                          b64url(secrets.token_bytes(64))])
        with self.lock:
            self.access_tokens[token] = time.time() + expires_in
            self.stats["tokens_issued"] += 1
        return token, expires_in

    def check_access_token(self, token: str) -> str | None:
        """None if valid, else the Graph error message."""
        with self.lock:
            exp = self.access_tokens.get(token)
        if exp is None:
            return "Access token validation failure. Invalid audience." if token.count(".") == 2 else \
                "IDX14100: JWT is not well formed, there are no dots (.)."
        if time.time() >= exp:
            return "Lifetime validation failed, the token is expired."
        return None

    def issue_refresh_token(self, client_id: str, scope: str) -> str:
        tok = "0.AR" + b64url(secrets.token_bytes(48))
        with self.lock:
            self.refresh_tokens[tok] = {"client_id": client_id, "scope": scope, "rotated": False}
        return tok

    def redeem_refresh_token(self, tok: str) -> dict | None:
        with self.lock:
            rec = self.refresh_tokens.get(tok)
            if rec is None:
                return None
            if rec["rotated"]:
                del self.refresh_tokens[tok]  # the grace use is spent
            else:
                rec["rotated"] = True
            return dict(rec)

    # -- skiptoken -----------------------------------------------------------------
    def make_skiptoken(self, path: str, offset: int, empty: int) -> str:
        tag = hmac.new(self.secret, f"{path.lower()}|{offset}|{empty}".encode(), hashlib.sha256).digest()
        raw = json.dumps({"o": offset, "e": empty, "t": b64url(tag[:12])}, separators=(",", ":")).encode()
        return "RFNwdAIAAQAAA" + b64url(raw)

    def parse_skiptoken(self, path: str, token: str):
        try:
            if not token.startswith("RFNwdAIAAQAAA"):
                return None
            d = json.loads(b64url_decode(token[len("RFNwdAIAAQAAA"):]))
            offset, empty = int(d["o"]), int(d["e"])
        except Exception:
            return None
        if self.make_skiptoken(path, offset, empty) != token:
            return None  # forged, or issued for another list
        return offset, empty


# --------------------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------------------

class GraphError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def error_body(err: "GraphError", request_id: str, client_request_id: str) -> dict:
    return {"error": {"code": err.code, "message": err.message, "innerError": {
        "date": utc_now_iso(), "request-id": request_id, "client-request-id": client_request_id}}}


class StsError(Exception):
    def __init__(self, status: int, error: str, aadsts: int, text: str):
        super().__init__(text)
        self.status, self.error, self.aadsts, self.text = status, error, aadsts, text


def unknown_fields_obj(obj: dict, kind: str | None = None) -> dict:
    o = dict(obj)
    o["newProperty2027"] = {"kind": "futureFeature", "enabled": True, "values": [1, 2, 3]}
    if kind == "group" and "region" not in o:
        o["region"] = "unknownFutureValue"
    opp = o.get("onPremisesPublishing")
    if isinstance(opp, dict):
        opp = dict(opp)
        opp["newSetting2027"] = "unknownFutureValue"
        o["onPremisesPublishing"] = opp
    return o


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "graph-test-server/1.0"
    sys_version = ""
    timeout = 120
    disable_nagle_algorithm = True  # keep-alive + small writes would otherwise stall on delayed ACKs

    @property
    def st(self) -> State:
        return self.server.state  # type: ignore[attr-defined]

    def log_message(self, fmt, *args):  # noqa: N802 - stdlib name
        if self.st.verbose:
            sys.stderr.write("%s - %s\n" % (self.address_string(), fmt % args))

    # -- low-level send -------------------------------------------------------------
    def _send(self, status: int, body: bytes, content_type: str, headers: dict | None = None):
        route = getattr(self, "_stat_route", None)
        if route is not None:
            # count before the client can see the answer, so /_stats never lags behind
            self._stat_route = None
            self.st.count(route, status)
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _json(self, status: int, obj, content_type: str = "application/json", headers: dict | None = None):
        self._send(status, json.dumps(obj).encode("utf-8"), content_type, headers)

    def _read_body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    # -- dispatch -------------------------------------------------------------------
    def do_GET(self):  # noqa: N802
        self._dispatch()

    def do_POST(self):  # noqa: N802
        self._dispatch()

    def do_PUT(self):  # noqa: N802
        self._dispatch()

    def do_PATCH(self):  # noqa: N802
        self._dispatch()

    def do_DELETE(self):  # noqa: N802
        self._dispatch()

    def _dispatch(self):
        parts = urlsplit(self.path)
        path = parts.path
        query = parse_qs(parts.query, keep_blank_values=True)
        body = self._read_body() if self.command in ("POST", "PUT", "PATCH") else b""
        self._stat_route = None
        if path == "/_stats":
            return self._json(200, self.st.stats_snapshot())
        if path == "/_control":
            return self._control(body)
        lower = path.lower()
        if lower == GRAPH_PREFIX or lower.startswith(GRAPH_PREFIX + "/"):
            return self._graph(path, parts.query, query, body)
        segs = [s for s in path.split("/") if s]
        if len(segs) == 4 and segs[1].lower() == "oauth2" and segs[2].lower() == "v2.0" \
                and segs[3].lower() in ("token", "devicecode"):
            return self._sts(segs[0], segs[3].lower(), body)
        self._json(404, {"error": "not_found", "error_description": f"No route for {path}"})

    # -- control --------------------------------------------------------------------
    def _control(self, body: bytes):
        if self.command == "GET":
            with self.st.lock:
                return self._json(200, {"faults": copy.deepcopy(self.st.faults)})
        if self.command != "POST":
            return self._json(405, {"error": "method_not_allowed"})
        try:
            update = json.loads(body or b"{}")
            if not isinstance(update, dict):
                raise ValueError("not an object")
        except ValueError as exc:
            return self._json(400, {"error": "bad_request", "message": f"control body must be a JSON object: {exc}"})
        faults = self.st.control(update)
        self._json(200, {"faults": faults})

    # -- Graph ----------------------------------------------------------------------
    def _graph_route_name(self, segs: list[str]) -> str:
        # segs: lower-case segments after /beta
        if len(segs) >= 3 and segs[0] == "onpremisespublishingprofiles" and segs[1] == "applicationproxy":
            if segs[2] == "connectors":
                return "connectors/memberOf" if len(segs) >= 5 and segs[4] == "memberof" else "connectors"
            if segs[2] == "connectorgroups":
                if len(segs) >= 5 and segs[4] == "members":
                    return "connectorGroups/members"
                if len(segs) >= 5 and segs[4] == "applications":
                    return "connectorGroups/applications"
                return "connectorGroups"
        if segs and segs[0] == "applications":
            if len(segs) >= 5 and segs[2] == "onpremisespublishing" and segs[4] == "microsoft.graph.websegmentconfiguration":
                return "applications/webApplicationSegments"
            return "applications/connectorGroup" if len(segs) >= 3 and segs[2] == "connectorgroup" else "applications"
        return "other"

    def _graph(self, path: str, raw_query: str, query: dict, body: bytes):
        st = self.st
        raw_segs = [s for s in path.split("/") if s][1:]  # drop "beta"
        segs = [s.lower() for s in raw_segs]
        is_batch = segs == ["$batch"]
        self._stat_route = "$batch" if is_batch else self._graph_route_name(segs)
        # Fault: Graph redirects elsewhere (a 302 to another host, path and query kept).
        location = st.fault("redirect_graph")
        if location:
            target = location.rstrip("/") + path + (f"?{raw_query}" if raw_query else "")
            return self._send(302, b"", "text/plain", {"Location": target})
        request_id = str(uuid.uuid4())
        client_request_id = self.headers.get("client-request-id") or request_id
        common = {"request-id": request_id, "client-request-id": client_request_id,
                  "x-ms-ags-diagnostic": '{"ServerInfo":{"DataCenter":"Local","Slice":"E","Ring":"0"}}'}
        try:
            delay = st.fault("delay_ms")
            if delay:
                time.sleep(float(delay) / 1000.0)
            if self.command != ("POST" if is_batch else "GET"):
                raise GraphError(405, "Request_BadRequest",
                                 f"The HTTP method '{self.command}' is not supported by this test server.")
            if st.fault("unauthorized"):
                raise GraphError(401, "InvalidAuthenticationToken",
                                 "Access token validation failure. Invalid audience.",
                                 {"WWW-Authenticate": WWW_AUTHENTICATE})
            auth = self.headers.get("Authorization") or ""
            token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
            if not token:
                raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.",
                                 {"WWW-Authenticate": WWW_AUTHENTICATE})
            problem = st.check_access_token(token)
            if problem:
                raise GraphError(401, "InvalidAuthenticationToken", problem,
                                 {"WWW-Authenticate": WWW_AUTHENTICATE})
            if is_batch:
                return self._send(200, self._batch(body), "application/json", common)
            status, headers, data = self._answer(path, raw_segs, segs, raw_query, query, request_id,
                                                 client_request_id)
            headers = {**common, **headers}
            content_type = headers.pop("Content-Type")
            return self._send(status, data, content_type, headers)
        except Exception as exc:  # noqa: BLE001 - turn anything into a Graph error body
            err = exc if isinstance(exc, GraphError) else GraphError(500, "generalException", f"test server bug: {exc!r}")
            hdrs = dict(common)
            hdrs.update(err.headers)
            self._json(err.status, error_body(err, request_id, client_request_id), "application/json", hdrs)

    def _answer(self, path: str, raw_segs: list[str], segs: list[str], raw_query: str, query: dict,
                request_id: str, client_request_id: str) -> tuple[int, dict, bytes]:
        """One authenticated GET, alone or inside a batch: (status, headers, body)."""
        st = self.st
        try:
            forbidden = st.fault("forbidden")
            if forbidden:
                raise GraphError(403, str(forbidden) if forbidden is not True else "Authorization_RequestDenied",
                                 "Insufficient privileges to complete the operation.")
            th = st.take_counted("throttle", path)
            if th is not None:
                hdr = {}
                if th.get("retry_after", 1) is not None:
                    hdr["Retry-After"] = str(th.get("retry_after", 1))
                raise GraphError(429, "TooManyRequests",
                                 "Too many requests. Please retry after the time given in Retry-After.", hdr)
            se = st.take_counted("server_error", path)
            if se is not None:
                code = int(se.get("status", 503))
                hdr = {"Retry-After": str(se["retry_after"])} if se.get("retry_after") is not None else {}
                default_code = {503: "serviceNotAvailable", 504: "UnknownError"}.get(code, "generalException")
                message = ("The service is temporarily unavailable. Please try again later." if code == 503
                           else "An unexpected error occurred on the server.")
                if se.get("message") is not None:
                    # Hostile: a message that repeats the request's Authorization header, padded.
                    message = str(se["message"]).replace("$authorization", self.headers.get("Authorization") or "")
                    message += "." * max(0, int(se.get("message_bytes", 0)) - len(message))
                raise GraphError(code, se.get("code", default_code), message, hdr)
            body = self._graph_resource(path, raw_segs, segs, raw_query, query)
            if st.path_fault("malformed", path):
                cut = max(1, len(body) // 2)
                return 200, {"Content-Type": "application/json"}, body[:cut]
            return 200, {"Content-Type": ODATA_JSON}, body
        except GraphError as err:
            body = json.dumps(error_body(err, request_id, client_request_id)).encode("utf-8")
            return err.status, {"Content-Type": "application/json", **err.headers}, body

    def _batch(self, body: bytes) -> bytes:
        """`POST /$batch` as Microsoft Graph's JSON batching documents it
        (learn.microsoft.com/graph/json-batching, ms.date 02/21/2025; example answer in
        fixtures/json-batching-response.json): at most 20 requests, each with a unique string
        `id`, a `method` and a `url` relative to the version; each answered with `id`, `status`,
        `headers` and `body` (JSON as an object, anything else base64), "in a different order
        than the requests" possibly; throttling is judged per request (an inner 429 with its
        own `Retry-After`)."""
        st = self.st
        try:
            doc = json.loads(body or b"null")
        except ValueError:
            raise GraphError(400, "BadRequest", "Unable to deserialize the batch request body as JSON.")
        requests = doc.get("requests") if isinstance(doc, dict) else None
        if not isinstance(requests, list) or not requests:
            raise GraphError(400, "BadRequest", "Invalid batch payload format: 'requests' is missing or empty.")
        if len(requests) > BATCH_LIMIT:
            raise GraphError(400, "BadRequest",
                             f"Invalid batch payload format: the number of requests exceeds the limit of {BATCH_LIMIT}.")
        ids = set()
        for r in requests:
            if not isinstance(r, dict) or not isinstance(r.get("id"), str) or not r["id"] \
                    or not isinstance(r.get("method"), str) or not isinstance(r.get("url"), str):
                raise GraphError(400, "BadRequest",
                                 "Invalid batch payload format: every request needs the string properties id, method and url.")
            if r["id"] in ids:
                raise GraphError(400, "BadRequest", f"Batch request ids must be unique: '{r['id']}' repeats.")
            ids.add(r["id"])
        responses = []
        for r in requests:
            inner_request_id = str(uuid.uuid4())
            url = r["url"] if r["url"].startswith("/") else "/" + r["url"]
            parts = urlsplit(url)
            path = GRAPH_PREFIX + parts.path
            raw_segs = [s for s in path.split("/") if s][1:]
            segs = [s.lower() for s in raw_segs]
            route = self._graph_route_name(segs)
            if r["method"].upper() != "GET":
                err = GraphError(405, "Request_BadRequest", "Specified HTTP method is not allowed for the request target.")
                status, headers = err.status, {"Content-Type": "application/json"}
                data = json.dumps(error_body(err, inner_request_id, inner_request_id)).encode("utf-8")
            else:
                status, headers, data = self._answer(path, raw_segs, segs, parts.query,
                                                     parse_qs(parts.query, keep_blank_values=True),
                                                     inner_request_id, inner_request_id)
            st.count_inner(route, status)
            try:
                inner_body = json.loads(data)
            except ValueError:
                inner_body = base64.b64encode(data).decode("ascii")
            headers = {"Cache-Control": "no-cache", "x-ms-resource-unit": "1", **headers}
            responses.append({"id": r["id"], "status": status, "headers": headers, "body": inner_body})
        # "Individual responses might appear in a different order than the requests."
        if st.fault("batch_in_order") is not True:
            responses.reverse()
        responses = self._batch_fault(responses)
        return json.dumps({"responses": responses}).encode("utf-8")

    def _batch_fault(self, responses: list[dict]) -> list[dict]:
        """Answers no Graph should give, for the client's refusal tests."""
        kind = self.st.fault("batch_bad")
        if not kind or not responses:
            return responses
        first = dict(responses[0])
        if kind == "missing_id":
            first.pop("id")
            return [first] + responses[1:]
        if kind == "duplicate_id":
            return responses[:-1] + [dict(responses[-1], id=first["id"])] if len(responses) > 1 \
                else responses + [first]
        if kind == "unknown_id":
            return [dict(first, id="not-a-request")] + responses[1:]
        if kind == "non_json_body":
            return [dict(first, body=base64.b64encode(b"<html>oops</html>").decode("ascii"))] + responses[1:]
        if kind == "extra_answer":
            return responses + [dict(first, id=str(uuid.uuid4()))]
        if kind == "dropped_answer":
            return responses[1:]
        raise GraphError(500, "generalException", f"test server: unknown batch_bad {kind!r}")

    def _not_found(self, ident: str):
        raise GraphError(404, "Request_ResourceNotFound",
                         f"Resource '{ident}' does not exist or one of its queried reference-property "
                         "objects are not present.")

    def _bad_segment(self, seg: str):
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{seg}'.")

    def _graph_resource(self, path: str, raw_segs: list[str], segs: list[str], raw_query: str,
                        query: dict) -> bytes:
        st = self.st
        t = st.tenant
        meta = f"{st.base_url}/beta/$metadata#"
        n = len(segs)
        if n >= 2 and segs[0] == "onpremisespublishingprofiles":
            if segs[1] != "applicationproxy":
                self._not_found(raw_segs[1])
            prof = "onPremisesPublishingProfiles('applicationProxy')"
            if n == 2:
                self._bad_segment(raw_segs[1])
            coll = segs[2]
            if coll == "connectors":
                if n == 3:
                    return self._list(path, raw_query, query, t.connectors, f"{meta}{prof}/connectors", None)
                cid = t.resolve("connector", raw_segs[3], t.connectors_by_id)
                if cid is None:
                    self._not_found(raw_segs[3])
                if n == 4:
                    return self._single(t.connectors_by_id[cid], f"{meta}{prof}/connectors/$entity", None)
                if n == 5 and segs[4] == "memberof":
                    return self._list(path, raw_query, query, t.connector_groups[cid],
                                      f"{meta}{prof}/connectors('{cid}')/memberOf", "group")
                self._bad_segment(raw_segs[-1])
            if coll == "connectorgroups":
                if n == 3:
                    return self._list(path, raw_query, query, t.groups, f"{meta}{prof}/connectorGroups", "group")
                gid = t.resolve("group", raw_segs[3], t.groups_by_id)
                if gid is None:
                    self._not_found(raw_segs[3])
                if n == 4:
                    return self._single(t.groups_by_id[gid], f"{meta}{prof}/connectorGroups/$entity", "group")
                if n == 5 and segs[4] == "members":
                    return self._list(path, raw_query, query, t.group_members[gid],
                                      f"{meta}{prof}/connectorGroups('{gid}')/members", None)
                if n == 5 and segs[4] == "applications":
                    return self._list(path, raw_query, query, self._group_app_list(gid),
                                      f"{meta}{prof}/connectorGroups('{gid}')/applications", None)
                self._bad_segment(raw_segs[-1])
            self._bad_segment(raw_segs[2])
        if n >= 1 and segs[0] == "applications":
            if n == 1:
                return self._list(path, raw_query, query, t.apps_list, f"{meta}applications", None)
            aid = t.resolve("app", raw_segs[1], t.apps_by_id)
            if aid is None:
                self._not_found(raw_segs[1])
            if n == 2:
                app = t.apps_by_id[aid]
                select = ",".join(query.get("$select", []))
                if select:
                    # Graph returns only the selected properties, named in @odata.context (the
                    # $select example of application-get, fixtures/application-get-select-by-appid-v1.json);
                    # `id` only when selected. A selected property the object lacks comes as null.
                    fields = [f.strip() for f in select.split(",") if f.strip()]
                    obj = {f: app.get(f) for f in fields}
                    ctx = f"{meta}applications({','.join(fields)})/$entity"
                else:
                    obj, ctx = app, f"{meta}applications/$entity"
                return self._single(obj, ctx, None)
            if (n == 6 and segs[2] == "onpremisespublishing" and segs[3] == "segmentsconfiguration"
                    and segs[4] == "microsoft.graph.ipsegmentconfiguration" and segs[5] == "applicationsegments"):
                # A Private Access app's segments (onpremisespublishingprofile-list-applicationsegments):
                # served as the tenant file writes them, Microsoft's example answers being
                # fixtures/ipapplicationsegment-*.json (SOURCES.md). The path's letter case does
                # not matter (Microsoft's own example request writes IpSegmentConfiguration/
                # ApplicationSegments). An app without the bookkeeping key `ipApplicationSegments`
                # has no ipSegmentConfiguration: 404, as for any missing object.
                segments = st.tenant.app_segments.get(aid)
                if segments is None:
                    self._not_found(raw_segs[1] + "/onPremisesPublishing/segmentsConfiguration")
                return self._list(path, raw_query, query, segments,
                                  f"{meta}applications('{aid}')/onPremisesPublishing/segmentsConfiguration/"
                                  "microsoft.graph.ipSegmentConfiguration/applicationSegments", None)
            if (n == 6 and segs[2] == "onpremisespublishing" and segs[3] == "segmentsconfiguration"
                    and segs[4] == "microsoft.graph.websegmentconfiguration" and segs[5] == "applicationsegments"):
                # A wildcard web app's segments (websegmentconfiguration-list-applicationsegments):
                # Microsoft's example answers are fixtures/webapplicationsegment-*.json (SOURCES.md).
                # The path's letter case does not matter (the example request writes
                # ApplicationSegments). An app without the bookkeeping key `webApplicationSegments`
                # has no webSegmentConfiguration: 404, as for any missing object.
                segments = st.tenant.app_web_segments.get(aid)
                if segments is None:
                    self._not_found(raw_segs[1] + "/onPremisesPublishing/segmentsConfiguration")
                return self._list(path, raw_query, query, segments,
                                  f"{meta}applications('{aid}')/onPremisesPublishing/segmentsConfiguration/"
                                  "microsoft.graph.webSegmentConfiguration/applicationSegments", None)
            if n == 3 and segs[2] == "connectorgroup":
                gid = t.app_group.get(aid)
                if gid is None:
                    self._not_found(raw_segs[1] + "/connectorGroup")
                return self._single(t.groups_by_id[gid], f"{meta}applications('{aid}')/connectorGroup/$entity",
                                    "group")
            self._bad_segment(raw_segs[-1])
        self._bad_segment(raw_segs[0] if raw_segs else "beta")
        raise AssertionError("unreachable")

    def _group_app_list(self, gid: str) -> list[dict]:
        """A group's applications. `documented` (the default): as the example of
        connectorgroup-list-applications shows them, `id` and `onPremisesPublishing` only
        (fixtures/connectorgroup-list-applications.json). `reported`: as tenants are reported to
        answer, the application's list properties without `onPremisesPublishing`."""
        apps = self.st.tenant.group_apps[gid]
        if self.st.fault("applications_list") == "reported":
            return [{"@odata.type": "#microsoft.graph.application",
                     **{k: v for k, v in a.items() if k != "onPremisesPublishing"}} for a in apps]
        return [{k: a[k] for k in ("id", "onPremisesPublishing") if k in a} for a in apps]

    def _single(self, obj: dict, context: str, kind: str | None) -> bytes:
        if self.st.fault("unknown_fields"):
            obj = unknown_fields_obj(obj, kind)
        out = {"@odata.context": context}
        out.update(obj)
        return json.dumps(out).encode("utf-8")

    def _list(self, path: str, raw_query: str, query: dict, items: list, context: str, kind: str | None) -> bytes:
        st = self.st
        rest = [(k, v) for k, vs in query.items() if k.lower() != "$skiptoken" for v in vs]
        tokens = query.get("$skiptoken")
        offset, empty = 0, None
        if tokens:
            parsed = st.parse_skiptoken(path, tokens[-1])
            if parsed is None:
                raise GraphError(400, "BadRequest", "Invalid $skiptoken value.")
            offset, empty = parsed
        huge = st.fault("huge_pages")
        if st.path_fault("huge_pages", path):
            # Hostile: pages that never end, each with `bytes` of padding and a new nextLink.
            page = {"@odata.context": context, "value": [], "padding": "x" * int(huge.get("bytes", 1 << 20)),
                    "@odata.nextLink": f"{st.base_url}{path}?$skiptoken={st.make_skiptoken(path, offset + 1, 0)}"}
            return json.dumps(page).encode("utf-8")
        ep = bool(st.fault("empty_pages"))
        rep = st.path_fault("repeat_next_link", path)
        uf = bool(st.fault("unknown_fields"))
        if empty is None:
            empty = 1 if ep else 0  # first request
        if not ep:
            empty = 0
        cache_key = (path.lower(), tuple(rest), offset, empty, ep, rep, uf)
        cached = st.page_cache.get(cache_key)
        if cached is not None:
            return cached
        page_size = st.page_size
        base = f"{st.base_url}{path}?"
        prefix = (urlencode(rest, quote_via=quote, safe="$,") + "&") if rest else ""

        def link(o: int, e: int) -> str:
            return f"{base}{prefix}$skiptoken={st.make_skiptoken(path, o, e)}"

        if empty:
            value, next_link = [], link(offset, 0)
        else:
            value = items[offset:offset + page_size]
            if rep:
                next_link = link(0, 0)
            elif offset + page_size < len(items):
                next_link = link(offset + page_size, 1 if ep else 0)
            else:
                next_link = None
        if uf:
            value = [unknown_fields_obj(v, kind) for v in value]
        body = {"@odata.context": context, "value": value}
        if uf:
            body["newProperty2027"] = {"kind": "futureListAnnotation", "count": len(value)}
        if next_link:
            body["@odata.nextLink"] = next_link
        data = json.dumps(body).encode("utf-8")
        if len(st.page_cache) > 20000:
            st.page_cache.clear()
        st.page_cache[cache_key] = data
        return data

    # -- STS ------------------------------------------------------------------------
    def _sts(self, tenant: str, endpoint: str, body: bytes):
        st = self.st
        self._stat_route = endpoint
        try:
            if self.command != "POST":
                raise StsError(400, "invalid_request", 900561,
                               f"The endpoint only accepts POST requests. Received a {self.command} request.")
            if tenant.lower() not in st.tenant.tenant_aliases:
                raise StsError(400, "invalid_request", 90002,
                               f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and "
                               "are signing into the correct cloud. Check with your subscription administrator, this "
                               "may happen if there are no active subscriptions for the tenant.")
            # Fault: the sign-in endpoint redirects (307 keeps the method and the body, RFC 9110
            # section 15.4.8), as a hostile or misconfigured front end could.
            location = st.fault("redirect_token")
            if location:
                return self._send(307, b"", "text/plain", {"Location": location})
            ctype = (self.headers.get("Content-Type") or "").lower()
            form = {}
            if "application/x-www-form-urlencoded" in ctype:
                form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace"),
                                                      keep_blank_values=True).items()}
            if endpoint == "devicecode":
                obj = self._devicecode(form)
            else:
                obj = self._token(tenant, form)
            self._json(200, obj, STS_JSON, {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"})
        except Exception as exc:  # noqa: BLE001 - always answer with an STS error body
            err = exc if isinstance(exc, StsError) else StsError(500, "server_error", 90100,
                                                                 f"Test server bug: {exc!r}")
            trace, corr = str(uuid.uuid4()), str(uuid.uuid4())
            ts = sts_timestamp()
            self._json(err.status, {
                "error": err.error,
                "error_description": f"AADSTS{err.aadsts}: {err.text}\r\nTrace ID: {trace}\r\n"
                                     f"Correlation ID: {corr}\r\nTimestamp: {ts}",
                "error_codes": [err.aadsts], "timestamp": ts, "trace_id": trace, "correlation_id": corr,
                "error_uri": f"https://login.microsoftonline.com/error?code={err.aadsts}",
            }, STS_JSON, {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"})

    @staticmethod
    def _require(form: dict, name: str) -> str:
        val = form.get(name)
        if not val:
            raise StsError(400, "invalid_request", 900144,
                           f"The request body must contain the following parameter: '{name}'.")
        return val

    def _check_client_id(self, form: dict) -> str:
        cid = self._require(form, "client_id")
        if cid.lower() != self.st.tenant.client_id.lower():
            raise StsError(400, "unauthorized_client", 700016,
                           f"Application with identifier '{cid}' was not found in the directory "
                           f"'{self.st.tenant.tenant_id}'. This can happen if the application has not been installed "
                           "by the administrator of the tenant or consented to by any user in the tenant.")
        return cid

    def _devicecode(self, form: dict) -> dict:
        st = self.st
        cid = self._check_client_id(form)
        scope = self._require(form, "scope")
        device_code = "DAQABAAEAAA" + b64url(secrets.token_bytes(96))
        alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
        user_code = "".join(secrets.choice(alphabet) for _ in range(9))
        expires_in = int(st.fault("device_code_expires_in", 900))
        with st.lock:
            st.device_codes[device_code] = {"client_id": cid, "scope": scope, "polls": 0,
                                            "expires": time.time() + expires_in}
        uri = "https://microsoft.com/devicelogin"
        return {"user_code": user_code, "device_code": device_code, "verification_uri": uri,
                "expires_in": expires_in, "interval": int(st.fault("device_code_interval", 1)),
                "message": st.fault("device_code_message",
                                    f"To sign in, use a web browser to open the page {uri} and enter the code "
                                    f"{user_code} to authenticate.")}

    def _token(self, tenant: str, form: dict) -> dict:
        grant = self._require(form, "grant_type")
        if grant == "client_credentials":
            return self._client_credentials(tenant, form)
        if grant == DEVICE_CODE_GRANT:
            return self._device_code_grant(form)
        if grant == "refresh_token":
            return self._refresh_grant(form)
        raise StsError(400, "unsupported_grant_type", 70003,
                       f"The app requested an unsupported grant type '{grant}'.")

    def _client_credentials(self, tenant: str, form: dict) -> dict:
        st = self.st
        assertion = form.get("client_assertion")
        secret = form.get("client_secret")
        if assertion or form.get("client_assertion_type"):
            if form.get("client_assertion_type") != JWT_BEARER:
                raise StsError(400, "invalid_request", 50027,
                               "JWT token is invalid or malformed (client_assertion_type must be "
                               f"'{JWT_BEARER}').")
            if not assertion:
                self._require(form, "client_assertion")
            if secret:
                raise StsError(400, "invalid_request", 700025,
                               "Both client_secret and client_assertion were provided; send only one.")
            if form.get("client_id"):
                self._check_client_id(form)
            self._verify_assertion(tenant, assertion)
        else:
            self._check_client_id(form)
            if not secret:
                raise StsError(401, "invalid_client", 7000218,
                               "The request body must contain the following parameter: 'client_assertion' or "
                               "'client_secret'.")
            if st.tenant.client_secret is None or not hmac.compare_digest(
                    secret.encode(), str(st.tenant.client_secret).encode()):
                if st.fault("echo_secret"):
                    # Fault: an error text that repeats what it was sent.
                    raise StsError(401, "invalid_client", 7000215,
                                   f"Invalid client secret provided: '{secret}'.")
                raise StsError(401, "invalid_client", 7000215,
                               "Invalid client secret provided. Ensure the secret being sent in the request is the "
                               "client secret value, not the client secret ID, for a secret added to app "
                               f"'{st.tenant.client_id}'.")
        scope = self._require(form, "scope")
        scopes = scope.split()
        if len(scopes) != 1 or not scopes[0].endswith("/.default"):
            raise StsError(400, "invalid_scope", 1002012,
                           f"The provided value for scope {scope} is not valid. Client credential flows must have a "
                           "scope value with /.default suffixed to the resource identifier (application ID URI).")
        token, exp = st.issue_access_token({"roles": ["Directory.Read.All"], "idtyp": "app"})
        return {"token_type": "Bearer", "expires_in": exp, "ext_expires_in": exp, "access_token": token}

    def _verify_assertion(self, tenant: str, assertion: str) -> None:
        st = self.st

        def fail(text: str, code: int = 700027):
            raise StsError(401, "invalid_client", code, text)

        parts = assertion.split(".")
        if len(parts) != 3:
            fail("Client assertion failed signature validation. The client assertion is not a JWS "
                 "(three dot-separated parts).")
        try:
            header = json.loads(b64url_decode(parts[0]))
            claims = json.loads(b64url_decode(parts[1]))
            signature = b64url_decode(parts[2])
        except Exception:
            fail("Client assertion failed signature validation. The client assertion is not valid base64url JSON.")
        if not isinstance(header, dict) or not isinstance(claims, dict):
            fail("Client assertion failed signature validation. Header and claims must be JSON objects.")
        if st.pubkey_file is None:
            fail("Client assertion contains an invalid signature. [Reason - The key was not found., "
                 "Thumbprint of key used by client: '" + str(header.get("x5t")) + "'] (no certificate is "
                 "registered for this application).")
        if header.get("alg") != "RS256":
            fail(f"Client assertion failed signature validation. Unsupported alg '{header.get('alg')}', "
                 "expected RS256.")
        x5t, x5t256 = header.get("x5t"), header.get("x5t#S256")
        if not ((x5t and x5t == st.cert_x5t) or (x5t256 and x5t256 == st.cert_x5t_s256)):
            fail("Client assertion contains an invalid signature. [Reason - The key was not found., "
                 f"Thumbprint of key used by client: '{x5t or x5t256}', Please visit the Azure Portal, Graph "
                 "Explorer or directly use MS Graph to see configured keys for app Id "
                 f"'{st.tenant.client_id}'.]")
        host = self.headers.get("Host") or ""
        valid_aud = {f"http://{host}/{tenant}/oauth2/v2.0/token", f"{st.base_url}/{tenant}/oauth2/v2.0/token"}
        aud = claims.get("aud")
        auds = aud if isinstance(aud, list) else [aud]
        if not any(a in valid_aud for a in auds):
            fail(f"The audience claim value '{aud}' is invalid; expected '{st.base_url}/{tenant}/oauth2/v2.0/token'.")
        cid = st.tenant.client_id
        if claims.get("iss") != cid or claims.get("sub") != cid:
            fail(f"Client assertion iss and sub claims must both equal the client id '{cid}' "
                 f"(got iss '{claims.get('iss')}', sub '{claims.get('sub')}').", 700023)
        now = time.time()
        exp, nbf = claims.get("exp"), claims.get("nbf")
        if not isinstance(exp, (int, float)) or exp <= now:
            fail("Client assertion is not within its valid time range (exp is missing or in the past). "
                 f"Current time: {sts_timestamp()}, assertion exp: {exp}.", 700024)
        if nbf is not None and (not isinstance(nbf, (int, float)) or nbf > now + 5):
            fail("Client assertion is not within its valid time range (nbf is in the future). "
                 f"Current time: {sts_timestamp()}, assertion nbf: {nbf}.", 700024)
        if not claims.get("jti"):
            fail("Client assertion failed validation: the 'jti' claim is missing.")
        # signature, with the openssl command line
        fd, dpath = tempfile.mkstemp(dir=st.tmpdir, suffix=".data")
        with os.fdopen(fd, "wb") as fh:
            fh.write(f"{parts[0]}.{parts[1]}".encode("ascii"))
        fd, spath = tempfile.mkstemp(dir=st.tmpdir, suffix=".sig")
        with os.fdopen(fd, "wb") as fh:
            fh.write(signature)
        try:
            res = subprocess.run(["openssl", "dgst", "-sha256", "-verify", st.pubkey_file, "-signature", spath,
                                  dpath], capture_output=True, timeout=20)
        finally:
            for p in (dpath, spath):
                try:
                    os.unlink(p)
                except OSError:
                    pass
        if res.returncode != 0:
            fail("Client assertion failed signature validation. [Reason - The provided signature value did "
                 f"not match the expected signature value., Thumbprint of key used by client: '{x5t or x5t256}']")

    def _device_code_grant(self, form: dict) -> dict:
        st = self.st
        cid = self._check_client_id(form)
        code = self._require(form, "device_code")
        with st.lock:
            rec = st.device_codes.get(code)
            if rec is not None and rec["expires"] <= time.time():
                del st.device_codes[code]
                rec = None
            if rec is None or rec["client_id"].lower() != cid.lower():
                rec = None
            else:
                rec["polls"] += 1
                polls = rec["polls"]
        if rec is None:
            raise StsError(400, "expired_token", 70019,
                           "Verification code expired or unknown; restart the device code flow.")
        slow = int(st.fault("device_code_slow_down_polls", 0) or 0)
        pending = int(st.fault("device_code_pending_polls", 1) or 0)
        if polls <= slow:
            raise StsError(400, "slow_down", 70016,
                           "The provided request has not yet been authorized by the user and the client is polling "
                           "too fast; slow down.")
        if polls <= slow + pending:
            raise StsError(400, "authorization_pending", 70016,
                           "The provided request has not yet been authorized by the user. The user must input "
                           "their code.")
        if st.fault("device_code_declined"):
            with st.lock:
                st.device_codes.pop(code, None)
            raise StsError(400, "authorization_declined", 70000,
                           "The user has declined the authorization request.")
        with st.lock:
            st.device_codes.pop(code, None)
        return self._user_tokens(cid, rec["scope"])

    def _user_tokens(self, cid: str, scope: str) -> dict:
        st = self.st
        requested = scope.split()
        granted = [s for s in requested if s not in OIDC_SCOPES]
        token, exp = st.issue_access_token({"scp": " ".join(s.rsplit("/", 1)[-1] for s in granted),
                                            "idtyp": "user", "upn": "admin@contoso.example"})
        out = {"token_type": "Bearer", "scope": " ".join(granted), "expires_in": exp, "ext_expires_in": exp,
               "access_token": token}
        if "offline_access" in requested:
            out["refresh_token"] = st.issue_refresh_token(cid, scope)
        return out

    def _refresh_grant(self, form: dict) -> dict:
        st = self.st
        cid = self._check_client_id(form)
        tok = self._require(form, "refresh_token")
        rec = st.redeem_refresh_token(tok)
        if rec is None or rec["client_id"].lower() != cid.lower():
            raise StsError(400, "invalid_grant", 70000,
                           "Provided grant is invalid or malformed (unknown, revoked or already rotated refresh "
                           "token).")
        scope = rec["scope"]
        if "offline_access" not in scope.split():
            scope += " offline_access"
        return self._user_tokens(cid, scope)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, addr, state: State):
        self.state = state
        super().__init__(addr, Handler)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Local Microsoft Graph (beta) + Entra ID token endpoint imitation.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--tenant", help="tenant JSON file")
    src.add_argument("--generate", help="synthesize a tenant, e.g. groups=50,apps=5000,connectors=100")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--page-size", type=int, default=100)
    p.add_argument("--faults", help="JSON object merged into the faults at start")
    p.add_argument("--verbose", action="store_true", help="log every request to stderr")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        tenant = Tenant.from_file(args.tenant) if args.tenant else Tenant.generate(args.generate)
        extra = json.loads(args.faults) if args.faults else None
        state = State(tenant, args.page_size, args.verbose, extra)
    except (OSError, ValueError) as exc:
        print(f"graph_server: {exc}", file=sys.stderr)
        return 2
    server = Server((args.host, args.port), state)
    host, port = server.server_address[:2]
    state.base_url = f"http://{host}:{port}"

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"listening {state.base_url}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        state.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
