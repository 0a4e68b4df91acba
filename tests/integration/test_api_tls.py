"""`settlement api --ssl-certfile … --ssl-keyfile …` serves HTTPS (docs/operations.md,
"TLS"), and refuses at once, with a coded log line and exit status 2, files it
could not serve with. Tokens as in the runbook's rotation: two digests of one
role at once, both accepted."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import psycopg
import pytest

from settlement.cli.api import tls_problem
from settlement.projections.storage import schema
from support.console import free_port
from support.processes import wait_for

OLD_TOKEN, NEW_TOKEN = "old-finance-token", "new-finance-token"
PROCESS_TIMEOUT_S = 30
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tls"  # see its README


@pytest.fixture
def certificate() -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (PEM files)."""
    return FIXTURES / "cert.pem", FIXTURES / "key.pem"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()  # `printf %s TOKEN | sha256sum`


def test_api_serves_https_with_both_tokens_of_a_rotation(
    database_url: str, certificate: tuple[Path, Path], tmp_path: Path,
) -> None:
    cert, key = certificate
    with psycopg.connect(database_url, autocommit=True) as conn:
        schema.create(conn, schema.LIVE_SCHEMA)  # empty read models: answers 200
    port = free_port()
    env = {**os.environ, "SETTLEMENT_DATABASE_URL": database_url,
           "SETTLEMENT_API_ADDR": f"127.0.0.1:{port}",
           "SETTLEMENT_API_TOKENS": f"sha256:{digest(OLD_TOKEN)}:finance,"
                                    f"sha256:{digest(NEW_TOKEN)}:finance"}
    process = subprocess.Popen(
        [sys.executable, "-m", "settlement.cli", "api", "--ssl-certfile", str(cert),
         "--ssl-keyfile", str(key)], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    base = f"https://127.0.0.1:{port}"
    trusted = ssl.create_default_context(cafile=str(cert))
    try:
        with httpx.Client(verify=trusted, timeout=5) as client:

            def healthy() -> bool:
                assert process.poll() is None, process.communicate()
                try:
                    return client.get(f"{base}/healthz").status_code == 200
                except httpx.TransportError:
                    return False

            wait_for(healthy, "the API over HTTPS", PROCESS_TIMEOUT_S)
            for token in (OLD_TOKEN, NEW_TOKEN):
                answer = client.get(f"{base}/v1/balances",
                                    headers={"Authorization": f"Bearer {token}"})
                assert answer.status_code == 200, answer.text
            assert client.get(f"{base}/v1/balances", headers={
                "Authorization": "Bearer retired-token"}).status_code == 401
        with pytest.raises(httpx.TransportError):  # no plain HTTP on the TLS port
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=PROCESS_TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    lines = [json.loads(line) for line in err.splitlines()]
    listening = next(line for line in lines if line["event"] == "api.listening")
    assert listening["tls"] is True and listening["roles"] == ["finance"]
    assert OLD_TOKEN not in err and NEW_TOKEN not in err


def test_tls_files_it_cannot_serve_with_are_refused_before_it_starts(
    certificate: tuple[Path, Path], tmp_path: Path,
) -> None:
    cert, key = certificate
    locked = FIXTURES / "key-encrypted.pem"  # the same key under a passphrase
    assert tls_problem(None, None) is None
    assert tls_problem(str(cert), str(key)) is None
    assert tls_problem(None, str(key)) == "--ssl-keyfile needs --ssl-certfile"
    for certfile, keyfile in ((str(cert), None),  # the key is not in the certificate file
                              (str(cert), str(locked)),  # needs a passphrase: not prompted
                              (str(tmp_path / "missing.pem"), str(key)),
                              (str(key), str(key))):
        problem = tls_problem(certfile, keyfile)
        assert problem and problem.startswith("cannot load the certificate and key"), problem
    env = {**os.environ, "SETTLEMENT_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    done = subprocess.run([sys.executable, "-m", "settlement.cli", "api", "--ssl-certfile",
                           str(cert), "--ssl-keyfile", str(locked)], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=PROCESS_TIMEOUT_S,
                          check=False)
    assert done.returncode == 2, done.stderr
    [line] = [json.loads(line) for line in done.stderr.splitlines()]
    assert line["event"] == "api.tls_invalid" and line["error"].startswith("cannot load")
