"""The in-memory side of an index: vectors by position, and exact and IVF top-k search.

A ``Snapshot`` holds the live rows of one generation of the index in one
float32 matrix. When the index is trained, the rows loaded at once are sorted
by IVF list, so a list is a contiguous slice (``bounds``) and probing it is
one matrix product with no gather; rows appended later form a *tail* whose
per-list positions are kept apart, until the tail grows past an eighth of the
whole and everything is sorted again. Deleted rows stay in place with
``alive`` false until the next rebuild drops them from disk.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from opsloop.retrieval._kmeans import scores

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    F32 = npt.NDArray[np.float32]
    I64 = npt.NDArray[np.int64]
    B = npt.NDArray[np.bool_]

_QUERY_BLOCK = 64


def topk_rows(s: Any, k: int) -> tuple[Any, Any]:
    """Per row of ``s`` ([m, n]) the indices and values of its ``k`` largest, best first."""
    import numpy as np

    n = s.shape[1]
    if k < n:
        part = np.argpartition(-s, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(n), (s.shape[0], n))
    vals = np.take_along_axis(s, part, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(vals, order, axis=1)


class Snapshot:
    """The vectors of one generation of an index, ready to search."""

    def __init__(
        self,
        *,
        generation: int,
        dim: int,
        metric: str,
        files: tuple[str | None, ...],
        n_rows: int,
        vectors: F32,
        rids: I64,
        lists: npt.NDArray[np.int32] | None,
        centroids: F32 | None,
        nprobe: int,
    ) -> None:
        import numpy as np

        self.generation = generation
        self.dim = dim
        self.metric = metric
        self.files = files
        self.n_rows = n_rows
        self.centroids = centroids
        self.nprobe = nprobe
        self.n = 0
        self.x = np.empty((0, dim), dtype=np.float32)
        self.sq = np.empty(0, dtype=np.float32)
        self.rid_of = np.empty(0, dtype=np.int64)
        self.lists = np.empty(0, dtype=np.int32)
        self.alive = np.empty(0, dtype=bool)
        self.pos_of = np.full(n_rows, -1, dtype=np.int64)
        self.n_main = 0
        self.bounds: I64 | None = None
        self._tail_index: tuple[I64, I64] | None = None
        # Filter masks over positions, valid until the snapshot changes.
        self.masks: OrderedDict[tuple[str, str], B] = OrderedDict()
        self._reset(vectors, rids, lists)

    # ---------------------------------------------------------------- layout

    def _reset(self, x: F32, rids: I64, lists: npt.NDArray[np.int32] | None) -> None:
        import numpy as np

        if self.centroids is not None and lists is not None:
            order = np.argsort(lists, kind="stable")
            x, rids, lists = x[order], rids[order], lists[order]
            self.bounds = np.searchsorted(lists, np.arange(len(self.centroids) + 1)).astype(
                np.int64
            )
        else:
            self.bounds = None
            lists = np.zeros(len(x), dtype=np.int32) if lists is None else lists
        self.x = np.ascontiguousarray(x, dtype=np.float32)
        self.rid_of = np.asarray(rids, dtype=np.int64)
        self.lists = np.asarray(lists, dtype=np.int32)
        self.alive = np.ones(len(x), dtype=bool)
        self.sq = (self.x * self.x).sum(axis=1) if self.metric == "l2" else self.sq[:0]
        self.n = self.n_main = len(x)
        if len(self.pos_of) < self.n_rows:
            self.pos_of = np.full(self.n_rows, -1, dtype=np.int64)
        else:
            self.pos_of[:] = -1
        self.pos_of[self.rid_of] = np.arange(self.n)
        self._tail_index = None
        self.masks.clear()

    def append(self, rids: I64, x: F32, lists: npt.NDArray[np.int32] | None) -> None:
        """Rows just added to the index (their rids start at the old ``n_rows``)."""
        import numpy as np

        m = len(x)
        need = self.n + m
        if need > len(self.x):
            cap = max(need, int(len(self.x) * 1.5) + 64)
            grown = np.empty((cap, self.dim), dtype=np.float32)
            grown[: self.n] = self.x[: self.n]
            self.x = grown
            self.rid_of = np.resize(self.rid_of, cap)
            self.lists = np.resize(self.lists, cap)
            self.alive = np.resize(self.alive, cap)
            if self.metric == "l2":
                self.sq = np.resize(self.sq, cap)
        self.x[self.n : need] = x
        self.rid_of[self.n : need] = rids
        self.lists[self.n : need] = 0 if lists is None else lists
        self.alive[self.n : need] = True
        if self.metric == "l2":
            self.sq[self.n : need] = (x * x).sum(axis=1)
        self.n_rows = max(self.n_rows, int(rids.max()) + 1 if m else self.n_rows)
        if len(self.pos_of) < self.n_rows:
            grown_pos = np.full(max(self.n_rows, int(len(self.pos_of) * 1.5)), -1, dtype=np.int64)
            grown_pos[: len(self.pos_of)] = self.pos_of
            self.pos_of = grown_pos
        self.pos_of[rids] = np.arange(self.n, need)
        self.n = need
        self._tail_index = None
        self.masks.clear()
        if self.bounds is not None and self.n - self.n_main > max(2048, self.n_main // 8):
            live = np.flatnonzero(self.alive[: self.n])
            self._reset(self.x[live], self.rid_of[live], self.lists[live])

    def remove(self, rids: I64) -> None:
        """Rows deleted (or replaced by an upsert) from the index."""
        rids = rids[rids < len(self.pos_of)]
        pos = self.pos_of[rids]
        pos = pos[pos >= 0]
        self.alive[pos] = False
        self.masks.clear()

    @property
    def live_count(self) -> int:
        return int(self.alive[: self.n].sum())

    def positions(self, rids: Any) -> B:
        """A mask over positions of the given rids (rids unknown to this snapshot are skipped)."""
        import numpy as np

        r = np.asarray(rids, dtype=np.int64)
        r = r[(r >= 0) & (r < len(self.pos_of))]
        pos = self.pos_of[r]
        mask = np.zeros(self.n, dtype=bool)
        mask[pos[pos >= 0]] = True
        return mask

    def _tail(self) -> tuple[I64, I64]:
        """Tail positions sorted by list, and per-list bounds into them."""
        import numpy as np

        if self._tail_index is None:
            assert self.centroids is not None
            tail_lists = self.lists[self.n_main : self.n]
            order = np.argsort(tail_lists, kind="stable")
            bounds = np.searchsorted(tail_lists[order], np.arange(len(self.centroids) + 1))
            self._tail_index = (order.astype(np.int64) + self.n_main, bounds.astype(np.int64))
        return self._tail_index

    # ---------------------------------------------------------------- search

    def search(
        self, q: F32, k: int, *, mask: B | None, exact: bool, nprobe: int | None
    ) -> tuple[I64, F32]:
        """``(rids [m, k], scores [m, k])`` best first; missing slots have rid -1.

        ``mask`` restricts the search to some positions (a metadata filter).
        Scores are "higher is better" (see ``scores``).
        """
        import numpy as np

        valid = self.alive[: self.n] if mask is None else (self.alive[: self.n] & mask)
        n_valid = int(valid.sum())
        m = len(q)
        if n_valid == 0 or self.n == 0:
            return np.full((m, 0), -1, dtype=np.int64), np.empty((m, 0), dtype=np.float32)
        k = min(k, n_valid)
        if self.bounds is None or self.centroids is None or exact:
            return self._exact(q, k, valid, n_valid)
        nlist = len(self.centroids)
        probes = nprobe or self.nprobe
        # A selective filter leaves fewer matches per list: probe more lists to keep recall.
        live = self.live_count
        if n_valid < live:
            probes = math.ceil(probes * live / n_valid)
        probes = min(nlist, probes)
        if probes * self.n / nlist >= n_valid / 2:
            return self._exact(q, k, valid, n_valid)
        pos, sc = self._ivf(q, k, valid, probes, mask is None and n_valid == self.n)
        if (pos < 0).any() and n_valid > 0:
            # Too few matches in the probed lists: answer those queries exactly.
            short = np.flatnonzero((pos < 0).any(axis=1))
            ep, es = self._exact(q[short], k, valid, n_valid, as_positions=True)
            pos[short], sc[short] = ep, es
        return self._rids(pos), sc

    def _rids(self, pos: I64) -> I64:
        import numpy as np

        out: I64 = np.where(pos >= 0, self.rid_of[np.maximum(pos, 0)], -1)
        return out

    def _exact(
        self, q: F32, k: int, valid: B, n_valid: int, *, as_positions: bool = False
    ) -> tuple[I64, F32]:
        import numpy as np

        m = len(q)
        out_pos = np.full((m, k), -1, dtype=np.int64)
        out_sc = np.full((m, k), -np.inf, dtype=np.float32)
        if n_valid < self.n * 0.5:
            sub = np.flatnonzero(valid)
            xs = self.x[sub]
            sq = self.sq[sub] if self.metric == "l2" else None
        else:
            sub = None
            xs = self.x[: self.n]
            sq = self.sq[: self.n] if self.metric == "l2" else None
        for s in range(0, m, _QUERY_BLOCK):
            sc = scores(xs, q[s : s + _QUERY_BLOCK], self.metric, sq).T  # [b, rows]
            if sub is None and n_valid < self.n:
                sc[:, ~valid] = -np.inf
            idx, val = topk_rows(sc, k)
            out_pos[s : s + _QUERY_BLOCK] = idx if sub is None else sub[idx]
            out_sc[s : s + _QUERY_BLOCK] = val
        out_pos[~np.isfinite(out_sc)] = -1
        return (out_pos if as_positions else self._rids(out_pos)), out_sc

    def _ivf(self, q: F32, k: int, valid: B, probes: int, all_valid: bool) -> tuple[I64, F32]:
        import numpy as np

        assert self.centroids is not None and self.bounds is not None
        m = len(q)
        csc = scores(self.centroids, q, self.metric).T  # [m, nlist]
        probe, _ = topk_rows(csc, probes)  # [m, probes]
        slots = m * probes
        cand_pos = np.full((slots, k), -1, dtype=np.int64)
        cand_sc = np.full((slots, k), -np.inf, dtype=np.float32)
        flat = probe.ravel()
        order = np.argsort(flat, kind="stable")
        lists_sorted = flat[order]
        starts = np.flatnonzero(np.r_[True, lists_sorted[1:] != lists_sorted[:-1]])
        ends = np.r_[starts[1:], len(order)]
        has_tail = self.n > self.n_main
        tail_pos, tail_b = self._tail() if has_tail else (None, None)
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
            lst = int(lists_sorted[a])
            slot = order[a:b]  # flat slot ids: query = slot // probes
            qs = q[slot // probes]
            lo, hi = int(self.bounds[lst]), int(self.bounds[lst + 1])
            pos = np.arange(lo, hi)
            if tail_pos is not None and tail_b is not None and tail_b[lst + 1] > tail_b[lst]:
                pos = np.concatenate([pos, tail_pos[tail_b[lst] : tail_b[lst + 1]]])
            if len(pos) == 0:
                continue
            xs = self.x[lo:hi] if len(pos) == hi - lo else self.x[pos]
            sq = self.sq[pos] if self.metric == "l2" else None
            sc = scores(xs, qs, self.metric, sq).T  # [len(slot), rows]
            if not all_valid:
                ok = valid[pos]
                if not ok.any():
                    continue
                sc[:, ~ok] = -np.inf
            kk = min(k, len(pos))
            idx, val = topk_rows(sc, kk)
            cand_pos[slot, :kk] = pos[idx]
            cand_sc[slot, :kk] = val
        cand_pos = cand_pos.reshape(m, probes * k)
        cand_sc = cand_sc.reshape(m, probes * k)
        idx, val = topk_rows(cand_sc, k)
        out_pos = np.take_along_axis(cand_pos, idx, axis=1)
        out_pos[~np.isfinite(val)] = -1
        return out_pos, val
