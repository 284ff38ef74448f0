"""First payload bytes of each direction -> why the server closed an HTTP/1.x connection first.

HTTP/1.0 without keep-alive, or `Connection: close` on either side, makes the server close
after its response (RFC 9112 §9.6), so the server holds the TIME_WAIT
(docs/rules.md "Server-side active close"). Only the first message of each direction is
read: that is all a 256-byte head holds, and the one that sets the connection's fate.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from .schema import CloseCause

Objects = npt.NDArray[Any]  # bytes or None per connection (or fixed-width bytes)
Bools = npt.NDArray[np.bool_]

HEAD_BYTES = 256  # what the flow engine keeps of each direction's first payload
NONE = np.array(None, dtype=object)  # compared element by element, in C


def as_heads(heads: Objects) -> npt.NDArray[np.bytes_]:
    """Object array of bytes-or-None -> fixed-width bytes (b'' for None)."""
    if heads.dtype.kind == "S":
        return heads
    return np.where(~np.equal(heads, NONE), heads, b"").astype(f"S{HEAD_BYTES}")


def _first_message(head: npt.NDArray[np.bytes_]) -> npt.NDArray[np.int64]:
    """Where each head's first message ends (its blank line, else the captured length)."""
    blank = np.strings.find(head, b"\r\n\r\n")
    return np.where(blank >= 0, blank + 2, np.strings.str_len(head)).astype(np.int64)


def _header_says(head: npt.NDArray[np.bytes_], end: npt.NDArray[np.int64], value: bytes) -> Bools:
    """The first message carries `Connection: <value>` (any case, with or without the space)."""
    found = np.zeros(len(head), bool)
    for text in (b"\r\nconnection: " + value, b"\r\nconnection:" + value):
        at = np.strings.find(head, text)
        found |= (at >= 0) & (at < end)
    return found


# What one side's first message says, as small codes (combined in `close_cause_codes`).
NOTHING, HTTP10, CLOSE, HTTP = 0, 1, 2, 3  # not HTTP/1.x; 1.0 without keep-alive; Connection: close; neither


def _request_says(req: npt.NDArray[np.bytes_]) -> npt.NDArray[np.int8]:
    """A request line "<METHOD> <target> HTTP/1.x" (RFC 9112 §3), then its version and headers."""
    line_end = np.strings.find(req, b"\r\n")
    version = np.strings.find(req, b" http/1.")
    is_request = (version > 0) & (version + 9 == line_end)
    return _says(req, is_request, is_request & (np.strings.find(req, b" http/1.0\r\n") == version))


def _response_says(resp: npt.NDArray[np.bytes_]) -> npt.NDArray[np.int8]:
    """A status line "HTTP/1.x <code> ..." (RFC 9112 §4), then its version and headers."""
    return _says(resp, np.strings.startswith(resp, b"http/1."), np.strings.startswith(resp, b"http/1.0 "))


def _says(head: npt.NDArray[np.bytes_], is_http: Bools, is_10: Bools) -> npt.NDArray[np.int8]:
    end = _first_message(head)
    out = np.where(is_http, HTTP, NOTHING).astype(np.int8)
    out[is_http & _header_says(head, end, b"close")] = CLOSE
    # HTTP/1.0 closes after one exchange unless it asked for keep-alive (RFC 9112 §9.3).
    out[is_10 & ~_header_says(head, end, b"keep-alive")] = HTTP10
    return out


def _fingerprints(heads: npt.NDArray[np.bytes_]) -> npt.NDArray[np.uint64]:
    """A 64-bit FNV-style hash of each fixed-width head, word by word (a few array operations
    instead of sorting 256-byte strings)."""
    words = np.ascontiguousarray(heads).view(np.uint64).reshape(len(heads), -1)
    out = np.zeros(len(heads), np.uint64)
    for j in range(words.shape[1]):
        out = (out * np.uint64(0x100000001B3)) ^ words[:, j]
    return out


def _per_distinct(heads: npt.NDArray[np.bytes_], judge: Callable[[npt.NDArray[np.bytes_]], npt.NDArray[np.int8]]
                  ) -> npt.NDArray[np.int8]:
    """`judge` applied once per distinct head: connections to one service mostly open with the
    same bytes (a 64-bit hash collision is ~1e-11 among 25,000 distinct heads)."""
    _, first, back = np.unique(_fingerprints(heads), return_index=True, return_inverse=True)
    return judge(np.strings.lower(heads[first]))[back]


CAUSES = list(CloseCause)  # a cause code is an index into this list
NO_CAUSE = -1  # the code of a connection whose cause was not asked for


def close_cause_codes(client_heads: Objects, server_heads: Objects) -> npt.NDArray[np.int8]:
    """Per connection, the `CloseCause` that explains a server-first close, as its index in CAUSES.

    Precedence follows who decided: the client's request first (HTTP/1.0, then
    `Connection: close`), then the server's response; HTTP/1.x without either means the
    connection was kept alive and the server closed it later (idle timeout, request limit).
    HTTP/1.0 with `Connection: keep-alive` is not a cause.
    """
    req, resp = as_heads(client_heads), as_heads(server_heads)
    if len(req) == 0:
        return np.zeros(0, np.int8)
    request, response = _per_distinct(req, _request_says), _per_distinct(resp, _response_says)
    seen = (np.strings.str_len(req) > 0) | (np.strings.str_len(resp) > 0)
    rules = [  # (condition, cause), first match wins
        (request == HTTP10, CloseCause.http10_request),
        (request == CLOSE, CloseCause.connection_close_request),
        (response == HTTP10, CloseCause.http10_response),
        (response == CLOSE, CloseCause.connection_close_response),
        ((request == HTTP) | (response == HTTP), CloseCause.http_keep_alive),
        (seen, CloseCause.not_http),
    ]
    out = np.full(len(req), CAUSES.index(CloseCause.no_payload), dtype=np.int8)
    decided = np.zeros(len(out), bool)
    for condition, cause in rules:
        take = condition & ~decided
        out[take] = CAUSES.index(cause)
        decided |= take
    return out


def close_cause(client_head: bytes | None, server_head: bytes | None) -> CloseCause:
    """`close_cause_codes` for one connection, as the cause."""
    heads = np.empty(1, object), np.empty(1, object)
    heads[0][0], heads[1][0] = client_head, server_head
    return CAUSES[int(close_cause_codes(*heads)[0])]
