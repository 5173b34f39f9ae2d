"""Building a version from its files: the descriptor, the flavor's checks, pinned references.

Every version holds an ``opsloop-model.json``; when the registered files
lack one (a plain Hugging Face folder, a ``.gguf`` file, a ``.skops`` file),
the flavor named at registration describes them and the descriptor is added
as one more blob, so a downloaded version is always self-describing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opsloop.errors import InvalidArgument, NotFound
from opsloop.registry import _names as N
from opsloop.registry._rows import version_aliases
from opsloop.registry._tables import model_version_tags, model_versions, registered_models
from opsloop.registry.entities import FileEntry, ModelVersion
from opsloop.registry.flavors._base import DESCRIPTOR_FILE, ModelDescriptor, flavor_module
from opsloop.registry.flavors._signature import Signature
from opsloop.store import ArtifactStore

MAX_DESCRIPTOR_BYTES = 1024 * 1024


@dataclass
class BuiltVersion:
    files: dict[str, FileEntry]
    descriptor: ModelDescriptor
    base_version_id: str | None = None
    base_model: dict[str, Any] | None = None

    @property
    def signature_dict(self) -> dict[str, Any] | None:
        sig = self.descriptor.signature
        return None if sig is None else sig.to_dict()


class VersionBuilder:
    """Checks a version's files and settles its descriptor (inside the creating transaction)."""

    def __init__(
        self,
        store: ArtifactStore,
        *,
        flavor: str | None,
        options: Mapping[str, Any] | None,
        signature: Mapping[str, Any] | None,
    ) -> None:
        if flavor is not None:
            flavor_module(flavor)  # unknown flavor: InvalidArgument before any work
        if options is not None and not isinstance(options, Mapping):
            raise InvalidArgument("options must be an object")
        try:  # as the API answers it (server/_json.py): integers within 64 bits
            orjson.dumps(options, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)
        except TypeError as exc:
            raise InvalidArgument(f"options must be plain JSON: {exc}") from None
        self.store = store
        self.flavor = flavor
        self.options = dict(options or {})
        self.signature = Signature.from_dict(signature) if signature is not None else None

    def build(self, conn: Connection, files: dict[str, FileEntry], service: Any) -> BuiltVersion:
        files = dict(files)
        changed = False
        entry = files.get(DESCRIPTOR_FILE)
        if entry is not None:
            if entry.size > MAX_DESCRIPTOR_BYTES:
                raise InvalidArgument(
                    f"{DESCRIPTOR_FILE} is larger than {MAX_DESCRIPTOR_BYTES} bytes"
                )
            desc = ModelDescriptor.loads(self.store.read_bytes(entry.digest))
            if self.flavor is not None and self.flavor != desc.flavor:
                raise InvalidArgument(
                    f"the files are a saved {desc.flavor!r} model, not {self.flavor!r}",
                    details={"flavor": desc.flavor},
                )
            if self.options:
                desc.metadata.update(self.options)
                changed = True
        else:
            if self.flavor is None:
                raise InvalidArgument(
                    f"the files hold no {DESCRIPTOR_FILE}: name their flavor "
                    "(sklearn, transformers, sentence_transformers, peft, pyfunc, ...)",
                    details={"files": sorted(files)[:20]},
                )
            desc = flavor_module(self.flavor).describe(sorted(files), dict(self.options))
            changed = True
        mod = flavor_module(desc.flavor)
        mod.validate(sorted(files), desc)
        if self.signature is not None:
            desc.signature = self.signature
            changed = True
        built = BuiltVersion(files, desc)
        base = desc.metadata.get("base_model")
        if desc.flavor == "peft":
            self._pin_base(conn, service, built, base)
            changed = True
        if changed:
            blob = self.store.put_bytes(desc.dumps())
            files[DESCRIPTOR_FILE] = FileEntry(digest=blob.digest, size=blob.size)
        return built

    @staticmethod
    def _pin_base(conn: Connection, service: Any, built: BuiltVersion, base: Any) -> None:
        if not isinstance(base, str) or not N.is_model_uri(base):
            raise InvalidArgument(
                "a peft adapter version needs options base_model='models:/NAME/VERSION' "
                "(or @ALIAS): register the base model first",
                details={"base_model": base},
            )
        ref = N.parse_model_uri(base)
        try:
            model = service._model_row(conn, ref.name)
            if ref.alias is not None:
                row = service._alias_version_row(conn, model, ref.alias)
            else:
                row = service._version_row(conn, model, ref.version or "latest")
        except NotFound as exc:
            raise InvalidArgument(f"base model {base!r} does not resolve: {exc.message}") from exc
        if row.flavor != "transformers":
            raise InvalidArgument(
                f"base model {base!r} is a {row.flavor!r} model; adapters need a transformers model"
            )
        # Adapters are trained against exact weights: pin the version, whatever alias was given.
        pinned = f"models:/{model.name}/{row.version}"
        built.descriptor.metadata["base_model"] = pinned
        built.base_version_id = row.id
        built.base_model = {"name": model.name, "version": row.version, "version_id": row.id}


def version_entities(conn: Connection, model_name: str, rows: list[Any]) -> list[ModelVersion]:
    """Version rows with their tags and aliases, in the order given."""
    ids = [r.id for r in rows]
    tags: dict[str, dict[str, str]] = {i: {} for i in ids}
    for i in range(0, len(ids), 500):
        for t in conn.execute(
            sa.select(model_version_tags).where(
                model_version_tags.c.version_id.in_(ids[i : i + 500])
            )
        ):
            tags[t.version_id][t.key] = t.value
    aliases = version_aliases(conn, ids)
    return [
        ModelVersion(
            id=r.id,
            model_id=r.model_id,
            name=model_name,
            version=r.version,
            flavor=r.flavor,
            source=r.source,
            source_run_id=r.source_run_id,
            description=r.description,
            status=r.status,
            signature=r.signature_json,
            metadata=r.metadata_json or {},
            files={p: FileEntry(**e) for p, e in (r.manifest_json or {}).items()},
            tags=tags[r.id],
            aliases=aliases[r.id],
            created_at=r.created_at,
            created_by=r.created_by,
        )
        for r in rows
    ]


def versions_by_ids(conn: Connection, version_ids: list[str]) -> dict[str, tuple[str, int]]:
    """``version id -> (model name, version number)`` for existing versions."""
    out: dict[str, tuple[str, int]] = {}
    for i in range(0, len(version_ids), 500):
        for r in conn.execute(
            sa.select(model_versions.c.id, registered_models.c.name, model_versions.c.version)
            .join(registered_models, registered_models.c.id == model_versions.c.model_id)
            .where(model_versions.c.id.in_(version_ids[i : i + 500]))
        ):
            out[r.id] = (r.name, r.version)
    return out
