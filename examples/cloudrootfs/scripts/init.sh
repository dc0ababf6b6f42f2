#!/bin/bash
# sealer (v0.8 and older) runs this on every node after copying the rootfs there:
#   init.sh <docker storage dir> <registry domain> <registry port>
# It installs the container runtime, then kubelet and the Kubernetes binaries.
set -euo pipefail

STORAGE=${1:-/var/lib/docker}
REGISTRY_DOMAIN=${2:-sea.hub}
REGISTRY_PORT=${3:-5000}

cd "$(dirname "$0")"
bash ./docker.sh "$STORAGE" "$REGISTRY_DOMAIN" "$REGISTRY_PORT"
bash ./init-kube.sh
