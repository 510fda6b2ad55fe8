#!/usr/bin/env python3
"""The idle-memory figure's backend (bench.py starts it as `idle_backend.py PORT`): an FTP
server that only logs in and idles, in one process over epoll, a few hundred bytes per
session (the figure needs thousands of sessions behind ftpgate; vsftpd forks twice per
session). Ends on SIGTERM."""

import resource
import selectors
import signal
import socket
import sys


def idle_backend(port):
    resource.setrlimit(resource.RLIMIT_NOFILE, resource.getrlimit(resource.RLIMIT_NOFILE))
    sel = selectors.DefaultSelector()
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", port))
    lsock.listen(4096)
    lsock.setblocking(False)
    sel.register(lsock, selectors.EVENT_READ, None)
    buffers = {}
    replies = {b"USER": b"331 ok\r\n", b"PASS": b"230 ok\r\n", b"NOOP": b"200 ok\r\n",
               b"TYPE": b"200 ok\r\n", b"SYST": b"215 UNIX Type: L8\r\n",
               b"FEAT": b"211-Features:\r\n211 End\r\n", b"PWD": b'257 "/"\r\n'}
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        for key, _ in sel.select():
            if key.data is None:
                while True:
                    try:
                        c, _ = lsock.accept()
                    except BlockingIOError:
                        break
                    c.setblocking(False)
                    c.send(b"220 idle backend\r\n")
                    buffers[c.fileno()] = b""
                    sel.register(c, selectors.EVENT_READ, 1)
                continue
            c = key.fileobj
            try:
                data = c.recv(4096)
            except OSError:
                data = b""
            if not data:
                sel.unregister(c)
                buffers.pop(c.fileno(), None)
                c.close()
                continue
            buf = buffers.get(c.fileno(), b"") + data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                verb = line.strip().split(b" ")[0].upper()
                if verb == b"QUIT":
                    c.send(b"221 bye\r\n")
                else:
                    c.send(replies.get(verb, b"502 no\r\n"))
            buffers[c.fileno()] = buf


if __name__ == "__main__":
    idle_backend(int(sys.argv[1]))
