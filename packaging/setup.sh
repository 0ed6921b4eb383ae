#!/usr/bin/env bash
# Prepares a Debian 12 machine (as root) to build, test and run fedvm. Idempotent: each step
# runs only when what it provides is missing or out of date, so repeated runs cost seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the project needs; later parts append theirs here.
DEBIAN_PACKAGES=(
  libfuse2 fuse            # guestfs: the FUSE library fuse-native loads, and fusermount
  prometheus               # test/e2e/agent: a real Prometheus server scrapes the agent's /metrics
  socat                    # test/agent: plays QEMU's virtio-serial chardev (a pty for guestfs, a unix socket for the agent)
  libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils  # host/libvirt: libvirtd + QEMU (tests start them, no systemd)
  busybox-static kmod cpio xz-utils iproute2 util-linux                # test/support/vm: guest initramfs, vmlinux, network/mount namespaces
  systemd                  # test/packaging: systemd-analyze verify of the units (systemd need not run)
  dpkg-dev binutils        # packaging/deb/build: dpkg-shlibdeps for Depends:, strip for the bundled node
  debootstrap              # test/packaging: a fresh Debian root to install the .deb into
  openssh-server openssh-client  # bench/transfer: the scp baseline (the bench runs its own sshd on loopback)
  openssl                  # protocol: fedvm keygen makes the site's TLS key and self-signed certificate
  nats-server              # protocol/relay: the NATS bus (JetStream) agents publish deliveries to; tests start their own
  python3                  # test/support/federation/wan-link.py: the WAN link emulator between test sites (this kernel has no sch_netem)
  gcc strace               # bench/guestfs: its C writer; bench/guestfs-profile: system calls per close
  chromium                 # test/e2e/site-dashboard: the headless browser playwright-core drives (no browser download)
)

log() { printf 'setup: %s\n' "$*" >&2; }

missing_packages() {
  local pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || printf '%s\n' "$pkg"
  done
}

install_debian_packages() {
  local missing
  mapfile -t missing < <(missing_packages "${DEBIAN_PACKAGES[@]}")
  [ "${#missing[@]}" -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    log "missing Debian packages (${missing[*]}); run this script as root to install them"
    exit 1
  fi
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=300 update -qq
  apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_fuse_device() {
  [ -c /dev/fuse ] && return 0
  modprobe fuse 2>/dev/null || true
  [ -c /dev/fuse ] || mknod -m 0666 /dev/fuse c 10 229 2>/dev/null || true
  [ -c /dev/fuse ] || { log "no /dev/fuse on this machine: guestfs cannot mount"; exit 1; }
}

# npm ci is slow (better-sqlite3 compiles): run it only when the lockfile changed since the last one.
install_node_modules() {
  local stamp=node_modules/.fedvm-lock-sha256 want
  want=$(sha256sum package-lock.json | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return 0; fi
  log "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  printf '%s\n' "$want" > "$stamp"
}

build() {
  node_modules/.bin/tsc -p tsconfig.json
}

install_debian_packages
ensure_fuse_device
install_node_modules
build
