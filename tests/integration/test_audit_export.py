"""`audit export` round-trips: the chain re-verifies from the exported file alone,
and an exported row edited afterwards is caught at its position."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from settlement.application.app import SettlementApplication
from settlement.audit.export import export_rows, verify_export, write_csv, write_jsonl
from settlement.service.scenario import marketplace_day
from support.ingest import commands_of

START = datetime(2026, 11, 26, 9, tzinfo=UTC)


@pytest.fixture
def app(es_env: dict[str, str]) -> Iterator[SettlementApplication]:
    application = SettlementApplication(es_env)
    application.handle_batch(commands_of(marketplace_day(START, "x")))
    application.handle_batch(commands_of(marketplace_day(START + timedelta(days=1), "y")))
    yield application
    application.close()


def test_jsonl_export_reverifies_from_the_file_alone(app: SettlementApplication) -> None:
    out = io.StringIO()
    count = write_jsonl(export_rows(app), out)
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert count == len(rows) > 40
    assert rows[0]["data"]["job_id"] == "x-project" and rows[0]["type"] == \
        "settlement.project_contracted"
    assert rows[0]["data"]["terms"] == {"scope": "logo and brand guide", "rights": "assigned"}
    assert verify_export(rows).ok
    tampered = [dict(r) for r in rows]
    tampered[9] = {**tampered[9], "stored": {**tampered[9]["stored"],
                                               "state": tampered[9]["stored"]["state"] + " "}}
    result = verify_export(tampered)
    assert not result.ok and result.first_bad_position == rows[9]["position"]


def test_csv_export_reverifies(app: SettlementApplication) -> None:
    out = io.StringIO()
    write_csv(export_rows(app), out)
    rows = [{**r, "stored": {"originator_id": r["originator_id"], "topic": r["topic"],
                             "state": r["state"]}}
            for r in csv.DictReader(io.StringIO(out.getvalue()))]
    assert verify_export(rows).ok


def test_filters_by_job_and_time_keep_rows_checkable(app: SettlementApplication) -> None:
    job_rows = list(export_rows(app, job_id="y-task"))
    assert job_rows and {r["job_id"] for r in job_rows} == {"y-task"}
    assert verify_export(job_rows, complete=False).ok
    day_one = list(export_rows(app, end=START + timedelta(hours=12)))
    assert day_one and all(r["job_id"].startswith("x-") for r in day_one)
