#!/bin/bash
# Installs Docker from the rootfs: binaries from cri/, docker.service and daemon.json from etc/.
#   docker.sh [storage dir] [registry domain] [registry port]
# sealer v0.9+ calls it as scripts/<container runtime>.sh (label container-runtime-type=docker).
set -euo pipefail

STORAGE=${1:-/var/lib/docker}
REGISTRY_DOMAIN=${2:-sea.hub}
REGISTRY_PORT=${3:-5000}
ROOTFS="$(cd "$(dirname "$0")/.." && pwd)"

if command -v dockerd >/dev/null 2>&1 && systemctl is-active --quiet docker; then
  echo "docker is already running; leaving it alone"
  exit 0
fi

install -m 0755 "$ROOTFS"/cri/* /usr/bin/
install -D -m 0644 "$ROOTFS/etc/docker.service" /etc/systemd/system/docker.service
mkdir -p /etc/docker "$STORAGE"
# Point the data root at the requested storage directory.
sed "s#\"data-root\": \"[^\"]*\"#\"data-root\": \"$STORAGE\"#" "$ROOTFS/etc/daemon.json" >/etc/docker/daemon.json

if ! grep -q "$REGISTRY_DOMAIN" /etc/hosts; then
  echo "127.0.0.1 $REGISTRY_DOMAIN" >>/etc/hosts
fi
echo "registry mirror: http://$REGISTRY_DOMAIN:$REGISTRY_PORT"

systemctl daemon-reload
systemctl enable docker
systemctl restart docker
