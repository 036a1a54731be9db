"""Standard output that survives a reader who stops early (``hybridstack … | head``).

When the reader of a pipe exits, the next write raises ``BrokenPipeError``. A command
that is half-way through an agent run must not die of that (the run, its checkpoints and
its ledger rows matter more than the rest of its printout), and its exit code must still
say how the work went. So the first broken write points the stdout file descriptor at
``/dev/null`` (as the Python documentation advises for SIGPIPE) and the command carries
on, printing into nothing.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any, TextIO, cast


class PipeSafeStdout:
    """A proxy for ``sys.stdout`` whose writes and flushes never raise BrokenPipeError."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        #: True once the reader went away; later output goes to /dev/null.
        self.reader_gone = False

    def _silence(self) -> None:
        self.reader_gone = True
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, self._stream.fileno())
        except (OSError, ValueError):  # no real descriptor (a test's StringIO): drop output
            pass
        finally:
            os.close(devnull)

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._silence()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._silence()
            try:  # what was buffered now goes to /dev/null, so the final flush succeeds
                self._stream.flush()
            except (BrokenPipeError, OSError, ValueError):
                pass

    def isatty(self) -> bool:
        return False if self.reader_gone else self._stream.isatty()

    def __getattr__(self, name: str) -> Any:  # encoding, fileno, buffer, errors …
        return getattr(self._stream, name)


@contextlib.contextmanager
def pipe_safe_stdout() -> Iterator[PipeSafeStdout | None]:
    """Within the block, ``sys.stdout`` is a :class:`PipeSafeStdout` (flushed on the way out)."""
    original = sys.stdout
    if original is None or isinstance(original, PipeSafeStdout):
        yield None
        return
    proxy = PipeSafeStdout(original)
    sys.stdout = cast(TextIO, proxy)
    try:
        yield proxy
    finally:
        proxy.flush()
        sys.stdout = original
