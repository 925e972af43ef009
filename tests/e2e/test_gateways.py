"""Issue 8 (and 5): every gateway that shares a ledger records a heartbeat in
it (its id, start, pid, open sessions, running copies, every 5 s, and a last
beat marked stopped at a clean exit). `mailferry status`, `report retire`, the
metrics and the dashboard's JSON list every gateway with its health: running,
stopped, or silent (no beat for 20 s: crashed or cut off, so the flows it saw
lately may be missing from the ledger, which the retire verdict says)."""
import json
import sqlite3
import time

from mfgateway import Gateway
from test_metrics import http_get, key, scrape

HOLD = r"""
import imaplib, sys
m = imaplib.IMAP4(sys.argv[1], 143, timeout=30)
m.login('alice', sys.argv[2])
print('in', flush=True)
sys.stdin.readline()
m.logout()
"""


def status(g):
    return json.loads(g.cli("status", "--json").stdout)


def retire(g):
    r = g.cli("report", "retire", "--json", check=False)
    assert r.returncode in (0, 1), r.stderr
    return json.loads(r.stdout)


def by_id(items):
    return {i["id"]: i for i in items}


def test_gateways_listed_with_their_health(lab, tmp_path):
    g = Gateway(lab, str(tmp_path / "gw"), ports=(143,), imap_ports=(143,),
                ledger={"gateway_id": "gw-one"})
    held = None
    try:
        g.install_rules()
        g.start()
        st = status(g)
        assert st["gateway_id"] == "gw-one"
        me = by_id(st["gateways"])["gw-one"]
        assert me["health"] == "running" and me["this"] and me["pid"] == g.proc.pid, st

        # A session held open shows in the next beat.
        held = lab.popen("client", ["/usr/bin/python3", "-c", HOLD, lab.OLD4,
                                    lab.env["PASS_alice"]], stdin=-1, stdout=-1, text=True)
        assert held.stdout.readline().strip() == "in"
        deadline = time.monotonic() + 12
        while by_id(status(g)["gateways"])["gw-one"]["sessions"] != 1:
            assert time.monotonic() < deadline, status(g)
            time.sleep(0.2)

        # Another gateway that beat long ago: silent, everywhere.
        db = sqlite3.connect(g.ledger, timeout=10)
        with db:
            db.execute("INSERT INTO gateway (id, started, last_beat, stopped, sessions, copies, "
                       "pid) VALUES ('gw-dead', ?, ?, 0, 3, 1, 4242)",
                       (int(time.time()) - 600, int(time.time()) - 100))
        db.close()
        gws = by_id(status(g)["gateways"])
        assert gws["gw-dead"]["health"] == "silent" and not gws["gw-dead"]["this"]
        rep = retire(g)
        assert by_id(rep["gateways"])["gw-dead"]["health"] == "silent"
        assert by_id(rep["gateways"])["gw-one"]["health"] == "running"
        assert "1 gateway is silent" in rep["verdict"], rep["verdict"]
        text = g.cli("report", "retire", check=False).stdout
        assert "Gateways on this ledger: 2" in text and "gw-dead" in text, text
        deadline = time.monotonic() + 10  # the metrics read the ledger every 2 s
        while True:
            m = scrape(lab)
            if key("mailferry_gateway_up", gateway="gw-dead") in m:
                break
            assert time.monotonic() < deadline, sorted(k for k in m if "gateway" in k[0])
            time.sleep(0.5)
        assert m[key("mailferry_gateway_up", gateway="gw-dead")] == 0
        assert m[key("mailferry_gateway_up", gateway="gw-one")] == 1
        _, _, body = http_get(lab, "/api/status")
        api = by_id(json.loads(body)["gateways"])
        assert api["gw-dead"]["health"] == "silent" and api["gw-one"]["health"] == "running"

        held.stdin.write("\n")
        held.stdin.flush()
        assert held.wait(10) == 0
        held = None
        # A clean stop is recorded as such, with nothing left running.
        assert g.stop() == 0
        rep = retire(g)
        one = by_id(rep["gateways"])["gw-one"]
        assert one["health"] == "stopped", rep["gateways"]
        db = sqlite3.connect(g.ledger)
        row = db.execute("SELECT stopped, sessions, copies FROM gateway WHERE id = 'gw-one'").fetchone()
        db.close()
        assert row[0] > 0 and row[1] == 0 and row[2] == 0, row
    finally:
        if held is not None:
            held.kill()
            held.wait()
        g.teardown()
