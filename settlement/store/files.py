"""Bank files stored with the event that records them (a payout run's completion):
`Application.save(run, files=[PayoutFile(...)])` writes them in the same
transaction (`SettlementRecorder`), so the file a run's summary names by its
SHA-256 is there exactly when the summary is. Table `<prefix>_payout_files`
beside the events table `<prefix>_events` (the application's name:
`settlement_payout_files`), one row per run and currency; never updated."""

from __future__ import annotations

from dataclasses import dataclass

FILES_TABLE_SUFFIX = "_payout_files"


@dataclass(frozen=True)
class PayoutFile:
    run_id: str
    currency: str
    sha256: str
    content: bytes

    def __repr__(self) -> str:
        # The content carries account numbers whole: never in a log.
        return f"PayoutFile({self.run_id}, {self.currency}, {self.sha256[:12]}…)"


def files_table(events_table_name: str = "settlement_events") -> str:
    return events_table_name.removesuffix("_events") + FILES_TABLE_SUFFIX
