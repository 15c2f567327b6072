"""The one writer of generated/: tree (write, compare, the drift text), stamp (the check's fast path),
compiled (reading an up-to-date tree back for diff and apply), ownership (what obsgen wrote), files (safe
writes that keep owners and modes)."""
