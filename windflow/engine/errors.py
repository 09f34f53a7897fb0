"""Errors of the deploy engine: a message that says what went wrong and a ``hint`` that
says, for a person, how to fix it.

Pure Python (no Django). Messages and hints never contain a private key or a
passphrase: they name hosts, users, ports, fingerprints and public keys only.
"""

from __future__ import annotations


class EngineError(Exception):
    """Base of every engine error. ``str(error)`` is the message; ``.hint`` a fix.

    A driver turns every error of the Docker SDK and of its transports (requests, urllib3,
    paramiko, sockets) into an engine error, so that callers catch only these. Such an error
    keeps the :class:`~windflow.engine.diagnose.Diagnosis` of the original in ``.diagnosis``
    (None for the others)."""

    default_hint = ""
    diagnosis = None
    # The code that services, deployments and the API report for this kind of error (one
    # per kind, documented in docs/targets.md); ``code`` is the class name.
    error_code = "engine_error"

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = self.default_hint if hint is None else hint

    @property
    def code(self) -> str:
        """A stable machine name for the error kind (the class name)."""
        return type(self).__name__

    def __str__(self) -> str:
        return self.message


class Unreachable(EngineError):
    """The host refused the connection, does not resolve, or the connection was lost."""

    default_hint = "Check the host name and port, that the SSH server runs, and the firewalls."
    error_code = "server_unreachable"


class ConnectTimeout(Unreachable):
    """No answer (TCP, SSH banner or handshake) within the connect timeout."""

    default_hint = (
        "Check that the host is up, that the port is the SSH port and that no firewall "
        "silently drops the traffic."
    )
    error_code = "server_timeout"


class AuthenticationFailed(EngineError):
    """The server refused the key for this user."""

    default_hint = "Add the public key to ~/.ssh/authorized_keys of the user on the server."
    error_code = "ssh_auth_failed"


class HostKeyError(EngineError):
    """Base of the host key refusals."""


class HostKeyUnknown(HostKeyError):
    """No host key fingerprint is pinned yet: confirm the one presented, then pin it.

    ``.fingerprint``, ``.key_type`` and ``.public_line`` describe the key presented."""

    default_hint = (
        "Compare the fingerprint with the server's (ssh-keygen -lf "
        "/etc/ssh/ssh_host_ed25519_key.pub on the server) and confirm it to pin it."
    )
    error_code = "host_key_unconfirmed"

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        fingerprint: str = "",
        key_type: str = "",
        public_line: str = "",
    ):
        super().__init__(message, hint)
        self.fingerprint = fingerprint
        self.key_type = key_type
        self.public_line = public_line


class HostKeyMismatch(HostKeyError):
    """The server presented a host key other than the pinned one. Refused until an admin
    confirms the new key. ``.expected`` and ``.actual`` are the two fingerprints."""

    default_hint = (
        "The server's identity changed: it was reinstalled, its keys were rotated, or "
        "someone intercepts the connection. Check the new fingerprint on the server "
        "itself, then re-confirm the host key."
    )
    error_code = "host_key_changed"

    def __init__(
        self, message: str, hint: str | None = None, *, expected: str = "", actual: str = ""
    ):
        super().__init__(message, hint)
        self.expected = expected
        self.actual = actual


class KeyFormatError(EngineError):
    """The private key cannot be used: malformed, unsupported type, a passphrase is
    needed, or the passphrase is wrong. The message tells which."""

    default_hint = (
        "Paste the whole private key, from the -----BEGIN line to the -----END line "
        "(OpenSSH or PEM; ed25519, RSA or ECDSA), or let WindFlow generate a key pair."
    )
    error_code = "ssh_key_invalid"


class DockerUnavailable(EngineError):
    """Docker is not installed, not running, or does not answer."""

    default_hint = "Run Prepare server to install Docker, or start it: sudo systemctl start docker"
    error_code = "docker_unavailable"


class NotFound(EngineError):
    """The engine has no such object (container, network, volume, image)."""

    error_code = "not_found"


class ContainerNotFound(NotFound):
    """No such container, or not one the caller may see: both read the same, so that nothing
    tells another project's container from a missing one."""


class PermissionDeniedDocker(EngineError):
    """The user may not use the Docker socket."""

    default_hint = "Add the user to the docker group: sudo usermod -aG docker USER"
    error_code = "docker_permission_denied"


class CommandFailed(EngineError):
    """A remote command could not be run or did not finish (runs with a non-zero exit
    code are results, not errors: see ``SSHSession.run``)."""

    default_hint = ""
    error_code = "ssh_command_failed"


class CommandTimeout(CommandFailed):
    """A remote command did not finish within its timeout; its channel was closed."""

    default_hint = "The server may be overloaded, or the command waits for input."
    error_code = "ssh_command_timeout"


class ChannelLimit(CommandFailed):
    """The server refused another channel (session) on the connection: its sshd allows fewer
    than WindFlow needs (MaxSessions), or every channel stayed busy."""

    default_hint = (
        "WindFlow opens up to 8 sessions on one SSH connection: keep MaxSessions at its "
        "default (10) or above in /etc/ssh/sshd_config on the server (and in any Match block "
        "for this user), then reload sshd: sudo systemctl reload ssh"
    )
    error_code = "ssh_session_limit"
