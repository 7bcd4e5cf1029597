#!/usr/bin/env python3
"""A socket that never answers the server's protocol pings is terminated
(whatever else it sends), and one that never finishes its handshake is dropped after the timeout; a
busy client that answers them gets one every interval all the same (the
contract: a ping every interval; a client may take them as its proof that
the link lives); with one io thread and with two (each thread sweeps its
own sockets).

usage: ping_timeout.py <kullsync-server>
"""
import socket
import sys
import time

from testkit import SCALE, client_frame, running_server, split_server_frame, upgrade_request

slack = 4 * SCALE


def check(io_threads):
    with running_server(sys.argv[1], "--ping-interval", "1", "--handshake-timeout", "1",
                        "--log-level", "warn", "--io-threads", str(io_threads)) as (_, port):
        host = "127.0.0.1"
        s = socket.create_connection((host, port))
        s.sendall(upgrade_request("u1:mute"))
        start = time.time()
        data = b""
        s.settimeout(10 + 2 * slack)
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
        assert 1.5 <= elapsed <= 2.5 + slack, f"terminated after {elapsed:.1f} s"
        print(f"ok: pinged, then terminated after {elapsed:.1f} s")
        # A client that starts a request and never finishes it.
        slow = socket.create_connection((host, port))
        slow.sendall(b"GET /ws?token=u1:slow HTTP/1.1\r\nHost: x\r\n")
        slow.settimeout(10 + 2 * slack)
        start = time.time()
        try:
            rest = slow.recv(4096)
        except ConnectionResetError:
            rest = b""
        elapsed = time.time() - start
        assert rest == b"", rest[:80]
        assert 0.5 <= elapsed <= 1.5 + slack, f"half-sent request dropped after {elapsed:.1f} s"
        print(f"ok: unfinished handshake dropped after {elapsed:.1f} s")


def chatty_client_that_never_pongs_is_terminated(io_threads):
    """Messages are no answer to a ping: only a pong is (the contract: a
    socket that has not answered the previous ping is terminated)."""
    with running_server(sys.argv[1], "--ping-interval", "1", "--log-level", "warn",
                        "--io-threads", str(io_threads)) as (_, port):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(upgrade_request("u1:chatty"))
        s.settimeout(0.05)
        data, start, last_sent, closed_at = b"", time.time(), 0.0, None
        while time.time() - start < 10 + 2 * slack:
            if time.time() - last_sent >= 0.2:
                try:
                    s.sendall(client_frame('{"type":"PING"}'))
                except OSError:
                    closed_at = time.time()
                    break
                last_sent = time.time()
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                chunk = b""
            if not chunk:
                closed_at = time.time()
                break
            data += chunk
        s.close()
        assert b"\x89" in data, "no protocol ping was sent"
        assert closed_at is not None, "a client that never answered a ping was kept"
        elapsed = closed_at - start
        assert 1.5 <= elapsed <= 2.5 + slack, f"terminated after {elapsed:.1f} s"
        print(f"ok: a client sending messages but no pong terminated after {elapsed:.1f} s")


def busy_client_is_pinged(io_threads):
    with running_server(sys.argv[1], "--ping-interval", "1", "--log-level", "warn",
                        "--io-threads", str(io_threads)) as (_, port):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(upgrade_request("u1:busy"))
        s.settimeout(0.05)
        data, pings, start, last_sent, closed = b"", 0, time.time(), 0.0, False
        while time.time() - start < 4.5:
            if time.time() - last_sent >= 0.2:  # never silent for a sweep
                s.sendall(client_frame('{"type":"PING"}'))
                last_sent = time.time()
            try:
                chunk = s.recv(65536)
                if not chunk:
                    closed = True
                    break
                data += chunk
            except socket.timeout:
                pass
            if data.startswith(b"HTTP/1.1"):
                end = data.find(b"\r\n\r\n")
                if end < 0:
                    continue
                data = data[end + 4:]
            while (whole := split_server_frame(data)):
                opcode, payload, data = whole
                if opcode == 0x9:
                    pings += 1
                    s.sendall(client_frame(payload, opcode=0xA))
                elif opcode == 0x8:
                    closed = True
        s.close()
        assert not closed, "a busy client that answers pings was dropped"
        assert pings >= 3, f"{pings} protocol pings in 4.5 s at a 1 s interval to a busy client"
        print(f"ok: a busy client got {pings} protocol pings in 4.5 s")


for n in (1, 2):
    check(n)
    chatty_client_that_never_pongs_is_terminated(n)
    busy_client_is_pinged(n)
