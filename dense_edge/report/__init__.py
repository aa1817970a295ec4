"""Reports: report.json (versioned schema), report.md (tables), report.html (plots), compare."""
