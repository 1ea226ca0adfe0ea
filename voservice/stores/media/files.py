"""Frames as content-addressed files (the embedded default).

The bytes live once under ``objects/ab/cd/<sha256>``.  Each stored frame is a
hard link to its object under ``refs/`` whose name is the frame's reference, so
two frames with the same bytes share one object and the file system counts
the references: deleting a frame removes the object only when no other frame
links to it.  Everything is written to a temporary name and renamed into place.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from voservice.stores.media.base import CONTENT_TYPES, MediaError, MediaStore, StoredMedia

_TYPES_BY_EXT = {ext: mime for mime, ext in CONTENT_TYPES.items()}
#: the references put() makes: <24 hex frame id>-<16 hex of the sha256>.<extension>
_EXTENSIONS = "|".join(map(re.escape, _TYPES_BY_EXT))
_REF = re.compile(rf"[0-9a-f]{{24}}-[0-9a-f]{{16}}\.(?:{_EXTENSIONS})")


class FileMediaStore(MediaStore):
    """Frames in a folder."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.root = Path(path)

    def create_schema(self) -> None:
        """Create the folder."""
        (self.root / "objects").mkdir(parents=True, exist_ok=True)
        (self.root / "refs").mkdir(parents=True, exist_ok=True)

    def _ref_path(self, ref: str) -> Path:
        """The file of a reference; KeyError for anything :meth:`put` does not make.

        A reference becomes a file name, so only the exact shape ``put`` writes
        (hex frame id, hex content prefix, known extension) is accepted: no
        separators, dots, NUL bytes or other names can reach the file system.
        """
        if not isinstance(ref, str) or not _REF.fullmatch(ref):
            raise KeyError(ref)
        return self.root / "refs" / ref[:2] / ref

    def _write_atomic(self, target: Path, data: bytes) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put(self, series_key: str, index: int, data: bytes, content_type: str) -> StoredMedia:
        """Store a frame; its reference names series, index, content and type."""
        ext = CONTENT_TYPES.get(content_type)
        if ext is None:
            raise MediaError(f"frame {index} of {series_key}: unsupported type {content_type}")
        sha = hashlib.sha256(data).hexdigest()
        obj = self.root / "objects" / sha[:2] / sha[2:4] / sha
        if not obj.exists():
            self._write_atomic(obj, data)
        frame_id = hashlib.sha256(f"{series_key}\0{index}".encode()).hexdigest()[:24]
        ref = f"{frame_id}-{sha[:16]}.{ext}"
        link = self._ref_path(ref)
        link.parent.mkdir(parents=True, exist_ok=True)
        tmp = link.with_name(f".tmp-{os.getpid()}-{link.name}")
        tmp.unlink(missing_ok=True)
        os.link(obj, tmp)
        os.replace(tmp, link)
        return StoredMedia(ref=ref, md5=hashlib.md5(data).hexdigest(), size=len(data),
                           content_type=content_type)

    def get(self, ref: str) -> tuple[bytes, str]:
        """The bytes and content type of a frame."""
        path = self._ref_path(ref)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise KeyError(ref) from None
        return data, _TYPES_BY_EXT[ref.rsplit(".", 1)[-1]]

    def path(self, ref: str) -> Path:
        """The file of a frame (for sending it with the OS's sendfile)."""
        path = self._ref_path(ref)
        if not path.is_file():
            raise KeyError(ref)
        return path

    def refs(self) -> list[str]:
        """Every stored frame's reference (for consistency checks)."""
        return sorted(p.name for p in (self.root / "refs").glob("*/*") if p.is_file()
                      and not p.name.startswith("."))

    def exists(self, ref: str) -> bool:
        """Is the frame stored?"""
        try:
            return self._ref_path(ref).is_file()
        except KeyError:
            return False

    def delete(self, ref: str) -> None:
        """Remove a frame, and its object when no other frame shares it."""
        try:
            link = self._ref_path(ref)
        except KeyError:
            return
        sha_prefix = ref.rsplit("-", 1)[-1].split(".")[0]
        try:
            inode = link.stat().st_ino
        except FileNotFoundError:
            return
        link.unlink(missing_ok=True)
        folder = self.root / "objects"
        for obj in folder.glob(f"{sha_prefix[:2]}/{sha_prefix[2:4]}/{sha_prefix}*"):
            st = obj.stat()
            if st.st_ino == inode and st.st_nlink == 1:
                obj.unlink(missing_ok=True)
