"""The live tests' webhook receiver (tools/lib/harness.sh start_webhook): appends every POST
body to a file, one JSON document a line (a body that is not JSON as {"unparsed": ...}), and
answers 200; a GET answers 200 too (readiness).

    python3 tools/lib/webhook.py PORT FILE      # listens on 127.0.0.1:PORT
"""
import http.server
import json
import sys
import threading

port, out = int(sys.argv[1]), sys.argv[2]
lock = threading.Lock()


class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            doc = json.loads(body)
        except ValueError:
            doc = {"unparsed": body.decode("utf-8", "replace")}
        with lock, open(out, "a", encoding="utf-8") as f:
            f.write(json.dumps(doc, sort_keys=True) + "\n")
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):  # readiness
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, fmt, *args):
        sys.stderr.write("webhook: " + fmt % args + "\n")


http.server.ThreadingHTTPServer(("127.0.0.1", port), Hook).serve_forever()
