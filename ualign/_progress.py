"""A progress bar for long runs: tqdm when it is installed, else a plain counter
on stderr. Nothing is shown for runs that finish within `delay` seconds."""

from __future__ import annotations

import sys
import time
from typing import Any, Optional, TextIO


class Progress:
    """``update(n)`` after each unit of work; ``close()`` at the end (or use ``with``)."""

    def __init__(self, total: int, desc: str = "audit", enabled: bool = True, delay: float = 1.0,
                 stream: Optional[TextIO] = None, unit: str = "prompt", use_tqdm: Optional[bool] = None) -> None:
        self.total, self.desc, self.unit = int(total), desc, unit
        self.enabled = bool(enabled) and total > 0
        self.delay = float(delay)
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0
        self._start = time.monotonic()
        self._last = 0.0
        self._shown = False
        self._bar: Any = None
        if self.enabled and use_tqdm is not False:
            try:
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self._bar = tqdm(total=self.total, desc=desc, unit=unit, delay=self.delay, file=self.stream,
                                 dynamic_ncols=True)

    def update(self, n: int = 1) -> None:
        self.done += int(n)
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(n)
            return
        now = time.monotonic() - self._start
        if now < self.delay or (now - self._last < 0.25 and self.done < self.total):
            return
        self._last = now
        self._shown = True
        rate = self.done / now if now > 0 else 0.0
        self.stream.write(f"\r{self.desc}: {self.done}/{self.total} {self.unit}s ({rate:.0f}/s)")
        self.stream.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self._shown:
            self.stream.write("\n")
            self.stream.flush()
            self._shown = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
