"""Judged columns -> what people read: addresses as text, where each connection was carried (its
VLAN, link type and tunnels, and the `vlan100/` or `c3/` prefix), flow ids, evidence frames,
notes and display filters (filters.py). The one place they are spelled, for the files, the
summary, the report and live.

The texts are joined by Arrow's string kernels from the numbers they say: Python runs once per
distinct value only (an address, a carrier, a set of notes), never per flow. A few rows (a
finding's examples, live's closes) take the same way, so a flow id has one spelling.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .carriers import TUNNEL_CTX_BASE, Point, encapsulated
from .decode import LINKTYPE_NAMES
from .filters import carrier_clauses, display_filters
from .flows import NONE
from .memory import freed
from .packed import Held, Packed, join, same_objects, unpack, unpack_at
from .verdicts import EVIDENCE_LABELS, NOTES, Columns

if TYPE_CHECKING:
    import pyarrow as pa

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Obj = npt.NDArray[np.object_]


def readable(columns: Columns, points: Mapping[int, Point]) -> Columns:
    """The judged columns with the addresses as text (client_ip, server_ip) and where each row
    was carried (vlan, link_type, encapsulation); `points` names the carriers numbered from
    TUNNEL_CTX_BASE (carriers.Contexts.points)."""
    client, server = columns.pop("client_address"), columns.pop("server_address")
    n = len(client)
    addresses = format_addresses(np.r_[client[:, 0], server[:, 0]], np.r_[client[:, 1], server[:, 1]])
    columns["client_ip"], columns["server_ip"] = addresses[:n], addresses[n:]
    columns["vlan"], columns["link_type"], columns["encapsulation"] = carried(
        columns["ctx"].astype(np.uint32), columns["ip_version"], points)
    return columns


def format_addresses(hi: npt.NDArray[np.uint64], lo: npt.NDArray[np.uint64]) -> Obj:
    """Address text for each (hi, lo) pair (IPv4 as ::ffff:a.b.c.d, as the flow table keeps
    it); each distinct address is formatted once."""
    import ipaddress

    if not len(hi):
        return np.zeros(0, object)
    if not hi.any():  # IPv4 only (or ::/64): one key per address
        uniq, back = np.unique(lo, return_inverse=True)
        pairs = [(0, int(v)) for v in uniq.tolist()]
    else:
        stacked, back = np.unique(np.stack([hi, lo], axis=1), axis=0, return_inverse=True)
        pairs = [(int(h), int(v)) for h, v in stacked.tolist()]
    text = [str(ipaddress.IPv4Address(v & 0xFFFFFFFF)) if h == 0 and v >> 32 == 0xFFFF
            else str(ipaddress.IPv6Address((h << 64) | v)) for h, v in pairs]
    return np.array(text, dtype=object)[back.ravel()]


def carried(ctx: npt.NDArray[np.uint32], ip_version: npt.NDArray[Any],
            points: Mapping[int, Point]) -> tuple[F64, Obj, Obj]:
    """The vlan, link_type and encapsulation columns of rows carried in `ctx` (see carriers.py:
    below TUNNEL_CTX_BASE a ctx is the VLAN id on the run's main link type)."""
    numbers, inverse = np.unique(ctx, return_inverse=True)
    about = [points.get(int(k)) for k in numbers.tolist()]
    main = next((p.carrier.link_type for p in points.values()), 1)
    vlans = np.array([p.vlan if p is not None else int(k) if k < TUNNEL_CTX_BASE else 0
                      for k, p in zip(numbers.tolist(), about)], np.float64)
    vlans[vlans == 0] = np.nan
    links = np.array([LINKTYPE_NAMES.get(lt, f"link type {lt}") for lt in
                      (p.carrier.link_type if p is not None else main for p in about)], object)
    outside = [p.encapsulation if p is not None else "" for p in about]
    texts = np.array([[encapsulated(o, 4), encapsulated(o, 6)] for o in outside], object)
    return vlans[inverse], links[inverse], texts[inverse, (ip_version == 6).astype(np.int64)]


def endpoint(ip: object, port: object) -> str:
    """ip:port, IPv6 in brackets ([fd00::2]:8080) so the port cannot be read as part of it."""
    return f"{_address_part(str(ip))}{port}"


def _address_part(ip: str) -> str:
    return f"[{ip}]:" if ":" in ip else f"{ip}:"


def where_prefix(ctx: int) -> str:
    """How flow ids and host labels say where a connection was carried: '' untagged on the main
    link, 'vlan100/' in a VLAN, 'c3/' for the third other carrier (the summary lists them)."""
    return "" if ctx == 0 else f"vlan{ctx}/" if ctx < TUNNEL_CTX_BASE else f"c{ctx - TUNNEL_CTX_BASE + 1}/"


# ---- the text columns --------------------------------------------------------------------------

# Built only when asked for (a table written, a flow shown): for 100,000 flows they cost more
# than every verdict together.
TEXT_COLUMNS = ("flow_id", "evidence_frames", "notes", "display_filter")


class _Arrow:
    """Joins whole columns with Arrow's string kernels (a table written, the report): Python runs
    once per distinct value only."""

    def each(self, values: npt.NDArray[Any], say: Callable[[Any], str], texts: bool = False) -> Any:
        """`say` of each value, called once per distinct value."""
        return _per_distinct(text_array(values) if texts else number_array(np.asarray(values, np.int64)), say)

    def number(self, values: npt.NDArray[Any], absent: npt.NDArray[np.bool_] | None = None) -> Any:
        return _number_text(values, absent)

    def word(self, text: str) -> Any:
        return text_scalar(text)

    def join(self, parts: Sequence[Any], skip_absent: bool = False) -> Any:
        import pyarrow.compute as pc

        if not skip_absent:
            return pc.binary_join_element_wise(*parts, text_scalar(""))
        # Joined after a first part that is never null, whose ", " is then cut off: skipping nulls,
        # Arrow's join drops a row whose parts are all null (pyarrow 22 to 26), which shifted the
        # column and failed the table for a flow with no evidence frames (caught midstream, open).
        return pc.utf8_slice_codeunits(pc.binary_join_element_wise(
            text_scalar(""), *parts, text_scalar(", "), null_handling="skip"), len(", "))


class _Python:
    """Joins a few rows in plain Python (a summary's examples, live's closes): importing Arrow's
    kernels alone costs a terminal run 0.1 s. The texts are the same functions' (below)."""

    def each(self, values: npt.NDArray[Any], say: Callable[[Any], str], texts: bool = False) -> list[str]:
        return [say(v if texts else int(v)) for v in np.asarray(values).tolist()]

    def number(self, values: npt.NDArray[Any], absent: npt.NDArray[np.bool_] | None = None) -> list[str | None]:
        gone = np.zeros(len(values), bool) if absent is None else absent
        return [None if g else str(v) for v, g in zip(np.asarray(values, np.int64).tolist(), gone.tolist())]

    def word(self, text: str) -> str:
        return text

    def join(self, parts: Sequence[Any], skip_absent: bool = False) -> list[str | None]:
        n = max((len(p) for p in parts if not isinstance(p, str)), default=0)
        rows = zip(*[[p] * n if isinstance(p, str) else p for p in parts])
        if not skip_absent:  # a row with an absent part is absent, as Arrow's join has it
            return [None if None in row else "".join(row) for row in rows]
        return [", ".join(v for v in row if v is not None) for row in rows]


def flow_ids(columns: Mapping[str, npt.NDArray[Any]], how: Any = None) -> Any:
    """Each row's flow_id: where it was carried, client > server, incarnation
    (c1/10.0.0.1:40000>[fd00::2]:80/0); docs/rules.md "Vocabulary". An Arrow array (a list of
    str when `how` is _Python())."""
    how = how or _Arrow()
    return how.join([how.each(columns["ctx"], where_prefix),
                     how.each(columns["client_ip"], _address_part, texts=True), how.number(columns["client_port"]),
                     how.word(">"),
                     how.each(columns["server_ip"], _address_part, texts=True), how.number(columns["server_port"]),
                     how.word("/"), how.number(columns["incarnation"])])


def evidence_frames(columns: Mapping[str, npt.NDArray[Any]], how: Any = None) -> Any:
    """Each row's evidence frames, labelled (`syn 1, fin client 5, ...`); a row without any: ""."""
    how = how or _Arrow()
    frames = np.asarray(columns["evidence"])
    return how.join([how.join([how.word(f"{label} "), how.number(frames[:, i], frames[:, i] == NONE)])
                     for i, label in enumerate(EVIDENCE_LABELS)], skip_absent=True)


def notes(columns: Mapping[str, npt.NDArray[Any]], how: Any = None) -> Any:
    """Each row's notes, in NOTES order, joined by "; "."""
    how = how or _Arrow()
    return how.each(columns["note_bits"], lambda bits: "; ".join(note for i, note in enumerate(NOTES) if bits >> i & 1))


def flow_texts(columns: Mapping[str, npt.NDArray[Any]], points: Mapping[int, Point] | None = None) -> dict[str, pa.Array]:
    """The text columns of every row, as Arrow large_string arrays; `points`: the run's carriers
    (carriers.Contexts.points), which the display filters tell apart (by default the columns'
    own: FlowColumns.points)."""
    how = _Arrow()
    return {"flow_id": flow_ids(columns, how), "evidence_frames": evidence_frames(columns, how),
            "notes": notes(columns, how),
            "display_filter": display_filters(columns, carrier_clauses(_points(columns, points)), how)}


def text_columns(columns: Mapping[str, npt.NDArray[Any]], points: Mapping[int, Point] | None = None) -> Columns:
    """The same texts as numpy object arrays of str, for a few rows (some rows: `RowsOf`)."""
    how = _Python()
    clauses = carrier_clauses(_points(columns, points))
    return {"flow_id": np.array(flow_ids(columns, how), dtype=object),
            "evidence_frames": np.array(evidence_frames(columns, how), dtype=object),
            "notes": np.array(notes(columns, how), dtype=object),
            "display_filter": np.array(display_filters(columns, clauses, how), dtype=object)}


def _points(columns: Mapping[str, npt.NDArray[Any]], points: Mapping[int, Point] | None) -> Mapping[int, Point]:
    """The carriers given, else those the columns carry (FlowColumns, RowsOf), else none."""
    if points is not None:
        return points
    own: Mapping[int, Point] = getattr(columns, "points", {})
    return own


def _number_text(values: npt.NDArray[Any], absent: npt.NDArray[np.bool_] | None = None) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    return pc.cast(number_array(np.asarray(values, np.int64), absent), pa.large_string())


def _per_distinct(values: pa.Array, say: Callable[[Any], str]) -> pa.Array:
    """`say` of each value, called once per distinct value."""
    if len(values) == 0:
        return text_array([])
    encoded = values.dictionary_encode()
    return text_array([say(v) for v in encoded.dictionary.to_pylist()]).take(encoded.indices)


# Arrays are made from their buffers, never by pyarrow.array: on numpy arrays and Python values
# alike that imports pandas (to recognise its types), 0.2 to 0.4 s of a run that writes a file.

def number_array(values: npt.NDArray[Any], empty: npt.NDArray[np.bool_] | None = None) -> pa.Array:
    """A numpy array of numbers or booleans as Arrow (no copy but for booleans, which Arrow packs
    into bits); `empty`: which values are null."""
    import pyarrow as pa

    values = np.ascontiguousarray(values)
    n = len(values)
    if values.dtype == np.bool_:
        kind, data = pa.bool_(), np.packbits(values, bitorder="little")
    else:
        kind, data = pa.from_numpy_dtype(values.dtype), values
    validity = None if empty is None or not empty.any() else pa.py_buffer(np.packbits(~empty, bitorder="little"))
    return pa.Array.from_buffers(kind, n, [validity, pa.py_buffer(data)])


def text_array(values: Sequence[str | None] | npt.NDArray[Any]) -> pa.Array:
    """Texts (None: empty) as an Arrow large_string array. An object array is encoded once per
    distinct object in it and the rest taken by index: the columns that hold texts repeat a few
    objects (an enum's values, a host's address) over many rows."""
    import pyarrow as pa

    if isinstance(values, np.ndarray) and len(values) > 64:
        # By identity only: equal texts made apart are encoded twice, but no Python step runs
        # per distinct text to find them (a column of texts all different, evidence frames).
        first, codes = same_objects(values)
        return text_array(values[first].tolist()).take(number_array(codes.astype(np.int64)))
    encoded = [b"" if v is None else str(v).encode() for v in values]
    offsets = np.zeros(len(encoded) + 1, np.int64)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    empty = np.array([v is None for v in values], bool)
    validity = pa.py_buffer(np.packbits(~empty, bitorder="little")) if empty.any() else None
    return pa.Array.from_buffers(pa.large_string(), len(encoded),
                                 [validity, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))])


def text_scalar(value: str | None) -> pa.Scalar:
    """One text (None: empty) as an Arrow large_string scalar, for the string kernels."""
    return text_array([value])[0]


def number_scalar(value: float) -> pa.Scalar:
    """One number as an Arrow scalar (float64 or int64), for the compute kernels."""
    return number_array(np.asarray([value]))[0]


# ---- the rows of a whole analysis --------------------------------------------------------------

def joined(parts: Sequence[Mapping[str, Held]], name: str) -> npt.NDArray[Any]:
    """One column of judged slices (packed or not), the slices joined in the order they came."""
    return unpack(parts[0][name]) if len(parts) == 1 else np.concatenate([unpack(p[name]) for p in parts])


class FlowColumns(Mapping[str, npt.NDArray[Any]]):
    """The flow columns of an analysis, in schema order. Work is done on first use only: rows
    are put in `rows` order column by column, and the text columns are built when asked for.

    Columns stay packed (packed.py) and are unpacked as they are read: a few recently read are
    kept unpacked, as readers come back to the same columns rule after rule. So a million rows
    cost their packed size plus a few columns, not every column at full width."""

    RECENT = 4  # unpacked columns kept (8 MB each per million rows; 8 of them: 100 MB more at the 10x peak)

    def __init__(self, parts: Sequence[dict[str, Held]], order: list[str], rows: I64 | None = None,
                 points: Mapping[int, Point] | None = None) -> None:
        self.points: Mapping[int, Point] = points or {}  # the run's carriers, for the display filters
        self._parts = parts  # columns as produced (packed.py), slice by slice, before `rows` is applied
        self._rows = rows
        self._held: dict[str, Held] = {}  # columns joined and in `rows` order, packed
        self._recent: dict[str, npt.NDArray[Any]] = {}  # unpacked, the least recently read first
        self._data: Columns = {}  # the text columns, once built
        self._order = order

    def __getitem__(self, name: str) -> npt.NDArray[Any]:
        if name in self._data:
            return self._data[name]
        if name in TEXT_COLUMNS and name not in self._parts[0] and name not in self._held:
            self._data.update(text_columns(self))
            return self._data[name]
        if name in self._recent:
            self._recent[name] = self._recent.pop(name)  # now the most recent
            return self._recent[name]
        held = self._joined(name)
        column = unpack(held)
        if isinstance(held, Packed):
            self._recent[name] = column
            if len(self._recent) > self.RECENT:
                freed(self._recent.pop(next(iter(self._recent))).nbytes)
        return column

    def _joined(self, name: str) -> Held:
        if name not in self._held:
            # One copy of a big table is enough: the slices' own goes once joined.
            slices = [part.pop(name) for part in self._parts]
            self._held[name] = join(slices, self._rows)
            freed(sum(s.nbytes for s in slices))
        return self._held[name]

    def __contains__(self, name: object) -> bool:  # without building the column, as Mapping's would
        return name in self._data or name in self._held or name in self._parts[0] or name in TEXT_COLUMNS

    def __iter__(self) -> Iterator[str]:
        return iter(self._order)

    def __len__(self) -> int:
        return len(self._order)

    def text_at(self, rows: I64) -> Columns:
        """The text columns of some rows only (a summary's examples), unpacking those rows only."""
        return text_columns(RowsOf(self, rows))

    def at(self, name: str, rows: I64 | slice) -> npt.NDArray[Any]:
        """Column `name` at `rows` only (a file is written a slice of rows at a time)."""
        if name in self._data or name in self._recent or (name in TEXT_COLUMNS and name not in self._parts[0]
                                                           and name not in self._held):
            return self[name][rows]
        return unpack_at(self._joined(name), rows)


class RowsOf(Mapping[str, npt.NDArray[Any]]):
    """Some rows of every column, each column read at those rows only when asked for (of a
    FlowColumns, only those rows are unpacked)."""

    def __init__(self, columns: Mapping[str, npt.NDArray[Any]], rows: I64 | slice) -> None:
        self._columns, self._rows = columns, rows

    @property
    def points(self) -> Mapping[int, Point]:
        """The carriers of the rows' analysis (FlowColumns.points); none known otherwise."""
        return getattr(self._columns, "points", {})

    def __getitem__(self, name: str) -> npt.NDArray[Any]:
        if isinstance(self._columns, FlowColumns):
            return self._columns.at(name, self._rows)
        return self._columns[name][self._rows]

    def __contains__(self, name: object) -> bool:
        return name in self._columns

    def __iter__(self) -> Iterator[str]:
        return iter(self._columns)

    def __len__(self) -> int:
        return len(self._columns)
