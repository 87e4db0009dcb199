#!/usr/bin/env python3
"""Network-namespace test lab for appproxy_exporter.

Builds a throw-away Linux network namespace with fake Microsoft endpoints
(plain TCP, HTTP and TLS listeners on loopback addresses), a hosts file, a
dead resolver, optional iptables rules and an optional real tinyproxy.
Everything lives on the namespace's own loopback; nothing leaves the host.

Subcommands (JSON on stdout, errors on stderr, exit code != 0 on error):

  up       --name NAME --spec SPEC.json|-   create the lab, print its description
  firewall --name NAME --rules JSON-LIST    replace the namespace's OUTPUT rules
  proxy    --name NAME --state stopped|running
  down     --name NAME                      remove everything (idempotent)
  exec     --name NAME -- CMD [ARGS...]     run a command inside the namespace

Hidden helpers (run inside the namespace by the commands above):

  serve    --spec FILE --dir DIR            run every listener of the spec
  wait     --targets IP:PORT... [--absent]  poll listeners from inside the ns

Python standard library only; needs root, iproute2, iptables, openssl and
(for "proxy") tinyproxy.  See README.md next to this file.
"""

import argparse
import grp
import http.server
import ipaddress
import json
import os
import pwd
import re
import secrets
import shlex
import shutil
import signal
import socket
import socketserver
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time

LAB_PY = os.path.abspath(__file__)
TMP_ROOT = "/tmp"
STATE_FILE = TMP_ROOT + "/appproxy-lab-{name}.json"
# Lab directories are /tmp/appproxy-lab-NAME.<random>; names cannot contain
# ".", so the glob below never matches another lab's directory.
DIR_PREFIX = "appproxy-lab-{name}."
DIR_MARKER = ".appproxy-lab"
ETC_NETNS = "/etc/netns/{name}"
DEAD_RESOLVER = "127.0.0.53"

NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
LABEL_RE = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
CREDENTIAL_RE = re.compile(r"^[A-Za-z0-9._~!$&'()*+,;=%-]+$")

KINDS = ("tcp", "http", "tls")
ISSUERS = ("microsoft", "interceptor", "self-signed")
CA_SUBJECTS = {
    "microsoft": ("Microsoft Corporation", "Microsoft Test Root CA"),
    "interceptor": ("Contoso TLS Inspection", "Contoso Inspection Root"),
}

READY_TIMEOUT = 20.0  # seconds for listeners to come up
SERVER_IO_TIMEOUT = 15.0  # per-connection I/O timeout of the http/tls servers
TCP_HOLD_SECONDS = 60.0  # how long a "tcp" listener holds an idle connection
KEY_SPEC = "rsa:2048"


class LabError(Exception):
    pass


# ---------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------


def log(msg):
    sys.stderr.write("%s lab[%d]: %s\n" % (time.strftime("%H:%M:%S"), os.getpid(), msg))
    sys.stderr.flush()


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def run(cmd, check=True, timeout=60, input_text=None):
    """Run a command, return CompletedProcess; raise LabError on failure."""
    try:
        cp = subprocess.run(
            cmd,
            input=input_text,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            timeout=timeout,
            stdin=None if input_text is not None else subprocess.DEVNULL,
        )
    except FileNotFoundError as e:
        raise LabError("command not found: %s (%s)" % (cmd[0], e))
    except subprocess.TimeoutExpired:
        raise LabError("command timed out after %ss: %s" % (timeout, shlex.join(cmd)))
    if check and cp.returncode != 0:
        raise LabError(
            "command failed (exit %d): %s\n%s"
            % (cp.returncode, shlex.join(cmd), (cp.stderr or cp.stdout).strip())
        )
    return cp


def check_name(name):
    if not NAME_RE.match(name or ""):
        raise LabError("invalid lab name %r (use 1-32 characters of [A-Za-z0-9_-])" % (name,))
    return name


def netns_exists(name):
    return os.path.exists("/run/netns/" + name) or os.path.exists("/var/run/netns/" + name)


def netns_list():
    cp = run(["ip", "netns", "list"], check=False)
    return [line.split()[0] for line in cp.stdout.splitlines() if line.strip()]


def require_netns(name):
    if name not in netns_list():
        raise LabError("network namespace %r does not exist (run 'up' first)" % name)


def state_path(name):
    return STATE_FILE.format(name=name)


def load_state(name):
    try:
        with open(state_path(name)) as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except ValueError as e:
        raise LabError("corrupt state file %s: %s" % (state_path(name), e))


def save_state(state):
    path = state_path(state["name"])
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(state, f, indent=2)
    os.replace(tmp, path)


def proc_state(pid):
    """Return the /proc state letter of pid, or None when it does not exist."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    try:
        return data[data.rindex(")") + 2]
    except (ValueError, IndexError):
        return None


def alive(pid):
    """True when pid exists and is not a zombie."""
    return bool(pid) and proc_state(pid) not in (None, "Z", "X")


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def terminate(pids, grace=3.0):
    """SIGTERM the given pids, SIGKILL whatever is still alive after grace."""
    pids = [p for p in pids if alive(p)]
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 3.0)):
        for p in pids:
            try:
                os.kill(p, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            pids = [p for p in pids if alive(p)]
            if not pids:
                return []
            time.sleep(0.05)
    return [p for p in pids if alive(p)]


def tail(path, lines=30):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


# ---------------------------------------------------------------------------
# spec
# ---------------------------------------------------------------------------


def check_dns_name(name, what):
    if not isinstance(name, str) or not name or len(name) > 253:
        raise LabError("%s: invalid DNS name %r" % (what, name))
    labels = name.rstrip(".").split(".")
    if not all(LABEL_RE.match(label) for label in labels) or labels[-1].isdigit():
        raise LabError("%s: invalid DNS name %r" % (what, name))
    return name.rstrip(".").lower()


def check_loopback(ip, what):
    try:
        addr = ipaddress.IPv4Address(ip)
    except (ipaddress.AddressValueError, TypeError):
        raise LabError("%s: %r is not an IPv4 address" % (what, ip))
    if not addr.is_loopback:
        raise LabError("%s: %s is outside 127.0.0.0/8; the lab only uses loopback" % (what, ip))
    return str(addr)


def check_host_addresses(value, what):
    """A hosts entry: one IPv4 loopback address, or a list of them that may also hold ::1
    (a dual-stack name, for the Happy Eyeballs tests)."""
    if isinstance(value, str):
        return [check_loopback(value, what)]
    if not isinstance(value, list) or not value:
        raise LabError("%s must be an address or a non-empty list of addresses" % what)
    out = []
    for ip in value:
        if ip == "::1":
            out.append(ip)
        else:
            out.append(check_loopback(ip, what))
    return out


def check_port(port, what):
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise LabError("%s: invalid port %r" % (what, port))
    return port


def normalize_spec(spec):
    if not isinstance(spec, dict):
        raise LabError("spec must be a JSON object")
    unknown = set(spec) - {"hosts", "servers", "proxy"}
    if unknown:
        raise LabError("spec: unknown keys %s" % sorted(unknown))
    hosts = {}
    raw_hosts = spec.get("hosts") or {}
    if not isinstance(raw_hosts, dict):
        raise LabError("spec.hosts must be an object name -> ip")
    for name, ip in raw_hosts.items():
        hosts[check_dns_name(name, "hosts")] = check_host_addresses(ip, "hosts[%s]" % name)

    servers = []
    seen = set()
    raw_servers = spec.get("servers") or []
    if not isinstance(raw_servers, list):
        raise LabError("spec.servers must be a list")
    for i, s in enumerate(raw_servers):
        what = "servers[%d]" % i
        if not isinstance(s, dict):
            raise LabError("%s must be an object" % what)
        kind = s.get("kind")
        if kind not in KINDS:
            raise LabError("%s: kind must be one of %s" % (what, ", ".join(KINDS)))
        out = {
            "ip": check_loopback(s.get("ip"), what),
            "port": check_port(s.get("port"), what),
            "kind": kind,
        }
        if kind == "tls":
            if s.get("issuer") not in ISSUERS:
                raise LabError("%s: issuer must be one of %s" % (what, ", ".join(ISSUERS)))
            out["issuer"] = s["issuer"]
            # A wildcard certificate (`*.servicebus.test`) covers one label under its domain only.
            cn = s.get("cn")
            if isinstance(cn, str) and cn.startswith("*."):
                out["cn"] = "*." + check_dns_name(cn[2:], what + ".cn")
            else:
                out["cn"] = check_dns_name(cn, what + ".cn")
        if kind in ("http", "tls"):
            status = s.get("status", 200)
            if not isinstance(status, int) or not 100 <= status <= 599:
                raise LabError("%s: invalid status %r" % (what, status))
            out["status"] = status
            # Backend behaviours (steps 7-9): answer late, add headers, send a large body,
            # or trickle the head out byte by byte.
            for key in ("delay", "trickle"):
                value = s.get(key, 0)
                if not isinstance(value, (int, float)) or value < 0:
                    raise LabError("%s: %s must be a number of seconds >= 0" % (what, key))
                out[key] = value
            # Interim 1xx answers sent before the final one (a 103 Early Hints, say).
            informational = s.get("informational", [])
            if not isinstance(informational, list) or not all(
                    isinstance(c, int) and 100 <= c <= 199 for c in informational):
                raise LabError("%s: informational must be a list of 1xx codes" % what)
            out["informational"] = informational
            headers = s.get("headers", {})
            if not isinstance(headers, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
                raise LabError("%s: headers must be an object of strings" % what)
            out["headers"] = headers
            body = s.get("body")
            if body is not None and not isinstance(body, str):
                raise LabError("%s: body must be a string" % what)
            out["body"] = body
            body_bytes = s.get("body_bytes")
            if body_bytes is not None and (not isinstance(body_bytes, int) or body_bytes < 0):
                raise LabError("%s: body_bytes must be a whole number >= 0" % what)
            out["body_bytes"] = body_bytes
        if kind == "tls":
            # "1.1": a backend that speaks only TLS 1.0 and 1.1 (old ciphers allowed).
            max_tls = s.get("max_tls")
            if max_tls not in (None, "1.1"):
                raise LabError("%s: max_tls must be \"1.1\" or absent" % what)
            out["max_tls"] = max_tls
        if kind == "tcp":
            mode = s.get("mode", "hold")
            if mode not in ("hold", "close"):
                raise LabError("%s: mode must be 'hold' or 'close'" % what)
            out["mode"] = mode
        key = (out["ip"], out["port"])
        if key in seen:
            raise LabError("%s: %s:%d is used twice" % (what, key[0], key[1]))
        seen.add(key)
        servers.append(out)

    proxy = spec.get("proxy")
    if proxy is not None:
        if not isinstance(proxy, dict):
            raise LabError("spec.proxy must be an object or null")
        ports = proxy.get("connect_ports", [443, 80])
        if not isinstance(ports, list):
            raise LabError("proxy.connect_ports must be a list")
        auth = proxy.get("basic_auth")
        if auth is not None:
            user, sep, password = auth.partition(":") if isinstance(auth, str) else ("", "", "")
            if not sep or not CREDENTIAL_RE.match(user) or not CREDENTIAL_RE.match(password):
                raise LabError("proxy.basic_auth must be 'user:pass' without spaces or quotes")
        filters = proxy.get("filter", [])
        if not isinstance(filters, list) or not all(isinstance(f, str) and f and "\n" not in f for f in filters):
            raise LabError("proxy.filter must be a list of host patterns")
        proxy = {
            "filter": filters,
            "ip": check_loopback(proxy.get("ip", "127.0.0.1"), "proxy"),
            "port": check_port(proxy.get("port", 3128), "proxy"),
            "connect_ports": [check_port(p, "proxy.connect_ports") for p in ports],
            "basic_auth": auth,
        }
        if (proxy["ip"], proxy["port"]) in seen:
            raise LabError("proxy: %s:%d is also used by a server" % (proxy["ip"], proxy["port"]))
    return {"hosts": hosts, "servers": servers, "proxy": proxy}


def read_spec(path):
    try:
        if path == "-":
            return json.load(sys.stdin)
        with open(path) as f:
            return json.load(f)
    except OSError as e:
        raise LabError("cannot read spec %s: %s" % (path, e))
    except ValueError as e:
        raise LabError("spec %s is not valid JSON: %s" % (path, e))


# ---------------------------------------------------------------------------
# certificates (openssl CLI)
# ---------------------------------------------------------------------------


def _read(path):
    with open(path) as f:
        return f.read()


def _write(path, text, mode=0o644):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def make_ca(d, issuer):
    org, cn = CA_SUBJECTS[issuer]
    cnf = os.path.join(d, "certs", issuer + "-ca.cnf")
    _write(
        cnf,
        "[req]\nprompt = no\ndistinguished_name = dn\nx509_extensions = v3_ca\n"
        "[dn]\nO = %s\nCN = %s\n"
        "[v3_ca]\nbasicConstraints = critical,CA:TRUE\n"
        "keyUsage = critical,keyCertSign,cRLSign\n"
        "subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid:always\n" % (org, cn),
    )
    key = os.path.join(d, "certs", issuer + "-ca.key")
    pem = os.path.join(d, "certs", issuer + "-ca.pem")
    run(["openssl", "req", "-x509", "-new", "-newkey", KEY_SPEC, "-nodes", "-sha256",
         "-days", "3650", "-config", cnf, "-keyout", key, "-out", pem])
    os.chmod(key, 0o600)
    return pem, key


def make_leaf(d, issuer, cn, cas):
    base = os.path.join(d, "certs", "%s-%s" % (issuer, cn))
    cnf = base + ".cnf"
    org = "O = Self Signed Test\n" if issuer == "self-signed" else ""
    _write(
        cnf,
        "[req]\nprompt = no\ndistinguished_name = dn\n"
        "[dn]\n%sCN = %s\n"
        "[v3_leaf]\nbasicConstraints = critical,CA:FALSE\n"
        "keyUsage = critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage = serverAuth\nsubjectAltName = DNS:%s\n"
        "subjectKeyIdentifier = hash\n" % (org, cn, cn),
    )
    key, pem = base + ".key", base + ".pem"
    serial = "0x" + secrets.token_hex(12)
    if issuer == "self-signed":
        run(["openssl", "req", "-x509", "-new", "-newkey", KEY_SPEC, "-nodes", "-sha256",
             "-days", "30", "-set_serial", serial, "-config", cnf, "-extensions", "v3_leaf",
             "-keyout", key, "-out", pem])
    else:
        ca_pem, ca_key = cas[issuer]
        csr = base + ".csr"
        run(["openssl", "req", "-new", "-newkey", KEY_SPEC, "-nodes", "-sha256",
             "-config", cnf, "-keyout", key, "-out", csr])
        _write(cnf, _read(cnf) + "authorityKeyIdentifier = keyid,issuer\n")
        run(["openssl", "x509", "-req", "-sha256", "-days", "30", "-in", csr,
             "-CA", ca_pem, "-CAkey", ca_key, "-set_serial", serial,
             "-extfile", cnf, "-extensions", "v3_leaf", "-out", pem])
    os.chmod(key, 0o600)
    return pem, key


def leaf_paths(d, issuer, cn):
    base = os.path.join(d, "certs", "%s-%s" % (issuer, cn))
    return base + ".pem", base + ".key"


def make_certs(d, spec):
    os.makedirs(os.path.join(d, "certs"), mode=0o755, exist_ok=True)
    cas = {issuer: make_ca(d, issuer) for issuer in ("microsoft", "interceptor")}
    bundle = os.path.join(d, "ca-bundle.pem")
    with open(bundle, "w") as out:
        for issuer in ("microsoft", "interceptor"):
            out.write(_read(cas[issuer][0]))
    done = set()
    for s in spec["servers"]:
        if s["kind"] == "tls" and (s["issuer"], s["cn"]) not in done:
            make_leaf(d, s["issuer"], s["cn"], cas)
            done.add((s["issuer"], s["cn"]))
    return bundle, cas["microsoft"][0], cas["interceptor"][0]


# ---------------------------------------------------------------------------
# tinyproxy
# ---------------------------------------------------------------------------


def tinyproxy_conf(d, proxy):
    lines = [
        "# generated by tests/netns/lab.py",
        "User nobody",
        "Group %s" % _nobody_group_name(),
        "Listen %s" % proxy["ip"],
        "Port %d" % proxy["port"],
        "Timeout 60",
        'PidFile "%s"' % os.path.join(d, "tinyproxy.pid"),
        'LogFile "%s"' % os.path.join(d, "tinyproxy.log"),
        "LogLevel Info",
        "MaxClients 100",
        "Allow 127.0.0.0/8",
        "DisableViaHeader Yes",
    ]
    lines += ["ConnectPort %d" % p for p in proxy["connect_ports"]]
    if proxy.get("filter"):
        # tinyproxy answers 403 "Filtered" for these hosts (extended regular expressions).
        filter_file = os.path.join(d, "tinyproxy.filter")
        _write(filter_file, "\n".join(proxy["filter"]) + "\n")
        lines += ['Filter "%s"' % filter_file, "FilterType ere"]
    if proxy["basic_auth"]:
        user, _, password = proxy["basic_auth"].partition(":")
        lines.append("BasicAuth %s %s" % (user, password))
    path = os.path.join(d, "tinyproxy.conf")
    _write(path, "\n".join(lines) + "\n")
    return path


def _nobody_group_name():
    for g in ("nogroup", "nobody"):
        try:
            grp.getgrnam(g)
            return g
        except KeyError:
            pass
    raise LabError("neither group 'nogroup' nor 'nobody' exists")


def start_tinyproxy(state):
    if shutil.which("tinyproxy") is None:
        raise LabError("tinyproxy is not installed")
    d = state["dir"]
    conf = os.path.join(d, "tinyproxy.conf")
    pidfile = os.path.join(d, "tinyproxy.pid")
    logfile = os.path.join(d, "tinyproxy.log")
    # tinyproxy writes the pid file as root but opens the log file only
    # after dropping to nobody, so the log must be writable by nobody.
    if os.path.exists(pidfile):
        os.unlink(pidfile)
    if not os.path.exists(logfile):
        open(logfile, "a").close()
    os.chown(logfile, pwd.getpwnam("nobody").pw_uid, grp.getgrnam(_nobody_group_name()).gr_gid)
    out = open(os.path.join(d, "tinyproxy.out"), "ab")
    p = subprocess.Popen(
        ["ip", "netns", "exec", state["name"], "tinyproxy", "-d", "-c", conf],
        stdin=subprocess.DEVNULL, stdout=out, stderr=out, cwd=d, start_new_session=True,
    )
    out.close()
    # "ip netns exec" execs the command without forking: p.pid is tinyproxy.
    return p.pid


# ---------------------------------------------------------------------------
# readiness (runs "lab.py wait" inside the namespace)
# ---------------------------------------------------------------------------


def wait_in_ns(name, targets, pids=(), absent=False, timeout=READY_TIMEOUT, logs=()):
    if not targets:
        return
    cmd = ["ip", "netns", "exec", name, sys.executable, LAB_PY, "wait",
           "--timeout", str(timeout), "--targets"] + ["%s:%d" % t for t in targets]
    if pids:
        cmd += ["--pids"] + [str(p) for p in pids]
    if absent:
        cmd.append("--absent")
    cp = run(cmd, check=False, timeout=timeout + 10)
    if cp.returncode != 0:
        msg = cp.stderr.strip() or cp.stdout.strip()
        for path in logs:
            t = tail(path)
            if t:
                msg += "\n--- %s ---\n%s" % (path, t.rstrip())
        raise LabError(msg)


def _listening(ip, port):
    """True when a TCP LISTEN socket for ip:port exists in this netns."""
    want = {"%08X:%04X" % (struct.unpack("=I", socket.inet_aton(a))[0], port)
            for a in (ip, "0.0.0.0")}
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[1] in want and fields[3] == "0A":
                    return True
    except OSError:
        pass
    return False


def cmd_wait(args):
    targets = []
    for t in args.targets:
        ip, _, port = t.rpartition(":")
        targets.append((ip, int(port)))
    pending = list(targets)
    deadline = time.monotonic() + args.timeout
    while True:
        still = []
        for ip, port in pending:
            if args.absent:
                if _listening(ip, port):
                    still.append((ip, port))
                continue
            try:
                socket.create_connection((ip, port), timeout=0.5).close()
            except OSError:
                # A firewall rule may block root's own probe; a LISTEN socket
                # in this namespace means the kernel accepts connections.
                if not _listening(ip, port):
                    still.append((ip, port))
        pending = still
        if not pending:
            emit({"ok": True})
            return 0
        dead = [p for p in args.pids if not alive(p)]
        if dead:
            raise LabError("process(es) %s exited before %s %s" % (
                dead, "closing" if args.absent else "listening",
                ", ".join("%s:%d" % t for t in pending)))
        if time.monotonic() > deadline:
            raise LabError("timed out after %ss waiting for %s to %s" % (
                args.timeout, ", ".join("%s:%d" % t for t in pending),
                "stop listening" if args.absent else "accept connections"))
        time.sleep(0.05)


# ---------------------------------------------------------------------------
# serve (runs inside the namespace)
# ---------------------------------------------------------------------------


class _Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, spec, handler, ssl_ctx=None):
        self.spec = spec
        self.ssl_ctx = ssl_ctx
        self.label = "%s %s:%d" % (spec["kind"], spec["ip"], spec["port"])
        if spec.get("cn"):
            self.label += " (%s, %s)" % (spec["cn"], spec["issuer"])
        super().__init__((spec["ip"], spec["port"]), handler)

    def finish_request(self, request, client_address):
        # Runs in the per-connection thread, so a slow TLS handshake never
        # blocks the accept loop.
        request.settimeout(SERVER_IO_TIMEOUT)
        if self.ssl_ctx is None:
            self.RequestHandlerClass(request, client_address, self)
            return
        try:
            tls = self.ssl_ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            log("%s: %s:%d: TLS handshake failed: %s" % (self.label, client_address[0],
                                                           client_address[1], e))
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            try:
                tls.close()
            except OSError:
                pass

    def handle_error(self, request, client_address):
        log("%s: %s: %r" % (self.label, client_address, sys.exc_info()[1]))


class _HTTPHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "appproxy-lab"

    def version_string(self):
        return self.server_version

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length > 0:
            self.rfile.read(min(length, 1 << 20))
        spec = self.server.spec
        if spec.get("delay"):
            time.sleep(spec["delay"])
        body = spec["body"].encode() if spec.get("body") is not None else ("ok %s\n" % spec.get("cn", spec["ip"])).encode()
        length = spec["body_bytes"] if spec.get("body_bytes") is not None else len(body)
        status = spec.get("status", 200)
        try:
            reason = http.HTTPStatus(status).phrase
        except ValueError:
            reason = "Status"
        lines = ["HTTP/1.1 %d %s" % (status, reason), "Server: appproxy-lab",
                 "Content-Type: text/plain", "Content-Length: %d" % length, "Connection: close"]
        lines += ["%s: %s" % (k, v) for k, v in spec.get("headers", {}).items()]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode()
        self.close_connection = True
        try:
            for code in spec.get("informational", []):
                try:
                    phrase = http.HTTPStatus(code).phrase
                except ValueError:
                    phrase = "Informational"
                self.wfile.write(("HTTP/1.1 %d %s\r\nLink: </lab.css>; rel=preload\r\n\r\n"
                                  % (code, phrase)).encode())
                self.wfile.flush()
            if spec.get("trickle"):
                for i in range(len(head)):
                    self.wfile.write(head[i:i + 1])
                    self.wfile.flush()
                    time.sleep(spec["trickle"])
            else:
                self.wfile.write(head)
            if self.command == "HEAD":
                return
            if spec.get("body_bytes") is None:
                self.wfile.write(body)
                return
            chunk = b"x" * 65536
            left = length
            while left > 0:
                n = min(left, len(chunk))
                self.wfile.write(chunk[:n])
                left -= n
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            pass

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_OPTIONS = do_PATCH = _answer

    def log_message(self, fmt, *args):
        log("%s: %s %s" % (self.server.label, self.address_string(), fmt % args))


class _TCPHandler(socketserver.BaseRequestHandler):
    def handle(self):
        if self.server.spec.get("mode") == "close":
            return
        self.request.settimeout(TCP_HOLD_SECONDS)
        try:
            while self.request.recv(4096):
                pass
        except OSError:
            pass


def build_server(s, d):
    if s["kind"] == "tcp":
        return _Server(s, _TCPHandler)
    if s["kind"] == "http":
        return _Server(s, _HTTPHandler)
    pem, key = leaf_paths(d, s["issuer"], s["cn"])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if s.get("max_tls") == "1.1":
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    ctx.load_cert_chain(pem, key)
    return _Server(s, _HTTPHandler, ssl_ctx=ctx)


def cmd_serve(args):
    with open(args.spec) as f:
        spec = normalize_spec(json.load(f))
    servers = []
    for s in spec["servers"]:
        try:
            servers.append(build_server(s, args.dir))
        except OSError as e:
            raise LabError("cannot listen on %s:%d: %s" % (s["ip"], s["port"], e))
    for srv in servers:
        threading.Thread(target=srv.serve_forever, name=srv.label, daemon=True).start()
        log("listening: %s" % srv.label)

    def stop(signum, frame):
        log("signal %d, exiting" % signum)
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while True:
        signal.pause()


# ---------------------------------------------------------------------------
# up / down / firewall / proxy / exec
# ---------------------------------------------------------------------------


def ensure_local(name, ip):
    """Make sure ip is a local address in the namespace (127/8 already is)."""
    out = run(["ip", "-n", name, "route", "get", ip]).stdout
    if not out.startswith("local "):
        run(["ip", "-n", name, "addr", "add", ip + "/32", "dev", "lo"])
        out = run(["ip", "-n", name, "route", "get", ip]).stdout
        if not out.startswith("local "):
            raise LabError("%s is not local in netns %s: %s" % (ip, name, out.strip()))


def cmd_up(args):
    name = check_name(args.name)
    spec = normalize_spec(read_spec(args.spec))
    for tool in ("ip", "iptables", "openssl"):
        if shutil.which(tool) is None:
            raise LabError("%s is not installed" % tool)
    if os.geteuid() != 0:
        raise LabError("must run as root")
    if name in netns_list() or netns_exists(name):
        raise LabError("network namespace %r already exists (run 'down --name %s' first)"
                       % (name, name))
    if os.path.exists(state_path(name)):
        raise LabError("stale state file %s exists (run 'down --name %s' first)"
                       % (state_path(name), name))
    if os.path.exists(ETC_NETNS.format(name=name)):
        raise LabError("%s already exists (run 'down --name %s' first)"
                       % (ETC_NETNS.format(name=name), name))

    d = tempfile.mkdtemp(prefix=DIR_PREFIX.format(name=name), dir=TMP_ROOT)
    os.chmod(d, 0o755)  # tinyproxy (as nobody) must reach its log file
    open(os.path.join(d, DIR_MARKER), "w").close()
    state = {"name": name, "dir": d, "serve_pid": None, "proxy_pid": None,
             "proxy": spec["proxy"], "created": time.time()}
    save_state(state)
    try:
        return _up(name, spec, state)
    except BaseException:
        try:
            _down(name)
        except Exception as e:  # report the original error
            log("cleanup after failed up: %s" % e)
        raise


def _up(name, spec, state):
    d = state["dir"]
    run(["ip", "netns", "add", name])
    run(["ip", "-n", name, "link", "set", "lo", "up"])

    etc = ETC_NETNS.format(name=name)
    for attempt in range(5):  # a concurrent 'down' may rmdir an empty /etc/netns
        try:
            os.makedirs(etc, mode=0o755)
            break
        except FileNotFoundError:
            if attempt == 4:
                raise
    hosts = ["127.0.0.1 localhost", "::1 localhost ip6-localhost ip6-loopback"]
    # One line per address; a dual-stack name gets ::1 first, as the resolver orders it.
    hosts += ["%s %s" % (ip, host) for host, ips in spec["hosts"].items() for ip in ips]
    _write(os.path.join(etc, "hosts"), "\n".join(hosts) + "\n")
    _write(os.path.join(etc, "resolv.conf"),
           "nameserver %s\noptions timeout:1 attempts:1\n" % DEAD_RESOLVER)

    ips = {ip for ips in spec["hosts"].values() for ip in ips if ip != "::1"}
    ips |= {s["ip"] for s in spec["servers"]}
    if spec["proxy"]:
        ips.add(spec["proxy"]["ip"])
    for ip in sorted(ips):
        ensure_local(name, ip)

    bundle, ms_ca, ic_ca = make_certs(d, spec)
    spec_file = os.path.join(d, "spec.json")
    _write(spec_file, json.dumps(spec, indent=2) + "\n")

    targets, pids, logs = [], [], []
    if spec["servers"]:
        serve_log = os.path.join(d, "serve.log")
        out = open(serve_log, "ab")
        p = subprocess.Popen(
            ["ip", "netns", "exec", name, sys.executable, LAB_PY, "serve",
             "--spec", spec_file, "--dir", d],
            stdin=subprocess.DEVNULL, stdout=out, stderr=out, cwd=d, start_new_session=True,
        )
        out.close()
        state["serve_pid"] = p.pid
        save_state(state)
        targets += [(s["ip"], s["port"]) for s in spec["servers"]]
        pids.append(p.pid)
        logs.append(serve_log)

    proxy_url = None
    if spec["proxy"]:
        tinyproxy_conf(d, spec["proxy"])
        state["proxy_pid"] = start_tinyproxy(state)
        save_state(state)
        targets.append((spec["proxy"]["ip"], spec["proxy"]["port"]))
        pids.append(state["proxy_pid"])
        logs += [os.path.join(d, "tinyproxy.out"), os.path.join(d, "tinyproxy.log")]
        proxy_url = "http://%s:%d" % (spec["proxy"]["ip"], spec["proxy"]["port"])

    wait_in_ns(name, targets, pids=pids, logs=logs)
    emit({"name": name, "dir": d, "ca_bundle": bundle, "microsoft_ca": ms_ca,
          "interceptor_ca": ic_ca, "proxy_url": proxy_url})
    return 0


def _down(name):
    state = load_state(name) or {}
    leftovers = []
    # 1. the processes up started (only if they still look like ours)
    for key in ("serve_pid", "proxy_pid"):
        pid = state.get(key)
        if pid and alive(pid) and state.get("dir") and state["dir"] in cmdline(pid):
            leftovers += terminate([pid])
    # 2. anything else still running inside the namespace
    if name in netns_list():
        for _ in range(3):
            cp = run(["ip", "netns", "pids", name], check=False)
            pids = [int(p) for p in cp.stdout.split() if p.isdigit() and int(p) != os.getpid()]
            if not pids:
                break
            leftovers = terminate(pids)
        run(["ip", "netns", "del", name])
    elif netns_exists(name):
        run(["ip", "netns", "del", name])
    # 3. files
    shutil.rmtree(ETC_NETNS.format(name=name), ignore_errors=True)
    try:  # /etc/netns itself only when no other lab uses it
        os.rmdir(os.path.dirname(ETC_NETNS.format(name=name)))
    except OSError:
        pass
    dirs = set()
    if state.get("dir"):
        dirs.add(state["dir"])
    prefix = DIR_PREFIX.format(name=name)
    for entry in os.listdir(TMP_ROOT):
        path = os.path.join(TMP_ROOT, entry)
        if entry.startswith(prefix) and os.path.isfile(os.path.join(path, DIR_MARKER)):
            dirs.add(path)
    for path in dirs:
        shutil.rmtree(path, ignore_errors=True)
    try:
        os.unlink(state_path(name))
    except FileNotFoundError:
        pass
    if leftovers:
        raise LabError("processes %s survived SIGKILL" % leftovers)


def cmd_down(args):
    name = check_name(args.name)
    _down(name)
    emit({"ok": True, "name": name})
    return 0


def cmd_firewall(args):
    name = check_name(args.name)
    require_netns(name)
    try:
        rules = json.loads(args.rules)
    except ValueError as e:
        raise LabError("--rules is not valid JSON: %s" % e)
    if not isinstance(rules, list) or not all(isinstance(r, (str, list)) for r in rules):
        raise LabError("--rules must be a JSON list of rule strings")
    ipt = ["ip", "netns", "exec", name, "iptables", "-w"]
    ip6t = ["ip", "netns", "exec", name, "ip6tables", "-w"]
    run(ipt + ["-F", "OUTPUT"])
    run(ip6t + ["-F", "OUTPUT"])
    for rule in rules:
        argv = shlex.split(rule) if isinstance(rule, str) else [str(a) for a in rule]
        # A rule that starts with "ip6" is for IPv6 (ip6tables).
        tool = ipt
        if argv and argv[0] == "ip6":
            tool, argv = ip6t, argv[1:]
        try:
            run(tool + ["-A", "OUTPUT"] + argv)
        except LabError:
            run(ipt + ["-F", "OUTPUT"], check=False)
            run(ip6t + ["-F", "OUTPUT"], check=False)
            raise
    emit({"ok": True})
    return 0


def cmd_proxy(args):
    name = check_name(args.name)
    require_netns(name)
    state = load_state(name)
    if not state:
        raise LabError("no state file %s for lab %r" % (state_path(name), name))
    if not state.get("proxy"):
        raise LabError("lab %r has no proxy in its spec" % name)
    target = (state["proxy"]["ip"], state["proxy"]["port"])
    pid = state.get("proxy_pid")
    running = bool(pid) and alive(pid) and state["dir"] in cmdline(pid)
    if args.state == "stopped":
        if running:
            left = terminate([pid])
            if left:
                raise LabError("tinyproxy pid %d survived SIGKILL" % pid)
        state["proxy_pid"] = None
        save_state(state)
        wait_in_ns(name, [target], absent=True, timeout=5)
    else:
        if not running:
            state["proxy_pid"] = start_tinyproxy(state)
            save_state(state)
        d = state["dir"]
        wait_in_ns(name, [target], pids=[state["proxy_pid"]],
                   logs=[os.path.join(d, "tinyproxy.out"), os.path.join(d, "tinyproxy.log")])
    emit({"ok": True, "state": args.state, "pid": state["proxy_pid"]})
    return 0


def cmd_exec(args):
    name = check_name(args.name)
    require_netns(name)
    cmd = list(args.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        raise LabError("exec: no command given")
    sys.stdout.flush()
    os.execvp("ip", ["ip", "netns", "exec", name] + cmd)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="lab.py", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("up", help="create a lab")
    p.add_argument("--name", required=True)
    p.add_argument("--spec", required=True, help="spec JSON file, or - for stdin")
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("down", help="remove a lab (idempotent)")
    p.add_argument("--name", required=True)
    p.set_defaults(func=cmd_down)

    p = sub.add_parser("firewall", help="replace the namespace's iptables OUTPUT rules")
    p.add_argument("--name", required=True)
    p.add_argument("--rules", required=True, help="JSON list of iptables rule strings")
    p.set_defaults(func=cmd_firewall)

    p = sub.add_parser("proxy", help="stop or (re)start tinyproxy")
    p.add_argument("--name", required=True)
    p.add_argument("--state", required=True, choices=("stopped", "running"))
    p.set_defaults(func=cmd_proxy)

    p = sub.add_parser("exec", help="run a command inside the namespace")
    p.add_argument("--name", required=True)
    p.add_argument("cmd", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_exec)

    p = sub.add_parser("serve")  # hidden helper, runs inside the namespace
    p.add_argument("--spec", required=True)
    p.add_argument("--dir", required=True)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("wait")  # hidden helper, runs inside the namespace
    p.add_argument("--targets", nargs="+", required=True)
    p.add_argument("--pids", nargs="*", type=int, default=[])
    p.add_argument("--timeout", type=float, default=READY_TIMEOUT)
    p.add_argument("--absent", action="store_true")
    p.set_defaults(func=cmd_wait)

    args = ap.parse_args(argv)
    try:
        return args.func(args) or 0
    except LabError as e:
        sys.stderr.write("lab.py %s: error: %s\n" % (args.command, e))
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
