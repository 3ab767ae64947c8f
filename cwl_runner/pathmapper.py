"""A cwltool PathMapper that maps `s3://` inputs to staging paths without touching them, and
EFS references to their mount paths in the job."""

from __future__ import annotations

import os
from typing import Any, ClassVar

from cwltool.pathmapper import MapperEnt, PathMapper
from schema_salad.ref_resolver import uri_file_path

from .efs import EfsLayout
from .fsaccess import is_efs, is_s3, s3_key_uri, under_mount


class S3PathMapper(PathMapper):
    """Keeps `s3://` locations as the resolved side (used in place by the Batch job), maps EFS
    references to where the job mounts them (never staged), and delegates every other location
    to cwltool's PathMapper. `efs` is set per run (see `for_layout`)."""

    efs: ClassVar[EfsLayout] = EfsLayout()

    @classmethod
    def for_layout(cls, efs: EfsLayout) -> type[S3PathMapper]:
        """A subclass bound to one run's EFS mounts (cwltool instantiates the class itself)."""
        return type("S3PathMapper", (cls,), {"efs": efs})

    def visit(
        self,
        obj: Any,
        stagedir: str,
        basedir: str,
        copy: bool = False,
        staged: bool = False,
    ) -> None:
        """Map one File or Directory (and, for Files, its secondaryFiles)."""
        location = str(obj["location"])
        kind = "Directory" if obj.get("class") == "Directory" else "File"
        if is_efs(location) or under_mount(location, self.efs.mount_paths):
            # Mounted in the job, never copied: not staged, and the target is the mount path.
            if location not in self._pathmap:
                if is_efs(location):
                    target = self.efs.target(location)
                else:
                    target = uri_file_path(location) if location.startswith("file:") else location
                self._pathmap[location] = MapperEnt(location, target, kind, False)
                for sec in obj.get("secondaryFiles", []):
                    self.visit(sec, stagedir, basedir, copy=copy, staged=staged)
            return
        if not is_s3(location):
            super().visit(obj, stagedir, basedir, copy=copy, staged=staged)
            return
        if location in self._pathmap:
            return
        stagedir = str(obj.get("dirname") or stagedir)
        target = os.path.join(stagedir, str(obj["basename"]))
        resolved = s3_key_uri(location)
        if kind == "Directory":
            kind = "WritableDirectory" if copy else "Directory"
            self._pathmap[location] = MapperEnt(resolved, target, kind, staged)
            return
        kind = "WritableFile" if copy else "File"
        self._pathmap[location] = MapperEnt(resolved, target, kind, staged)
        self.visitlisting(
            obj.get("secondaryFiles", []), stagedir, basedir, copy=copy, staged=staged
        )
