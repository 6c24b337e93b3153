"""No password, token or private key is committed: every tracked file is scanned (make test runs this)."""

from __future__ import annotations

import re
import subprocess

import pytest

from core.settings import PROJECT_ROOT

PATTERNS = {
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "AWS access key id": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,})\b"),
    "Slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    "Grafana service account token": re.compile(r"\bglsa_[A-Za-z0-9_]{20,}"),
    "JWT": re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
    # a literal assigned to something named like a secret (an empty one, a variable or ${ENV} is fine)
    "secret literal": re.compile(r"(?i)\b\w*(?:password|passwd|secret|token|api_key)\w*\s*[:=]\s*['\"]"
                                 r"(?![$<{])[^'\"\s]{6,}['\"]"),
}
#: literals that are no secret, and why
ALLOWED: dict[tuple[str, str], str] = {}  # (path, text on the line) -> why it is no secret
SKIP_SUFFIXES = (".json", ".csv", ".gz", ".png", ".lock")


def findings(path: str, text: str) -> list[str]:
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        for what, pattern in PATTERNS.items():
            if pattern.search(line) and not any(path == p and key in line for p, key in ALLOWED):
                out.append(f"{path}:{n}: {what}")
    return out


def tracked_files() -> list[str]:
    try:
        listed = subprocess.run(["git", "ls-files"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [f for f in listed.stdout.splitlines() if not f.endswith(SKIP_SUFFIXES)]


def test_no_secret_is_committed() -> None:
    files = tracked_files()
    assert "deploy/.env" not in files
    found = []
    for f in files:
        path = PROJECT_ROOT / f
        if path.is_file():
            found += findings(f, path.read_text(errors="replace"))
    assert found == []


# built from pieces, so that this file itself holds none of them
@pytest.mark.parametrize("line", [
    "-----BEGIN " + "OPENSSH PRIVATE KEY-----",
    "aws_key = AKIA" + "IOSFODNN7EXAMPLE",
    "token: ghp_" + "a1B2" * 9,
    "GF_SECURITY_ADMIN_PASSWORD: " + "'hunter2hunter2'",
    "clickhouse_password = " + '"s3cr3t-value"',
    "Authorization: Bearer " + ".".join(["eyJhbGciOiJIUzI1NiJ9", "eyJzdWIiOiIxMjM0NTY3ODkwIn0",
                                         "dozjgNryP4J3jVmNHl0w"]),
])
def test_the_scan_finds_planted_secrets(line: str) -> None:
    assert findings("x.yml", line)


@pytest.mark.parametrize("line", [
    'kafka_sasl_password: SecretStr = SecretStr("")',
    "VIGIE_CLICKHOUSE_PASSWORD: ${VIGIE_CLICKHOUSE_PASSWORD:?run make secrets (deploy/.env)}",
    "password=settings.kafka_sasl_password.get_secret_value(),",
])
def test_the_scan_lets_references_pass(line: str) -> None:
    assert findings("x.py", line) == []
