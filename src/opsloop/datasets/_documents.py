"""Document collections: text and Markdown files, stored as they are, plus chunks.

A collection version stores each original file as a blob, a ``documents``
Parquet table (one row per file: path, title, text, sizes, digest) as its
data, and a ``chunks`` Parquet table for retrieval (chunk id, source path,
offsets into the document text, heading path, text, sizes). Its content
digest covers the documents table and the chunking settings, so the same
files chunked the same way give the same version.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opsloop.datasets._arrow import require_pyarrow
from opsloop.datasets._build import (
    BuiltVersion,
    LocalBlob,
    ParquetSink,
    Progress,
    make_workdir,
    sha256_file,
)
from opsloop.datasets._chunking import MARKDOWN_SUFFIXES, ChunkingConfig, chunk_id, chunk_text
from opsloop.datasets._digest import ContentHasher
from opsloop.datasets._profile import Profiler, _Moments
from opsloop.errors import InvalidArgument

if TYPE_CHECKING:
    import pyarrow as pa

TEXT_SUFFIXES = (".txt", ".text", ".rst", *MARKDOWN_SUFFIXES)
_DOCS_PER_GROUP = 256


def _doc_schema() -> pa.Schema:
    pa = require_pyarrow()
    return pa.schema(
        [
            ("doc_id", pa.string()),
            ("path", pa.string()),
            ("title", pa.string()),
            ("text", pa.string()),
            ("n_chars", pa.int64()),
            ("n_chunks", pa.int64()),
            ("digest", pa.string()),
        ]
    )


def chunk_schema() -> pa.Schema:
    pa = require_pyarrow()
    return pa.schema(
        [
            ("chunk_id", pa.string()),
            ("doc_id", pa.string()),
            ("source", pa.string()),
            ("chunk_index", pa.int64()),
            ("start", pa.int64()),
            ("end", pa.int64()),
            ("heading_path", pa.list_(pa.string())),
            ("text", pa.string()),
            ("n_chars", pa.int64()),
            ("n_tokens", pa.int64()),
        ]
    )


def collect_files(data: Any) -> list[tuple[str, Path]]:
    """``(relative posix path, file)`` for a folder (its text and Markdown files, recursively)
    or a list of files and folders, sorted by relative path."""
    items = [data] if isinstance(data, str | os.PathLike) else list(data)
    if not items:
        raise InvalidArgument("no documents given")
    found: list[Path] = []
    roots: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            files = [f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in TEXT_SUFFIXES]
            found.extend(files)
            roots.append(p)
        elif p.is_file():
            found.append(p)
            roots.append(p.parent)
        else:
            raise InvalidArgument(f"{p} is neither a file nor a folder", details={"path": str(p)})
    if not found:
        raise InvalidArgument(
            f"no text or Markdown files ({', '.join(TEXT_SUFFIXES)}) in {', '.join(map(str, items))}"
        )
    base = Path(os.path.commonpath([str(r.resolve()) for r in roots]))
    out = {f.resolve().relative_to(base).as_posix(): f for f in found}
    return sorted(out.items())


def _title(rel: str, text: str, markdown: bool) -> str:
    if markdown:
        for line in text.splitlines()[:50]:
            s = line.strip()
            if s.startswith("#"):
                return s.lstrip("#").strip() or Path(rel).stem
    return Path(rel).stem


def build_documents(
    data: Any,
    cfg: ChunkingConfig,
    *,
    progress: Progress | None = None,
    work_parent: Path | None = None,
) -> BuiltVersion:
    """Read, chunk and describe a document collection (see the module docstring)."""
    pa = require_pyarrow()
    files = collect_files(data)
    workdir = make_workdir(work_parent)
    try:
        schema = _doc_schema()
        docs_path, chunks_path = workdir / "documents.parquet", workdir / "chunks.parquet"
        docs = ParquetSink(docs_path, schema)
        chunks = ParquetSink(chunks_path, chunk_schema())
        hasher = ContentHasher(schema, extra={"kind": "documents", "chunking": cfg.describe()})
        profiler = Profiler(schema)
        chunk_chars, chunk_tokens = _Moments(), _Moments()
        n_chunks = 0
        blobs: list[LocalBlob] = []
        doc_rows: list[dict[str, Any]] = []
        total = sum(f.stat().st_size for _, f in files)
        done = 0
        try:
            for i, (rel, f) in enumerate(files):
                raw = f.read_bytes()
                done += len(raw)
                try:
                    text = raw.decode("utf-8-sig")
                except UnicodeDecodeError as exc:
                    raise InvalidArgument(
                        f"{rel} is not UTF-8 text ({exc.reason} at byte {exc.start})",
                        details={"path": rel},
                    ) from None
                digest = "sha256:" + hashlib.sha256(raw).hexdigest()
                blobs.append(LocalBlob("file", f, digest, len(raw), name=rel))
                markdown = (
                    cfg.markdown
                    if cfg.markdown is not None
                    else (Path(rel).suffix.lower() in MARKDOWN_SUFFIXES)
                )
                doc_id = hashlib.sha256(rel.encode()).hexdigest()[:16]
                pieces = chunk_text(text, cfg, markdown=markdown)
                if pieces:
                    chunks.write(_chunk_batch(rel, doc_id, pieces))
                    import numpy as np

                    chunk_chars.add(np.array([c.end - c.start for c in pieces], dtype=np.float64))
                    chunk_tokens.add(np.array([c.n_tokens for c in pieces], dtype=np.float64))
                n_chunks += len(pieces)
                doc_rows.append(
                    {
                        "doc_id": doc_id,
                        "path": rel,
                        "title": _title(rel, text, markdown),
                        "text": text,
                        "n_chars": len(text),
                        "n_chunks": len(pieces),
                        "digest": digest,
                    }
                )
                if len(doc_rows) >= _DOCS_PER_GROUP or i == len(files) - 1:
                    batch = pa.RecordBatch.from_pylist(doc_rows, schema=schema)
                    hasher.update(batch)
                    profiler.update(batch)
                    docs.write(batch)
                    doc_rows = []
                if progress is not None:
                    progress(i + 1, done, total)
        finally:
            docs.close()
            chunks.close()
        if n_chunks == 0:
            raise InvalidArgument("the documents hold no text: nothing to store")
        profile = profiler.result()
        profile["chunks"] = {
            "count": n_chunks,
            "chars": chunk_chars.result(),
            "tokens": chunk_tokens.result(),
        }
        d_digest, d_size = sha256_file(docs_path)
        c_digest, c_size = sha256_file(chunks_path)
        return BuiltVersion(
            kind="documents",
            format="documents",
            content_digest=hasher.digest(),
            row_count=len(files),
            schema=[{"name": f.name, "type": str(f.type), "nullable": False} for f in schema],
            profile=profile,
            sample=profiler.sample(),
            validation=None,
            status="valid",
            blobs=[
                LocalBlob("data", docs_path, d_digest, d_size),
                LocalBlob("chunks", chunks_path, c_digest, c_size),
                *blobs,
            ],
            workdir=workdir,
            storage_extra={"chunking": cfg.describe(), "chunk_count": n_chunks},
        )
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise


def _chunk_batch(rel: str, doc_id: str, pieces: Sequence[Any]) -> pa.RecordBatch:
    pa = require_pyarrow()
    return pa.RecordBatch.from_pylist(
        [
            {
                "chunk_id": chunk_id(rel, c.start, c.end, c.text),
                "doc_id": doc_id,
                "source": rel,
                "chunk_index": k,
                "start": c.start,
                "end": c.end,
                "heading_path": list(c.heading_path),
                "text": c.text,
                "n_chars": c.end - c.start,
                "n_tokens": c.n_tokens,
            }
            for k, c in enumerate(pieces)
        ],
        schema=chunk_schema(),
    )
