"""A webhook receiver for the benchmark: answers every POST 204 after DELAY seconds.

    python3 bench/receiver.py PORT DELAY [IDS_FILE]

Threaded, so slow answers do not queue behind each other. On SIGTERM it prints how many
events it received. With IDS_FILE, it appends each delivery's `webhook-id` and arrival time
(Unix seconds) to it, a line each.
"""
import http.server
import signal
import sys
import threading
import time

PORT, DELAY = int(sys.argv[1]), float(sys.argv[2])
IDS = open(sys.argv[3], "a", buffering=1) if len(sys.argv) > 3 else None
received = 0
lock = threading.Lock()


class Receiver(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        global received
        self.rfile.read(int(self.headers.get("content-length", 0)))
        time.sleep(DELAY)
        with lock:
            received += 1
            if IDS is not None:
                IDS.write(f"{self.headers.get('webhook-id')} {time.time():.3f}\n")
        self.send_response(204)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def stop(*_):
    print(f"receiver: {received} events received", flush=True)
    sys.exit(0)


signal.signal(signal.SIGTERM, stop)
server = http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Receiver)
server.daemon_threads = True
server.serve_forever()
