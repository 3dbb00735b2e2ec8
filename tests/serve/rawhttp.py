#!/usr/bin/env python3
"""Requests no HTTP client library sends, for zllm serve's limits:
   rawhttp.py PORT slow     send half a request line, then wait: the server must close
   rawhttp.py PORT header N a request with an N-byte header: 4xx or closed
   rawhttp.py PORT line N   a request line of N bytes: 4xx or closed
Prints the status line received ("closed" when none) and how long it took."""
import socket
import sys
import time

port, what = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port), timeout=60)
t0 = time.time()
if what == "slow":
    s.sendall(b"GET /api/mod")
elif what == "header":
    s.sendall(b"GET /api/models HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * int(sys.argv[3]) + b"\r\n\r\n")
elif what == "line":
    s.sendall(b"GET /" + b"a" * int(sys.argv[3]) + b" HTTP/1.1\r\nHost: x\r\n\r\n")
data = b""
try:
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
        if b"\r\n" in data:
            break
except (ConnectionResetError, socket.timeout):
    pass
line = data.split(b"\r\n", 1)[0].decode("latin-1") if data else "closed"
print("%s\t%.1f" % (line, time.time() - t0))
