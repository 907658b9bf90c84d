"""Pull sync: provider streams into local tables, page by page, resumable."""
