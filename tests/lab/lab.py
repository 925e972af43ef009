"""Python driver for the mailferry test lab (tests/lab/lab.sh). Standard library only.

    from lab import Lab
    with Lab.up() as lab:                      # or Lab.up(net_only=True, users=20)
                                               # or Lab.up(bridge=True): bridge-mode topology
        lab.OLD4, lab.env["PASS_alice"], lab.ns("client")
        lab.run("client", ["ip", "addr"], capture_output=True, text=True)
        out = lab.py_in("client", "import socket; print(socket.gethostname())")

Every lab brought up here is torn down on context exit, on exceptions, at interpreter
exit (atexit) and on SIGTERM. A lab of a process killed with SIGKILL is removed by the
next `lab.sh up` or `lab.sh reap` (namespace names carry the owner's pid: mfl<pid>-...).
"""

from __future__ import annotations

import atexit
import itertools
import json
import os
import shlex
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

HERE = Path(__file__).resolve().parent
LAB_SH = HERE / "lab.sh"
PYTHON = "/usr/bin/python3"  # the system Python (not pyenv): same one in every namespace
ROLES = ("client", "router", "old", "new", "client2", "router2")  # *2: gateways=2 only

_counter = itertools.count()
_live: "list[Lab]" = []
_live_lock = threading.RLock()
_handlers_installed = False
_prev_sigterm: Any = None


class LabError(RuntimeError):
    """lab.sh failed, or a command inside a namespace failed."""


def parse_env(text: str) -> dict[str, str]:
    """Parse lab.env (shell KEY=value lines, values possibly single-quoted)."""
    env: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        parts = shlex.split(value) if value else [""]
        env[key] = parts[0] if parts else ""
    return env


def _down_all() -> None:
    with _live_lock:
        labs = list(_live)
    for lab in reversed(labs):
        if lab.owner_pid != os.getpid():  # a forked child must not tear down its parent's lab
            continue
        try:
            lab.down()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass


def _on_sigterm(signum, frame):  # noqa: ANN001
    _down_all()
    prev = _prev_sigterm
    if callable(prev):
        prev(signum, frame)
    elif prev == signal.SIG_IGN:
        return
    else:
        raise SystemExit(128 + signum)


def _install_handlers() -> None:
    global _handlers_installed, _prev_sigterm
    if _handlers_installed:
        return
    atexit.register(_down_all)
    if threading.current_thread() is threading.main_thread():
        _prev_sigterm = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, _on_sigterm)
    _handlers_installed = True


class Lab:
    """One lab: four namespaces (+ Dovecot/Postfix on old/new unless net_only)."""

    def __init__(self, net_only: bool = False, users: int = 0, prefix: str | None = None,
                 lab_dir: str | os.PathLike | None = None, keep: bool | None = None,
                 up_timeout: float = 90.0, bridge: bool = False,
                 bridge_addr: bool = True, gateways: int = 1):
        n = next(_counter)
        if prefix is None:
            base = os.environ.get("LAB_PREFIX") or f"mfl{os.getpid()}-"
            prefix = base if n == 0 else f"{base}{n}-"
        self.prefix = prefix
        self.lab_dir = str(lab_dir) if lab_dir else f"/tmp/{prefix}lab"
        self.net_only = net_only
        # bridge: client and old share a subnet across the router namespace's br0,
        # new is routed behind it (lab.sh up --bridge); addresses come from lab.env.
        self.bridge = bridge
        # bridge_addr False: br0 gets no address, only routes to the subnet.
        self.bridge_addr = bridge_addr
        self.users = int(users)
        self.gateways = int(gateways)  # 2: also router2 + client2 (lab.sh LAB_GATEWAYS)
        self.keep = (os.environ.get("LAB_KEEP") == "1") if keep is None else keep
        self.up_timeout = up_timeout
        self.env: dict[str, str] = {}
        self.up_output = ""
        self.up_seconds: float | None = None
        self.down_seconds: float | None = None
        self._is_up = False
        self._popens: list[subprocess.Popen] = []
        self.owner_pid = os.getpid()

    # ------------------------------------------------------------------ life cycle
    @classmethod
    def up(cls, net_only: bool = False, users: int = 0, **kw: Any) -> "Lab":
        """Bring a lab up and return it (use as a context manager to guarantee down)."""
        lab = cls(net_only=net_only, users=users, **kw)
        lab.start()
        return lab

    def _sh_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(LAB_PREFIX=self.prefix, LAB_DIR=self.lab_dir, LAB_USERS=str(self.users),
                   LAB_GATEWAYS=str(self.gateways))
        env["LAB_KEEP"] = "1" if self.keep else "0"
        env["BRIDGE_ADDR"] = "yes" if self.bridge_addr else "none"
        return env

    def start(self) -> "Lab":
        if self._is_up:
            return self
        _install_handlers()
        with _live_lock:
            _live.append(self)
        self._is_up = True  # from here on, down() must run
        argv = ["bash", str(LAB_SH), "up"] + (["--net-only"] if self.net_only else []) \
            + (["--bridge"] if self.bridge else [])
        t0 = time.monotonic()
        try:
            p = subprocess.run(argv, env=self._sh_env(), stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               timeout=self.up_timeout)
        except BaseException:
            self._is_up = True  # a signal handler may have run down() while up was running
            self.down()
            raise
        self.up_seconds = time.monotonic() - t0
        self.up_output = p.stdout
        if p.returncode == 3:  # refused (a lab with this prefix exists): not ours to remove
            self._forget()
            raise LabError(f"lab.sh up refused:\n{p.stdout}")
        if p.returncode != 0:
            self.down()
            raise LabError(f"lab.sh up failed (rc={p.returncode}):\n{p.stdout}")
        try:
            self.env = parse_env(Path(self.lab_dir, "lab.env").read_text())
        except BaseException:
            self.down()
            raise
        return self

    def down(self) -> None:
        """Tear the lab down (idempotent)."""
        if not self._is_up:
            return
        for p in self._popens:
            if p.poll() is None:
                try:
                    p.terminate()
                except OSError:
                    pass
        t0 = time.monotonic()
        p = subprocess.run(["bash", str(LAB_SH), "down"], env=self._sh_env(),
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=60)
        self.down_seconds = time.monotonic() - t0
        for pp in self._popens:  # reap our children (lab.sh down killed them)
            try:
                pp.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pp.kill()
        self._popens.clear()
        self._forget()
        if p.returncode != 0:
            raise LabError(f"lab.sh down failed (rc={p.returncode}):\n{p.stdout}")

    def _forget(self) -> None:
        self._is_up = False
        with _live_lock:
            if self in _live:
                _live.remove(self)

    @property
    def is_up(self) -> bool:
        return self._is_up

    def __enter__(self) -> "Lab":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.down()

    # ------------------------------------------------------------------ values
    def __getattr__(self, name: str) -> str:
        env = self.__dict__.get("env") or {}
        if name in env:
            return env[name]
        raise AttributeError(name)

    @property
    def user_names(self) -> list[str]:
        return [u for u in self.env.get("USERS", "").split(",") if u]

    def password(self, user: str) -> str:
        return self.env[f"PASS_{user}"]

    def ns(self, role: str) -> str:
        """'client' -> 'mfl1234-client'; a full namespace name is returned unchanged."""
        if role in ROLES:
            return self.prefix + role
        if role.startswith(self.prefix) and role[len(self.prefix):] in ROLES:
            return role
        raise ValueError(f"unknown namespace {role!r} (one of {ROLES})")

    # ------------------------------------------------------------------ commands
    def _argv(self, ns: str, argv: Sequence[str] | str) -> list[str]:
        if isinstance(argv, str):
            argv = shlex.split(argv)
        return ["ip", "netns", "exec", self.ns(ns), *argv]

    def run(self, ns: str, argv: Sequence[str] | str, **kw: Any) -> subprocess.CompletedProcess:
        """subprocess.run(argv) inside namespace ns (stdin defaults to /dev/null)."""
        if kw.get("input") is None:
            kw.pop("input", None)
            kw.setdefault("stdin", subprocess.DEVNULL)
        return subprocess.run(self._argv(ns, argv), **kw)

    def popen(self, ns: str, argv: Sequence[str] | str, **kw: Any) -> subprocess.Popen:
        """subprocess.Popen(argv) inside namespace ns; killed at the latest on down()."""
        kw.setdefault("stdin", subprocess.DEVNULL)
        p = subprocess.Popen(self._argv(ns, argv), **kw)
        self._popens.append(p)
        return p

    def py_in(self, ns: str, code: str, timeout: float = 60, env: Mapping[str, str] | None = None,
              args: Iterable[str] = (), input: str | None = None, check: bool = True) -> str:
        """Run `/usr/bin/python3 -c code` inside ns; return its stdout (text).

        Raises LabError (with stderr) on a non-zero exit when check is true."""
        full_env = dict(os.environ)
        full_env.pop("PYTHONPATH", None)
        full_env.pop("PYTHONHOME", None)
        full_env["PYTHONDONTWRITEBYTECODE"] = "1"
        if env:
            full_env.update(env)
        p = self.run(ns, [PYTHON, "-c", code, *args], env=full_env, input=input,
                     capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise LabError(f"python in {self.ns(ns)} failed (rc={p.returncode}):\n"
                           f"--- stderr\n{p.stderr}\n--- stdout\n{p.stdout}")
        return p.stdout

    _RESULT = "@@LAB-RESULT@@"

    def py_json(self, ns: str, code: str, timeout: float = 60, **params: Any) -> Any:
        """Run code inside ns with `P` = params (JSON-able); return the JSON value the code
        assigned to `RESULT` (None if it assigned nothing)."""
        prelude = ("import json as _j, os as _o\n"
                   "P = _j.loads(_o.environ['LAB_PY_PARAMS'])\nRESULT = None\n")
        epilogue = f"\nprint({self._RESULT!r} + _j.dumps(RESULT))\n"
        out = self.py_in(ns, prelude + code + epilogue, timeout=timeout,
                         env={"LAB_PY_PARAMS": json.dumps(params)})
        _, sep, tail = out.rpartition(self._RESULT)
        if not sep:
            raise LabError(f"no result from python in {self.ns(ns)}:\n{out}")
        return json.loads(tail)

    # ------------------------------------------------------------------ logs
    def log_path(self, key: str) -> Path:
        """key: an env key (DOVECOT_LOG_OLD) or a path."""
        return Path(self.env.get(key, key))

    def log_mark(self, key: str) -> int:
        """Current size of a log, to read only what is written afterwards."""
        try:
            return self.log_path(key).stat().st_size
        except FileNotFoundError:
            return 0

    def log_since(self, key: str, mark: int = 0) -> str:
        with open(self.log_path(key), "rb") as f:
            f.seek(mark)
            return f.read().decode("utf-8", "replace")

    def wait_log(self, key: str, pattern: str, mark: int = 0, timeout: float = 10) -> str:
        """Wait until regex `pattern` appears in the log after `mark`; return the match."""
        import re
        rx = re.compile(pattern, re.M)
        deadline = time.monotonic() + timeout
        while True:
            text = self.log_since(key, mark)
            m = rx.search(text)
            if m:
                return m.group(0)
            if time.monotonic() > deadline:
                raise LabError(f"{pattern!r} not in {self.log_path(key)} after {timeout} s; "
                               f"log since mark:\n{text[-4000:]}")
            time.sleep(0.05)

    def __repr__(self) -> str:
        state = "up" if self._is_up else "down"
        return (f"<Lab {self.prefix} {state} dir={self.lab_dir}"
                f"{' net-only' if self.net_only else ''}{' bridge' if self.bridge else ''}>")
