// Resilience: see DESIGN.md Part B. Filled in by its issue.
