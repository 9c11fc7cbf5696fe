"""Commands that need the network, refused at once on a machine that has none.

Small models reach for `git clone https://github.com/yourusername/...`, `pip install` and `curl`
when they are stuck, and repeat them with another made-up URL each time. Offline, each of those
waits on a DNS lookup or a connect timeout and says nothing useful; the refusal says what works
here instead. `[agent] network`: "auto" (probe once whether the package index can be reached),
"on" (never refuse), "off" (always refuse).
"""

from __future__ import annotations

import socket
from functools import lru_cache

from agent.tools.interactive import programs

NETWORK_SETTINGS = ("auto", "on", "off")
PROBE_HOST, PROBE_PORT, PROBE_TIMEOUT_S = "pypi.org", 443, 1.5
ALWAYS_REMOTE = {"curl", "wget", "ping", "nc", "rsync", "scp", "ssh", "telnet", "ftp", "sftp"}
# subcommands that reach a remote: program -> its subcommands
REMOTE_SUBCOMMANDS = {
    "git": {"clone", "fetch", "pull", "push", "ls-remote"},
    "pip": {"install", "download"}, "pip3": {"install", "download"},
    "npm": {"install", "i", "ci", "add"}, "yarn": {"add", "install"}, "pnpm": {"add", "install", "i"},
    "apt": {"install", "update"}, "apt-get": {"install", "update"}, "brew": {"install", "update"},
    "dnf": {"install"}, "yum": {"install"}, "cargo": {"install", "fetch"}, "go": {"get", "install"},
    "gem": {"install"},
}
# pip work that stays on this machine
LOCAL_PIP = {"--no-index", "-e", "--editable"}


def network_reason(command: str) -> str | None:
    """Why `command` needs the network, or None when it does not seem to."""
    for name, arguments in programs(command):
        if name.startswith("python") and arguments[:2] == ["-m", "pip"]:
            name, arguments = "pip", arguments[2:]
        subcommand = next((a for a in arguments if not a.startswith("-")), "")
        if name in ALWAYS_REMOTE:
            return f"'{name}' needs the network"
        if subcommand in REMOTE_SUBCOMMANDS.get(name, ()):
            if name in ("pip", "pip3") and _local_install(arguments):
                continue
            return f"'{name} {subcommand}' needs the network"
    return None


def _local_install(arguments: list[str]) -> bool:
    """pip installing from this machine: --no-index, -e, or only paths (./pkg, a wheel file)."""
    if LOCAL_PIP & set(arguments):
        return True
    targets = [a for a in arguments[1:] if not a.startswith("-")]
    return bool(targets) and all(t.startswith((".", "/")) or t.endswith((".whl", ".tar.gz")) for t in targets)


@lru_cache(maxsize=1)
def network_available() -> bool:
    """Whether this machine reaches the package index (asked once per process)."""
    try:
        with socket.create_connection((PROBE_HOST, PROBE_PORT), timeout=PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


def offline_refusal(command: str, setting: str) -> str | None:
    """The refusal for `command` under the `network` setting, or None when it may run."""
    if setting == "on":
        return None
    reason = network_reason(command)
    if reason is None or (setting == "auto" and network_available()):
        return None
    return (f"{reason} and this machine has none: work with what is in the repository and installed here "
            "(read_file, grep, list_dir, the project's own tests)")
