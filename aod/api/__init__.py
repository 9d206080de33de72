"""The HTTP API (aiohttp), served on the Unix socket and on loopback TCP."""
