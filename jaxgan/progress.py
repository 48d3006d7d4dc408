"""Progress bars that suit where the output goes: a live tqdm bar with an ETA on a terminal
(or in a notebook), and in a file (a cluster job's log) a plain line every `LOG_INTERVAL`
seconds instead of every redraw of the bar."""

from __future__ import annotations

import io
import sys

from tqdm.auto import tqdm

LOG_INTERVAL = 60.0  # seconds between lines when the output is not a terminal


class _Lines(io.TextIOBase):
    """Turns tqdm's redraws (a carriage return, then the bar) into one line each."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> int:
        line = text.replace("\r", "").strip("\n")
        if line.strip():
            self.stream.write(line + "\n")
            self.stream.flush()
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


def _interactive(stream) -> bool:
    # A notebook's stderr is no terminal, but tqdm.auto draws a widget there.
    return getattr(stream, "isatty", lambda: False)() or "ipykernel" in sys.modules


def bar(total: int | None = None, *, desc: str = "", enabled: bool = True, stream=None,
        **kwargs) -> tqdm:
    """A tqdm bar over ``total`` steps (``enabled=False``: silent), as the module says."""
    stream = sys.stderr if stream is None else stream
    if not enabled:
        return tqdm(total=total, desc=desc, disable=True, **kwargs)
    if _interactive(stream):
        return tqdm(total=total, desc=desc, file=stream, dynamic_ncols=True, **kwargs)
    kwargs.pop("leave", None)  # a log keeps every line
    return tqdm(total=total, desc=desc, file=_Lines(stream), mininterval=LOG_INTERVAL,
                maxinterval=LOG_INTERVAL, ncols=100, ascii=True, **kwargs)
