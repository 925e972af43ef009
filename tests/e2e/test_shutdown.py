"""Issue 2: SIGTERM drains (bounded), SIGHUP reloads, and `rules remove`
leaves the router exactly as it was."""
import signal
import time

from mfgateway import DataServers, Gateway
from test_relay import ECHO, Interactive


def router_state(lab):
    out = []
    for argv in (["nft", "list", "ruleset"], ["ip", "rule"], ["ip", "-6", "rule"],
                 ["ip", "route", "show", "table", "all"], ["ip", "-6", "route", "show", "table", "all"]):
        out.append(lab.run("router", argv, capture_output=True, text=True, check=True).stdout)
    return out


def test_sigterm_drains_then_rules_remove_leaves_no_trace(lab, tmp_path):
    pristine = router_state(lab)
    g = Gateway(lab, str(tmp_path), ports=(143, ECHO), gateway={"drain_timeout": "3000"})
    servers = DataServers(lab)
    servers.start("echo", lab.env["OLD4"], ECHO)
    try:
        g.install_rules()
        assert router_state(lab) != pristine
        g.start()

        # 1. An open session survives SIGTERM and is relayed to its end.
        sess = Interactive(lab, lab.env["OLD4"], ECHO)
        assert sess.roundtrip("a") == "a"
        g.send(signal.SIGTERM)
        g.wait_log(r"draining")
        assert sess.roundtrip("b") == "b"
        # Meanwhile new flows are not accepted by the gateway: with nothing
        # listening, TPROXY does not match and they reach the source.
        n = len(g.conns())
        other = Interactive(lab, lab.env["OLD4"], ECHO)
        assert other.roundtrip("direct") == "direct"
        other.close()
        assert len(g.conns()) == n
        t0 = time.monotonic()
        sess.close()
        assert g.stop(timeout=10) == 0
        assert time.monotonic() - t0 < 2.5, "exit should follow the last session"
        c = g.conns()[-1]
        assert c["end"] == "eof" and c["c2s"] == "4"

        # 2. A session that stays open is cut at drain_timeout.
        g.start()
        sess = Interactive(lab, lab.env["OLD4"], ECHO)
        assert sess.roundtrip("c") == "c"
        t0 = time.monotonic()
        g.send(signal.SIGTERM)
        assert g.stop(timeout=15) == 0
        took = time.monotonic() - t0
        assert 2.5 <= took < 6, took
        assert g.conns()[-1]["end"] == "shutdown"
        # Cut sessions are reset: the client must not take it for a clean end.
        assert sess.roundtrip("d") in ("", "closed")
        assert sess.p.wait(5) != 0
    finally:
        if g.proc is not None:
            g.stop()
        servers.close()
    g.remove_rules()
    assert router_state(lab) == pristine
    g.remove_rules()  # idempotent
    assert router_state(lab) == pristine


def test_sighup_reloads_without_dropping_sessions(lab, tmp_path):
    g = Gateway(lab, str(tmp_path), ports=(ECHO,))
    servers = DataServers(lab)
    servers.start("echo", lab.env["OLD4"], ECHO)
    try:
        g.install_rules()
        g.start()
        sess = Interactive(lab, lab.env["OLD4"], ECHO)
        assert sess.roundtrip("x") == "x"
        with open(g.conf) as f:
            text = f.read()
        with open(g.conf, "w") as f:
            f.write(text.replace("[gateway]\n", "[gateway]\nidle_timeout = 1000\n"))
        g.send(signal.SIGHUP)
        g.wait_log(r"reloaded config=")
        # The reloaded idle timeout applies to the running session too.
        c = g.wait_conn(lambda c: c["end"] == "idle-timeout", timeout=5)
        assert c["c2s"] == "2"
        # A broken config is refused and the daemon keeps running.
        with open(g.conf, "w") as f:
            f.write("[gateway]\nno_such_key = 1\n")
        g.send(signal.SIGHUP)
        g.wait_log(r"reload failed, keeping the running configuration")
        with open(g.conf, "w") as f:
            f.write(text)
        fresh = Interactive(lab, lab.env["OLD4"], ECHO)
        assert fresh.roundtrip("y") == "y"
        fresh.close()
        sess.p.kill()
        assert g.stop() == 0
    finally:
        try:
            g.teardown()
        finally:
            servers.close()
