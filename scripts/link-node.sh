#!/bin/sh
# postinstall: make node_modules/.bin/node a symlink to the bundled Node 24
# binary instead of pnpm's shell shim. The shim runs Node as a child process
# without exec, so SIGINT/SIGTERM sent to a script stopped the shim and left
# the Node process (a server holding its port) running as an orphan.
# Nothing to do where the optional `node` package is not installed (macOS,
# Windows), since the system Node is used there.
cd "$(dirname "$0")/.." || exit 0
if [ -x node_modules/node/bin/node ] && [ -d node_modules/.bin ]; then
  ln -sf ../node/bin/node node_modules/.bin/node
fi
