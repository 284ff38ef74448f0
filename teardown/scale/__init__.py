"""Many files, or one big file, analyzed on all cores or on a Dask cluster, with the verdicts of
a single process reading everything in order.

    pieces.py   a file or byte range -> its segments, dealt into shards by 4-tuple (in a worker)
    combine.py  pieces -> captures (file order, frame and tunnel numbers, port peers); a shard
                judged by an engine of its own (in a worker)
    cluster.py  the Dask side: the cluster, the two rounds of tasks, progress, the result
"""

from .cluster import analyze_on_cluster

__all__ = ["analyze_on_cluster"]
