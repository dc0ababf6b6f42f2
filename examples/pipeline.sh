#!/bin/sh
# The bundled example through the CLI: build the base and the child, lint them, look inside,
# export the child's merged rootfs. Run from the repository root after `npm run build`.
#
#   sh examples/pipeline.sh [WORKDIR]
#
# Everything goes to WORKDIR (default .tmp/pipeline): its own image store and the export.
set -eu

WORK=${1:-.tmp/pipeline}
CLI=${CLI:-"node dist/lib/cli/main.js"}
export CLOUDROOTFS_STORE="$WORK/store"
BASE=cloudrootfs-example:v1.19.9
CHILD=cloudrootfs-example-child:v1.19.9

rm -rf "$WORK"
mkdir -p "$WORK"

echo "== lint the context before building"
$CLI lint examples/cloudrootfs

echo "== build the base: FROM scratch + COPY . ."
$CLI build -t "$BASE" --platform linux/amd64 examples/cloudrootfs

echo "== build the child: FROM base + COPY daemon.json etc/ + RUN rm -f statics/audit-policy.yml"
$CLI build -t "$CHILD" --platform linux/amd64 examples/child

echo "== lint the child image"
$CLI lint "$CHILD"

echo "== what changed in etc/ and statics/"
$CLI ls "$CHILD" etc
$CLI ls "$CHILD" statics

echo "== export the merged rootfs"
$CLI export "$CHILD" "$WORK/rootfs"
if [ -e "$WORK/rootfs/statics/audit-policy.yml" ]; then
  echo "FAIL: statics/audit-policy.yml should be gone" >&2
  exit 1
fi
if ! cmp -s examples/child/daemon.json "$WORK/rootfs/etc/daemon.json"; then
  echo "FAIL: etc/daemon.json is not the child's" >&2
  exit 1
fi
echo "ok: $WORK/rootfs has the child's daemon.json and no audit policy"
