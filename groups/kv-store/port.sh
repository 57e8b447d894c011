# Sourced by both sides (a helper file: not executable, so not a test).
# pairbench gives every run its own free port (PAIRBENCH_PORT), the same on both sides, so
# runs at the same time (-j, --repeat, --param) never collide. SERVER_PORT overrides it.
SERVER_PORT=${SERVER_PORT:-$PAIRBENCH_PORT}
