"""Where an agent runs: tmux panes and plain processes (probing, spawning, typing, ending)."""
