"""Model cards and lineage: facts gathered from the source run and the data it read.

Lineage runs both ways over three links: ``run_inputs`` (dataset version ->
run, written by the datasets room), ``model_versions.source_run_id`` (run ->
model version) and ``model_versions.base_version_id`` (adapter -> base).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.engine import Connection

from opsloop.datasets.tables import dataset_versions, datasets, run_inputs
from opsloop.errors import InvalidArgument, NotFound
from opsloop.registry._events import record_event
from opsloop.registry._tables import model_aliases, model_versions, registered_models
from opsloop.registry._versions import BuiltVersion
from opsloop.registry.entities import (
    CardFields,
    DatasetLineage,
    LineageDataset,
    LineageModelVersion,
    LineageRun,
    ModelCard,
    VersionLineage,
)
from opsloop.registry.flavors._base import ModelDescriptor
from opsloop.registry.flavors._signature import Signature
from opsloop.store import now_ms
from opsloop.tracking.tables import experiments, latest_metrics, params, runs

MAX_MARKDOWN = 200_000
_CARD_META_KEYS = (
    "model_id",
    "task",
    "classes",
    "estimator",
    "base_model",
    "format",
    "gguf_file",
    "python_model",
    "dimension",
    "library_versions",
)


def _finite(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else v


def run_facts(conn: Connection, run_id: str) -> dict[str, Any] | None:
    """The run's identity, params and latest metrics, or None if it is gone."""
    r = conn.execute(
        sa.select(runs, experiments.c.name.label("experiment_name"))
        .join(experiments, experiments.c.id == runs.c.experiment_id)
        .where(runs.c.id == run_id)
    ).first()
    if r is None:
        return None
    return {
        "run": {
            "id": r.id,
            "name": r.name,
            "experiment_id": r.experiment_id,
            "experiment": r.experiment_name,
            "status": r.status,
            "user": r.user,
            "start_time": r.start_time,
            "end_time": r.end_time,
        },
        "params": {
            p.key: p.value
            for p in conn.execute(
                sa.select(params.c.key, params.c.value)
                .where(params.c.run_id == run_id)
                .order_by(params.c.key)
            )
        },
        "metrics": {
            m.key: _finite(m.value)
            for m in conn.execute(
                sa.select(latest_metrics.c.key, latest_metrics.c.value)
                .where(latest_metrics.c.run_id == run_id)
                .order_by(latest_metrics.c.key)
            )
        },
    }


def run_datasets(conn: Connection, run_ids: list[str]) -> dict[str, list[LineageDataset]]:
    """``run id -> dataset versions it read`` (from the datasets room's ``run_inputs``)."""
    out: dict[str, list[LineageDataset]] = {r: [] for r in run_ids}
    for i in range(0, len(run_ids), 500):
        rows = conn.execute(
            sa.select(
                run_inputs.c.run_id,
                run_inputs.c.context,
                run_inputs.c.dataset_version_id,
                dataset_versions.c.dataset_id,
                dataset_versions.c.version,
                dataset_versions.c.row_count,
                dataset_versions.c.content_digest,
                datasets.c.name,
            )
            .select_from(
                run_inputs.outerjoin(
                    dataset_versions, dataset_versions.c.id == run_inputs.c.dataset_version_id
                ).outerjoin(datasets, datasets.c.id == dataset_versions.c.dataset_id)
            )
            .where(run_inputs.c.run_id.in_(run_ids[i : i + 500]))
            .order_by(run_inputs.c.context, datasets.c.name, dataset_versions.c.version)
        )
        for r in rows:
            out[r.run_id].append(
                LineageDataset(
                    dataset_version_id=r.dataset_version_id,
                    dataset_id=r.dataset_id,
                    dataset_name=r.name,
                    version=r.version,
                    context=r.context,
                    row_count=r.row_count,
                    content_digest=r.content_digest,
                )
            )
    return out


def generate_card(
    conn: Connection,
    name: str,
    number: int,
    built: BuiltVersion,
    run_id: str | None,
    source: str,
    description: str,
) -> dict[str, Any]:
    """The generated half of a new version's card."""
    desc = built.descriptor
    facts = run_facts(conn, run_id) if run_id else None
    data = run_datasets(conn, [run_id])[run_id] if run_id else []
    return {
        "model": name,
        "version": number,
        "flavor": desc.flavor,
        "description": description,
        "source": source,
        "signature": None if desc.signature is None else desc.signature.to_dict(),
        "details": {k: desc.metadata[k] for k in _CARD_META_KEYS if k in desc.metadata},
        "run": facts["run"] if facts else None,
        "params": facts["params"] if facts else {},
        "metrics": facts["metrics"] if facts else {},
        "training_data": [d.model_dump() for d in data],
        "base_model": built.base_model,
        "generated_at": now_ms(),
    }


def _table(rows: list[tuple[str, str]], head: tuple[str, str]) -> list[str]:
    def esc(s: str) -> str:
        return s.replace("|", "\\|").replace("\n", " ")

    return [
        f"| {head[0]} | {head[1]} |",
        "|---|---|",
        *[f"| {esc(a)} | {esc(b)} |" for a, b in rows],
    ]


def render_markdown(gen: Mapping[str, Any], fields: Mapping[str, Any]) -> str:
    """The card as Markdown, from the generated facts and the edited fields."""
    out = [f"# {gen.get('model')} v{gen.get('version')}", ""]
    if fields.get("summary") or gen.get("description"):
        out += [str(fields.get("summary") or gen.get("description")), ""]
    out += [
        "## Model details",
        "",
        f"- Flavor: `{gen.get('flavor')}`",
        f"- Source: `{gen.get('source')}`",
    ]
    for k, v in (gen.get("details") or {}).items():
        out.append(f"- {k.replace('_', ' ').capitalize()}: `{v}`")
    if gen.get("base_model"):
        b = gen["base_model"]
        out.append(f"- Base model: `models:/{b['name']}/{b['version']}`")
    if fields.get("owners"):
        out.append(f"- Owners: {', '.join(fields['owners'])}")
    if fields.get("license"):
        out.append(f"- License: {fields['license']}")
    out.append("")
    for key, title in (
        ("intended_use", "Intended use"),
        ("limitations", "Limitations"),
        ("ethical_considerations", "Ethical considerations"),
    ):
        if fields.get(key):
            out += [f"## {title}", "", str(fields[key]), ""]
    out += ["## Training data", ""]
    data = gen.get("training_data") or []
    if data:
        out += _table(
            [
                (
                    f"{d.get('dataset_name') or d['dataset_version_id']} v{d.get('version')}",
                    f"{d.get('context')}, {d.get('row_count')} rows",
                )
                for d in data
            ],
            ("Dataset version", "Use"),
        )
    else:
        out.append("No dataset versions were recorded for the source run.")
    out.append("")
    run = gen.get("run")
    if run:
        out += [
            "## Training run",
            "",
            f"Run `{run['id']}` ({run.get('name')}) in experiment "
            f"`{run.get('experiment')}`, status {run.get('status')}.",
            "",
        ]
    if gen.get("params"):
        out += [
            "### Parameters",
            "",
            *_table(sorted(gen["params"].items()), ("Param", "Value")),
            "",
        ]
    out += ["## Evaluation", ""]
    if gen.get("metrics"):
        out += _table(
            [(k, "NaN" if v is None else f"{v:.6g}") for k, v in sorted(gen["metrics"].items())],
            ("Metric", "Value"),
        )
        out.append("")
    if fields.get("evaluation_notes"):
        out += [str(fields["evaluation_notes"]), ""]
    if not gen.get("metrics") and not fields.get("evaluation_notes"):
        out += ["No metrics were recorded for the source run.", ""]
    sig = gen.get("signature")
    if sig:
        out += [
            "## Signature",
            "",
            "Inputs: " + ", ".join(f"`{c['name']}` ({c['type']})" for c in sig.get("inputs", [])),
            "",
            "Outputs: " + ", ".join(f"`{c['name']}` ({c['type']})" for c in sig.get("outputs", [])),
            "",
        ]
    for k, v in (fields.get("extra") or {}).items():
        out += [f"## {k}", "", str(v), ""]
    return "\n".join(out).rstrip() + "\n"


class CardMixin:
    """Card and lineage methods of ``RegistryService`` (kept apart for size)."""

    db: Any
    _model_row: Any
    _version_row: Any
    _actor: Any

    def _card_entity(self, name: str, v: Any) -> ModelCard:
        card = v.card_json or {}
        gen = card.get("generated") or {}
        fields = card.get("fields") or {}
        custom = card.get("markdown")
        return ModelCard(
            name=name,
            version=v.version,
            generated=gen,
            fields=fields,
            markdown=custom if custom else render_markdown(gen, fields),
            custom_markdown=bool(custom),
            updated_at=card.get("updated_at") or v.created_at,
            updated_by=card.get("updated_by") or v.created_by,
        )

    def get_card(self, name: str, version: int | str) -> ModelCard:
        with self.db.read() as conn:
            m = self._model_row(conn, name)
            return self._card_entity(m.name, self._version_row(conn, m, version))

    def update_card(
        self,
        name: str,
        version: int | str,
        *,
        fields: CardFields | Mapping[str, Any] | None = None,
        markdown: str | None = None,
        regenerate: bool = False,
        actor: str | None = None,
    ) -> ModelCard:
        """Edit a card: merge ``fields`` (a None value clears one), set ``markdown``
        (an empty string returns to the rendered card), or ``regenerate`` the
        facts from the source run's current params, metrics and datasets."""
        if fields is not None and not isinstance(fields, CardFields):
            if not isinstance(fields, Mapping):
                raise InvalidArgument("card fields must be an object")
            try:
                fields = CardFields.model_validate(dict(fields))
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(x) for x in first.get("loc", ())) or "fields"
                raise InvalidArgument(
                    f"invalid card field {where}: {first.get('msg')}",
                    details={"field": where, "allowed": sorted(CardFields.model_fields)},
                ) from None
        if markdown is not None and (not isinstance(markdown, str) or len(markdown) > MAX_MARKDOWN):
            raise InvalidArgument(
                f"card markdown must be a string of at most {MAX_MARKDOWN} characters"
            )
        who = self._actor(actor)
        with self.db.write() as conn:
            m = self._model_row(conn, name)
            v = self._version_row(conn, m, version)
            card = dict(v.card_json or {})
            changed: list[str] = []
            if fields is not None:
                cur = dict(card.get("fields") or {})
                for k in fields.model_fields_set:
                    val = getattr(fields, k)
                    if val is None:
                        cur.pop(k, None)
                    else:
                        cur[k] = val
                    changed.append(k)
                card["fields"] = cur
            if markdown is not None:
                card["markdown"] = markdown or None
                changed.append("markdown")
            if regenerate:
                gen = dict(card.get("generated") or {})
                desc = ModelDescriptor(
                    v.flavor, Signature.from_dict(v.signature_json), v.metadata_json or {}
                )
                built = BuiltVersion({}, desc, v.base_version_id, gen.get("base_model"))
                card["generated"] = generate_card(
                    conn, m.name, v.version, built, v.source_run_id, v.source, v.description
                )
                changed.append("generated")
            if not changed:
                return self._card_entity(m.name, v)
            card["updated_at"], card["updated_by"] = now_ms(), who
            conn.execute(
                model_versions.update().where(model_versions.c.id == v.id).values(card_json=card)
            )
            record_event(
                conn,
                m.id,
                m.name,
                "card_regenerated" if changed == ["generated"] else "card_edited",
                who,
                {"changed": changed},
                version_id=v.id,
                version=v.version,
            )
        return self.get_card(name, version)

    def version_lineage(self, name: str, version: int | str) -> VersionLineage:
        """Upstream: model version -> run -> dataset versions (and an adapter's base)."""
        with self.db.read() as conn:
            m = self._model_row(conn, name)
            v = self._version_row(conn, m, version)
            me = LineageModelVersion(
                name=m.name,
                version=v.version,
                version_id=v.id,
                aliases=_aliases(conn, [v.id]).get(v.id, []),
            )
            run = None
            data: list[LineageDataset] = []
            if v.source_run_id:
                facts = run_facts(conn, v.source_run_id)
                data = run_datasets(conn, [v.source_run_id])[v.source_run_id]
                if facts:
                    r = facts["run"]
                    run = LineageRun(
                        run_id=r["id"],
                        name=r["name"],
                        experiment_id=r["experiment_id"],
                        status=r["status"],
                        datasets=data,
                    )
            base = None
            if v.base_version_id:
                b = conn.execute(
                    sa.select(
                        model_versions.c.id, model_versions.c.version, registered_models.c.name
                    )
                    .join(registered_models, registered_models.c.id == model_versions.c.model_id)
                    .where(model_versions.c.id == v.base_version_id)
                ).first()
                if b is not None:
                    base = LineageModelVersion(name=b.name, version=b.version, version_id=b.id)
            return VersionLineage(
                model=me, source=v.source, run=run, datasets=data, base_model=base
            )

    def dataset_lineage(self, dataset_version_id: str) -> DatasetLineage:
        """Downstream: dataset version -> runs that read it -> model versions they produced."""
        if not isinstance(dataset_version_id, str) or not 0 < len(dataset_version_id) <= 64:
            raise InvalidArgument(f"dataset version id {dataset_version_id!r} is not valid")
        with self.db.read() as conn:
            d = conn.execute(
                sa.select(dataset_versions, datasets.c.name)
                .join(datasets, datasets.c.id == dataset_versions.c.dataset_id)
                .where(dataset_versions.c.id == dataset_version_id)
            ).first()
            reads = list(
                conn.execute(
                    sa.select(
                        run_inputs.c.run_id,
                        run_inputs.c.context,
                        runs.c.name,
                        runs.c.experiment_id,
                        runs.c.status,
                    )
                    .join(runs, runs.c.id == run_inputs.c.run_id)
                    .where(run_inputs.c.dataset_version_id == dataset_version_id)
                    .order_by(runs.c.start_time)
                )
            )
            if d is None and not reads:
                raise NotFound(
                    f"dataset version {dataset_version_id!r} does not exist",
                    details={"dataset_version_id": dataset_version_id},
                )
            me = LineageDataset(
                dataset_version_id=dataset_version_id,
                dataset_id=None if d is None else d.dataset_id,
                dataset_name=None if d is None else d.name,
                version=None if d is None else d.version,
                row_count=None if d is None else d.row_count,
                content_digest=None if d is None else d.content_digest,
            )
            run_ids = list(dict.fromkeys(r.run_id for r in reads))
            produced: dict[str, list[LineageModelVersion]] = {r: [] for r in run_ids}
            rows = []
            for i in range(0, len(run_ids), 500):
                rows += list(
                    conn.execute(
                        sa.select(
                            model_versions.c.id,
                            model_versions.c.version,
                            model_versions.c.source_run_id,
                            registered_models.c.name,
                        )
                        .join(
                            registered_models, registered_models.c.id == model_versions.c.model_id
                        )
                        .where(model_versions.c.source_run_id.in_(run_ids[i : i + 500]))
                        .order_by(registered_models.c.name, model_versions.c.version)
                    )
                )
            al = _aliases(conn, [r.id for r in rows])
            for r in rows:
                produced[r.source_run_id].append(
                    LineageModelVersion(
                        name=r.name, version=r.version, version_id=r.id, aliases=al.get(r.id, [])
                    )
                )
            runs_out = [
                LineageRun(
                    run_id=r.run_id,
                    name=r.name,
                    experiment_id=r.experiment_id,
                    status=r.status,
                    context=r.context,
                    model_versions=produced[r.run_id],
                )
                for r in reads
            ]
            return DatasetLineage(
                dataset=me,
                runs=runs_out,
                model_versions=[mv for r in run_ids for mv in produced[r]],
            )


def _aliases(conn: Connection, version_ids: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for i in range(0, len(version_ids), 500):
        for a in conn.execute(
            sa.select(model_aliases.c.version_id, model_aliases.c.alias)
            .where(model_aliases.c.version_id.in_(version_ids[i : i + 500]))
            .order_by(model_aliases.c.alias)
        ):
            out.setdefault(a.version_id, []).append(a.alias)
    return out
