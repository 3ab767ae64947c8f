"""A cwltool PathMapper that maps `s3://` inputs to staging paths without touching them."""

from __future__ import annotations

import os
from typing import Any

from cwltool.pathmapper import MapperEnt, PathMapper

from .fsaccess import efs_target, is_efs, is_s3


class S3PathMapper(PathMapper):
    """Keeps `s3://` locations as the resolved side (used in place by the Batch job) and
    delegates every other location to cwltool's PathMapper."""

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
        if is_efs(location):
            # Mounted in the job, never copied: not staged, and the target is the mount path.
            if location not in self._pathmap:
                kind = "Directory" if obj.get("class") == "Directory" else "File"
                self._pathmap[location] = MapperEnt(location, efs_target(location), kind, False)
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
        if obj.get("class") == "Directory":
            kind = "WritableDirectory" if copy else "Directory"
            self._pathmap[location] = MapperEnt(location, target, kind, staged)
            return
        kind = "WritableFile" if copy else "File"
        self._pathmap[location] = MapperEnt(location, target, kind, staged)
        self.visitlisting(
            obj.get("secondaryFiles", []), stagedir, basedir, copy=copy, staged=staged
        )
