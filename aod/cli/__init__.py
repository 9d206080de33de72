"""The `aod` command line (stdlib only at import time, so it starts fast)."""
