"""The load scripts' building blocks, checked without running any load."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench._serve import (
    mint_tokens,
    parse_wrk,
    valid_orgnos,
    vm_rss_kib,
    write_lua,
    write_tokens,
)
from maskinporten_guard.orgno import is_valid_orgno
from maskinporten_guard.testing import FakeMaskinporten

WRK_OUTPUT = """\
Running 30s test @ http://127.0.0.1:40123
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    11.52ms    2.10ms  48.07ms   90.12%
    Req/Sec     2.79k   150.22     3.01k    80.00%
  Latency Distribution
     50%   11.20ms
     75%   12.01ms
     90%   13.40ms
     99%   19.85ms
  83412 requests in 30.01s, 16.07MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:   2779.47
Transfer/sec:    548.40KB
"""


def test_valid_orgnos_pass_the_check_digit() -> None:
    """Every generated orgno is nine digits with a correct mod-11 check digit."""
    orgnos = valid_orgnos(5_000)

    assert len(set(orgnos)) == 5_000
    assert all(is_valid_orgno(orgno) for orgno in orgnos)


def test_valid_orgnos_skip_bases_without_a_check_digit() -> None:
    """Bases whose check digit would be 10 are passed over, not emitted."""
    orgnos = valid_orgnos(200, first=91_000_000)
    bases = [int(orgno[:8]) for orgno in orgnos]

    assert bases[0] == 91_000_000
    assert bases[-1] - bases[0] + 1 > len(bases)


def test_token_file_holds_distinct_tokens(tmp_path: Path) -> None:
    """The writer puts N distinct minted tokens in the file, one a line."""
    consumers = valid_orgnos(4)
    grants = [("demo:inspections.read", consumers[n % 4]) for n in range(12)]
    tokens = mint_tokens(FakeMaskinporten(), grants)

    written = write_tokens(tmp_path / "tokens.txt", tokens)
    lines = (tmp_path / "tokens.txt").read_text().splitlines()

    assert written == len(lines) == 12
    assert len(set(lines)) == 12
    assert all(line.count(".") == 2 for line in lines)


def test_lua_script_names_the_token_file_and_path(tmp_path: Path) -> None:
    """The wrk script reads the token file and asks for the given path."""
    script = write_lua(tmp_path / "s.lua", tmp_path / "tokens.txt", "/inspections/7")

    text = script.read_text()
    assert str(tmp_path / "tokens.txt") in text
    assert '"/inspections/7"' in text


def test_rss_of_this_process_is_read() -> None:
    """VmRSS of the current process parses to a plausible number of KiB."""
    assert 1_000 < vm_rss_kib() < 10_000_000
    assert vm_rss_kib(os.getpid()) > 0


def test_wrk_output_is_parsed() -> None:
    """Requests, rate, percentiles and both kinds of error come out of wrk's text."""
    result = parse_wrk(WRK_OUTPUT)

    assert result.requests == 83_412
    assert result.rps == pytest.approx(2779.47)
    assert (result.p50_ms, result.p90_ms, result.p99_ms) == (11.20, 13.40, 19.85)
    assert result.non_2xx == 4
    assert result.socket_errors == 3
    assert result.ok == 83_408
