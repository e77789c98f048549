"""live package; see DESIGN.md."""
