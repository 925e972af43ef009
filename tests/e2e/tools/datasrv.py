#!/usr/bin/python3
"""Test servers for the relay tests, run inside the lab's `old` namespace.

  echo  PORT : asyncio echo server (many concurrent sessions)
  bulk  PORT : per connection, sends SIZE bytes of the deterministic stream
               'S' while hashing everything it receives; once the client's
               EOF arrives (half-close) it appends the hex SHA-256 of what it
               received, then closes. A relay that drops, reorders, or cuts
               either direction, or mishandles half-close, changes a hash.
"""
import asyncio
import hashlib
import resource
import socket
import sys
import threading

sys.path.insert(0, __import__("os").path.dirname(__file__))
import stream  # noqa: E402


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def echo_conn(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        writer.write_eof()
        await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def echo_main(host, port):
    server = await asyncio.start_server(echo_conn, host, port, backlog=4096,
                                        reuse_address=True)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


def bulk_conn(conn, size):
    received = hashlib.sha256()
    got_eof = threading.Event()

    def reader():
        try:
            while True:
                chunk = conn.recv(1 << 20)
                if not chunk:
                    break
                received.update(chunk)
        finally:
            got_eof.set()

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    try:
        for block in stream.blocks(b"S", size):
            conn.sendall(block)
        got_eof.wait(600)
        t.join(10)
        conn.sendall(received.hexdigest().encode())
        conn.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    finally:
        conn.close()


def bulk_main(host, port, size):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    ls = socket.socket(family, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, port))
    ls.listen(64)
    print("ready", flush=True)
    while True:
        conn, _ = ls.accept()
        threading.Thread(target=bulk_conn, args=(conn, size), daemon=True).start()


def main():
    raise_nofile()
    mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if mode == "echo":
        asyncio.run(echo_main(host, port))
    elif mode == "bulk":
        bulk_main(host, port, int(sys.argv[4]))
    else:
        sys.exit("usage: datasrv.py echo|bulk HOST PORT [SIZE]")


if __name__ == "__main__":
    main()
