#!/bin/bash
# Docker healthcheck of an HTTP service (the MCP router, the load balancer): exit 0 when
# `GET http://127.0.0.1:<port><path>` answers 200 and, when SERVICE_ID and CONSUL_HTTP_ADDR are set
# and Consul answers, that instance is passing in Consul.
#
#   http_health_probe.sh <port> <path>
#
# Bash with /dev/tcp rather than `deno run`: a check runs every few seconds in every container,
# and starting a Deno process for each costs a noticeable share of a small machine's CPU.
# Consul being unreachable does not fail the check (Swarm would restart healthy services during a
# Consul outage), as in health_probe.ts. Each answer may take up to 4 s: on a busy machine a healthy
# router can be slow to answer, and Swarm restarting it would make things worse (the healthcheck's
# own timeout is longer).
set -u

if [[ $# -ne 2 || ! $1 =~ ^[0-9]+$ || $2 != /* ]]; then
  echo "error: usage: http_health_probe.sh <port> <path>, got \"$*\"" >&2
  exit 2
fi

# Prints the HTTP status code of GET <path> on <host>:<port>, or nothing.
http_status() {
  local host=$1 port=$2 path=$3 line
  exec 3<>"/dev/tcp/$host/$port" || return 1
  printf 'GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n' "$path" "$host" >&3
  IFS=' ' read -r -t 4 line <&3 || true
  exec 3<&- 3>&-
  line=${line#* }
  echo "${line%% *}"
}

status=$(http_status 127.0.0.1 "$1" "$2" 2>/dev/null)
if [[ $status != 200 ]]; then
  echo "unhealthy: GET $2 on port $1 answered \"${status:-nothing}\"" >&2
  exit 1
fi

if [[ -n ${SERVICE_ID:-} && -n ${CONSUL_HTTP_ADDR:-} ]]; then
  address=${CONSUL_HTTP_ADDR#*://}
  address=${address%%/*}
  host=${address%:*}
  port=8500
  [[ $address == *:* ]] && port=${address##*:}
  consul=$(http_status "$host" "$port" "/v1/agent/health/service/id/$SERVICE_ID" 2>/dev/null)
  case $consul in
    200 | "") ;;
    429) echo "unhealthy: \"$SERVICE_ID\" is warning in Consul" >&2; exit 1 ;;
    503) echo "unhealthy: \"$SERVICE_ID\" is critical in Consul" >&2; exit 1 ;;
    404) echo "unhealthy: \"$SERVICE_ID\" is missing from Consul" >&2; exit 1 ;;
  esac
fi
echo healthy
