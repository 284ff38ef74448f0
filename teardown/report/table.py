"""The per-flow table -> compact JSON columns for the report's flows table.

100,000 flows must fit in a few megabytes, so each column is written in the smallest of a few
plain encodings, chosen by measuring them on a sample of rows: the values as they are, a
dictionary of repeated values with one code per row, a default with its exceptions, numbers cut
out of similar strings (evidence frames), or nothing at all for `flow_id` when the page can
spell every id from the row's own address, port, VLAN and incarnation columns (flow ids are
unique: sent, they were 47 % of a 100,000-flow report and 60 % of a SYN flood's). Display
filters likewise: the page spells each from the row's addresses and ports, and is sent only what
they lack: the frame range (its first frame as a step from the previous row's, its length) and
the carrier's clause. Times are whole microseconds: `first_ts` as steps from the previous row,
the other times from the row's own `first_ts`. templates/report-data.js (`decodeValues`) reads
it back.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ..packed import distinct_objects
from ..present import number_scalar, text_array
from ..present import text_scalar as word
from ..schema import FLOW_COLUMNS, Column

if TYPE_CHECKING:
    import pyarrow as pa

Scalar = int | str | None
SAMPLE_ROWS = 2000  # enough to rank the encodings; measuring all 100,000 rows costs seconds
DEFAULT_VISIBLE = ["flow_id", "first_ts", "duration_s", "close_kind", "active_closer", "time_wait_on",
                   "time_wait_end_ts", "rst_class", "findings", "notes"]


def kind_of(c: Column) -> str:
    """How the page shows and sorts a column: ts, dur, int, bool, enum or str."""
    if not isinstance(c.dtype, str):
        return "enum"
    if c.dtype == "Float64":
        return "ts" if c.name.endswith("_ts") else "dur"
    return {"Int64": "int", "boolean": "bool"}.get(c.dtype, "str")


# Headers in the words a reader uses (docs/rules.md, "Vocabulary"); the column's own name is
# each header's hover text. Columns not named here get `header_of`'s spelling of their name.
HEADERS = {"flow_id": "Flow", "first_ts": "First packet", "last_ts": "Last packet", "duration_s": "Duration",
           "close_kind": "Close kind", "active_closer": "Closed first by", "time_wait_on": "TIME_WAIT on",
           "time_wait_start_ts": "TIME_WAIT starts", "time_wait_end_ts": "TIME_WAIT ends", "rst_class": "RST class",
           "findings": "Findings", "notes": "Notes", "ip_version": "IP version", "vlan": "VLAN",
           "tw_assassination": "TIME_WAIT assassinated", "tw_assassination_ts": "Assassinated at",
           "reuses_tuple_in_time_wait": "Reused in TIME_WAIT", "first_fin_by": "First FIN by",
           "first_rst_by": "First RST by", "half_close_s": "Half-close length"}
WORDS = {"ts": "time", "s": "(s)", "c2s": "client→server", "s2c": "server→client", "rst": "RST", "fin": "FIN",
         "syn": "SYN", "ip": "IP", "isn": "ISN", "tw": "TIME_WAIT"}


def header_of(name: str) -> str:
    """"Closed first by" for active_closer: HEADERS, else the name's words spelled out."""
    if name in HEADERS:
        return HEADERS[name]
    words = [WORDS.get(w, w) for w in name.split("_")]
    text = " ".join(words)
    return text[:1].upper() + text[1:]


def help_of(c: Column) -> str:
    text = c.meaning
    if c.unit:
        text += f" Unit: {c.unit}."
    if c.empty_when:
        text += f" Empty when {c.empty_when}."
    if not isinstance(c.dtype, str):
        text += " Values: " + ", ".join(e.value for e in c.dtype) + "."
    return text


def page_spells_flow_ids(flows: pa.Table) -> bool:
    """Whether report-data.js (`spellFlowIds`), spelling each id from its row's other columns,
    gives exactly the ids present.flow_ids wrote: the page's one rule (a VLAN prefix, bracketed
    IPv6) mirrored here in Arrow's string kernels and compared id for id. Any other carrier
    (a `cN/` prefix) or any difference, and the ids are sent as they are."""
    import pyarrow as pa
    import pyarrow.compute as pc

    def as_text(name: str) -> pa.Array:
        return pc.cast(flows.column(name).combine_chunks(), pa.large_string())

    def endpoint(ip: str, port: str) -> list[Any]:
        address = as_text(ip)
        bracketed = pc.binary_join_element_wise(word("["), address, word("]"), word(""))
        return [pc.if_else(pc.match_substring(address, ":"), bracketed, address), word(":"), as_text(port)]

    if not flows.num_rows:
        return False
    vlan = as_text("vlan")
    prefix = pc.if_else(pc.is_null(vlan), word(""), pc.binary_join_element_wise(word("vlan"), vlan, word("/"), word("")))
    spelt = pc.binary_join_element_wise(prefix, *endpoint("client_ip", "client_port"), word(">"),
                                        *endpoint("server_ip", "server_port"), word("/"), as_text("incarnation"),
                                        word(""))
    same = pc.equal(spelt, as_text("flow_id"))
    return same.null_count == 0 and bool(pc.all(same).as_py())


# A display filter as filters.display_filters writes it: the 4-tuple, the frame range in its file,
# then the carrier's clause (nothing, or " && ..."): the range and the clause are what is sent.
FILTER_PARTS = r"^(?P<tuple>.*) && frame\.number in \{(?P<first>\d+)\.\.(?P<last>\d+)\}(?P<carrier>.*)$"


def spelt_display_filters(flows: pa.Table) -> dict[str, Any] | None:
    """What report-data.js (`spellFilters`) needs besides the row's own columns to spell each
    display filter as filters.display_filters wrote it: the first frame of each range (a step
    from the previous row's), the range's length and the carrier's clause. The page's rule is
    mirrored here in Arrow's string kernels and its result compared filter for filter: None
    where any differs (then the filters are sent as they are)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not flows.num_rows:
        return None
    written = flows.column("display_filter").combine_chunks()
    parts = pc.extract_regex(written, FILTER_PARTS)
    if parts.null_count:
        return None
    first, last = (pc.cast(parts.field(name), pa.int64()) for name in ("first", "last"))
    carrier = parts.field("carrier")
    spelt = pc.binary_join_element_wise(*_spelt_tuple(flows), word(" && frame.number in {"), pc.cast(first, pa.large_string()),
                                        word(".."), pc.cast(last, pa.large_string()), word("}"),
                                        pc.cast(carrier, pa.large_string()), word(""))
    same = pc.equal(spelt, pc.cast(written, pa.large_string()))
    if same.null_count or not pc.all(same).as_py():
        return None
    start, length = _integers(first), _integers(pc.subtract(last, first))
    return {"from": encode_values(Values.whole(np.diff(start, prepend=0))) | {"delta": True},
            "length": encode_values(Values.whole(length)), "carrier": encode_values(_texts(carrier))}


def _spelt_tuple(flows: pa.Table) -> list[Any]:
    """The 4-tuple both ways, as report-data.js spells it from the row's addresses, ports and IP
    version (filters.written_addresses: an IPv4-mapped address of an IPv6 header as ::ffff:a.b.c.d)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    v6 = pc.equal(flows.column("ip_version").combine_chunks(), number_scalar(6))  # a Python int would import pandas

    def address(name: str) -> tuple[pa.Array, pa.Array]:
        ip = pc.cast(flows.column(name).combine_chunks(), pa.large_string())
        mapped = pc.and_(v6, pc.invert(pc.match_substring(ip, ":")))
        ip = pc.if_else(mapped, pc.binary_join_element_wise(word("::ffff:"), ip, word("")), ip)
        return pc.if_else(pc.match_substring(ip, ":"), word("ipv6"), word("ip")), ip

    def port(name: str) -> pa.Array:
        return pc.cast(flows.column(name).combine_chunks(), pa.large_string())

    (cp, c), (sp, s) = address("client_ip"), address("server_ip")
    c_port, s_port = port("client_port"), port("server_port")
    return [word("(("), cp, word(".src=="), c, word(" && tcp.srcport=="), c_port, word(" && "), sp, word(".dst=="), s,
            word(" && tcp.dstport=="), s_port, word(") || ("), sp, word(".src=="), s, word(" && tcp.srcport=="), s_port,
            word(" && "), cp, word(".dst=="), c, word(" && tcp.dstport=="), c_port, word("))")]


def _integers(values: pa.Array) -> npt.NDArray[np.int64]:
    """An int64 Arrow array without nulls as numpy, from its buffer (pyarrow's to_numpy imports pandas)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    values = pc.cast(values, pa.int64())
    return np.frombuffer(values.buffers()[1], np.int64)[values.offset:values.offset + len(values)].copy()


def _texts(values: pa.Array) -> Values:
    """A string Arrow array without nulls as Values, each distinct text one Python str."""
    import pyarrow.compute as pc

    encoded = pc.dictionary_encode(values)
    words = np.array(encoded.dictionary.to_pylist(), object)
    return Values(words[_integers(encoded.indices)], np.zeros(len(values), bool))


@dataclass(frozen=True, slots=True)
class Values:
    """A column as the JSON scalars the page reads: integers (int64) or text (an object array of
    str), None where `missing`. Kept in numpy until written out: a Python list per column of
    100,000 rows costs milliseconds at every step."""

    data: npt.NDArray[Any]
    missing: npt.NDArray[np.bool_]

    @staticmethod
    def whole(data: npt.NDArray[np.int64]) -> Values:
        """Integers, none missing."""
        return Values(data, np.zeros(len(data), bool))

    def __len__(self) -> int:
        return len(self.data)

    def take(self, rows: slice | npt.NDArray[np.int64]) -> Values:
        return Values(self.data[rows], self.missing[rows])

    def is_text(self) -> bool:
        """Strings and None only (as JSON has them): text, or nothing but missing values."""
        return self.data.dtype == object or bool(self.missing.all())

    def differ(self, value: Scalar) -> npt.NDArray[np.bool_]:
        """Where a value is not `value` (None: where one is present)."""
        if value is None:
            return ~self.missing
        different: npt.NDArray[np.bool_] = self.missing | (self.data != value)
        return different

    def tolist(self) -> list[Scalar]:
        if not self.missing.any():
            return list(self.data.tolist())
        out = self.data.astype(object)
        out[self.missing] = None
        return list(out.tolist())


Encoder = Callable[[Values], dict[str, Any]]


Columns = Mapping[str, npt.NDArray[Any]]  # the table's columns as numpy (rows.TableColumns)


def _missing(values: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
    """Empty values: NaN in numbers, None in texts (booleans are never empty here)."""
    if values.dtype.kind == "f":
        nan: npt.NDArray[np.bool_] = np.isnan(values)
        return nan
    if values.dtype == object:
        empty: npt.NDArray[np.bool_] = values == None  # noqa: E711 (elementwise)
        return empty
    return np.zeros(len(values), bool)


def _values(flows: Columns, c: Column, micros: dict[str, np.ndarray]) -> Values:
    """The column as JSON scalars: microseconds for times, 0/1 for booleans, None where empty."""
    column = flows[c.name]
    missing = _missing(column)
    kind = kind_of(c)
    if kind in ("ts", "dur"):
        return Values(micros[c.name], missing)
    if kind in ("int", "bool"):
        return Values(np.where(missing, 0, column).astype(np.int64), missing)
    text = np.where(missing, "", column)
    return Values(text, missing)


def _micros(flows: Columns, t0_us: int) -> dict[str, np.ndarray]:
    """Every time column in whole microseconds (times since t0_us), 0 where empty."""
    out = {}
    for c in FLOW_COLUMNS:
        if kind_of(c) in ("ts", "dur"):
            us = np.round(np.asarray(flows[c.name], np.float64) * 1e6)
            out[c.name] = np.nan_to_num(us - (t0_us if kind_of(c) == "ts" else 0)).astype(np.int64)
    return out


def _bases(c: Column, flows: Columns) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """Columns a time may be written relative to, as (added, subtracted): only columns before it
    in the schema, so report-data.js decodes them first, and never an empty one where it is not."""
    if c.name == "first_ts":
        return [((), ())]
    if c.name == "duration_s":
        return [((), ()), (("last_ts",), ("first_ts",))]
    before = [x.name for x in FLOW_COLUMNS[: FLOW_COLUMNS.index(c)] if kind_of(x) == "ts"]
    present = ~np.isnan(flows[c.name])
    out: list[tuple[tuple[str, ...], tuple[str, ...]]] = [((), ())]
    for name in before:
        if not (present & np.isnan(flows[name])).any():
            out.append(((name,), ()))
    return out


def _size(spec: dict[str, Any]) -> int:
    return len(json.dumps(spec, separators=(",", ":"), check_circular=False))


def _dense(values: Values) -> dict[str, Any]:
    return {"v": values.tolist()}


def _dictionary(values: Values) -> dict[str, Any]:
    """The distinct values in the order they first appear (None: empty), and each row's code:
    found by numpy (texts by packed.distinct_objects), no Python step per row."""
    found: npt.NDArray[np.integer[Any]]
    if values.data.dtype == object:
        distinct, found = distinct_objects(values.data)
        words: list[Scalar] = list(distinct)
    else:
        numbers, found = np.unique(values.data, return_inverse=True)
        words = numbers.tolist()
    codes = np.where(values.missing, len(words), found.ravel())  # empty: a code of its own
    words.append(None)
    seen, first = np.unique(codes, return_index=True)
    order = seen[np.argsort(first, kind="stable")]  # the codes in the order they first appear
    renumber = np.empty(len(words), np.int64)
    renumber[order] = np.arange(len(order))
    return {"u": [words[c] for c in order.tolist()], "c": renumber[codes].tolist()}


def _sparse(values: Values, default: Scalar, rest_as: Encoder) -> dict[str, Any]:
    """The values that differ from `default`: their positions as steps, their values."""
    idx = np.flatnonzero(values.differ(default))
    return {"d": default, "i": np.diff(idx, prepend=0).tolist(), "x": rest_as(values.take(idx))}


def _sparse_plan(sample: Values) -> tuple[Scalar, Encoder]:
    """The most common value, and how to write the others, judged on a sample."""
    default = Counter(sample.tolist()).most_common(1)[0][0] if len(sample) else None
    rest = sample.take(np.flatnonzero(sample.differ(default)))
    return default, min((_dense, _dictionary), key=lambda encode: _size(encode(rest)))


def _numbers_cut_out(values: Values) -> dict[str, Any] | None:
    """Strings as templates with their numbers: each row's first number as a step from the
    previous row's, the others from the row's first. Evidence frames shrink to a third.

    The digits are found in the strings' bytes with numpy (a Python loop over 100,000 rows costs
    two seconds, Arrow's regex kernels a fifth of one). Strings with a leading zero or a
    16-digit number are not exact this way: then None.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if not values.is_text():
        return None
    # large_string from its buffers (pyarrow.array imports pandas), None where empty
    texts = values.data.astype(object)  # a copy
    texts[values.missing] = None
    strings = text_array(texts)
    validity, offsets_buffer, data_buffer = strings.buffers()
    offsets = np.frombuffer(offsets_buffer, np.int64, len(strings) + 1)
    data = np.frombuffer(data_buffer, np.uint8, int(offsets[-1])) if data_buffer is not None else np.zeros(0, np.uint8)
    digit = (data >= ord("0")) & (data <= ord("9"))
    row_start = np.zeros(len(data) + 1, bool)
    row_start[offsets] = True  # a number never runs on into the next row's string
    first = digit & (row_start[:-1] | ~np.concatenate([[False], digit[:-1]]))  # a number's first digit
    last = digit & (row_start[1:] | ~np.concatenate([digit[1:], [False]]))
    starts, ends = np.flatnonzero(first), np.flatnonzero(last) + 1
    if ((ends - starts >= 16) | ((data[starts] == ord("0")) & (ends - starts > 1))).any():
        return None
    lengths = ends - starts
    numbers = np.zeros(len(starts), np.int64)
    for place in range(int(lengths.max(initial=0))):  # a digit of every number at a time, at most 15
        more = np.flatnonzero(lengths > place)
        numbers[more] = numbers[more] * 10 + (data[starts[more] + place] - ord("0"))
    row = np.searchsorted(offsets, starts, side="right") - 1
    # The templates: each number's digits replaced by one NUL. Counted number by number, not
    # byte by byte (a running count of 10 MB of bytes is 80 MB).
    dropped_before = np.concatenate([[0], np.cumsum(lengths - 1)])
    template_data = data[~digit | first]
    template_data[starts - dropped_before[:-1]] = 0
    template_offsets = offsets - dropped_before[np.searchsorted(starts, offsets)]
    templates_of_rows = pa.Array.from_buffers(pa.large_string(), len(strings), [
        validity, pa.py_buffer(template_offsets), pa.py_buffer(template_data)])
    dictionary = pc.dictionary_encode(templates_of_rows)
    codes = dictionary.indices.to_pylist()
    first_at = np.flatnonzero(np.diff(row, prepend=-1) != 0)
    firsts = numbers[first_at]
    out = numbers - np.repeat(firsts, np.diff(np.append(first_at, len(numbers))))
    out[first_at] = np.diff(firsts, prepend=0)
    templates = [t.split("\x00") for t in dictionary.dictionary.to_pylist()]
    return {"t": templates, "c": codes, "n": out.tolist()}


def encode_values(values: Values) -> dict[str, Any]:
    """The smallest encoding of a column of JSON scalars, ranked on a sample of it."""
    sample = values.take(slice(None, None, max(1, len(values) // SAMPLE_ROWS)))
    default, rest_as = _sparse_plan(sample)
    candidates: list[Callable[[Values], dict[str, Any] | None]] = [
        _dense, _dictionary, _numbers_cut_out, lambda v: _sparse(v, default, rest_as)]
    sizes = []
    for encode in candidates:
        spec = encode(sample)
        sizes.append(_size(spec) if spec is not None else 1 << 62)
    spec = candidates[int(np.argmin(sizes))](values)
    assert spec is not None
    return spec


def encode_flows(table: pa.Table, flows: Columns, t0_us: int) -> list[dict[str, Any]]:
    """One spec per column of the per-flow table (`flows`: its columns as numpy), in schema
    order, for report-data.js."""
    micros = _micros(flows, t0_us)
    spelt_by_page = page_spells_flow_ids(table)
    filters = spelt_display_filters(table)
    every = slice(None, None, max(1, table.num_rows // SAMPLE_ROWS))
    out = []
    for c in FLOW_COLUMNS:
        meta: dict[str, Any] = {"name": c.name, "label": header_of(c.name), "kind": kind_of(c), "help": help_of(c)}
        if c.name == "flow_id" and spelt_by_page:
            out.append(meta | {"spelt": True})
        elif c.name == "display_filter" and filters is not None:
            out.append(meta | {"spelt": True} | filters)
        elif c.name == "first_ts":
            out.append(meta | {"v": np.diff(micros["first_ts"], prepend=0).tolist(), "delta": True})
        elif c.name in micros:
            options = []
            for plus, minus in _bases(c, flows):
                shifted = micros[c.name] - sum((micros[p] for p in plus), np.int64(0)) \
                    + sum((micros[m] for m in minus), np.int64(0))
                some = _values(flows, c, {c.name: shifted}).take(every)
                options.append((_size(encode_values(some)), plus, minus, shifted))
            _, plus, minus, shifted = min(options, key=lambda o: o[0])
            spec = encode_values(_values(flows, c, {c.name: shifted}))
            out.append(meta | spec | ({"plus": list(plus), "minus": list(minus)} if plus or minus else {}))
        else:
            out.append(meta | encode_values(_values(flows, c, micros)))
    return out
