#!/usr/bin/env python3
"""Backends for scripts/demo, on one loopback port: /ok answers 200, /slow answers after
DELAY seconds, /error answers 503, /signin answers 401 Negotiate like integrated Windows
authentication. Prints `listening PORT` once ready. Standard library only."""
import http.server
import socketserver
import sys
import time

DELAY = float(sys.argv[1]) if len(sys.argv) > 1 else 1.8


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        path = self.path.split("?")[0].rstrip("/")
        status, headers = 200, {}
        if path.endswith("/slow"):
            time.sleep(DELAY)
        elif path.endswith("/error"):
            status = 503
        elif path.endswith("/signin"):
            status, headers = 401, {"WWW-Authenticate": "Negotiate"}
        body = ("demo backend %s: %d\n" % (path or "/", status)).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


server = Server(("127.0.0.1", 0), Handler)
print("listening %d" % server.server_address[1], flush=True)
server.serve_forever()
