#!/bin/bash
# Runs `consul "$@"` with the stack's secrets, and on SIGTERM or SIGINT waits CONSUL_STOP_DELAY
# seconds (default 5) before passing the signal on.
#
# Secrets: read from files (Docker secrets), never from the command line or the environment, both
# of which show in `docker service inspect` and `ps`. For `consul agent`, each secret present under
# CONSUL_SECRETS_DIR (default /run/secrets) is checked and written into a config file only the
# agent's user can read (CONSUL_SECRET_CONFIG, default /consul/run/secret-config.json: a tmpfs in
# the stack), which the agent gets with `-config-file`:
#   consul-gossip-key            -> encrypt (gossip encryption, one key per stack)
#   consul-agent-token           -> acl.tokens.agent (the agent's own node registration)
#   consul-agent-recovery-token  -> acl.tokens.agent_master (the local agent API, valid before any
#                                   server answers: the Docker healthcheck uses it)
#   consul-management-token      -> acl.tokens.master (servers only: Consul makes it on election)
# Any other command (`consul version`, `agent -dev` without secrets) runs as given.
#
# Stopping: when Swarm drains a node it stops every task there at once; the node's instances
# deregister from this agent while they drain, so the agent must outlive them by a little, or
# their deregistrations fail and they stay in the catalog until the servers notice the node's
# agent is gone.
set -u

secrets=${CONSUL_SECRETS_DIR:-/run/secrets}
config=${CONSUL_SECRET_CONFIG:-/consul/run/secret-config.json}
uuid='[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'

# Prints the secret in file $1 if it matches $2 in full: only shapes Consul accepts, so a value can
# never break out of its JSON string.
read_secret() {
  local value
  value=$(tr -d '\r\n' <"$secrets/$1") || return 1
  [[ $value =~ ^$2$ ]] || return 1
  printf '%s' "$value"
}

refuse() {
  echo "error: the secret \"$1\" does not hold a valid value" >&2
  exit 2
}

if [[ ${1:-} == agent ]]; then
  # A data volume made while the agent ran as root keeps root's files: say how to hand it over.
  for arg in "$@"; do
    [[ $arg == -data-dir=* ]] || continue
    data=${arg#-data-dir=}
    if [[ -d $data && ! -w $data ]] || [[ -n $(find "$data" -maxdepth 2 ! -user "$(id -u)" -print -quit 2>/dev/null) ]]; then
      echo "error: the data folder \"$data\" is not owned by uid $(id -u) (made by an agent that ran as" \
        "root?); hand it over once: docker run --rm --user 0 -v <volume>:$data --entrypoint chown" \
        "<this image> -R $(id -u):$(id -g) $data" >&2
      exit 1
    fi
  done
  fields=()
  tokens=()
  if [[ -f $secrets/consul-gossip-key ]]; then
    key=$(read_secret consul-gossip-key '[A-Za-z0-9+/]{22,43}={0,2}') || refuse consul-gossip-key
    fields+=("\"encrypt\": \"$key\"")
  fi
  for pair in consul-agent-token:agent consul-agent-recovery-token:agent_master \
    consul-management-token:master; do
    file=${pair%%:*}
    [[ -f $secrets/$file ]] || continue
    token=$(read_secret "$file" "$uuid") || refuse "$file"
    tokens+=("\"${pair#*:}\": \"$token\"")
  done
  if ((${#tokens[@]} > 0)); then
    joined=$(IFS=,; echo "${tokens[*]}")
    fields+=("\"acl\": {\"tokens\": {$joined}}")
  fi
  if ((${#fields[@]} > 0)); then
    (
      umask 077
      joined=$(IFS=,; echo "${fields[*]}")
      printf '{%s}\n' "$joined" >"$config"
    ) || exit 1
    set -- "$@" "-config-file=$config"
  fi
fi

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
