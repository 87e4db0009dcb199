"""Self-tests for tests/netns/lab.py.

Run from the repository root, as root:

    python3 -m unittest discover -s tests/netns -v

Every test builds its own lab (unique namespace name) and tears it down in
a cleanup, so a failing test leaves nothing behind.  All traffic stays on the
loopback interface of the test's network namespace.
"""

import ctypes
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
LAB = os.path.join(HERE, "lab.py")

MS_HOST = "tenant.bootstrap.msappproxy.test"
SPEC = {
    "hosts": {
        MS_HOST: "127.0.0.11",
        "relay.servicebus.test": "127.0.0.12",
        "crl.digicert.test": "127.0.0.21",
        "intercepted.login.test": "127.0.0.31",
        "selfsigned.login.test": "127.0.0.32",
    },
    "servers": [
        {"ip": "127.0.0.11", "port": 443, "kind": "tls", "issuer": "microsoft", "cn": MS_HOST},
        {"ip": "127.0.0.21", "port": 80, "kind": "http"},
        {"ip": "127.0.0.31", "port": 443, "kind": "tls", "issuer": "interceptor",
         "cn": "intercepted.login.test"},
        {"ip": "127.0.0.32", "port": 443, "kind": "tls", "issuer": "self-signed",
         "cn": "selfsigned.login.test"},
        {"ip": "127.0.0.40", "port": 9000, "kind": "tcp"},
    ],
    "proxy": {"ip": "127.0.0.1", "port": 3128, "connect_ports": [443, 80], "basic_auth": None},
}

# Runs inside the namespace: a list of operations in argv[1] (JSON), one JSON
# result per operation on stdout.
PROBE = r'''
import base64, json, socket, ssl, sys, time, urllib.request

def connect(a):
    t = time.monotonic()
    try:
        socket.create_connection((a["host"], a["port"]), timeout=a.get("timeout", 2)).close()
        r = {"ok": True}
    except OSError as e:
        r = {"ok": False, "error": type(e).__name__}
    r["elapsed"] = time.monotonic() - t
    return r

def resolve(a):
    t = time.monotonic()
    try:
        infos = socket.getaddrinfo(a["host"], 443, socket.AF_INET, socket.SOCK_STREAM)
        r = {"ok": True, "ip": infos[0][4][0]}
    except socket.gaierror as e:
        r = {"ok": False, "error": str(e)}
    r["elapsed"] = time.monotonic() - t
    return r

def _tunnel(a):
    s = socket.create_connection((a["proxy_host"], a["proxy_port"]), timeout=5)
    target = "%s:%d" % (a["host"], a["port"])
    req = "CONNECT %s HTTP/1.1\r\nHost: %s\r\n" % (target, target)
    if a.get("auth"):
        req += "Proxy-Authorization: Basic %s\r\n" % base64.b64encode(a["auth"].encode()).decode()
    s.sendall((req + "\r\n").encode())
    buf = b""
    while b"\r\n\r\n" not in buf:  # byte by byte: do not eat TLS bytes
        c = s.recv(1)
        if not c:
            break
        buf += c
    line = buf.split(b"\r\n", 1)[0].decode(errors="replace")
    parts = line.split()
    return s, line, int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None

def proxy_connect(a):
    s, line, code = _tunnel(a)
    s.close()
    return {"status_line": line, "code": code}

def tls(a):
    r = {}
    if a.get("proxy_host"):
        s, r["status_line"], r["code"] = _tunnel(a)
        if r["code"] != 200:
            return r
    else:
        s = socket.create_connection((a["host"], a["port"]), timeout=5)
    ctx = ssl.create_default_context(cafile=a["cafile"])
    try:
        t = ctx.wrap_socket(s, server_hostname=a["host"])
    except ssl.SSLCertVerificationError as e:
        r.update(verified=False, error=e.verify_message)
        return r
    except ssl.SSLError as e:
        r.update(verified=False, error=e.reason)
        return r
    issuer = dict(x[0] for x in t.getpeercert()["issuer"])
    t.sendall(("GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % a["host"]).encode())
    data = b""
    while True:
        c = t.recv(4096)
        if not c:
            break
        data += c
    r.update(verified=True, issuer_o=issuer.get("organizationName"),
             http_status_line=data.split(b"\r\n", 1)[0].decode())
    return r

def http(a):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(a["url"], timeout=5) as resp:
        return {"status": resp.status, "body": resp.read().decode()}

def raw(a):
    """One request, sent as given; the whole answer as text."""
    s = socket.create_connection((a["host"], a["port"]), timeout=5)
    if a.get("proxy"):
        s.close()
        s = socket.create_connection((a["proxy_host"], a["proxy_port"]), timeout=5)
    s.sendall(a["request"].encode())
    data = b""
    while True:
        c = s.recv(4096)
        if not c:
            break
        data += c
    s.close()
    return {"text": data.decode(errors="replace")}

def hosts_file(a):
    with open("/etc/hosts") as f:
        return {"text": f.read()}

print(json.dumps([globals()[op.pop("op")](op) for op in json.loads(sys.argv[1])]))
'''

_counter = 0


def _set_subreaper():
    """Adopt the lab's orphaned processes so they can be reaped here
    (PID 1 of some containers reaps late or never)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def _reap():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except OSError:
        return False
    return data[data.rindex(")") + 2] not in "ZX"


def _netns_list():
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _read(path):
    with open(path) as f:
        return f.read()


def lab(*args, check=True, timeout=60):
    cp = subprocess.run([sys.executable, LAB] + list(args), capture_output=True, text=True,
                        timeout=timeout)
    if check and cp.returncode != 0:
        raise AssertionError("lab.py %s failed (%d):\n%s%s" % (
            " ".join(args), cp.returncode, cp.stdout, cp.stderr))
    return cp


def setUpModule():
    _set_subreaper()


@unittest.skipUnless(os.geteuid() == 0, "needs root")
@unittest.skipUnless(all(shutil.which(t) for t in ("ip", "iptables", "openssl", "tinyproxy")),
                     "needs ip, iptables, openssl and tinyproxy")
class LabTest(unittest.TestCase):
    def up(self, spec=SPEC):
        global _counter
        _counter += 1
        name = "t%d%d" % (os.getpid(), _counter)
        tmp = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
        json.dump(spec, tmp)
        tmp.close()
        self.addCleanup(os.unlink, tmp.name)
        self.addCleanup(_reap)
        self.addCleanup(lab, "down", "--name", name, check=False)
        info = json.loads(lab("up", "--name", name, "--spec", tmp.name).stdout)
        return name, info

    def probe(self, name, *ops, timeout=30):
        cp = subprocess.run(["ip", "netns", "exec", name, sys.executable, "-c", PROBE,
                             json.dumps(list(ops))],
                            capture_output=True, text=True, timeout=timeout)
        self.assertEqual(cp.returncode, 0, cp.stderr)
        return json.loads(cp.stdout)

    def firewall(self, name, rules):
        self.assertEqual(json.loads(lab("firewall", "--name", name, "--rules",
                                        json.dumps(rules)).stdout), {"ok": True})

    # ------------------------------------------------------------------

    def test_up_output_and_files(self):
        name, info = self.up()
        self.assertEqual(set(info), {"name", "dir", "ca_bundle", "microsoft_ca",
                                     "interceptor_ca", "proxy_url"})
        self.assertEqual(info["name"], name)
        self.assertEqual(info["proxy_url"], "http://127.0.0.1:3128")
        self.assertIn(name, _netns_list())
        bundle = _read(info["ca_bundle"])
        self.assertEqual(bundle.count("BEGIN CERTIFICATE"), 2)
        self.assertIn(_read(info["microsoft_ca"]), bundle)
        self.assertIn(_read(info["interceptor_ca"]), bundle)
        subj = subprocess.run(["openssl", "x509", "-noout", "-subject", "-in",
                               info["microsoft_ca"]], capture_output=True, text=True).stdout
        self.assertIn("O = Microsoft Corporation, CN = Microsoft Test Root CA", subj)
        with open("/etc/netns/%s/resolv.conf" % name) as f:
            self.assertIn("nameserver 127.0.0.53", f.read())

    def test_no_proxy_spec(self):
        spec = dict(SPEC, proxy=None)
        name, info = self.up(spec)
        self.assertIsNone(info["proxy_url"])
        cp = lab("proxy", "--name", name, "--state", "running", check=False)
        self.assertNotEqual(cp.returncode, 0)
        self.assertIn("no proxy", cp.stderr)

    def test_name_resolution(self):
        name, _ = self.up()
        ops = [{"op": "resolve", "host": h} for h in SPEC["hosts"]]
        ops.append({"op": "resolve", "host": "unknown.example.test"})
        ops.append({"op": "hosts_file"})
        res = self.probe(name, *ops)
        for (host, ip), r in zip(SPEC["hosts"].items(), res):
            self.assertEqual(r, dict(r, ok=True, ip=ip), host)
        self.assertFalse(res[-2]["ok"], res[-2])
        self.assertLess(res[-2]["elapsed"], 3.0, res[-2])
        self.assertIn("127.0.0.1 localhost", res[-1]["text"])

    def test_tls_issuers(self):
        name, info = self.up()
        bundle = info["ca_bundle"]
        ms, ic, ss, ms_only_ic = self.probe(
            name,
            {"op": "tls", "host": MS_HOST, "port": 443, "cafile": bundle},
            {"op": "tls", "host": "intercepted.login.test", "port": 443, "cafile": bundle},
            {"op": "tls", "host": "selfsigned.login.test", "port": 443, "cafile": bundle},
            {"op": "tls", "host": MS_HOST, "port": 443, "cafile": info["interceptor_ca"]},
        )
        self.assertEqual(ms, {"verified": True, "issuer_o": "Microsoft Corporation",
                              "http_status_line": "HTTP/1.1 200 OK"})
        self.assertEqual(ic, {"verified": True, "issuer_o": "Contoso TLS Inspection",
                              "http_status_line": "HTTP/1.1 200 OK"})
        self.assertFalse(ss["verified"], ss)
        self.assertIn("self-signed", ss["error"])
        self.assertFalse(ms_only_ic["verified"], ms_only_ic)

    def test_http_and_tcp_listeners(self):
        name, _ = self.up()
        http, tcp, closed = self.probe(
            name,
            {"op": "http", "url": "http://crl.digicert.test/crl.crl"},
            {"op": "connect", "host": "127.0.0.40", "port": 9000},
            {"op": "connect", "host": "127.0.0.40", "port": 9001},
        )
        self.assertEqual(http["status"], 200)
        self.assertTrue(tcp["ok"], tcp)
        self.assertEqual(closed["error"], "ConnectionRefusedError")

    def test_a_dual_stack_name_and_an_ipv6_rule(self):
        spec = dict(SPEC, hosts=dict(SPEC["hosts"], **{"dual.test": ["::1", "127.0.0.11"]}))
        name, _ = self.up(spec)
        self.assertIn("::1 dual.test\n127.0.0.11 dual.test", self.probe(name, {"op": "hosts_file"})[0]["text"])
        self.firewall(name, ["ip6 -p tcp -d ::1 --dport 443 -j DROP"])
        v6, v4 = self.probe(name, {"op": "connect", "host": "::1", "port": 443, "timeout": 1},
                            {"op": "connect", "host": "127.0.0.11", "port": 443, "timeout": 2})
        self.assertEqual(v6["error"], "TimeoutError", v6)
        self.assertTrue(v4["ok"], v4)
        self.firewall(name, [])
        rules = lab("exec", "--name", name, "--", "ip6tables", "-S", "OUTPUT").stdout
        self.assertEqual(rules.strip(), "-P OUTPUT ACCEPT")

    def test_informational_answers_legacy_tls_and_a_filtering_proxy(self):
        spec = dict(SPEC,
                    hosts=dict(SPEC["hosts"], **{"old.test": "127.0.0.51", "blocked.test": "127.0.0.52"}),
                    servers=SPEC["servers"] + [
                        {"ip": "127.0.0.50", "port": 80, "kind": "http", "status": 500, "informational": [103]},
                        {"ip": "127.0.0.51", "port": 443, "kind": "tls", "issuer": "microsoft",
                         "cn": "old.test", "max_tls": "1.1"},
                        {"ip": "127.0.0.52", "port": 80, "kind": "http"},
                    ],
                    proxy=dict(SPEC["proxy"], filter=["blocked\\.test"]))
        name, info = self.up(spec)
        hints, old, filtered, allowed = self.probe(
            name,
            {"op": "raw", "host": "127.0.0.50", "port": 80, "request": "GET / HTTP/1.1\r\nHost: x\r\n\r\n"},
            {"op": "tls", "host": "old.test", "port": 443, "cafile": info["ca_bundle"]},
            {"op": "raw", "host": "blocked.test", "port": 80, "proxy": True, "proxy_host": "127.0.0.1",
             "proxy_port": 3128, "request": "GET http://blocked.test/ HTTP/1.1\r\nHost: blocked.test\r\n\r\n"},
            {"op": "raw", "host": "127.0.0.50", "port": 80, "proxy": True, "proxy_host": "127.0.0.1",
             "proxy_port": 3128, "request": "GET http://127.0.0.50/ HTTP/1.1\r\nHost: 127.0.0.50\r\n\r\n"},
        )
        self.assertTrue(hints["text"].startswith("HTTP/1.1 103 Early Hints\r\n"), hints)
        self.assertIn("\r\n\r\nHTTP/1.1 500 ", hints["text"])
        self.assertEqual(old, dict(old, verified=False, error="TLSV1_ALERT_PROTOCOL_VERSION"),
                         "a TLS 1.2 client cannot talk to a TLS 1.1 server")
        self.assertTrue(filtered["text"].startswith("HTTP/1.1 403"), filtered["text"][:200])
        self.assertIn("Server: tinyproxy", filtered["text"])
        self.assertFalse(allowed["text"].startswith("HTTP/1.1 403"), allowed["text"][:200])

    def test_firewall_drop_reject_and_clear(self):
        name, _ = self.up()
        ops = ({"op": "connect", "host": "127.0.0.11", "port": 443, "timeout": 2},
               {"op": "connect", "host": "127.0.0.21", "port": 80, "timeout": 2})
        self.firewall(name, ["-p tcp -d 127.0.0.11 --dport 443 -j DROP",
                             "-p tcp --dport 80 -j REJECT --reject-with tcp-reset"])
        dropped, rejected = self.probe(name, *ops)
        self.assertEqual(dropped["error"], "TimeoutError", dropped)
        self.assertGreaterEqual(dropped["elapsed"], 1.9)
        self.assertEqual(rejected["error"], "ConnectionRefusedError", rejected)
        self.assertLess(rejected["elapsed"], 1.0)
        self.firewall(name, [])
        rules = lab("exec", "--name", name, "--", "iptables", "-S", "OUTPUT").stdout
        self.assertEqual(rules.strip(), "-P OUTPUT ACCEPT")
        for r in self.probe(name, *ops):
            self.assertTrue(r["ok"], r)
        bad = lab("firewall", "--name", name, "--rules", '["-p tcp --no-such-option"]',
                  check=False)
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn("iptables", bad.stderr)

    def test_owner_rule_blocks_root_but_tinyproxy_tunnels(self):
        name, info = self.up()
        self.firewall(name, ["-p tcp --dport 443 -m owner --uid-owner 0 -j DROP"])
        direct, tunnel = self.probe(
            name,
            {"op": "connect", "host": MS_HOST, "port": 443, "timeout": 2},
            {"op": "tls", "host": MS_HOST, "port": 443, "cafile": info["ca_bundle"],
             "proxy_host": "127.0.0.1", "proxy_port": 3128},
        )
        self.assertEqual(direct["error"], "TimeoutError", direct)
        self.assertEqual(tunnel["code"], 200, tunnel)
        # tinyproxy 1.11 answers CONNECT with "HTTP/1.0 200 Connection established"
        self.assertRegex(tunnel["status_line"], r"^HTTP/1\.[01] 200 ")
        self.assertTrue(tunnel["verified"], tunnel)
        self.assertEqual(tunnel["issuer_o"], "Microsoft Corporation")
        self.assertEqual(tunnel["http_status_line"], "HTTP/1.1 200 OK")

    def test_proxy_refuses_port_not_in_connect_ports(self):
        spec = dict(SPEC, proxy=dict(SPEC["proxy"], connect_ports=[443]))
        name, _ = self.up(spec)
        ok, refused = self.probe(
            name,
            {"op": "proxy_connect", "proxy_host": "127.0.0.1", "proxy_port": 3128,
             "host": MS_HOST, "port": 443},
            {"op": "proxy_connect", "proxy_host": "127.0.0.1", "proxy_port": 3128,
             "host": "crl.digicert.test", "port": 80},
        )
        self.assertEqual(ok["code"], 200, ok)
        self.assertEqual(refused["code"], 403, refused)  # "HTTP/1.1 403 Access violation"

    def test_proxy_basic_auth(self):
        spec = dict(SPEC, proxy=dict(SPEC["proxy"], basic_auth="user:s3cret"))
        name, info = self.up(spec)
        self.assertEqual(info["proxy_url"], "http://127.0.0.1:3128")
        base = {"op": "proxy_connect", "proxy_host": "127.0.0.1", "proxy_port": 3128,
                "host": MS_HOST, "port": 443}
        missing, good, wrong = self.probe(name, base, dict(base, auth="user:s3cret"),
                                          dict(base, auth="user:wrong"))
        self.assertEqual(missing["code"], 407, missing)
        self.assertEqual(good["code"], 200, good)
        # tinyproxy 1.11.1 answers wrong credentials with 401, not 407
        self.assertIn(wrong["code"], (401, 407), wrong)

    def test_proxy_stop_and_restart(self):
        name, info = self.up()
        op = {"op": "connect", "host": "127.0.0.1", "port": 3128, "timeout": 2}
        out = json.loads(lab("proxy", "--name", name, "--state", "stopped").stdout)
        self.assertEqual(out["state"], "stopped")
        (r,) = self.probe(name, op)
        self.assertEqual(r["error"], "ConnectionRefusedError", r)
        # stopping twice is fine
        lab("proxy", "--name", name, "--state", "stopped")
        out = json.loads(lab("proxy", "--name", name, "--state", "running").stdout)
        self.assertTrue(out["pid"])
        (r, t) = self.probe(name, op, {"op": "tls", "host": MS_HOST, "port": 443,
                                       "cafile": info["ca_bundle"],
                                       "proxy_host": "127.0.0.1", "proxy_port": 3128})
        self.assertTrue(r["ok"], r)
        self.assertTrue(t["verified"], t)

    def test_exec(self):
        name, _ = self.up()
        cp = lab("exec", "--name", name, "--", "cat", "/etc/hosts")
        self.assertIn("127.0.0.11 %s" % MS_HOST, cp.stdout)
        cp = lab("exec", "--name", name, "--", "sh", "-c", "exit 3", check=False)
        self.assertEqual(cp.returncode, 3)

    def test_up_refuses_existing_name_and_bad_specs(self):
        name, info = self.up()
        tmp = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
        json.dump(SPEC, tmp)
        tmp.close()
        self.addCleanup(os.unlink, tmp.name)
        cp = lab("up", "--name", name, "--spec", tmp.name, check=False)
        self.assertNotEqual(cp.returncode, 0)
        self.assertIn("already exists", cp.stderr)
        self.assertTrue(os.path.isdir(info["dir"]), "failed up must not harm the existing lab")

        bad_specs = [
            dict(SPEC, servers=[{"ip": "10.0.0.1", "port": 443, "kind": "tcp"}]),
            dict(SPEC, hosts={"bad_name!": "127.0.0.5"}),
            dict(SPEC, servers=[{"ip": "127.0.0.9", "port": 443, "kind": "tls",
                                 "issuer": "letsencrypt", "cn": "x.test"}]),
        ]
        for i, spec in enumerate(bad_specs):
            bad_name = "%sb%d" % (name, i)
            self.addCleanup(lab, "down", "--name", bad_name, check=False)
            with open(tmp.name, "w") as f:
                json.dump(spec, f)
            cp = lab("up", "--name", bad_name, "--spec", tmp.name, check=False)
            self.assertNotEqual(cp.returncode, 0, spec)
            self.assertEqual(cp.stdout, "")
            self.assertNotIn(bad_name, _netns_list())
            self.assertFalse(os.path.exists("/tmp/appproxy-lab-%s.json" % bad_name))

    def test_down_removes_everything(self):
        name, info = self.up()
        with open("/tmp/appproxy-lab-%s.json" % name) as f:
            state = json.load(f)
        pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True,
                              text=True).stdout.split()
        pids = {int(p) for p in pids} | {state["serve_pid"], state["proxy_pid"]}
        self.assertEqual(len(pids), 2)
        # a stray process started inside the namespace must be killed too
        stray = subprocess.Popen(["ip", "netns", "exec", name, "sleep", "300"],
                                 start_new_session=True)
        self.addCleanup(stray.wait)
        self.firewall(name, ["-p tcp --dport 443 -j DROP"])

        self.assertEqual(json.loads(lab("down", "--name", name).stdout)["ok"], True)
        self.assertIn(stray.wait(timeout=5), (-15, -9))
        _reap()
        self.assertNotIn(name, _netns_list())
        self.assertFalse(os.path.exists("/run/netns/" + name))
        self.assertFalse(os.path.exists("/etc/netns/" + name))
        self.assertFalse(os.path.exists(info["dir"]))
        self.assertFalse(os.path.exists("/tmp/appproxy-lab-%s.json" % name))
        for pid in pids:
            self.assertFalse(_alive(pid), "pid %d still running" % pid)
        for entry in os.listdir("/proc"):
            if entry.isdigit() and _alive(int(entry)):
                try:
                    with open("/proc/%s/cmdline" % entry, "rb") as f:
                        cmd = f.read()
                except OSError:
                    continue
                self.assertNotIn(info["dir"].encode(), cmd)
        # idempotent
        self.assertEqual(json.loads(lab("down", "--name", name).stdout)["ok"], True)


if __name__ == "__main__":
    unittest.main()
