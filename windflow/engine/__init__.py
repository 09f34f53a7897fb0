"""The deploy engine: pure Python, no Django import, no ``apps`` import (DESIGN.md).

- ``errors``: EngineError and its kinds, each with a ``hint`` for people.
- ``ssh``: keys, host key scan and pinning, sessions (run, stream, put), SessionPool.
- ``dockerhost``: Docker clients for a local socket or over a pinned SSH session.
- ``checks``: connectivity checks of a target, with facts about the host.
- ``bootstrap``: the "Prepare server" script (Docker Engine + compose plugin).

Submodules are imported on demand: importing ``windflow.engine`` loads nothing else.
"""
