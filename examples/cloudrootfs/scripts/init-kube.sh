#!/bin/bash
# Installs kubelet and the Kubernetes command line tools from bin/ and etc/.
# sealer v0.9+ runs it with RegistryURL exported; older versions via init.sh.
set -euo pipefail

ROOTFS="$(cd "$(dirname "$0")/.." && pwd)"

install -m 0755 "$ROOTFS"/bin/* /usr/bin/
install -m 0755 "$ROOTFS/scripts/kubelet-pre-start.sh" /usr/bin/kubelet-pre-start.sh
install -D -m 0644 "$ROOTFS/etc/kubelet.service" /etc/systemd/system/kubelet.service
install -D -m 0644 "$ROOTFS/etc/10-kubeadm.conf" /etc/systemd/system/kubelet.service.d/10-kubeadm.conf

if [ -n "${RegistryURL:-}" ]; then
  echo "images come from ${RegistryURL}"
fi

systemctl daemon-reload
systemctl enable kubelet
