"""Progress of long work: log lines for services, a bar for people at a terminal."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from tqdm import tqdm

Progress = Callable[[int, int], None]
"""Called with (done, total)."""


def log_progress(log: logging.Logger, label: str, every_s: float = 5.0) -> Progress:
    """A progress callback that logs at most every ``every_s`` seconds (service logs)."""
    last = [time.monotonic()]

    def show(done: int, total: int) -> None:
        now = time.monotonic()
        if done >= total or now - last[0] >= every_s:
            last[0] = now
            log.info(label, extra={"done": done, "total": total})

    return show


@contextmanager
def bar(label: str, *, unit: str = "it", out: TextIO = sys.stderr) -> Iterator[Progress]:
    """A progress bar for command-line tools (plain lines when ``out`` is not a terminal)."""
    with tqdm(
        desc=label,
        unit=unit,
        file=out,
        total=0,
        dynamic_ncols=True,
        mininterval=0.2 if out.isatty() else 2.0,
        leave=True,
    ) as progress:

        def show(done: int, total: int) -> None:
            if progress.total != total:
                progress.total = total
                progress.refresh()
            progress.update(done - progress.n)

        yield show
