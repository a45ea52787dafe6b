"""What a batch job reports: the ``Summary`` line, peak memory and the progress bar.

Both engines (local threads, Ray Data) end with the same ``Summary``, so a nightly log or a
notebook reads the same line whichever ran the job.
"""

from __future__ import annotations

import resource
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Summary:
    rows: int
    scored: int
    rejected: int
    chunks: int
    resumed_chunks: int
    seconds: float
    rows_per_s: float
    peak_rss_mb: float
    output: str
    rejects: str | None

    def as_text(self) -> str:
        return (
            f"{self.rows:,} rows ({self.scored:,} scored, {self.rejected:,} rejected) in "
            f"{self.seconds:.1f} s = {self.rows_per_s:,.0f} rows/s; {self.chunks} chunks "
            f"({self.resumed_chunks} resumed); peak memory {self.peak_rss_mb:.0f} MB "
            f"→ {self.output}"
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def peak_rss_mb() -> float:
    """This process's peak resident memory. Linux: VmHWM, because ``ru_maxrss`` survives
    ``exec`` and would report a parent's peak for a freshly started scorer."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def make_summary(
    *,
    rows: int,
    scored: int,
    rejected: int,
    chunks: int,
    resumed: int,
    started: float,
    output: Path | str,
    rejects: Path | None,
) -> Summary:
    seconds = time.perf_counter() - started
    return Summary(
        rows=rows,
        scored=scored,
        rejected=rejected,
        chunks=chunks,
        resumed_chunks=resumed,
        seconds=round(seconds, 3),
        rows_per_s=round(rows / seconds, 1) if seconds else 0.0,
        peak_rss_mb=round(peak_rss_mb(), 1),
        output=str(output),
        rejects=str(rejects) if rejects else None,
    )


def progress_bar(total: int | None, enabled: bool) -> Any:
    """tqdm: rows, rows/s, and an ETA when the row count is known (Parquet footers).

    ``tqdm.auto`` picks the widget bar in Jupyter; without ipywidgets (not in the course's
    lock) it warns on import and falls back to the text bar — the same bar, so its
    TqdmWarning is noise in every notebook and is silenced here, where it starts.
    """
    import warnings

    from tqdm import TqdmWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TqdmWarning)
        from tqdm.auto import tqdm

    return tqdm(total=total, unit="rows", unit_scale=True, disable=not enabled, smoothing=0.1)
