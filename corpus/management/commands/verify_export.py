"""verify_export ID_OR_PATH: recompute an export's file hash, row hashes and Merkle root and
check them against its manifest and the audit log; exit non-zero naming the first mismatch."""

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import orjson
from django.core.management.base import BaseCommand, CommandError, CommandParser

from corpus.models import Export
from corpus.services.exports.build import export_storage
from corpus.services.exports.verify import built_event_for, export_verify_file


class Command(BaseCommand):
    help = (
        "Verify an export: by id (its stored file) or by the path of a file. A path is matched "
        "to its export by file name, or checked against --manifest (a manifest, or the JSON of "
        "GET /api/v1/datasets/{slug}/exports/{id}/)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("id_or_path")
        parser.add_argument("--manifest", help="a manifest JSON file to check the file against")

    def handle(self, *args: Any, **options: Any) -> None:
        target: str = options["id_or_path"]
        manifest = self._manifest_file(options["manifest"]) if options["manifest"] else None
        export: Export | None = None
        local_copy = None
        if target.isdigit() and not os.path.exists(target):
            export = Export.objects.filter(pk=int(target)).first()
            if export is None:
                raise CommandError(f"no export {target}")
            if export.status != Export.Status.READY:
                raise CommandError(f"export {target} is {export.status}, not ready")
            path, local_copy = self._stored_path(export)
        else:
            path = target
            if not os.path.isfile(path):
                raise CommandError(f"no such file: {path}")
            if manifest is None:
                export = Export.objects.filter(
                    status=Export.Status.READY, file__endswith=os.path.basename(path)
                ).first()
                if export is None:
                    raise CommandError(
                        f"no ready export has a file named {os.path.basename(path)}; "
                        "pass --manifest"
                    )
        if manifest is None:
            assert export is not None
            manifest = export.manifest
        export_id = manifest.get("export_id")
        if export is None and isinstance(export_id, int):
            export = Export.objects.filter(pk=export_id).first()
        try:
            result = export_verify_file(
                path=path,
                manifest=manifest,
                built_event=built_event_for(export.pk) if export else None,
                check_audit=export is not None,
            )
        finally:
            if local_copy:
                os.unlink(local_copy)
        label = f"export {export_id}" if export_id is not None else path
        if not result.ok:
            raise CommandError(f"{label}: {result.problem}")
        audit = "and the audit log" if export is not None else "(no audit record to check)"
        self.stdout.write(
            f"{label}: OK, {result.rows} rows; sha256, row hashes and Merkle root match the "
            f"manifest {audit}"
        )

    def _manifest_file(self, name: str) -> dict[str, Any]:
        try:
            data = orjson.loads(Path(name).read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise CommandError(f"cannot read the manifest {name}: {exc}") from None
        if isinstance(data, dict) and isinstance(data.get("manifest"), dict):
            data = data["manifest"]
        if not isinstance(data, dict) or "merkle" not in data:
            raise CommandError(f"{name} is not an export manifest")
        return data

    def _stored_path(self, export: Export) -> tuple[str, str | None]:
        """A local path of the stored file; remote storages are copied to a temporary file."""
        storage = export_storage()
        if not storage.exists(export.file):
            raise CommandError(f"export {export.pk}: its stored file {export.file} is missing")
        try:
            return storage.path(export.file), None
        except NotImplementedError:
            pass
        fd, tmp = tempfile.mkstemp(suffix=f".{export.format}")
        with os.fdopen(fd, "wb") as out, storage.open(export.file, "rb") as src:
            shutil.copyfileobj(src, out, 1 << 20)
        return tmp, tmp
