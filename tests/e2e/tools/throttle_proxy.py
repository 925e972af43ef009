#!/usr/bin/python3
"""A scripted, throttling IMAP source for the migration's politeness tests.

Listens on LISTEN (host:port) and relays every connection to UPSTREAM (the lab's real
Dovecot on old), misbehaving as a loaded server does, on a script given as JSON:

  refuse_first   the first N connections get "* BYE [UNAVAILABLE] ..." and are closed
  limit_fetches  the K-th body fetches (1-based, counted over all connections) are
                 answered "<tag> NO [LIMIT] ..." instead of being relayed
  drop_fetches   the K-th body fetches are relayed, and the connection is cut
                 after drop_after bytes of the server's answer
  hold_ms        every body fetch is held this long before it is relayed (keeps
                 copies overlapping, for the connection-limit test)
  drop_appends   (a destination) the K-th APPEND commands are relayed with only
                 drop_after bytes of what the client sends after the command line
                 (its literals), then the connection is cut: mid-APPEND

Every event is one JSON line in LOG: {"ev": "open"|"close"|"refuse"|"limit"|"drop",
"conn": n, "live": connections open now}. Bounded: at most 500 connections, then it
exits. Runs until killed."""
import json
import socket
import struct
import sys
import threading
import time

LISTEN, UPSTREAM, LOG, SCRIPT = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
lock = threading.Lock()
state = {"conns": 0, "live": 0, "fetches": 0, "appends": 0}
logf = open(LOG, "a", buffering=1)


def log(ev, **kw):
    with lock:
        kw.update(ev=ev, live=state["live"], t=round(time.monotonic(), 3))
        logf.write(json.dumps(kw) + "\n")


def addr(text):
    host, port = text.rsplit(":", 1)
    return host, int(port)


def cut_now(s):
    # shutdown, not close: the reader thread's makefile() keeps the fd open,
    # and close() would wait for it. With linger 0 the final close resets.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.shutdown(socket.SHUT_RDWR)


def serve(c, n):
    up = socket.create_connection(addr(UPSTREAM), timeout=30)
    cut = {"after": None, "done": False}

    def down():  # server -> client
        try:
            while True:
                data = up.recv(65536)
                if not data:
                    break
                with lock:
                    left = cut["after"]
                if left is not None:
                    if len(data) >= left:
                        c.sendall(data[:left])
                        cut["done"] = True
                        log("drop", conn=n)
                        cut_now(c)
                        up.close()
                        return
                    with lock:
                        cut["after"] = left - len(data)
                c.sendall(data)
        except OSError:
            pass
        try:
            c.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    t = threading.Thread(target=down, daemon=True)
    t.start()
    f = c.makefile("rb")
    try:
        while not cut["done"]:
            line = f.readline()
            if not line:
                break
            words = line.split(b" ", 3)
            if len(words) >= 2 and words[1].upper() == b"APPEND":
                with lock:
                    state["appends"] += 1
                    k = state["appends"]
                if k in SCRIPT.get("drop_appends", []):
                    up.sendall(line + f.read(SCRIPT.get("drop_after", 20000)))
                    log("drop", conn=n, append=k)
                    cut["done"] = True
                    cut_now(c)
                    up.close()
                    break
            body_fetch = (len(words) >= 3 and words[1].upper() == b"UID" and
                          words[2].upper() == b"FETCH" and b"BODY.PEEK[]" in line.upper())
            if body_fetch:
                with lock:
                    state["fetches"] += 1
                    k = state["fetches"]
                if SCRIPT.get("hold_ms"):
                    time.sleep(SCRIPT["hold_ms"] / 1000)
                if k in SCRIPT.get("limit_fetches", []):
                    log("limit", conn=n, fetch=k)
                    c.sendall(words[0] + b" NO [LIMIT] Too many requests, slow down\r\n")
                    continue
                if k in SCRIPT.get("drop_fetches", []):
                    with lock:
                        cut["after"] = SCRIPT.get("drop_after", 20000)
            up.sendall(line)
    except OSError:
        pass
    t.join(timeout=60)
    for s in (c, up):
        try:
            s.close()
        except OSError:
            pass


def conn_main(c, n):
    try:
        if n <= SCRIPT.get("refuse_first", 0):
            log("refuse", conn=n)
            c.sendall(b"* BYE [UNAVAILABLE] Server too busy, come back later\r\n")
            c.close()
            return
        serve(c, n)
    finally:
        with lock:
            state["live"] -= 1
        log("close", conn=n)


def main():
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(addr(LISTEN))
    ls.listen(64)
    print("listening", flush=True)
    for _ in range(500):
        c, _ = ls.accept()
        with lock:
            state["conns"] += 1
            state["live"] += 1
            n = state["conns"]
        log("open", conn=n)
        threading.Thread(target=conn_main, args=(c, n), daemon=True).start()


main()
