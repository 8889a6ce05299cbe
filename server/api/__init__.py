"""HTTP adapter of the ROBERT API: thin handlers, one error guard around each."""
