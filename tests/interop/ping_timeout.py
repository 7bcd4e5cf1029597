#!/usr/bin/env python3
"""A socket that never answers the server's protocol pings is terminated.

usage: ping_timeout.py <kullsync-server>
"""
import base64
import os
import socket
import subprocess
import sys
import time

server = subprocess.Popen([sys.argv[1], "--listen", "127.0.0.1:0", "--ping-interval", "1",
                           "--log-level", "warn"], stdout=subprocess.PIPE)
try:
    line = server.stdout.readline().decode()
    host, port = line.split('"')[3].split(":")
    s = socket.create_connection((host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET /ws?token=u1:mute HTTP/1.1\r\nHost: {host}:{port}\r\n"
               "Upgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    start = time.time()
    data = b""
    s.settimeout(6)
    while True:
        try:
            chunk = s.recv(4096)
        except (ConnectionResetError, socket.timeout):
            chunk = b""
        if not chunk:
            break
        data += chunk
    elapsed = time.time() - start
    assert data.startswith(b"HTTP/1.1 101"), data[:80]
    assert b"\x89" in data, "no protocol ping was sent"          # ping opcode
    assert 1.5 <= elapsed <= 4.5, f"terminated after {elapsed:.1f} s"
    print(f"ok: pinged, then terminated after {elapsed:.1f} s")
finally:
    server.terminate()
    server.wait()
