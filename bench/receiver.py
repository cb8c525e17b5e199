"""A webhook receiver for the benchmark: answers every POST 204 after DELAY seconds.

    python3 bench/receiver.py PORT DELAY

Threaded, so slow answers do not queue behind each other. On SIGTERM it prints how many
events it received.
"""
import http.server
import signal
import sys
import threading
import time

PORT, DELAY = int(sys.argv[1]), float(sys.argv[2])
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
