#!/bin/sh
# STAND-IN, NOT THE REAL containerd-rootless.sh. The bundled example CloudRootfs ships tiny placeholders instead of
# the real binaries so that it stays small; a real CloudRootfs carries containerd-rootless.sh v1.5.5 here.
echo "stand-in for containerd-rootless.sh v1.5.5 (cloudrootfs example; nerdctl's rootless launcher)"
