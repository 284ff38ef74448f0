"""Captures of one path taken at two points -> one analysis (docs/rules.md "Two capture points").

    segments.py  which connections and segments the points share, the clocks' offset, the losses
    join.py      an analysis of several captures -> those of one path joined, a row per connection
"""

from __future__ import annotations

from .join import join_points

__all__ = ["join_points"]
