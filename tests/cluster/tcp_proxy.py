"""A TCP proxy between a node and Redis that can hold what each side sends:
hold() stops forwarding (the bytes wait in the kernel, as on a cut link),
release() delivers them, even after a side closed (what it sent before its
FIN still arrives, as a router that held packets would); held_up() shows
what the clients sent that waits. throttle(n)
forwards at most n bytes a second from the target to each client (a slow
link: bytes keep arriving, late); throttle(None) lifts it."""
import socket
import threading
import time


class TcpProxy:
    def __init__(self, target_port):
        self.target = ("127.0.0.1", target_port)
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.flowing = threading.Event()
        self.flowing.set()
        self.rate = None  # bytes a second from the target, per connection
        self.closed = False
        self.clients = []  # the sockets from the clients (the node's side)
        self.read_held = {}  # per pump: a chunk read but not yet forwarded
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def hold(self):
        self.flowing.clear()

    def release(self):
        self.flowing.set()

    def throttle(self, bytes_per_s):
        if bytes_per_s is not None and int(bytes_per_s) < 1:
            raise ValueError(f"throttle: {bytes_per_s} bytes a second")
        self.rate = None if bytes_per_s is None else int(bytes_per_s)

    def held_up(self):
        """What the clients sent that has not gone on to the target: read
        and held, or still in the kernel (peeked, not taken)."""
        with self.lock:
            out = b"".join(self.read_held.values())
            clients = list(self.clients)
        for c in clients:
            try:
                out += c.recv(1 << 20, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            except OSError:
                pass
        return out

    def close(self):
        self.closed = True
        self.listener.close()

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.clients.append(client)
            for a, b, down in ((client, server, False), (server, client, True)):
                threading.Thread(target=self._pump, args=(a, b, down), daemon=True).start()

    def _pump(self, src, dst, down):
        try:
            while True:
                self.flowing.wait()
                rate = self.rate if down else None
                data = src.recv(max(1, rate // 20) if rate else 65536)
                if not data:
                    break
                if not down:
                    with self.lock:
                        self.read_held[threading.get_ident()] = data
                self.flowing.wait()  # held while this chunk was read: wait again
                dst.sendall(data)
                if not down:
                    with self.lock:
                        self.read_held.pop(threading.get_ident(), None)
                if rate:
                    time.sleep(len(data) / rate)
        except OSError:
            pass
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass
