#!/bin/sh
# Runs a TypeScript entry point on the project's Node, replacing this shell
# (exec) so that SIGINT/SIGTERM sent to the script reach Node itself.
# pnpm's own `node_modules/.bin/node` shim starts Node as a child without exec,
# so a signal would stop the shim and orphan the server; this avoids it.
# Uses the Node 24 from the optional `node` dependency when it is installed
# (Linux), else the `node` on PATH (which must then be >= 22.19).
root=$(cd "$(dirname "$0")/.." && pwd)
bundled="$root/node_modules/node/bin/node"
if [ -x "$bundled" ]; then node_bin="$bundled"; else node_bin=node; fi
entry=$1
shift
exec "$node_bin" --import tsx "$root/$entry" "$@"
