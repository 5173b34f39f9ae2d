"""The LLM record kinds: their required columns, checked row by row.

- ``prompt_response``: ``prompt`` (text, required), ``response`` and
  ``reference`` (text, optional), ``metadata`` (any JSON, stored as JSON text);
  other columns are kept.
- ``chat``: ``messages``, a list of ``{role, content}`` (roles ``system``,
  ``developer``, ``user``, ``assistant``, ``tool``; content text), given as
  lists or as JSON text; ``metadata`` as above; other columns kept.

A record that breaks the shape of its kind is never stored: the builder
collects the first problems (row, column, message index) over the whole input
and raises ``InvalidArgument`` with them in ``details["errors"]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from opsloop.datasets._arrow import jsonable, require_pyarrow, type_family
from opsloop.errors import InvalidArgument

if TYPE_CHECKING:
    import pyarrow as pa

KINDS = ("tabular", "prompt_response", "chat", "documents")
CHAT_ROLES = ("system", "developer", "user", "assistant", "tool")
MAX_ERRORS = 20


def check_kind(kind: Any) -> str:
    if kind not in KINDS:
        raise InvalidArgument(f"unknown dataset kind {kind!r}: use one of {list(KINDS)}")
    return str(kind)


class KindChecker:
    """Reshape and check batches for a record kind; ``finish()`` raises on any problem."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.errors: list[dict[str, Any]] = []
        self.count = 0
        self.rows = 0

    def _error(self, row: int | None, column: str, message: str, **extra: Any) -> None:
        self.count += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append({"row": row, "column": column, "message": message, **extra})

    def apply(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        offset = self.rows
        self.rows += batch.num_rows
        if self.kind in ("tabular", "documents"):
            return batch
        names = batch.schema.names
        if "metadata" in names:
            batch = _replace(batch, "metadata", _json_text(batch.column("metadata")))
        if self.kind == "prompt_response":
            self._prompt_response(batch, offset)
        else:
            batch = self._chat(batch, offset)
        return batch

    def _text_column(
        self, batch: pa.RecordBatch, name: str, offset: int, *, required: bool
    ) -> None:
        import numpy as np

        if name not in batch.schema.names:
            if required and offset == 0:
                self._error(None, name, f"column {name!r} is required for this kind")
            return
        col = batch.column(name)
        fam = type_family(col.type)
        if fam not in ("string", "null"):
            if offset == 0:
                self._error(None, name, f"column {name!r} must hold text, not {col.type}")
            return
        if required:
            for i in np.flatnonzero(np.asarray(col.is_null())).tolist():
                self._error(offset + i, name, f"{name} is missing")

    def _prompt_response(self, batch: pa.RecordBatch, offset: int) -> None:
        self._text_column(batch, "prompt", offset, required=True)
        self._text_column(batch, "response", offset, required=False)
        self._text_column(batch, "reference", offset, required=False)

    def _chat(self, batch: pa.RecordBatch, offset: int) -> pa.RecordBatch:
        import numpy as np
        import pyarrow.compute as pc

        pa = require_pyarrow()
        if "messages" not in batch.schema.names:
            if offset == 0:
                self._error(None, "messages", "column 'messages' is required for chat data")
            return batch
        col = batch.column("messages")
        if type_family(col.type) == "string":
            col = self._parse_messages(col, offset)
            batch = _replace(batch, "messages", col)
        t = col.type
        if not (pa.types.is_list(t) or pa.types.is_large_list(t)) or not pa.types.is_struct(
            t.value_type
        ):
            if offset == 0:
                self._error(
                    None, "messages", f"messages must be a list of {{role, content}}, not {t}"
                )
            return batch
        fields = {t.value_type.field(i).name for i in range(t.value_type.num_fields)}
        missing = {"role", "content"} - fields
        if missing:
            if offset == 0:
                self._error(None, "messages", f"messages lack the field(s) {sorted(missing)}")
            return batch
        lengths = pc.list_value_length(col)
        empty = pc.or_(col.is_null(), pc.equal(lengths, 0).fill_null(True))
        for i in np.flatnonzero(np.asarray(empty)).tolist():
            self._error(offset + i, "messages", "a chat needs at least one message")
        flat = pc.list_flatten(col)
        if not len(flat):
            return batch
        parents = np.asarray(pc.list_parent_indices(col))
        starts = np.asarray(col.offsets)[:-1] - np.asarray(col.offsets)[0]
        roles = flat.field("role")
        contents = flat.field("content")
        role_ok = pc.is_in(roles.cast(pa.string()), value_set=pa.array(CHAT_ROLES)).fill_null(False)
        bad_role = np.flatnonzero(~np.asarray(role_ok))
        for j in bad_role.tolist():
            p = int(parents[j])
            self._error(
                offset + p,
                "messages",
                f"message {j - int(starts[p])} has role {roles[j].as_py()!r}; "
                f"roles are {', '.join(CHAT_ROLES)}",
                message_index=j - int(starts[p]),
            )
        if type_family(contents.type) not in ("string", "null"):
            self._error(offset, "messages", f"message content must be text, not {contents.type}")
        else:
            for j in np.flatnonzero(np.asarray(contents.is_null())).tolist():
                p = int(parents[j])
                self._error(
                    offset + p,
                    "messages",
                    f"message {j - int(starts[p])} has no content",
                    message_index=j - int(starts[p]),
                )
        return batch

    def _parse_messages(self, col: pa.Array, offset: int) -> pa.Array:
        pa = require_pyarrow()
        parsed: list[Any] = []
        for i, text in enumerate(col.to_pylist()):
            if text is None:
                parsed.append(None)
                continue
            try:
                v = orjson.loads(text)
            except orjson.JSONDecodeError:
                self._error(offset + i, "messages", "messages is not valid JSON")
                v = None
            if v is not None and not (isinstance(v, list) and all(isinstance(m, dict) for m in v)):
                self._error(offset + i, "messages", "messages must be a JSON list of objects")
                v = None
            parsed.append(v)
        try:
            return pa.array(parsed)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise InvalidArgument(f"messages have inconsistent fields: {exc}") from exc

    def finish(self) -> None:
        if self.count:
            first = self.errors[0]
            where = f"row {first['row']}: " if first["row"] is not None else ""
            raise InvalidArgument(
                f"{self.count} record(s) do not fit the {self.kind} kind; first: "
                f"{where}{first['message']}",
                details={"kind": self.kind, "count": self.count, "errors": self.errors},
            )


def _replace(batch: pa.RecordBatch, name: str, col: pa.Array) -> pa.RecordBatch:
    pa = require_pyarrow()
    i = batch.schema.get_field_index(name)
    arrays = list(batch.columns)
    arrays[i] = col
    names = list(batch.schema.names)
    return pa.RecordBatch.from_arrays(arrays, names=names)


def _json_text(col: pa.Array) -> pa.Array:
    """Any column as canonical JSON text (text columns are kept as they are)."""
    pa = require_pyarrow()
    if type_family(col.type) == "string":
        return col
    out = [
        None
        if v is None
        else orjson.dumps(jsonable(v, truncate=None), option=orjson.OPT_SORT_KEYS).decode()
        for v in col.to_pylist()
    ]
    return pa.array(out, type=pa.string())
