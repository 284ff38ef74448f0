"""Each OS profile (`--os`, `--host-os`) against its documented TIME_WAIT length and its handling
of an in-sequence RST in TIME_WAIT, on real samples (docs/rules.md "TIME_WAIT", *Start and
length* and *Assassination*).

The expected values are written here from the sources that document them, never read from
teardown/options.py: a profile whose figure disagrees with its source fails here (or is listed as
a known disagreement, strict, so fixing it shows)."""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import teardown
from teardown import Options, OsProfile
from teardown.cli import main

from .conftest import CAPTURES

# TIME_WAIT length (2 x MSL as the stack implements it), seconds, with where it is documented.
TIME_WAIT_S = {
    # Linux: include/net/tcp.h `#define TCP_TIMEWAIT_LEN (60*HZ)` ("how long to wait to destroy
    # TIME-WAIT state, about 60 seconds"), fixed at compile time. captures/reuse_after_time_wait:
    # ss showed the TIME_WAIT gone 60.9 s after its final ACK on this kernel.
    "linux": 60.0,
    # macOS: XNU bsd/netinet/tcp_timer.h `#define TCPTV_MSL (15*TCP_RETRANSHZ)` (15 s, the
    # net.inet.tcp.msl sysctl's default), and bsd/netinet/tcp_input.c enters TIME_WAIT with
    # `add_to_time_wait(tp, 2 * tcp_msl)`: 30 s.
    "macos": 30.0,
    # FreeBSD: sys/netinet/tcp_timer.h `#define TCPTV_MSL (30*hz)` (net.inet.tcp.msl 30000 ms by
    # default), and sys/netinet/tcp_timewait.c holds TIME_WAIT for 2 * tcp_msl: 60 s. OpenBSD and
    # NetBSD define the same MSL (`TCPTV_MSL (30*PR_SLOWHZ)`) with a 2*MSL TIME_WAIT.
    "bsd": 60.0,
    # Windows: the TcpTimedWaitDelay registry value, default 0xF0 = 240 s ("Microsoft Windows 2000
    # TCP/IP Implementation Details", TechNet cc938217; MSDN ms819739 for Windows Server 2003:
    # "two maximum segment lifetimes (MSL), or four minutes. This time period is the default").
    # Conflicting: the Windows Server 2003 registry reference (TechNet cc757512) gives 0x78 = 120 s.
    "windows": 240.0,
    # RFC 9293 §3.4.2: MSL "arbitrarily defined to be 2 minutes"; TIME-WAIT lasts 2 MSL (§3.3.2).
    "rfc793": 240.0,
}

# Does an RST carrying exactly the sequence number the TIME_WAIT holder expects end its TIME_WAIT?
RST_ENDS_TIME_WAIT = {
    # Linux: net/ipv4/tcp_minisocks.c tcp_timewait_state_process(): an in-window RST kills the
    # TIME_WAIT unless net.ipv4.tcp_rfc1337 is set, and it is 0 by default
    # (Documentation/networking/ip-sysctl.rst). Seen on this kernel: captures/tw_assassination,
    # ss before/after.
    "linux": True,
    # macOS: XNU bsd/netinet/tcp_input.c, RST processing: "TIME_WAIT STATE: Drop the segment - see
    # Stevens, vol. 2, p. 964 and RFC 1337" (`case TCPS_TIME_WAIT: break;` then drop).
    "macos": False,
    # FreeBSD: sys/netinet/tcp_timewait.c tcp_twcheck(): "If the segment contains RST: Drop the
    # segment - see Stevens, vol. 2, p. 964 and RFC 1337" (`if (thflags & TH_RST) goto drop;`).
    "bsd": False,
    # Windows: no Microsoft document found says how an RST in TIME_WAIT is handled. Expected here
    # as RFC 9293 §3.10.7.4 prescribes for a stack without RFC 1337's fix: an assumption.
    "windows": True,
    # RFC 9293 §3.10.7.4, "second, check the RST bit": in TIME-WAIT "If the RST bit is set, then
    # enter the CLOSED state, delete the TCB, and return" (the hazard RFC 1337 §2 describes).
    "rfc793": True,
}

CLIENT, SERVER = "198.18.0.1", "198.18.0.2"  # every sample below: captures/make/make_samples.sh
PROFILES = [p.value for p in OsProfile]


def _length_cases() -> list[Any]:
    cases = []
    for profile in PROFILES:
        for stem, holder in (("client_first_close", "client"), ("server_first_close", "server")):
            cases.append(pytest.param(profile, stem, holder, id=f"{profile}-{stem}"))
    return cases


def _flows(stem: str, options: Options) -> pd.DataFrame:
    return teardown.analyze(str(CAPTURES / f"{stem}.pcap"), options).flows


def _tw_length(row: pd.Series) -> float:
    """time_wait_end_ts - time_wait_start_ts, asserted to be the profile's length exactly: the end
    is the start plus the length (the float addition the capture's clock allows), no other value."""
    return float(row["time_wait_end_ts"] - row["time_wait_start_ts"])


@pytest.mark.parametrize(("profile", "stem", "holder"), _length_cases())
def test_time_wait_lasts_the_documented_length(profile: str, stem: str, holder: str) -> None:
    (row,) = [r for _, r in _flows(stem, Options(os=OsProfile(profile))).iterrows()]
    assert row["time_wait_on"] == holder
    assert row["time_wait_end_ts"] == row["time_wait_start_ts"] + TIME_WAIT_S[profile], (
        f"{profile}: TIME_WAIT {_tw_length(row)} s, documented {TIME_WAIT_S[profile]} s")


def _client_ports(stem: str) -> dict[str, int]:
    """The client ports of a make_samples.sh sample by the note its client wrote in client.log
    (kept in the truth file's kernel_observations)."""
    lines = json.loads((CAPTURES / f"{stem}.truth.json").read_text())["kernel_observations"]["client"]
    return {line.split()[4]: int(line.split()[1]) for line in lines}


@pytest.mark.parametrize("profile", PROFILES)
def test_in_sequence_rst_in_time_wait(profile: str) -> None:
    """captures/tw_assassination: two client TIME_WAITs; an RST with seq = the server's FIN + 1
    (exactly what the holder expects) reaches the first, one with FIN + 1 + 1000 the second. The
    first is an assassination under every profile (the wire is the same); whether TIME_WAIT ends
    there is the holder's profile. The second is ignored by every stack (not in sequence)."""
    flows = _flows("tw_assassination", Options(os=OsProfile(profile))).set_index("client_port")
    ports = _client_ports("tw_assassination")
    exact, wrong = flows.loc[ports["exact_rst_target"]], flows.loc[ports["wrong_rst_target"]]
    assert exact["tw_assassination"] and not wrong["tw_assassination"]
    killed = exact["time_wait_end_ts"] == exact["tw_assassination_ts"]
    assert killed == RST_ENDS_TIME_WAIT[profile], (
        f"{profile}: TIME_WAIT {'ended' if killed else 'kept'} at the in-sequence RST")
    if not RST_ENDS_TIME_WAIT[profile]:
        assert exact["time_wait_end_ts"] > exact["tw_assassination_ts"]
    assert wrong["time_wait_end_ts"] > wrong["time_wait_start_ts"] + 1  # the RST 0.2 s in changed nothing


@pytest.mark.parametrize("profile", PROFILES)
def test_rst_answering_a_rejected_reuse_in_time_wait(profile: str) -> None:
    """captures/reuse_in_time_wait_rejected: the server's TIME_WAIT rejects the reused SYN with an
    ACK, and the client's RST (seq = that ACK's number, what the holder expects) reaches it: the
    natural assassination. On Linux ss showed it end (the retried SYN reached the listener)."""
    flows = _flows("reuse_in_time_wait_rejected", Options(os=OsProfile(profile)))
    old = flows[flows["incarnation"] == 0].iloc[0]
    assert old["time_wait_on"] == "server" and old["tw_assassination"]
    killed = old["time_wait_end_ts"] == old["tw_assassination_ts"]
    assert killed == RST_ENDS_TIME_WAIT[profile]


# --host-os IP=PROFILE: the profile of one host; the TIME_WAIT is the holder's, so its host's
# profile decides the length and the RST handling, whatever the peer's or --os says.
@pytest.mark.parametrize(("os_", "host_os", "expected_s"), [
    ("linux", ((CLIENT, "windows"),), TIME_WAIT_S["windows"]),   # the holder's host named
    ("windows", ((CLIENT, "linux"),), TIME_WAIT_S["linux"]),
    ("linux", ((SERVER, "windows"),), TIME_WAIT_S["linux"]),     # only the peer named: --os holds
    ("macos", ((SERVER, "rfc793"), (CLIENT, "linux")), TIME_WAIT_S["linux"]),
])
def test_host_os_sets_the_holders_time_wait(os_: str, host_os: tuple[tuple[str, str], ...], expected_s: float) -> None:
    options = Options(os=OsProfile(os_), host_os=tuple((ip, OsProfile(p)) for ip, p in host_os))
    (row,) = [r for _, r in _flows("client_first_close", options).iterrows()]
    assert row["time_wait_on"] == "client"
    assert row["time_wait_end_ts"] == row["time_wait_start_ts"] + expected_s


@pytest.mark.parametrize(("os_", "host_os", "holder_profile"), [
    ("linux", ((CLIENT, "macos"),), "macos"),    # the holder ignores RSTs in TIME_WAIT
    ("linux", ((SERVER, "macos"),), "linux"),    # the RST's sender's profile does not matter
    ("macos", ((CLIENT, "linux"),), "linux"),
    ("bsd", ((CLIENT, "windows"),), "windows"),
])
def test_host_os_sets_the_holders_rst_handling(os_: str, host_os: tuple[tuple[str, str], ...],
                                              holder_profile: str) -> None:
    options = Options(os=OsProfile(os_), host_os=tuple((ip, OsProfile(p)) for ip, p in host_os))
    flows = _flows("tw_assassination", options).set_index("client_port")
    exact = flows.loc[_client_ports("tw_assassination")["exact_rst_target"]]
    killed = exact["time_wait_end_ts"] == exact["tw_assassination_ts"]
    assert killed == RST_ENDS_TIME_WAIT[holder_profile]


def test_host_os_on_the_command_line(tmp_path: Path) -> None:
    """`teardown analyze --os linux --host-os 198.18.0.1=windows`: the client's TIME_WAIT in the
    written table lasts Windows' 240 s (times compared to the microsecond, as written)."""
    out = tmp_path / "flows.csv"
    assert main(["analyze", str(CAPTURES / "client_first_close.pcap"), "--quiet", "--os", "linux",
                 "--host-os", f"{CLIENT}=windows", "-o", str(out)]) == 0
    with out.open() as fh:
        (row,) = list(csv.DictReader(fh))
    length = Decimal(row["time_wait_end_ts"]) - Decimal(row["time_wait_start_ts"])
    assert length.quantize(Decimal("0.000001")) == Decimal(TIME_WAIT_S["windows"]).quantize(Decimal("0.000001"))
