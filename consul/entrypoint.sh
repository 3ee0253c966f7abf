#!/bin/bash
# Runs `consul "$@"` and, on SIGTERM or SIGINT, waits CONSUL_STOP_DELAY seconds (default 5) before
# passing the signal on. When Swarm drains a node it stops every task there at once; the node's
# instances deregister from this agent while they drain, so the agent must outlive them by a
# little, or their deregistrations fail and they stay in the catalog until the servers notice the
# node's agent is gone.
set -u
delay=${CONSUL_STOP_DELAY:-5}
[[ $delay =~ ^[0-9]{1,2}$ ]] || delay=5
consul "$@" &
pid=$!
stop() {
  sleep "$delay"
  kill -TERM "$pid" 2>/dev/null
}
trap stop TERM INT
# `wait` returns when a trapped signal arrives: wait again for the agent itself.
while kill -0 "$pid" 2>/dev/null; do
  wait "$pid"
  status=$?
done
exit "${status:-0}"
