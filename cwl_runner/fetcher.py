"""schema-salad's document fetcher, told that `s3://` and `efs://` locations are data.

cwltool resolves every location in a job through schema-salad, which warns "URI prefix 's3' of
... not recognized" for a scheme its fetcher does not list. These locations name input data, which
the runner's file-system access checks and stages (S3) or mounts (EFS); they are never documents
to load, so the fetcher lists them and refuses to read a CWL document from them.
"""

from __future__ import annotations

import urllib.parse

from schema_salad.exceptions import ValidationException
from schema_salad.fetcher import DefaultFetcher

DATA_SCHEMES = ("s3", "efs")


class StorageFetcher(DefaultFetcher):
    """DefaultFetcher that knows s3:// and efs:// as data locations."""

    schemes = [*DefaultFetcher.schemes, *DATA_SCHEMES]

    def fetch_text(self, url: str, content_types: list[str] | None = None) -> str:
        """A document's text; a CWL document in S3 or on EFS is refused with the fix."""
        if urllib.parse.urlsplit(url).scheme in DATA_SCHEMES:
            raise ValidationException(
                f"cannot load a CWL document from {url}: copy it to a local path (or http/https) "
                "and pass that; s3:// and efs:// are for input data."
            )
        return super().fetch_text(url, content_types)

    def check_exists(self, url: str) -> bool:
        """Data in S3 or on EFS is checked where it is used (preflight and staging), not here."""
        if urllib.parse.urlsplit(url).scheme in DATA_SCHEMES:
            return True
        return super().check_exists(url)
