"""Content-addressed snapshots: capture paths before a change, restore them after.

Blobs live in a :class:`BlobStore` (sha256, one file per distinct content);
the manifest (a list of :class:`ManifestEntry`) is plain data that the caller
persists (the engine stores it in the database). Typical use::

    blobs = BlobStore(workspace / "blobs")
    entries = capture(target, plan_paths, blobs)      # before applying
    ...
    report = restore(target, entries, blobs)          # rollback, all or `only=`
    assert verify_restored(target, entries) == []     # proof by re-hashing
"""

from jupiter.snapshots.blobs import BlobStore
from jupiter.snapshots.capture import StreamingTarget, capture, capture_tree
from jupiter.snapshots.manifest import ManifestEntry
from jupiter.snapshots.restore import RestoreReport, check_blobs, restore, verify_restored

__all__ = [
    "BlobStore",
    "ManifestEntry",
    "RestoreReport",
    "StreamingTarget",
    "capture",
    "capture_tree",
    "check_blobs",
    "restore",
    "verify_restored",
]
