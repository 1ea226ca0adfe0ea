"""The revisions of the metadata schema, oldest first (``down_revision`` links them)."""
