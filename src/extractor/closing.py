"""``Closing``: the base of what a ``with`` block closes at its end (the extractor, a results writer,
the service client)."""

from __future__ import annotations

from types import TracebackType
from typing import Self

__all__ = ["Closing"]


class Closing:
    """``with obj:`` returns ``obj`` and calls ``obj.close()`` at the end of the block, whatever happens."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
