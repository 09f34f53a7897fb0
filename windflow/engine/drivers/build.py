"""Image builds on the target's engine: the builder seam, image names and labels, and the
reading of a build's output.

``ClassicBuilder`` posts the context to the engine's ``/build`` (the classic builder,
``version=1``). A BuildKit builder would be another class with the same ``build`` method
(``version=2`` and a session): the driver only calls ``builder.build(...)`` and reads the
decoded JSON messages it yields (``{"stream": ...}``, ``{"error": ...}``, ``{"aux": ...}``).

Registry credentials for the ``FROM`` images are sent only from the deploy's own
``registry_auth``, never from the worker's Docker config file.

Pure Python (docker SDK; no Django).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from docker import auth as docker_auth
from docker.types.daemon import CancellableStream

from windflow.engine.compose.plan import BuildSpec

__all__ = [
    "CONTEXT_DIGEST_LABEL",
    "BuildOutput",
    "ClassicBuilder",
    "image_tag",
]

CONTEXT_DIGEST_LABEL = "io.windflow.context-digest"
OUTPUT_TAIL = 20  # lines of a failed build's output in its diagnosis
_STEP = re.compile(r"^Step (\d+)/(\d+) : ")


def image_tag(repository: str, service: str, revision: int) -> str:
    """``<repository>-<service>:r<revision>``, lowercased (a Docker reference)."""
    return f"{repository}-{service}:r{revision}".lower()


class ClassicBuilder:
    """The engine's classic builder (``POST /build``, ``version=1``)."""

    name = "classic"
    version = "1"

    def build(
        self,
        api,
        context,
        *,
        tag: str,
        build: BuildSpec,
        labels: dict[str, str],
        pull: bool,
        registry_auth: dict[str, dict],
        timeout: float,
        cancel=None,
    ) -> Iterator[dict[str, Any]]:
        """Post the tar `context` (a file object) and yield the engine's decoded messages.
        `cancel` (a CancelToken): cut the connection when it is cancelled, even while the
        build is silent (the engine then stops the build)."""
        params: dict[str, Any] = {
            "t": tag,
            "dockerfile": build.dockerfile,
            "rm": True,
            "forcerm": True,
            "pull": pull or build.pull,
            "nocache": build.no_cache,
            "version": self.version,
            "labels": json.dumps(labels),
        }
        if build.args:
            params["buildargs"] = json.dumps(build.args)
        if build.target:
            params["target"] = build.target
        if build.network:
            params["networkmode"] = build.network
        if build.extra_hosts:
            params["extrahosts"] = json.dumps(build.extra_hosts)
        if build.shm_size:
            params["shmsize"] = build.shm_size
        if build.cache_from:
            params["cachefrom"] = json.dumps(list(build.cache_from))
        headers = {"Content-Type": "application/x-tar"}
        if registry_auth:
            headers["X-Registry-Config"] = docker_auth.encode_header(
                {
                    registry: {
                        "username": entry.get("username", ""),
                        "password": entry.get("password", ""),
                    }
                    for registry, entry in registry_auth.items()
                }
            )
        response = api._post(
            api._url("/build"),
            data=context,
            params=params,
            headers=headers,
            stream=True,
            timeout=timeout,
        )
        unregister = cancel.on_cancel(lambda: interrupt(response)) if cancel else None
        try:
            api._raise_for_status(response)
            yield from api._stream_helper(response, decode=True)
        finally:
            if unregister is not None:
                unregister()
            interrupt(response)  # a build left early (cancel, failure) stops on the engine too


def interrupt(response) -> None:
    """Cut a streamed response from any thread, even while a read waits on it: the socket
    is shut down (a unix socket or TLS), or the SSH channel closed."""
    with contextlib.suppress(Exception):
        CancellableStream(iter(()), response).close()
    with contextlib.suppress(Exception):
        response.raw._fp.fp.channel.close()
    with contextlib.suppress(Exception):
        response.close()


@dataclass
class BuildOutput:
    """What a build said so far: its current step and last lines (for the diagnosis)."""

    step: str = ""
    number: int = 0
    steps: int = 0
    lines: deque = field(default_factory=lambda: deque(maxlen=OUTPUT_TAIL))
    image_id: str | None = None
    error: str | None = None

    def feed(self, message: dict[str, Any]) -> list[str]:
        """Take one decoded message; return the new output lines (for the live log)."""
        new: list[str] = []
        text = message.get("stream")
        if isinstance(text, str):
            for line in text.splitlines():
                line = line.rstrip()
                if not line.strip():
                    continue
                match = _STEP.match(line)
                if match:
                    self.step = line
                    self.number, self.steps = int(match.group(1)), int(match.group(2))
                    self.lines.clear()
                self.lines.append(line)
                new.append(line)
        status = message.get("status")
        if isinstance(status, str) and status and not message.get("progressDetail"):
            # A FROM image pulled (pull_policy: always): one line per step, no progress bars.
            line = f"{message['id']}: {status}" if message.get("id") else status
            self.lines.append(line)
            new.append(line)
        if "error" in message:
            detail = message.get("errorDetail") or {}
            self.error = str(detail.get("message") or message["error"]).strip()
        aux = message.get("aux")
        if isinstance(aux, dict) and aux.get("ID"):
            self.image_id = str(aux["ID"])
        return new

    @property
    def progress(self) -> int:
        """0..40: the build's share of a service's progress (as a pull's)."""
        return 40 * self.number // self.steps if self.steps else 0
