#!/bin/bash
# Starts the cluster's local registry on a registry host.
#   init-registry.sh <port> <rootfs>/registry <domain>
# It loads images/registry.tar and serves <rootfs>/registry (distribution's storage layout).
set -euo pipefail

PORT=${1:-5000}
DATA=${2:-/var/lib/sealer/data/my-cluster/rootfs/registry}
DOMAIN=${3:-sea.hub}
ROOTFS="$(cd "$(dirname "$0")/.." && pwd)"
NAME=sealer-registry
IMAGE=registry:2.7.1

if docker inspect "$NAME" >/dev/null 2>&1; then
  echo "$NAME is already running"
  exit 0
fi

for archive in "$ROOTFS"/images/*.tar; do
  [ -e "$archive" ] || continue
  docker load -q -i "$archive"
done

docker run -d --restart=always --name "$NAME" --net=host \
  -e REGISTRY_HTTP_ADDR="0.0.0.0:$PORT" \
  -v "$DATA:/var/lib/registry" \
  "$IMAGE"

echo "registry $DOMAIN:$PORT serves $DATA"
