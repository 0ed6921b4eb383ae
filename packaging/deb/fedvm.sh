#!/bin/sh
# /usr/bin/fedvm: the packaged program on the Node.js runtime shipped with it. The native addons
# (better-sqlite3, fuse-native) were built for exactly this runtime, so no system nodejs is used.
exec /usr/lib/fedvm/node /usr/lib/fedvm/app/dist/packaging/bin/fedvm.js "$@"
