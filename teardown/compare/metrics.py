"""What a diff compares: the scopes (all connections, a host, a server endpoint, a client ->
endpoint pair, a finding) and, per scope, the figures taken from the analysis's tables, each
with the words the terminal and the page use and how much a change of it weighs in the ranking.

Every figure keeps the name of the table column it comes from (docs/rules.md "Host-level
views"), so a diff row's `metric` is looked up where the column is documented.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from ..schema import CloseKind, Scope


class Unit(Enum):
    count = "count"  # connections, sockets, segments: a whole number
    share = "share"  # a fraction of a base count (`Metric.base`), 0 to 1
    fraction = "fraction"  # ports in use over the port range, 0 to 1
    rate = "rate"  # connections per second
    seconds = "seconds"  # a duration; empty where the figure does not apply ("never")


@dataclass(frozen=True, slots=True)
class Metric:
    scope: Scope
    name: str  # the column of the scope's table it is read from (close_kind_X: counted from the flows)
    label: str  # how the terminal and the page name it
    unit: Unit
    weight: float  # how much a change of it counts in the ranking, against the others (1: the most)
    base: str = ""  # for a share: the count of the same subject it is a share of
    # An absent subject had none of it (no connections, no TIME_WAIT): its change is against 0.
    # False where absence says nothing (a share of nothing, a time to exhaustion never reached).
    absent_is_zero: bool = True


def _closes(scope: Scope) -> list[Metric]:
    """Who closes first and how, as the servers table says it, for an endpoint or all connections."""
    return [
        Metric(scope, "connections", "connections", Unit.count, 0.6),
        Metric(scope, "closed", "connections closed (FIN or RST)", Unit.count, 0.4),
        Metric(scope, "server_closed_first_share", "closed first by the server", Unit.share, 1.0, "closed", False),
        Metric(scope, "client_closed_first_share", "closed first by the client", Unit.share, 1.0, "closed", False),
        Metric(scope, "simultaneous_share", "simultaneous closes", Unit.share, 0.8, "closed", False),
        Metric(scope, "aborted_share", "aborted (RST, no FIN)", Unit.share, 0.9, "closed", False),
        Metric(scope, "aborted_by_server", "aborts (RST) by the server", Unit.count, 0.8),
        Metric(scope, "aborted_by_client", "aborts (RST) by the clients", Unit.count, 0.8),
        Metric(scope, "refused", "SYNs refused", Unit.count, 0.5),
        Metric(scope, "server_time_wait_total", "TIME_WAITs held by the server" if scope == Scope.endpoint
               else "TIME_WAITs held by servers", Unit.count, 0.9),
        Metric(scope, "client_time_wait_total", "TIME_WAITs held by the clients", Unit.count, 0.9),
    ] + [Metric(scope, close_kind(k), f"close kind {k.value}", Unit.count, 0.7) for k in CloseKind]


def close_kind(kind: CloseKind) -> str:
    """The metric counting connections of one close kind."""
    return f"close_kind_{kind.value}"


METRICS: list[Metric] = [
    *_closes(Scope.capture),
    # The worst of any host or destination: what the headline of a capture is.
    Metric(Scope.capture, "time_wait_peak", "highest TIME_WAIT peak of a host", Unit.count, 1.0),
    Metric(Scope.capture, "port_utilisation_peak", "highest port utilisation of a client", Unit.fraction, 1.0,
           absent_is_zero=False),
    Metric(Scope.capture, "seconds_to_exhaustion", "shortest time to port exhaustion", Unit.seconds, 1.0,
           absent_is_zero=False),
    Metric(Scope.host, "connections", "connections", Unit.count, 0.6),
    Metric(Scope.host, "connections_as_client", "connections opened", Unit.count, 0.4),
    Metric(Scope.host, "connections_as_server", "connections accepted", Unit.count, 0.4),
    Metric(Scope.host, "closed_first", "connections it closed first", Unit.count, 0.9),
    Metric(Scope.host, "time_wait_total", "TIME_WAITs held", Unit.count, 0.9),
    Metric(Scope.host, "time_wait_peak", "TIME_WAIT peak", Unit.count, 1.0),
    Metric(Scope.host, "aborts_sent", "aborts (RST) sent", Unit.count, 0.8),
    Metric(Scope.host, "refused_sent", "SYNs refused", Unit.count, 0.5),
    *_closes(Scope.endpoint),
    Metric(Scope.endpoint, "server_time_wait_peak", "the server's TIME_WAIT peak", Unit.count, 1.0),
    Metric(Scope.destination, "connections", "connections", Unit.count, 0.6),
    Metric(Scope.destination, "client_time_wait_share", "left the client in TIME_WAIT", Unit.share, 0.8,
           "connections", False),
    Metric(Scope.destination, "ports_in_use_peak", "ports in use at the peak", Unit.count, 0.9),
    Metric(Scope.destination, "port_utilisation_peak", "port utilisation peak", Unit.fraction, 1.0,
           absent_is_zero=False),
    Metric(Scope.destination, "observed_rate_peak", "new connections a second at the peak", Unit.rate, 0.5),
    Metric(Scope.destination, "seconds_to_exhaustion", "time to port exhaustion", Unit.seconds, 1.0,
           absent_is_zero=False),
    Metric(Scope.destination, "time_wait_reuses", "4-tuples reused in TIME_WAIT", Unit.count, 0.6),
]
# How much a scope's changes count in the ranking: the whole capture first, then who holds what.
SCOPE_WEIGHT = {Scope.capture: 1.0, Scope.host: 0.95, Scope.endpoint: 0.9, Scope.destination: 0.85,
                Scope.finding: 1.0}
BY_NAME: dict[tuple[Scope, str], Metric] = {(m.scope, m.name): m for m in METRICS}


def metric(scope: Scope, name: str) -> Metric:
    return BY_NAME[(scope, name)]


def of_scope(scope: Scope) -> list[Metric]:
    return [m for m in METRICS if m.scope == scope]
