"""CSV and Parquet files as metric sources."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, field_validator

from connectors.base import (
    Checks,
    Connector,
    ConnectorConfig,
    Measurement,
    MetricQuery,
    SchemaError,
    Window,
)
from cycles.errors import ConnectorError
from cycles.values import CheckResult

if TYPE_CHECKING:
    import pandas as pd

    from cycles.declaration.model import MetricSpec


class FileQuery(MetricQuery):
    """`filter: {column: value}` keeps rows whose column equals the value (or is in a list)."""

    filter: dict[str, Any] = Field(default_factory=dict)


class FileConfig(ConnectorConfig):
    path: Path


class FileConnector(Connector):
    """Shared by CSV and Parquet: resolve the path, read only the needed columns, filter."""

    Query: ClassVar[type[MetricQuery]] = FileQuery
    config: FileConfig

    @property
    def path(self) -> Path:
        path = Path(self.config.path).expanduser()
        return path if path.is_absolute() else (self.base_dir / path)

    def check_exists(self) -> None:
        if not self.path.is_file():
            raise SchemaError(f"file not found: {self.path}", key="path")

    def fetch(self, query: Any, window: Window, columns: Sequence[str]) -> pd.DataFrame:
        import pandas as pd

        wanted = list(dict.fromkeys([*columns, *query.filter]))
        available = self.columns(query) or []
        missing = [c for c in wanted if c not in available]
        if missing:
            key = "query" if missing[0] in query.filter else "columns"
            raise SchemaError(f"column {missing[0]!r} not found in {self.path}", key=key)
        frame = self._cached_read(wanted)
        for column, expected in query.filter.items():
            values = expected if isinstance(expected, list) else [expected]
            frame = frame[frame[column].isin(values)]
        return pd.DataFrame(frame, copy=False)

    def _cached_read(self, columns: list[str]) -> pd.DataFrame:
        """Parse the file once per content and column set: the Result and Assessment stages of
        a cycle, and successive cycles in one process, read the same columns."""
        stat = self.path.stat()
        key = (str(self.path.resolve()), stat.st_mtime_ns, stat.st_size, tuple(sorted(columns)))
        if key not in _READS:
            try:
                frame = self._read(columns)
            except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
                raise self.unreadable(exc) from exc
            _READS[key] = frame
            while len(_READS) > _READS_KEPT:
                _READS.pop(next(iter(_READS)))
        return _READS[key]

    def _read(self, columns: list[str]) -> pd.DataFrame:
        raise NotImplementedError

    def unreadable(self, exc: Exception) -> ConnectorError:
        """The one line for a file that cannot be read as its type says (a source fault)."""
        reason = str(exc)
        if isinstance(exc, UnicodeDecodeError):
            byte = exc.object[exc.start : exc.start + 1].hex()
            reason = (
                f"it is not {exc.encoding} text (byte 0x{byte}); if the file uses another "
                "encoding, name it with the connector's encoding: key (e.g. latin-1, utf-16)"
            )
        return ConnectorError(f"connector {self.name!r}: cannot read {self.path}: {reason}")


_READS: dict[tuple[Any, ...], pd.DataFrame] = {}  # oldest first
_READS_KEPT = 4  # bounded: memory must not grow with the number of outcomes


class CsvConfig(FileConfig):
    type: Literal["csv"] = "csv"
    delimiter: str = Field(default=",", min_length=1, max_length=1)  # one character
    encoding: str = "utf-8"

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        import codecs

        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown encoding {value!r} (e.g. utf-8, latin-1, utf-16)") from None
        return value


COMPLETE_CHECK = "radar_file_complete"


class CsvConnector(FileConnector):
    type = "csv"
    Config = CsvConfig
    config: CsvConfig

    def measure(
        self, metric: MetricSpec, window: Window, checks: Checks | None = None
    ) -> Measurement:
        """As every connector measures, plus a failed check when the file may be cut short: a
        last row cut inside a number (803 → 8) still parses, and its value would be wrong."""
        measured = super().measure(metric, window, checks)
        if checks and not self.ends_with_line_end():
            measured.checks.append(
                CheckResult(
                    metric=checks.metric,
                    expectation=COMPLETE_CHECK,
                    kwargs={"path": str(self.config.path)},
                    success=False,
                    engine="radar",
                    message=(
                        f"{self.config.path}: the last line has no line end: the file may be cut "
                        "short (truncated export?)"
                    ),
                )
            )
        return measured

    def ends_with_line_end(self) -> bool:
        """Whether the file's last line is terminated (\\n or \\r in its encoding); an empty
        file is complete. Files written whole end with one; a file cut short rarely does."""
        ends = _line_ends(self.config.encoding)
        try:
            with self.path.open("rb") as handle:
                size = handle.seek(0, 2)
                handle.seek(max(0, size - 8))
                tail = handle.read()
        except OSError as exc:
            raise self.unreadable(exc) from exc
        return not tail or tail.endswith(ends)

    def columns(self, query: Any) -> list[str] | None:
        self.check_exists()
        import csv

        try:
            with self.path.open(newline="", encoding=self.config.encoding) as handle:
                header = next(csv.reader(handle, delimiter=self.config.delimiter), [])
        except (OSError, UnicodeError, csv.Error) as exc:
            raise self.unreadable(exc) from exc
        return [name.strip() for name in header]

    def _read(self, columns: list[str]) -> pd.DataFrame:
        import pandas as pd

        return pd.read_csv(
            self.path,
            usecols=columns,
            sep=self.config.delimiter,
            encoding=self.config.encoding,
            skipinitialspace=True,
        )


def _line_ends(encoding: str) -> tuple[bytes, ...]:
    """`\\n` and `\\r` as bytes of `encoding`, without a byte-order mark; both byte orders for
    UTF-16 and UTF-32, whose order the file's own mark decides."""
    import codecs

    name = codecs.lookup(encoding).name
    names = [f"{name}-le", f"{name}-be"] if name in ("utf-16", "utf-32") else [name]
    ends = []
    for codec in names:
        for char in "\n\r":
            try:
                one, two = char.encode(codec), (char * 2).encode(codec)
            except (LookupError, UnicodeError):
                return (b"\n", b"\r")
            ends.append(two[len(one) :])  # the second char alone: no byte-order mark before it
    return tuple(dict.fromkeys(ends))


class ParquetConfig(FileConfig):
    type: Literal["parquet"] = "parquet"


class ParquetConnector(FileConnector):
    type = "parquet"
    Config = ParquetConfig
    config: ParquetConfig

    def columns(self, query: Any) -> list[str] | None:
        self.check_exists()
        import pyarrow.parquet as pq

        try:
            return list(pq.read_schema(self.path).names)
        except (OSError, ValueError) as exc:
            raise self.unreadable(exc) from exc

    def _read(self, columns: list[str]) -> pd.DataFrame:
        import pandas as pd

        return pd.read_parquet(self.path, columns=columns)
