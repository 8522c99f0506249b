"""Developer tooling that is not part of the runtime package (not shipped in the wheel)."""
