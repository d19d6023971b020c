"""One pane per pattern; the module name is the pattern's slug."""
