"""orders package; see DESIGN.md."""
