"""Self-tests for graph_server.py.

Run from the repository root:  python3 -m unittest discover -s tests/graph_server -v
Standard library only; needs the `openssl` command line for the client-assertion tests.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "graph_server.py")
PROFILE = "/beta/onPremisesPublishingProfiles/applicationProxy"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
HAVE_OPENSSL = shutil.which("openssl") is not None
with open(os.path.join(HERE, "fixtures", "connectorgroup-list-applications.json"), encoding="utf-8") as _fh:
    # Microsoft's only example answer with verifiedCustomDomainCertificatesMetadata in it.
    DOCUMENTED_PUBLISHING = json.load(_fh)["value"][0]["onPremisesPublishing"]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def start_server(args: list[str], stderr_path: str):
    err = open(stderr_path, "wb")
    proc = subprocess.Popen([sys.executable, SERVER, *args], stdout=subprocess.PIPE, stderr=err,
                            text=True)
    err.close()
    line = proc.stdout.readline().strip()
    if not line.startswith("listening http://127.0.0.1:"):
        proc.kill()
        proc.wait(5)
        proc.stdout.close()
        with open(stderr_path, "r", encoding="utf-8", errors="replace") as fh:
            raise RuntimeError(f"server did not start: stdout={line!r} stderr={fh.read()!r}")
    return proc, line.split(" ", 1)[1]


def stop_server(proc) -> int:
    if proc.poll() is None:
        proc.terminate()
        try:
            return proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
            return -9
    return proc.returncode


def http(method: str, url: str, data=None, headers=None, form=None):
    """Return (status, headers, body bytes), also for error statuses."""
    hdrs = dict(headers or {})
    body = None
    if form is not None:
        body = urllib.parse.urlencode(form).encode()
        hdrs["Content-Type"] = "application/x-www-form-urlencoded"
    elif data is not None:
        body = json.dumps(data).encode()
        hdrs["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=body, headers=hdrs, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def openssl(*args: str) -> bytes:
    return subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=30).stdout


class ServerMixin:
    base: str

    def get(self, path_or_url: str, token: str | None = None, headers=None):
        url = path_or_url if path_or_url.startswith("http") else self.base + path_or_url
        h = dict(headers or {})
        if token:
            h["Authorization"] = f"Bearer {token}"
        return http("GET", url, headers=h)

    def get_json(self, path_or_url: str, token: str | None = None, expect: int = 200):
        status, _, body = self.get(path_or_url, token)
        self.assertEqual(status, expect, body)
        return json.loads(body)

    def collect(self, path: str, token: str):
        """Follow @odata.nextLink to the end; return (items, pages)."""
        pages = []
        url = self.base + path
        while url:
            page = self.get_json(url, token)
            pages.append(page)
            self.assertIn("value", page)
            self.assertIn("@odata.context", page)
            url = page.get("@odata.nextLink")
            self.assertLess(len(pages), 100, "paging does not end")
        return [it for p in pages for it in p["value"]], pages

    def control(self, **update):
        status, _, body = http("POST", self.base + "/_control", data=update)
        self.assertEqual(status, 200, body)
        return json.loads(body)

    def token_secret(self, tenant, client_id, secret, scope="https://graph.microsoft.com/.default"):
        return http("POST", f"{self.base}/{tenant}/oauth2/v2.0/token",
                    form={"grant_type": "client_credentials", "client_id": client_id,
                          "client_secret": secret, "scope": scope})


def _fixture(name: str):
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", name), encoding="utf-8") as fh:
        return json.load(fh)


DOCUMENTED_SEGMENTS = [_fixture("ipapplicationsegment-get.json"),
                       {k: v for k, v in _fixture("ipapplicationsegment-create-response.json").items()
                        if k != "@odata.context"}]


# A wildcard web app's segments: Microsoft's example list answer
# (fixtures/webapplicationsegment-list.json; SOURCES.md).
DOCUMENTED_WEB_SEGMENTS = _fixture("webapplicationsegment-list.json")["value"]


class TenantFileTest(ServerMixin, unittest.TestCase):
    TENANT = "11111111-2222-3333-4444-555555555555"
    CLIENT = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
    SECRET = "s3cret"
    FAULT_KEYS = ["forbidden", "unauthorized", "throttle", "server_error", "malformed", "empty_pages",
                  "repeat_next_link", "unknown_fields", "delay_ms", "token_expires_in",
                  "device_code_pending_polls", "device_code_interval", "applications_list",
                  "batch_bad", "batch_in_order", "redirect_token", "redirect_graph", "echo_secret"]

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="graph_server_test_")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)  # runs even if setUpClass fails
        cls.key1 = os.path.join(cls.tmp, "key1.pem")
        cls.cert1 = os.path.join(cls.tmp, "cert1.pem")
        cls.key2 = os.path.join(cls.tmp, "key2.pem")
        cls.cert2 = os.path.join(cls.tmp, "cert2.pem")
        if HAVE_OPENSSL:
            for key, cert in ((cls.key1, cls.cert1), (cls.key2, cls.cert2)):
                openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "2", "-subj", "/CN=appproxy-exporter-test")
            cls.x5t1 = b64url(hashlib.sha1(openssl("x509", "-in", cls.cert1, "-outform", "DER")).digest())
            cls.x5t2 = b64url(hashlib.sha1(openssl("x509", "-in", cls.cert2, "-outform", "DER")).digest())
        tenant = {
            "tenant_id": cls.TENANT, "client_id": cls.CLIENT, "client_secret": cls.SECRET,
            "groups": [
                {"id": "g1", "name": "Default", "isDefault": True, "region": "eur",
                 "connectorGroupType": "applicationProxy"},
                {"id": "g2", "name": "Branch", "isDefault": False, "connectorGroupType": "applicationProxy"},
            ],
            "connectors": [
                {"id": f"c{i}", "machineName": f"CONN-0{i}.corp.example", "externalIp": f"203.0.113.{i}",
                 "status": "active" if i != 4 else "inactive", "version": "1.5.3829.0",
                 "memberOf": ["g1" if i <= 3 else "g2"]} for i in range(1, 5)
            ] + [{"id": "c5", "machineName": "CONN-05.corp.example", "externalIp": "203.0.113.5",
                  "status": "active", "memberOf": ["g2"], "extraKey": "passed-through"}],
            "applications": [
                {"id": f"a{i}", "appId": f"app-id-{i}", "displayName": f"intranet{i}", "connectorGroupId": "g1",
                 "onPremisesPublishing": {"internalUrl": f"https://intranet{i}.corp.example/",
                                          "externalUrl": f"https://intranet{i}-contoso.msappproxy.net/",
                                          "applicationServerTimeout": "default",
                                          "isBackendCertificateValidationEnabled": True,
                                          "externalAuthenticationType": "aadPreAuthentication"}}
                for i in range(1, 6)
            ] + [{"id": "a6", "appId": "app-id-6", "displayName": "orphan"},
                 # An app on a custom domain, its onPremisesPublishing (and with it
                 # verifiedCustomDomainCertificatesMetadata) exactly as Microsoft's example
                 # answer has it: fixtures/connectorgroup-list-applications.json (SOURCES.md).
                 {"id": "a7", "appId": "app-id-7", "displayName": "custom-domain", "connectorGroupId": "g2",
                  "onPremisesPublishing": DOCUMENTED_PUBLISHING},
                 # A Private Access app whose segments are Microsoft's example answers
                 # (fixtures/ipapplicationsegment-get.json, -create-response.json; SOURCES.md).
                 {"id": "a8", "appId": "app-id-8", "displayName": "private", "connectorGroupId": "g2",
                  "onPremisesPublishing": {"applicationType": "NonWebApp", "isOnPremPublishingEnabled": True},
                  "ipApplicationSegments": DOCUMENTED_SEGMENTS},
                 # A wildcard web app whose segments are Microsoft's example list answer.
                 {"id": "a9", "appId": "app-id-9", "displayName": "wildcard", "connectorGroupId": "g2",
                  "onPremisesPublishing": {"internalUrl": "https://*.contoso.com/",
                                           "externalUrl": "https://*.contoso-proxy.contoso.com/"},
                  "webApplicationSegments": DOCUMENTED_WEB_SEGMENTS}],
            "faults": {},
        }
        if HAVE_OPENSSL:
            tenant["certificate_pem_file"] = "cert1.pem"  # relative to the tenant file
        cls.tenant_file = os.path.join(cls.tmp, "tenant.json")
        with open(cls.tenant_file, "w", encoding="utf-8") as fh:
            json.dump(tenant, fh)
        cls.proc, cls.base = start_server(["--tenant", cls.tenant_file, "--port", "0", "--page-size", "2"],
                                          os.path.join(cls.tmp, "stderr.txt"))
        cls.addClassCleanup(cls.proc.stdout.close)
        cls.addClassCleanup(stop_server, cls.proc)
        cls.token_url = f"{cls.base}/{cls.TENANT}/oauth2/v2.0/token"

    def test_zz_sigterm_exits_cleanly(self):
        self.assertEqual(stop_server(self.proc), 0)

    def tearDown(self):
        if self.proc.poll() is None:  # test_zz_* stops the server
            self.control(**{k: None for k in self.FAULT_KEYS})

    def token(self) -> str:
        status, _, body = self.token_secret(self.TENANT, self.CLIENT, self.SECRET)
        self.assertEqual(status, 200, body)
        return json.loads(body)["access_token"]

    # -- paging --------------------------------------------------------------------
    def test_paging_until_no_next_link(self):
        tok = self.token()
        items, pages = self.collect(PROFILE + "/connectors", tok)
        self.assertEqual(len(pages), 3)
        self.assertEqual(sorted(i["id"] for i in items), ["c1", "c2", "c3", "c4", "c5"])
        for p in pages[:-1]:
            nl = p["@odata.nextLink"]
            self.assertTrue(nl.startswith(self.base + PROFILE + "/connectors?$skiptoken="), nl)
        self.assertNotIn("@odata.nextLink", pages[-1])
        c5 = next(i for i in items if i["id"] == "c5")
        self.assertNotIn("version", c5)
        self.assertNotIn("memberOf", c5)
        self.assertEqual(c5["extraKey"], "passed-through")
        # a forged skiptoken is refused
        status, _, body = self.get(PROFILE + "/connectors?$skiptoken=bogus", tok)
        self.assertEqual(status, 400)
        self.assertIn("error", json.loads(body))

    def test_group_members_and_member_of(self):
        tok = self.token()
        items, _ = self.collect(PROFILE + "/connectorGroups/g2/members", tok)
        self.assertEqual(sorted(i["id"] for i in items), ["c4", "c5"])
        groups, _ = self.collect(PROFILE + "/connectors/c1/memberOf", tok)
        self.assertEqual([g["id"] for g in groups], ["g1"])
        g = self.get_json(PROFILE + "/connectorGroups/g1", tok)
        self.assertEqual((g["name"], g["isDefault"], g["region"]), ("Default", True, "eur"))

    def test_empty_pages(self):
        tok = self.token()
        self.control(empty_pages=True)
        items, pages = self.collect(PROFILE + "/connectors", tok)
        self.assertEqual(sorted(i["id"] for i in items), ["c1", "c2", "c3", "c4", "c5"])
        empties = [p for p in pages if not p["value"]]
        self.assertEqual(len(empties), 3)
        self.assertEqual(pages[0]["value"], [])
        for p in empties:
            self.assertIn("@odata.nextLink", p)

    def test_segments_are_served_as_microsofts_examples_have_them(self):
        tok = self.token()
        path = "/beta/applications/a8/onPremisesPublishing/segmentsConfiguration/microsoft.graph.ipSegmentConfiguration/applicationSegments"
        items, pages = self.collect(path, tok)
        self.assertEqual(items, DOCUMENTED_SEGMENTS)
        self.assertTrue(pages[0]["@odata.context"].endswith(
            "applications('a8')/onPremisesPublishing/segmentsConfiguration/microsoft.graph.ipSegmentConfiguration/applicationSegments"))
        # Microsoft's example request writes the cast and the collection in PascalCase.
        items, _ = self.collect(path.replace("ipSegmentConfiguration/applicationSegments",
                                             "IpSegmentConfiguration/ApplicationSegments"), tok)
        self.assertEqual(len(items), 2)
        app = self.get_json("/beta/applications/a8", tok)
        self.assertNotIn("ipApplicationSegments", app)
        status, _, _ = self.get(path.replace("/a8/", "/a1/"), tok)
        self.assertEqual(status, 404)

    def test_web_segments_are_served_as_microsofts_example_has_them(self):
        tok = self.token()
        path = ("/beta/applications/a9/onPremisesPublishing/segmentsConfiguration/"
                "microsoft.graph.webSegmentConfiguration/applicationSegments")
        items, pages = self.collect(path, tok)
        self.assertEqual(items, DOCUMENTED_WEB_SEGMENTS)
        self.assertTrue(pages[0]["@odata.context"].endswith(
            "applications('a9')/onPremisesPublishing/segmentsConfiguration/microsoft.graph.webSegmentConfiguration/applicationSegments"))
        # Microsoft's example request writes the collection as ApplicationSegments.
        items, _ = self.collect(path.replace("/applicationSegments", "/ApplicationSegments"), tok)
        self.assertEqual(items, DOCUMENTED_WEB_SEGMENTS)
        app = self.get_json("/beta/applications/a9", tok)
        self.assertNotIn("webApplicationSegments", app)
        # An app without a webSegmentConfiguration (here, a Private Access one) is a 404.
        status, _, _ = self.get(path.replace("/a9/", "/a8/"), tok)
        self.assertEqual(status, 404)

    def test_group_application_list_is_in_the_documented_shape(self):
        # connectorgroup-list-applications: each item has `id` and `onPremisesPublishing` only.
        tok = self.token()
        apps, pages = self.collect(PROFILE + "/connectorGroups/g1/applications", tok)
        self.assertEqual(len(pages), 3)
        self.assertEqual(sorted(a["id"] for a in apps), [f"a{i}" for i in range(1, 6)])
        for a in apps:
            self.assertEqual(set(a), {"id", "onPremisesPublishing"})
        grp = self.get_json("/beta/applications/a1/connectorGroup", tok)
        self.assertEqual(grp["id"], "g1")

    def test_custom_domain_certificate_metadata_is_served_as_microsofts_example_has_it(self):
        # connectorgroup-list-applications (fixtures/SOURCES.md): the five properties of
        # verifiedCustomDomainCertificatesMetadata, in the list and in a $select read alike.
        tok = self.token()
        expected = DOCUMENTED_PUBLISHING["verifiedCustomDomainCertificatesMetadata"]
        self.assertEqual(set(expected), {"thumbprint", "subjectName", "issuerName", "issueDate", "expiryDate"})
        apps, _ = self.collect(PROFILE + "/connectorGroups/g2/applications", tok)
        listed = next(a for a in apps if a["id"] == "a7")
        self.assertEqual(listed["onPremisesPublishing"], DOCUMENTED_PUBLISHING)
        answer = self.batch(tok, [{"id": "1", "method": "GET",
                                   "url": "/applications/a7?$select=displayName,onPremisesPublishing"}])
        body = answer["responses"][0]["body"]
        self.assertEqual(body["onPremisesPublishing"]["verifiedCustomDomainCertificatesMetadata"], expected)
        # Apps on the default domain have none here; Graph documents `null` for them.
        other = self.get_json("/beta/applications/a1?$select=onPremisesPublishing", tok)
        self.assertNotIn("verifiedCustomDomainCertificatesMetadata", other["onPremisesPublishing"])

    def test_group_application_list_as_reported_lacks_publishing(self):
        self.control(applications_list="reported")
        tok = self.token()
        apps, _ = self.collect(PROFILE + "/connectorGroups/g1/applications", tok)
        for a in apps:
            self.assertNotIn("onPremisesPublishing", a)
            self.assertNotIn("connectorGroupId", a)
            self.assertEqual(a["@odata.type"], "#microsoft.graph.application")
            self.assertTrue(a["displayName"].startswith("intranet"))

    def test_select_returns_only_the_selected_properties(self):
        tok = self.token()
        app = self.get_json("/beta/applications/a1?$select=onPremisesPublishing", tok)
        self.assertEqual(set(app), {"@odata.context", "onPremisesPublishing"})
        self.assertTrue(app["@odata.context"].endswith("#applications(onPremisesPublishing)/$entity"))
        self.assertEqual(app["onPremisesPublishing"]["internalUrl"], "https://intranet1.corp.example/")
        both = self.get_json("/beta/applications/a1?$select=displayName,onPremisesPublishing", tok)
        self.assertEqual(set(both), {"@odata.context", "displayName", "onPremisesPublishing"})
        unset = self.get_json("/beta/applications/a6?$select=onPremisesPublishing", tok)
        self.assertEqual(unset["onPremisesPublishing"], None)
        full = self.get_json("/beta/applications/a1", tok)
        self.assertEqual(full["displayName"], "intranet1")
        self.assertEqual(full["id"], "a1")

    # -- JSON batching ---------------------------------------------------------------
    def batch(self, tok, requests, expect=200):
        status, _, body = http("POST", self.base + "/beta/$batch", data={"requests": requests},
                               headers={"Authorization": f"Bearer {tok}"})
        self.assertEqual(status, expect, body)
        return json.loads(body)

    def test_batch_answers_every_request_by_id_in_any_order(self):
        tok = self.token()
        answer = self.batch(tok, [
            {"id": "1", "method": "GET", "url": "/applications/a1?$select=displayName,onPremisesPublishing"},
            {"id": "2", "method": "GET", "url": "applications/nope?$select=onPremisesPublishing"},
            {"id": "3", "method": "GET", "url": "/onPremisesPublishingProfiles/applicationProxy/connectors"},
        ])
        by_id = {r["id"]: r for r in answer["responses"]}
        self.assertEqual(set(by_id), {"1", "2", "3"})
        self.assertEqual([r["id"] for r in answer["responses"]], ["3", "2", "1"])
        self.assertEqual(by_id["1"]["status"], 200)
        self.assertEqual(set(by_id["1"]["body"]), {"@odata.context", "displayName", "onPremisesPublishing"})
        self.assertEqual(by_id["2"]["status"], 404)
        self.assertEqual(by_id["2"]["body"]["error"]["code"], "Request_ResourceNotFound")
        self.assertEqual(len(by_id["3"]["body"]["value"]), 2)
        for r in answer["responses"]:
            self.assertIn("Content-Type", r["headers"])

    def test_batch_throttles_each_request_on_its_own(self):
        tok = self.token()
        self.control(throttle={"path_contains": "/applications/a2", "times": 1, "retry_after": 3})
        answer = self.batch(tok, [
            {"id": "a", "method": "GET", "url": "/applications/a1?$select=onPremisesPublishing"},
            {"id": "b", "method": "GET", "url": "/applications/a2?$select=onPremisesPublishing"},
        ])
        by_id = {r["id"]: r for r in answer["responses"]}
        self.assertEqual(by_id["a"]["status"], 200)
        self.assertEqual(by_id["b"]["status"], 429)
        self.assertEqual(by_id["b"]["headers"]["Retry-After"], "3")

    def test_batch_refuses_more_than_20_requests_and_repeated_ids(self):
        tok = self.token()
        many = [{"id": str(i), "method": "GET", "url": "/applications/a1"} for i in range(21)]
        self.assertEqual(self.batch(tok, many, expect=400)["error"]["code"], "BadRequest")
        twice = [{"id": "1", "method": "GET", "url": "/applications/a1"}] * 2
        self.assertEqual(self.batch(tok, twice, expect=400)["error"]["code"], "BadRequest")
        status, _, _ = http("POST", self.base + "/beta/$batch", data={"requests": []})
        self.assertEqual(status, 401)

    def test_batch_faults_break_the_answer_as_named(self):
        tok = self.token()
        reqs = [{"id": str(i), "method": "GET", "url": f"/applications/a{i}"} for i in (1, 2)]
        for kind, check in [
            ("missing_id", lambda rs: any("id" not in r for r in rs)),
            ("duplicate_id", lambda rs: len({r["id"] for r in rs}) < len(rs)),
            ("unknown_id", lambda rs: any(r["id"] == "not-a-request" for r in rs)),
            ("non_json_body", lambda rs: any(isinstance(r["body"], str) for r in rs)),
            ("extra_answer", lambda rs: len(rs) == 3),
            ("dropped_answer", lambda rs: len(rs) == 1),
        ]:
            self.control(batch_bad=kind)
            self.assertTrue(check(self.batch(tok, reqs)["responses"]), kind)

    def test_not_found_bodies(self):
        tok = self.token()
        for path in ("/beta/applications/a6/connectorGroup", "/beta/applications/nope",
                     PROFILE + "/connectors/nope", PROFILE + "/connectorGroups/nope/members"):
            status, _, body = self.get(path, tok)
            self.assertEqual(status, 404, path)
            err = json.loads(body)["error"]
            self.assertEqual(err["code"], "Request_ResourceNotFound")
            self.assertTrue(err["message"])
            self.assertEqual(set(err["innerError"]), {"date", "request-id", "client-request-id"})

    # -- Graph auth and faults -----------------------------------------------------
    def test_401_without_or_with_bad_token(self):
        status, headers, body = self.get(PROFILE + "/connectorGroups")
        self.assertEqual(status, 401)
        self.assertIn("WWW-Authenticate", headers)
        err = json.loads(body)["error"]
        self.assertEqual(err["code"], "InvalidAuthenticationToken")
        self.assertEqual(err["message"], "Access token is empty.")
        status, _, body = self.get(PROFILE + "/connectorGroups", "a.b.c")
        self.assertEqual(status, 401)
        self.control(token_expires_in=0)
        tok = self.token()
        status, _, body = self.get(PROFILE + "/connectorGroups", tok)
        self.assertEqual(status, 401)
        self.assertIn("expired", json.loads(body)["error"]["message"])

    def test_unauthorized_fault(self):
        tok = self.token()
        self.control(unauthorized=True)
        status, headers, body = self.get(PROFILE + "/connectors", tok)
        self.assertEqual(status, 401)
        self.assertEqual(json.loads(body)["error"]["code"], "InvalidAuthenticationToken")

    def test_403_forbidden_fault(self):
        tok = self.token()
        self.control(forbidden="NotAdminRoleNoEnoughCustomPermission_UnauthorizedAccess")
        status, _, body = self.get(PROFILE + "/connectorGroups", tok)
        self.assertEqual(status, 403)
        err = json.loads(body)["error"]
        self.assertEqual(err["code"], "NotAdminRoleNoEnoughCustomPermission_UnauthorizedAccess")
        self.assertEqual(err["message"], "Insufficient privileges to complete the operation.")
        self.assertIn("request-id", err["innerError"])

    def test_429_with_retry_after_then_success(self):
        tok = self.token()
        self.control(throttle={"path_contains": "connectorGroups", "times": 2, "retry_after": 1})
        self.assertEqual(self.get(PROFILE + "/connectors", tok)[0], 200)  # not matching
        for _ in range(2):
            status, headers, body = self.get(PROFILE + "/connectorGroups", tok)
            self.assertEqual(status, 429)
            self.assertEqual(headers.get("Retry-After"), "1")
            self.assertEqual(json.loads(body)["error"]["code"], "TooManyRequests")
        self.assertEqual(self.get(PROFILE + "/connectorGroups", tok)[0], 200)
        self.control(throttle={"times": 1, "retry_after": None})
        status, headers, _ = self.get(PROFILE + "/connectors", tok)
        self.assertEqual(status, 429)
        self.assertIsNone(headers.get("Retry-After"))

    def test_server_error_fault(self):
        tok = self.token()
        self.control(server_error={"path_contains": "/members", "times": 1, "status": 503})
        status, _, body = self.get(PROFILE + "/connectorGroups/g1/members", tok)
        self.assertEqual(status, 503)
        self.assertEqual(json.loads(body)["error"]["code"], "serviceNotAvailable")
        self.assertEqual(self.get(PROFILE + "/connectorGroups/g1/members", tok)[0], 200)

    def test_server_error_fault_can_echo_the_authorization_header_padded(self):
        tok = self.token()
        self.control(server_error={"path_contains": "/connectors", "times": 1, "status": 400,
                                   "message": "seen: $authorization", "message_bytes": 5000})
        status, _, body = self.get(PROFILE + "/connectors", tok)
        self.assertEqual(status, 400)
        message = json.loads(body)["error"]["message"]
        self.assertTrue(message.startswith("seen: Bearer " + tok))
        self.assertEqual(len(message), 5000)

    def test_huge_pages_never_end(self):
        tok = self.token()
        self.control(huge_pages={"path_contains": "connectorGroups", "bytes": 1000})
        self.addCleanup(self.control, huge_pages=None)
        first = self.get_json(PROFILE + "/connectorGroups", tok)
        second = self.get_json(first["@odata.nextLink"], tok)
        self.assertEqual(len(second["padding"]), 1000)
        self.assertEqual(second["value"], [])
        self.assertNotEqual(first["@odata.nextLink"], second["@odata.nextLink"])
        self.assertNotIn("padding", self.get_json(PROFILE + "/connectors", tok))

    def test_malformed_body(self):
        tok = self.token()
        self.control(malformed={"path_contains": "connectors"})
        status, headers, body = self.get(PROFILE + "/connectors", tok)
        self.assertEqual(status, 200)
        self.assertTrue(headers.get("Content-Type", "").startswith("application/json"))
        with self.assertRaises(ValueError):
            json.loads(body)
        self.assertEqual(self.get(PROFILE + "/connectorGroups", tok)[0], 200)
        json.loads(self.get(PROFILE + "/connectorGroups", tok)[2])

    def test_repeat_next_link(self):
        tok = self.token()
        self.control(repeat_next_link={"path_contains": "connectorGroups"})
        first = self.get_json(PROFILE + "/connectorGroups", tok)
        second = self.get_json(first["@odata.nextLink"], tok)
        third = self.get_json(second["@odata.nextLink"], tok)
        self.assertEqual(first["value"], second["value"])
        self.assertEqual(first["@odata.nextLink"], second["@odata.nextLink"])
        self.assertEqual(second["@odata.nextLink"], third["@odata.nextLink"])

    def test_unknown_fields(self):
        tok = self.token()
        self.control(unknown_fields=True)
        page = self.get_json(PROFILE + "/connectorGroups", tok)
        self.assertIn("newProperty2027", page)
        for g in page["value"]:
            self.assertIn("newProperty2027", g)
        g2 = next(g for g in page["value"] if g["id"] == "g2")
        self.assertEqual(g2["region"], "unknownFutureValue")
        app = self.get_json("/beta/applications/a2?$select=onPremisesPublishing", tok)
        self.assertIn("newProperty2027", app)

    def test_delay(self):
        tok = self.token()
        self.control(delay_ms=300)
        t0 = time.monotonic()
        self.assertEqual(self.get(PROFILE + "/connectors/c1", tok)[0], 200)
        self.assertGreaterEqual(time.monotonic() - t0, 0.29)

    def test_control_null_removes_and_get(self):
        self.control(forbidden="Authorization_RequestDenied")
        faults = self.control(forbidden=None)["faults"]
        self.assertNotIn("forbidden", faults)
        status, _, body = http("GET", self.base + "/_control")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["faults"]["token_expires_in"], 3599)

    def test_control_actions(self):
        tok = self.token()
        self.assertEqual(self.get(PROFILE + "/connectors/c1", tok)[0], 200)
        self.control(expire_access_tokens=True)
        status, _, body = self.get(PROFILE + "/connectors/c1", tok)
        self.assertEqual(status, 401)
        self.assertIn("expired", json.loads(body)["error"]["message"])
        # slow_down before pending, and refresh tokens revoked
        self.control(device_code_slow_down_polls=1)
        try:
            status, _, body = http("POST", f"{self.base}/{self.TENANT}/oauth2/v2.0/devicecode",
                                   form={"client_id": self.CLIENT, "scope": "Directory.Read.All offline_access"})
            poll = {"grant_type": DEVICE_GRANT, "client_id": self.CLIENT,
                    "device_code": json.loads(body)["device_code"]}
            errors = [json.loads(http("POST", self.token_url, form=poll)[2]).get("error") for _ in range(2)]
            self.assertEqual(errors, ["slow_down", "authorization_pending"])
            status, _, body = http("POST", self.token_url, form=poll)
            self.assertEqual(status, 200, body)
            rt = json.loads(body)["refresh_token"]
        finally:
            self.control(device_code_slow_down_polls=None)
        self.control(revoke_refresh_tokens=True)
        status, _, body = http("POST", self.token_url, form={"grant_type": "refresh_token",
                                                             "client_id": self.CLIENT, "refresh_token": rt})
        self.assertEqual((status, json.loads(body)["error"]), (400, "invalid_grant"))

    # -- token endpoint: secret ------------------------------------------------------
    def test_client_secret_grant(self):
        status, headers, body = self.token_secret(self.TENANT, self.CLIENT, self.SECRET)
        self.assertEqual(status, 200)
        tok = json.loads(body)
        self.assertEqual(tok["token_type"], "Bearer")
        self.assertEqual(tok["expires_in"], 3599)
        self.assertEqual(tok["ext_expires_in"], 3599)
        self.assertEqual(tok["access_token"].count("."), 2)
        status, _, body = self.token_secret(self.TENANT, self.CLIENT, "wrong")
        self.assertEqual(status, 401)
        err = json.loads(body)
        self.assertEqual(err["error"], "invalid_client")
        self.assertTrue(err["error_description"].startswith("AADSTS7000215:"))
        self.assertEqual(err["error_codes"], [7000215])
        for k in ("timestamp", "trace_id", "correlation_id"):
            self.assertIn(k, err)
        status, _, body = self.token_secret(self.TENANT, self.CLIENT, self.SECRET,
                                            scope="https://graph.microsoft.com/Directory.Read.All")
        self.assertEqual((status, json.loads(body)["error"]), (400, "invalid_scope"))
        status, _, body = self.token_secret("unknown-tenant", self.CLIENT, self.SECRET)
        err = json.loads(body)
        self.assertEqual((status, err["error"]), (400, "invalid_request"))
        self.assertIn("AADSTS90002", err["error_description"])

    def test_hostile_faults_redirect_and_echo(self):
        """redirect_token, redirect_graph and echo_secret, read without following anything."""
        import http.client
        host, port = urllib.parse.urlsplit(self.base).netloc.split(":")

        def raw(method, path, body=None, headers=None):
            conn = http.client.HTTPConnection(host, int(port), timeout=10)
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            answer = resp.status, resp.getheader("Location"), resp.read()
            conn.close()
            return answer

        self.control(redirect_token="http://trap.invalid/steal")
        form = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": self.CLIENT,
                                       "client_secret": self.SECRET, "scope": "x/.default"})
        status, location, _ = raw("POST", f"/{self.TENANT}/oauth2/v2.0/token", form,
                                  {"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual((status, location), (307, "http://trap.invalid/steal"))
        self.control(redirect_token=None, redirect_graph="http://trap.invalid")
        status, location, _ = raw("GET", PROFILE + "/connectors?$top=5")
        self.assertEqual((status, location), (302, "http://trap.invalid" + PROFILE + "/connectors?$top=5"))
        self.control(redirect_graph=None, echo_secret=True)
        status, _, body = self.token_secret(self.TENANT, self.CLIENT, "the-sent-secret")
        self.assertEqual(status, 401)
        self.assertIn("the-sent-secret", json.loads(body)["error_description"])

    # -- token endpoint: device code -------------------------------------------------
    def test_device_code_flow_and_refresh_rotation(self):
        scope = "https://graph.microsoft.com/Directory.Read.All offline_access"
        status, _, body = http("POST", f"{self.base}/{self.TENANT}/oauth2/v2.0/devicecode",
                               form={"client_id": self.CLIENT, "scope": scope})
        self.assertEqual(status, 200, body)
        dc = json.loads(body)
        self.assertEqual(dc["verification_uri"], "https://microsoft.com/devicelogin")
        self.assertEqual((dc["expires_in"], dc["interval"]), (900, 1))
        self.assertIn(dc["user_code"], dc["message"])
        poll = {"grant_type": DEVICE_GRANT, "client_id": self.CLIENT, "device_code": dc["device_code"]}
        status, _, body = http("POST", self.token_url, form=poll)
        self.assertEqual((status, json.loads(body)["error"]), (400, "authorization_pending"))
        status, _, body = http("POST", self.token_url, form=poll)
        self.assertEqual(status, 200, body)
        tok = json.loads(body)
        self.assertNotIn("id_token", tok)
        for k in ("access_token", "refresh_token", "scope", "expires_in"):
            self.assertIn(k, tok)
        self.assertEqual(self.get(PROFILE + "/connectorGroups", tok["access_token"])[0], 200)
        # device code is spent
        status, _, body = http("POST", self.token_url, form=poll)
        self.assertEqual((status, json.loads(body)["error"]), (400, "expired_token"))
        # refresh rotation
        rt1 = tok["refresh_token"]
        refresh = {"grant_type": "refresh_token", "client_id": self.CLIENT, "refresh_token": rt1,
                   "scope": scope}
        status, _, body = http("POST", self.token_url, form=refresh)
        self.assertEqual(status, 200, body)
        rt2 = json.loads(body)["refresh_token"]
        self.assertNotEqual(rt1, rt2)
        self.assertEqual(http("POST", self.token_url, form=refresh)[0], 200)  # one grace use of rt1
        status, _, body = http("POST", self.token_url, form=refresh)
        err = json.loads(body)
        self.assertEqual((status, err["error"]), (400, "invalid_grant"))
        self.assertIn("AADSTS70000", err["error_description"])
        status, _, body = http("POST", self.token_url, form=dict(refresh, refresh_token=rt2))
        self.assertEqual(status, 200, body)
        status, _, body = http("POST", self.token_url, form=dict(poll, device_code="unknown"))
        self.assertEqual((status, json.loads(body)["error"]), (400, "expired_token"))

    # -- token endpoint: client assertion --------------------------------------------
    def make_assertion(self, key: str, x5t: str, **overrides) -> str:
        now = int(time.time())
        header = {"alg": "RS256", "typ": "JWT", "x5t": x5t}
        claims = {"aud": self.token_url, "iss": self.CLIENT, "sub": self.CLIENT, "jti": os.urandom(8).hex(),
                  "nbf": now - 5, "iat": now - 5, "exp": now + 600}
        claims.update(overrides)
        signing_input = (b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode()))
        data = os.path.join(self.tmp, "jwt.data")
        with open(data, "w", encoding="ascii") as fh:
            fh.write(signing_input)
        sig = openssl("dgst", "-sha256", "-sign", key, data)
        return signing_input + "." + b64url(sig)

    def assertion_grant(self, assertion: str):
        return http("POST", self.token_url, form={
            "grant_type": "client_credentials", "client_id": self.CLIENT, "client_assertion_type": JWT_BEARER,
            "client_assertion": assertion, "scope": "https://graph.microsoft.com/.default"})

    @unittest.skipUnless(HAVE_OPENSSL, "openssl command line not installed")
    def test_client_assertion(self):
        status, _, body = self.assertion_grant(self.make_assertion(self.key1, self.x5t1))
        self.assertEqual(status, 200, body)
        self.assertEqual(self.get(PROFILE + "/connectors", json.loads(body)["access_token"])[0], 200)
        cases = {
            "other key, right x5t": self.make_assertion(self.key2, self.x5t1),
            "other certificate": self.make_assertion(self.key2, self.x5t2),
            "wrong audience": self.make_assertion(self.key1, self.x5t1, aud="https://login.microsoftonline.com/x"),
            "expired": self.make_assertion(self.key1, self.x5t1, exp=int(time.time()) - 10),
            "wrong issuer": self.make_assertion(self.key1, self.x5t1, iss="someone-else"),
            "no jti": self.make_assertion(self.key1, self.x5t1, jti=""),
        }
        for name, assertion in cases.items():
            with self.subTest(name):
                status, _, body = self.assertion_grant(assertion)
                err = json.loads(body)
                self.assertEqual((status, err["error"]), (401, "invalid_client"), body)
                self.assertTrue(err["error_description"].startswith("AADSTS7000"), err)
        status, _, body = self.assertion_grant(self.make_assertion(self.key2, self.x5t1))
        self.assertIn("AADSTS700027", json.loads(body)["error_description"])

    # -- stats ----------------------------------------------------------------------
    def test_stats(self):
        tok = self.token()
        self.control(reset_stats=True)
        self.collect(PROFILE + "/connectorGroups", tok)                 # 1 page (2 groups, page size 2)
        self.collect(PROFILE + "/connectorGroups/g1/applications", tok)  # 3 pages
        self.get("/beta/applications/a1?$select=onPremisesPublishing", tok)
        self.get(PROFILE + "/connectors")                                # 401
        self.token()
        status, _, body = http("GET", self.base + "/_stats")
        self.assertEqual(status, 200)
        stats = json.loads(body)
        self.assertEqual(stats["requests"], 7)
        self.assertEqual(stats["by_route"]["connectorGroups"], 1)
        self.assertEqual(stats["by_route"]["connectorGroups/applications"], 3)
        self.assertEqual(stats["by_route"]["applications"], 1)
        self.assertEqual(stats["by_route"]["connectors"], 1)
        self.assertEqual(stats["by_route"]["token"], 1)
        self.assertEqual(stats["by_route"]["devicecode"], 0)
        self.assertEqual(stats["by_status"], {"200": 6, "401": 1})
        self.assertEqual(stats["tokens_issued"], 1)


class GenerateTest(ServerMixin, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="graph_server_gen_")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        cls.proc, cls.base = start_server(["--generate", "groups=3,apps=20,connectors=4", "--page-size", "5"],
                                          os.path.join(cls.tmp, "stderr.txt"))
        cls.addClassCleanup(cls.proc.stdout.close)
        cls.addClassCleanup(stop_server, cls.proc)

    def test_generated_tenant(self):
        status, _, body = self.token_secret("00000000-0000-0000-0000-0000000000aa",
                                            "00000000-0000-0000-0000-0000000000cc", "test-secret")
        self.assertEqual(status, 200, body)
        tok = json.loads(body)["access_token"]
        groups, _ = self.collect(PROFILE + "/connectorGroups", tok)
        self.assertEqual([g["name"] for g in groups], ["group-001", "group-002", "group-003"])
        self.assertEqual(sum(1 for g in groups if g["isDefault"]), 1)
        apps, members = [], []
        for g in groups:
            apps += self.collect(f"{PROFILE}/connectorGroups/{g['id']}/applications", tok)[0]
            members += self.collect(f"{PROFILE}/connectorGroups/{g['id']}/members", tok)[0]
        self.assertEqual(len(apps), 20)
        self.assertEqual(sorted(a["onPremisesPublishing"]["internalUrl"] for a in apps),
                         [f"https://app-{i:05d}.corp.example/" for i in range(1, 21)])
        self.assertEqual(sorted(c["machineName"] for c in members), [f"CONN-{i:04d}" for i in range(1, 5)])
        a2 = self.get_json("/beta/applications/30000000-0000-0000-0000-000000000002?$select=displayName", tok)
        self.assertEqual(a2["displayName"], "app-00002")
        opp = self.get_json("/beta/applications/30000000-0000-0000-0000-000000000002?$select=onPremisesPublishing",
                            tok)["onPremisesPublishing"]
        self.assertEqual(opp["internalUrl"], "https://app-00002.corp.example/")
        self.assertEqual(opp["externalUrl"], "https://app-00002-contoso.msappproxy.net/")
        self.assertEqual(opp["applicationServerTimeout"], "long")
        self.assertTrue(opp["isBackendCertificateValidationEnabled"])

    def test_zz_sigterm_exits_cleanly(self):
        self.assertEqual(stop_server(self.proc), 0)


if __name__ == "__main__":
    unittest.main()
