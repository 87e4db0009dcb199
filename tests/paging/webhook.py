#!/usr/bin/env python3
"""The receivers of a paging test: an HTTP server that takes Alertmanager's webhook notifications
(https://prometheus.io/docs/alerting/latest/configuration/#webhook_config: a POST of JSON with
`receiver`, `status`, `groupLabels` and `alerts`) on any path, and appends each as one line of
JSON, with the path it came to, to a file.

    webhook.py --listen 127.0.0.1:PORT --out FILE

Prints "listening http://127.0.0.1:PORT" on standard error once it accepts connections. Standard library only.
"""

import argparse
import http.server
import json
import sys
import threading


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    host, port = args.listen.rsplit(":", 1)
    lock = threading.Lock()

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"null")
            with lock, open(args.out, "a", encoding="utf-8") as out:
                out.write(json.dumps({"path": self.path, "notification": body}) + "\n")
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_):
            pass

    server = http.server.ThreadingHTTPServer((host, int(port)), Receiver)
    print(f"listening http://{host}:{server.server_address[1]}", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
