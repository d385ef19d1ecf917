"""A throw-away OpenSSH server on 127.0.0.1 for the ``bench --target ssh://`` tests.

Fresh host and user keys in a temporary directory, public-key login only, and
``timeout`` around ``sshd -D`` so the server stops by itself even if the test
process dies. Only the loopback address is ever a target.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SERVER_LIFETIME_S = 600


def find_sshd() -> str | None:
    """Path of Debian's sshd (openssh-server), or None."""
    return shutil.which("sshd") or next((p for p in ("/usr/sbin/sshd",) if os.access(p, os.X_OK)), None)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LoopbackSshd:
    """A running server and the client config that reaches it as host alias ``edge-loopback``."""

    process: subprocess.Popen
    port: int
    user: str
    directory: Path
    client_config: Path

    def stop(self) -> None:
        """Stop the server (it would stop by itself after SERVER_LIFETIME_S)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def _keygen(path: Path) -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "edge-sdk-test", "-f", str(path)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return path.with_suffix(".pub").read_text().strip()


def start_sshd(directory: Path, forced_command: str | None = None) -> LoopbackSshd:
    """Start sshd on a free loopback port; ``forced_command`` replaces every client command (authorized_keys)."""
    sshd = find_sshd()
    assert sshd is not None
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    host_pub = _keygen(directory / "host_ed25519")
    user_pub = _keygen(directory / "user_ed25519")
    _keygen(directory / "stranger_ed25519")  # a key the server does not know
    options = f'command="{forced_command}",no-pty,no-port-forwarding,no-agent-forwarding ' if forced_command else ""
    (directory / "authorized_keys").write_text(options + user_pub + "\n")
    port = free_port()
    user = getpass.getuser()
    config = directory / "sshd_config"
    config.write_text(
        "\n".join(
            [
                "ListenAddress 127.0.0.1",
                f"Port {port}",
                f"HostKey {directory / 'host_ed25519'}",
                f"PidFile {directory / 'sshd.pid'}",
                f"AuthorizedKeysFile {directory / 'authorized_keys'}",
                f"AllowUsers {user}",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin prohibit-password",
                "UsePAM no",
                "StrictModes no",
                "LogLevel ERROR",
                "",
            ]
        )
    )
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    (directory / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub}\n")
    client = directory / "ssh_config"
    client.write_text(
        "\n".join(
            [
                "Host edge-loopback 127.0.0.1",
                "  HostName 127.0.0.1",
                f"  Port {port}",
                f"  User {user}",
                f"  IdentityFile {directory / 'user_ed25519'}",
                "  IdentitiesOnly yes",
                f"  UserKnownHostsFile {directory / 'known_hosts'}",
                "  GlobalKnownHostsFile /dev/null",
                "  StrictHostKeyChecking yes",
                "  LogLevel ERROR",
                "Host edge-stranger",
                "  HostName 127.0.0.1",
                f"  Port {port}",
                f"  User {user}",
                f"  IdentityFile {directory / 'stranger_ed25519'}",
                "  IdentitiesOnly yes",
                f"  UserKnownHostsFile {directory / 'known_hosts'}",
                "  GlobalKnownHostsFile /dev/null",
                "  StrictHostKeyChecking yes",
                "",
            ]
        )
    )
    process = subprocess.Popen(
        ["timeout", str(SERVER_LIFETIME_S), sshd, "-D", "-e", "-f", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=open(directory / "sshd.log", "wb"),
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited {process.returncode}: {(directory / 'sshd.log').read_text()[-500:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            time.sleep(0.1)
    else:
        process.kill()
        raise RuntimeError("sshd did not listen on 127.0.0.1 within 15 s")
    return LoopbackSshd(process, port, user, directory, client)
