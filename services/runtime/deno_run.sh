#!/bin/bash
# Entry point of the platform's Deno images: runs `deno run --cached-only --allow-net=<list> "$@"`
# where the list holds only what a platform program talks to:
#   - the entries in DENO_NET_HOSTS (comma-separated `host[:port]` or `unix:<socket path>`;
#     default `consul:8500`);
#   - every address of the container's own networks except the one its default route leaves by
#     (Swarm's overlay: Consul agents, backends, routers; not docker_gwbridge, whose gateway is the
#     Docker host, nor anything beyond it);
#   - 0.0.0.0 and 127.0.0.1, to listen and to reach the container itself.
# Deno takes hosts and IP addresses in --allow-net but no address ranges, and backends are dialled
# at the addresses Consul gives, so the overlay's subnets are spelled out address by address: 254
# for Swarm's default /24. A subnet larger than /20 is refused (4,094 addresses; one argument may
# not exceed 128 KiB). DENO_RUN_ROUTE_TABLE names another route table, for tests.
set -u

hosts=${DENO_NET_HOSTS:-consul:8500}
entry='([A-Za-z0-9.:_-]+|unix:/[A-Za-z0-9._/-]+)'
if [[ ! $hosts =~ ^$entry(,$entry)*$ ]]; then
  echo "error: DENO_NET_HOSTS must be host[:port] or unix:<path> entries separated by commas," \
    "got \"$hosts\"" >&2
  exit 2
fi

# /proc/net/route: addresses are little-endian hex, e.g. 0001000A is 10.0.1.0.
int_of() {
  local hex=$1
  echo $(((0x${hex:6:2} << 24) | (0x${hex:4:2} << 16) | (0x${hex:2:2} << 8) | 0x${hex:0:2}))
}

egress=""
routes=()
while read -r iface destination _ _ _ _ _ mask _; do
  [[ $iface == Iface ]] && continue
  if [[ $destination == 00000000 ]]; then
    egress=$iface
  else
    routes+=("$iface $destination $mask")
  fi
done <"${DENO_RUN_ROUTE_TABLE:-/proc/net/route}"

allowed="0.0.0.0,127.0.0.1,$hosts"
for route in "${routes[@]}"; do
  read -r iface destination mask <<<"$route"
  [[ $iface == "$egress" ]] && continue
  network=$(int_of "$destination")
  netmask=$(int_of "$mask")
  size=$(((~netmask & 0xFFFFFFFF) + 1))
  if ((size > 4096)); then
    echo "error: the network on $iface holds $size addresses; the platform's Deno programs are" \
      "allowed their networks address by address, at most a /20" >&2
    exit 2
  fi
  for ((address = network + 1; address < network + size - 1; address++)); do
    allowed+=",$((address >> 24 & 255)).$((address >> 16 & 255)).$((address >> 8 & 255)).$((address & 255))"
  done
done

exec deno run --cached-only "--allow-net=$allowed" "$@"
