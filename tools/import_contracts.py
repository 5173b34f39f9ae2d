"""A custom import-linter contract: rooms use each other only through public names.

``private_modules``: an import from one top-level package of opsloop into
another may name only the other package itself or a public module of it (no
path segment starting with ``_``). A package's own modules are free to use its
private modules, and the root's own modules (``opsloop._version``) belong to
the bottom layer that everyone may use.
"""

from __future__ import annotations

from importlinter import Contract, ContractCheck, fields, output


class PrivateModulesContract(Contract):
    """No module reaches into another top-level package's private modules."""

    containers = fields.ListField(subfield=fields.StringField())

    def check(self, graph, verbose: bool) -> ContractCheck:  # type: ignore[no-untyped-def]
        bad: list[tuple[str, str, list[int]]] = []
        for container in self.containers:  # type: ignore[attr-defined]
            prefix = f"{container}."
            for importer in sorted(graph.modules):
                if not importer.startswith(prefix):
                    continue
                for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                    if not imported.startswith(prefix):
                        continue
                    a = importer[len(prefix) :].split(".")
                    b = imported[len(prefix) :].split(".")
                    if a[0] == b[0]:
                        continue  # inside one package: private modules are its own business
                    if len(b) == 1:
                        continue  # a module at the root (opsloop._version) is the shared bottom
                    if any(part.startswith("_") and part != "__init__" for part in b):
                        details = graph.get_import_details(importer=importer, imported=imported)
                        bad.append((importer, imported, [d["line_number"] for d in details]))
        return ContractCheck(kept=not bad, metadata={"bad": bad})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for importer, imported, lines in check.metadata["bad"]:
            where = ", ".join(f"l.{n}" for n in lines)
            output.print_error(f"{importer} -> {imported} ({where}): a private module of another package")
            output.new_line()
