# Sourced by both sides (a helper file: not executable, so not a test).
# Each pair gets its own port, derived from the pair's name, so pairs can run in parallel.
SERVER_PORT=${SERVER_PORT:-$(( 20000 + $(printf '%s' "$PAIRBENCH_PAIR" | cksum | cut -d' ' -f1) % 20000 ))}
