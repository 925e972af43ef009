"""Issue 6: restart without losing anything. A new mailferryd starts beside
the running one (SO_REUSEPORT listeners, the SYN gate's queue taken over when
the old one lets go of it at SIGTERM); the old one drains its sessions.
Under load: no new connection is refused, every byte of every session is
exact, and in fail-closed mode every new flow went through one of the two
gateways (none reached the source behind their backs)."""
import json
import signal
import subprocess

from mfgateway import DataServers, Gateway
from test_relay import ECHO

CLIENT = r"""
import asyncio, json, random, sys
host, port, n_long, new_secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
res = {"long_exact": 0, "long_bad": [], "new_exact": 0, "new_bad": [], "new_total": 0}

async def long_one(i, opened, go):
    payload = random.Random(i).randbytes(24 * 1024)
    try:
        r, w = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
    except Exception as e:
        res["long_bad"].append("connect " + repr(e))
        opened.release()
        return
    opened.release()
    await go.wait()
    try:
        for k in range(24):
            w.write(payload[k * 1024:(k + 1) * 1024])
            await w.drain()
            await asyncio.sleep(0.15)
        w.write_eof()
        back = await asyncio.wait_for(r.read(-1), 20)
        if back == payload:
            res["long_exact"] += 1
        else:
            res["long_bad"].append("mismatch %d" % len(back))
    except Exception as e:
        res["long_bad"].append(repr(e))
    w.close()

async def new_one(i):
    payload = random.Random(100000 + i).randbytes(700)
    try:
        r, w = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
        w.write(payload)
        await w.drain()
        w.write_eof()
        back = await asyncio.wait_for(r.read(-1), 10)
        w.close()
        if back == payload:
            res["new_exact"] += 1
        else:
            res["new_bad"].append("mismatch %d" % len(back))
    except Exception as e:
        res["new_bad"].append(repr(e))

async def main():
    loop = asyncio.get_running_loop()
    opened, go = asyncio.Semaphore(0), asyncio.Event()
    tasks = [asyncio.create_task(long_one(i, opened, go)) for i in range(n_long)]
    for _ in range(n_long):
        await opened.acquire()
    print("open", flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)
    go.set()
    t_end = loop.time() + new_secs
    i = 0
    while loop.time() < t_end:
        tasks.append(asyncio.create_task(new_one(i)))
        i += 1
        await asyncio.sleep(0.025)
    res["new_total"] = i
    await asyncio.wait_for(asyncio.gather(*tasks), 60)
    print(json.dumps(res), flush=True)

asyncio.run(main())
"""


def test_restart_under_load_hands_over(lab, tmp_path):
    conf = dict(ports=(ECHO,), gateway={"drain_timeout": "20000"},
                intercept={"fail": "closed"})
    a = Gateway(lab, str(tmp_path / "a"), **conf)
    b = Gateway(lab, str(tmp_path / "b"), **conf)
    servers = DataServers(lab)
    servers.start("echo", lab.env["OLD4"], ECHO)
    cli = None
    try:
        a.install_rules()
        a.start()
        cli = lab.popen("client", ["/usr/bin/python3", "-c", CLIENT, lab.env["OLD4"], str(ECHO),
                                   "200", "5"],
                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert cli.stdout.readline().strip() == "open"
        cli.stdin.write("go\n")
        cli.stdin.flush()
        # the successor starts beside the running daemon...
        b.start()
        b.wait_log(r"syn_gate queue=\d+ held by another process")
        # ...and takes over when the old one is told to stop
        a.send(signal.SIGTERM)
        b.wait_log(r"syn_gate queue=\d+ taken over", timeout=10)
        out, _ = cli.communicate(timeout=120)
        res = json.loads(out.strip().splitlines()[-1])
        assert res["long_bad"] == [] and res["long_exact"] == 200, res
        assert res["new_bad"] == [] and res["new_exact"] == res["new_total"] > 100, res
        assert a.stop(timeout=30) == 0
        a_conns, b_conns = a.conns(), b.conns()
        assert all(c["end"] == "eof" for c in a_conns + b_conns)
        # every flow of the run went through one gateway or the other
        assert len(a_conns) + len(b_conns) == 200 + res["new_total"], (len(a_conns), len(b_conns))
        assert len(b_conns) > 0
        # the successor took the queue while the old daemon was still
        # draining, not after it had gone
        took = b.wait_log(r"(\S+) mailferryd level=info syn_gate queue=\d+ taken over").group(1)
        gone = a.wait_log(r"(\S+) mailferryd level=info exited").group(1)
        draining = a.wait_log(r"(\S+) mailferryd level=info stopping").group(1)
        assert draining <= took < gone, (draining, took, gone)
    finally:
        if cli is not None and cli.poll() is None:
            cli.kill()
            cli.wait()
        for g in (a, b):
            if g.proc is not None:
                g.stop()
        servers.close()
        a.remove_rules()
