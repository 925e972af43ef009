#!/usr/bin/python3
"""Client side of datasrv.py's bulk mode, run inside the `client` namespace.

Sends SIZE bytes of stream 'C', half-closes, reads to EOF, and prints JSON:
what it received from the server (hash and length) and the server's hash of
what the client sent, next to the hashes both should be."""
import hashlib
import json
import socket
import sys
import threading
import time

sys.path.insert(0, __import__("os").path.dirname(__file__))
import stream  # noqa: E402


def main():
    host, port, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    t0 = time.monotonic()
    s = socket.create_connection((host, port), timeout=120)
    got = hashlib.sha256()
    tail = bytearray()
    total = [0]

    def reader():
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            total[0] += len(chunk)
            # The last 64 bytes are the server's hex digest, not stream data.
            tail.extend(chunk)
            if len(tail) > 64:
                got.update(tail[:-64])
                del tail[:-64]

    t = threading.Thread(target=reader)
    t.start()
    for block in stream.blocks(b"C", size):
        s.sendall(block)
    s.shutdown(socket.SHUT_WR)
    t.join(600)
    s.close()
    print(json.dumps({
        "received_len": total[0] - 64,
        "received_sha": got.hexdigest(),
        "expected_received_sha": stream.digest(b"S", size),
        "server_saw_sha": bytes(tail).decode(errors="replace"),
        "sent_sha": stream.digest(b"C", size),
        "seconds": round(time.monotonic() - t0, 2),
    }))


if __name__ == "__main__":
    main()
