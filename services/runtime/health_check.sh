#!/bin/bash
# Docker healthcheck of every platform container: exit 0 when the local port answers and, when
# SERVICE_ID and CONSUL_HTTP_ADDR are set and Consul answers, that instance is passing in Consul.
#
#   health_check.sh <port> <path>   HTTP services (the MCP router, the load balancer):
#                                   `GET http://127.0.0.1:<port><path>` must answer 200
#   health_check.sh <port>          gRPC services: the port must accept a connection; Consul's own
#                                   gRPC check (grpc.health.v1, every CHECK_INTERVAL) says SERVING
#
# Bash with /dev/tcp, not a `deno run`: starting Deno costs about 270 ms of CPU, and every 3 s in a
# container limited to half a CPU that starved the service itself for a few hundred ms (echo calls
# of 1 ms took up to 480 ms). Consul being unreachable does not fail the check (Swarm would
# restart healthy services during a Consul outage). Each answer may take up to 4 s: on a busy
# machine a healthy service can be slow to answer, and Swarm restarting it would make things worse
# (the healthcheck's own timeout is longer). With ACLs on, the Consul question carries the
# instance's token (CONSUL_HTTP_TOKEN, else the file CONSUL_HTTP_TOKEN_FILE names, as the program
# itself reads it); a token Consul refuses fails the check, naming the cause.
set -u

if [[ $# -lt 1 || $# -gt 2 || ! $1 =~ ^[0-9]+$ || ($# -eq 2 && $2 != /*) ]]; then
  echo "error: usage: health_check.sh <port> [<path>], got \"$*\"" >&2
  exit 2
fi

# Prints the HTTP status code of GET <path> on <host>:<port>, or nothing; a 4th argument is sent
# as X-Consul-Token.
http_status() {
  local host=$1 port=$2 path=$3 token=${4:-} line header=""
  [[ -n $token ]] && header="X-Consul-Token: $token"$'\r\n'
  exec 3<>"/dev/tcp/$host/$port" || return 1
  printf 'GET %s HTTP/1.0\r\nHost: %s\r\n%sConnection: close\r\n\r\n' "$path" "$host" "$header" >&3
  IFS=' ' read -r -t 4 line <&3 || true
  exec 3<&- 3>&-
  line=${line#* }
  echo "${line%% *}"
}

# Prints the address of Consul node <node>'s agent (GET /v1/catalog/node/<node>), or nothing.
node_agent() {
  local host=$1 port=$2 node=$3 token=${4:-} header="" body=""
  [[ -n $token ]] && header="X-Consul-Token: $token"$'\r\n'
  exec 3<>"/dev/tcp/$host/$port" || return 1
  printf 'GET /v1/catalog/node/%s HTTP/1.0\r\nHost: %s\r\n%sConnection: close\r\n\r\n' \
    "$node" "$host" "$header" >&3
  IFS= read -r -t 4 -d '' body <&3 || true
  exec 3<&- 3>&-
  # The node object comes first: {"Node":{"ID":…,"Node":…,"Address":"10.0.1.7",…
  [[ $body =~ \"Node\":\{[^}]*\"Address\":\"([0-9]{1,3}(\.[0-9]{1,3}){3})\" ]] &&
    echo "${BASH_REMATCH[1]}"
}

if [[ $# -eq 2 ]]; then
  status=$(http_status 127.0.0.1 "$1" "$2" 2>/dev/null)
  if [[ $status != 200 ]]; then
    echo "unhealthy: GET $2 on port $1 answered \"${status:-nothing}\"" >&2
    exit 1
  fi
elif ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
  echo "unhealthy: nothing accepts connections on port $1" >&2
  exit 1
fi

if [[ -n ${SERVICE_ID:-} && -n ${CONSUL_HTTP_ADDR:-} ]]; then
  address=${CONSUL_HTTP_ADDR#*://}
  address=${address%%/*}
  host=${address%:*}
  port=8500
  [[ $address == *:* ]] && port=${address##*:}
  token=${CONSUL_HTTP_TOKEN:-}
  if [[ -z $token && -n ${CONSUL_HTTP_TOKEN_FILE:-} && -r $CONSUL_HTTP_TOKEN_FILE ]]; then
    read -r token <"$CONSUL_HTTP_TOKEN_FILE" || true
  fi
  # A token is one printable word: anything else must not reach the request line.
  [[ $token =~ ^[[:graph:]]+$ ]] || token=""
  # In the stack, an instance is registered with the agent of its own node (CONSUL_NODE), and only
  # that agent knows it by ID: ask it, found the way the program found it.
  if [[ ${CONSUL_NODE:-} =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$ ]]; then
    agent=$(node_agent "$host" "$port" "$CONSUL_NODE" "$token" 2>/dev/null)
    [[ -n $agent ]] && host=$agent
  fi
  consul=$(http_status "$host" "$port" "/v1/agent/health/service/id/$SERVICE_ID" "$token" 2>/dev/null)
  case $consul in
    403) echo "unhealthy: Consul refused the token for \"$SERVICE_ID\" (ACLs)" >&2; exit 1 ;;
    200 | "") ;;
    429) echo "unhealthy: \"$SERVICE_ID\" is warning in Consul" >&2; exit 1 ;;
    503) echo "unhealthy: \"$SERVICE_ID\" is critical in Consul" >&2; exit 1 ;;
    404) echo "unhealthy: \"$SERVICE_ID\" is missing from Consul" >&2; exit 1 ;;
  esac
fi
echo healthy
