"""Runs mailferryd and its rules on the lab's router namespace for tests.

The daemon under test is the ASan+UBSan build (build/asan/mailferryd) when
it exists, so every end-to-end run is also a sanitizer and leak run: stop()
fails the test if the sanitizers reported anything."""
import contextlib
import json
import os
import re
import signal
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOLS = os.path.join(ROOT, "tests", "e2e", "tools")
CLI = os.path.join(ROOT, "build", "mailferry")


def daemon_path():
    explicit = os.environ.get("MAILFERRYD")
    if explicit:
        return explicit
    asan = os.path.join(ROOT, "build", "asan", "mailferryd")
    return asan if os.path.exists(asan) else os.path.join(ROOT, "build", "mailferryd")


class Gateway:
    def __init__(self, lab, workdir, ports=(143, 110, 25, 587, 993, 995),
                 extra_sources=(), gateway=None, imap_ports=(), pop3_ports=(), smtp_ports=(),
                 submission_ports=(), destination=None, ledger=None, tls=None, daemon=None,
                 intercept=None, migrate=None, sources=None, router="router"):
        """imap_ports: ports served by the IMAP front end; empty (the
        default here) keeps every port a protocol-blind relay, which is
        what the relay tests measure. pop3_ports: the same for the POP3
        front end (also empty by default). smtp_ports, submission_ports: the
        SMTP front end's MTA and submission ports (empty by default).
        destination: the new server's addresses (default: the lab's NEW4 and
        NEW6). ledger: extra [ledger] keys (e.g. default_domain). tls: the
        [tls] section as a dict (a list value repeats the key); None leaves
        it out, so implicit-TLS ports stay protocol-blind. intercept: more
        [intercept] keys (fail, queue_num, ...). daemon: the binary to run
        instead of daemon_path()'s. migrate: the [migrate] section as a
        dict (None leaves it out: no in-daemon copy). sources: the
        [intercept] sources line (default: the lab's OLD4, OLD6 and
        extra_sources; [] leaves the line out). router: the namespace it
        runs in ("router2" in a two-gateway lab intercepts client2's
        network)."""
        self.lab = lab
        self.router = router
        self.daemon = daemon
        self.workdir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.conf = os.path.join(workdir, "mailferry.conf")
        self.logfile = os.path.join(workdir, "mailferryd.log")
        self.proc = None
        opts = {"connect_timeout": "2000", "drain_timeout": "5000"}
        opts["imap_ports"] = ", ".join(str(p) for p in imap_ports)
        opts["pop3_ports"] = ", ".join(str(p) for p in pop3_ports)
        opts["smtp_ports"] = ", ".join(str(p) for p in smtp_ports)
        opts["submission_ports"] = ", ".join(str(p) for p in submission_ports)
        opts.update(gateway or {})
        self.ledger = os.path.join(workdir, "ledger.db")
        if destination is None:
            destination = [lab.env[k] for k in ("NEW4", "NEW6") if lab.env.get(k)]
        if sources is None:
            sources = [lab.env["OLD4"], lab.env["OLD6"], *extra_sources]
        lines = ["[gateway]"] + [f"{k} = {v}" for k, v in opts.items()]
        lines += ["[intercept]"]
        if sources:
            lines.append("sources = " + ", ".join(sources))
        clients = (lab.env["CLIENT2_NET4"], lab.env["CLIENT2_NET6"]) if router == "router2" \
            else (lab.env["CLIENT_NET4"], lab.env["CLIENT_NET6"])
        lines += ["ports = " + ", ".join(str(p) for p in ports),
                  "clients = %s, %s" % clients]
        if destination:
            lines.append("destination = " + ", ".join(destination))
        lines += [f"{k} = {v}" for k, v in (intercept or {}).items()]
        lines += ["[ledger]", "path = " + self.ledger]
        lines += [f"{k} = {v}" for k, v in (ledger or {}).items()]
        if migrate is not None:
            lines.append("[migrate]")
            lines += [f"{k} = {v}" for k, v in migrate.items()]
        if tls is not None:
            lines.append("[tls]")
            for k, v in tls.items():
                for item in (v if isinstance(v, (list, tuple)) else [v]):
                    lines.append(f"{k} = {item}")
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    # --- rules -----------------------------------------------------------
    def cli(self, *args, check=True):
        return self.lab.run(self.router, [CLI, "-c", self.conf, *args],
                            capture_output=True, text=True, check=check)

    def install_rules(self):
        self.cli("rules", "install")

    def remove_rules(self):
        self.cli("rules", "remove")

    # --- daemon ----------------------------------------------------------
    def start(self, timeout=10):
        env = dict(os.environ)
        env["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=0:halt_on_error=1"
        env["UBSAN_OPTIONS"] = "halt_on_error=1:print_stacktrace=1"
        self._log_offset = os.path.getsize(self.logfile) if os.path.exists(self.logfile) else 0
        log = open(self.logfile, "a")
        self.proc = self.lab.popen(self.router, [self.daemon or daemon_path(), "-c", self.conf],
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)
        log.close()
        # Only this run's lines count (a restarted Gateway appends).
        self.wait_log(r"level=info started workers=", timeout, since=self._log_offset)
        # The front ends greet like the sources once the probe is in.
        self.wait_log(r"level=info banners probed=", timeout, since=self._log_offset)

    def send(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Stops the daemon; returns its exit status. Fails on sanitizer output."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("mailferryd did not exit %ss after signal %s" % (timeout, sig))
        finally:
            self.proc = None
        text = self.log()
        for marker in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
            assert marker not in text, "sanitizer report in mailferryd log:\n" + text[-4000:]
        return rc

    def teardown(self):
        """For finally blocks: stop the daemon if it runs, remove the rules."""
        try:
            if self.proc is not None:
                self.stop()
        finally:
            self.cli("rules", "remove", check=False)

    def account(self, user):
        """The ledger's record of user (`accounts show --json`); an account
        the ledger has never heard of is UNSEEN."""
        r = self.cli("accounts", "show", user, "--json", check=False)
        if r.returncode != 0:
            return {"state": "UNSEEN"}
        return json.loads(r.stdout)

    def files_holding(self, secret):
        """Files of this gateway (log, ledger and its WAL files, anything in
        the work dir) whose bytes contain secret."""
        hits = []
        for root, _, names in os.walk(self.workdir):
            for name in names:
                path = os.path.join(root, name)
                with open(path, "rb") as f:
                    if secret in f.read():
                        hits.append(path)
        return hits

    def memory_holding(self, secret, max_region=1 << 30):
        """Readable mappings of the running daemon (what a core dump would
        hold) that contain secret: [(start, pathname)]. Regions above
        max_region (sanitizer shadow memory) are skipped: use the plain
        build for this check."""
        hits = []
        pid = self.proc.pid
        with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
            for line in maps:
                fields = line.split()
                lo, hi = (int(x, 16) for x in fields[0].split("-"))
                if "r" not in fields[1] or hi - lo > max_region:
                    continue
                name = fields[5] if len(fields) > 5 else ""
                if name in ("[vvar]", "[vsyscall]"):
                    continue
                try:
                    mem.seek(lo)
                    data = mem.read(hi - lo)
                except OSError:
                    continue
                if secret in data:
                    hits.append((hex(lo), name))
        return hits

    def log(self):
        with open(self.logfile, errors="replace") as f:
            return f.read()

    def wait_log(self, pattern, timeout=10, since=0):
        """The first match of pattern in the log after byte offset since."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(pattern, self.log()[since:])
            if m:
                return m
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError("mailferryd exited:\n" + self.log()[-3000:])
            time.sleep(0.05)
        raise AssertionError("no log line /%s/ within %ss:\n%s" % (pattern, timeout, self.log()[-3000:]))

    def conns(self):
        """Parsed `conn` lines: dicts of their key=value fields."""
        out = []
        for line in self.log().splitlines():
            if " conn client=" in line:
                out.append(dict(kv.split("=", 1) for kv in line.split() if "=" in kv))
        return out

    def wait_conn(self, pred, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for c in self.conns():
                if pred(c):
                    return c
            time.sleep(0.05)
        raise AssertionError("no matching conn line within %ss:\n%s" % (timeout, self.log()[-3000:]))


@contextlib.contextmanager
def running(lab, workdir, **kw):
    """A Gateway with its rules installed and the daemon started; on exit
    it must stop cleanly (status 0, no sanitizer report) and leaves no rules."""
    g = Gateway(lab, workdir, **kw)
    try:
        g.install_rules()
        g.start()
        yield g
        assert g.stop() == 0
    finally:
        g.teardown()


def client_py(lab, code, *args, timeout=60):
    """Runs a Python snippet in the client namespace; returns its stdout."""
    r = lab.run("client", ["/usr/bin/python3", "-c", code, *map(str, args)],
                capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def host_of(addr_port):
    """'198.18.1.2:40000' -> '198.18.1.2'; '[2001:db8::2]:143' -> '2001:db8::2'."""
    if addr_port.startswith("["):
        return addr_port[1:addr_port.index("]")]
    return addr_port.rsplit(":", 1)[0]


def port_of(addr_port):
    return int(addr_port.rsplit(":", 1)[1])


class DataServers:
    """datasrv.py instances in the `old` namespace, killed on close()."""

    def __init__(self, lab):
        self.lab = lab
        self.procs = []

    def start(self, *args):
        p = self.lab.popen("old", ["/usr/bin/python3", os.path.join(TOOLS, "datasrv.py"), *map(str, args)],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.procs.append(p)
        line = p.stdout.readline()
        assert line.strip() == "ready", "datasrv %s did not start" % (args,)
        return p

    def close(self):
        for p in self.procs:
            p.kill()
            p.wait()
        self.procs = []
