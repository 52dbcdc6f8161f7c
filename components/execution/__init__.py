"""The execution engine: sends each approved order to a venue once and reports what happened."""
