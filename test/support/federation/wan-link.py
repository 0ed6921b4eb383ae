#!/usr/bin/python3
"""A wide-area link between test sites, in user space: netem's delay and loss for kernels without sch_netem.

Usage: wan-link.py NETNS...   (as root; one TAP device `eth0` is made in each network namespace)

Every Ethernet frame a site sends leaves its `eth0` (a TAP device whose file descriptor this process
holds), is delayed by half the round-trip time (plus its turn on a port of limited rate, if one is
set: a port more than QUEUE_S behind drops, as a router's full buffer does), dropped with the loss
probability, and written to
the `eth0` of the site its destination MAC address was last seen at (every other site for broadcasts
and unknown addresses): a learning switch with a slow, lossy port per site. A TAP device without a
virtio-net header gets no offloads, so frames are at most one MTU, as on a wire. A cut site's frames
vanish in both directions (no RST, no ICMP), as in an internet partition; a muted site's frames
vanish as they leave it (a one-way partition; what it sent before is still delivered). A cut also drops
what is still on the way.

Commands, one per line on stdin, each answered `ok COMMAND` on stdout:
  shape RTT_MS LOSS_PERCENT [MBIT]   delay, loss and rate (0 or none: unlimited) for every frame from now on
  cut INDEX | heal INDEX      partition the INDEX-th site (0-based, argument order) / end that
  mute INDEX | unmute INDEX   drop what the INDEX-th site sends from now on (a one-way partition) / end that
The process ends when stdin closes (its parent died or stopped it); the TAP devices go with it.
"""
import ctypes
import fcntl
import heapq
import os
import random
import select
import struct
import sys
import time

CLONE_NEWNET = 0x40000000
TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
FRAME_MAX = 65536
QUEUE_S = 0.25

libc = ctypes.CDLL(None, use_errno=True)


def setns(fd, what):
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f'setns {what}: {os.strerror(err)}')


def open_tap(netns, home):
    """The TAP device eth0 made in NETNS (a device lives in the namespace its opener was in), then back home."""
    target = os.open(f'/run/netns/{netns}', os.O_RDONLY)
    try:
        setns(target, netns)
    finally:
        os.close(target)
    try:
        fd = os.open('/dev/net/tun', os.O_RDWR | os.O_NONBLOCK)
        fcntl.ioctl(fd, TUNSETIFF, struct.pack('16sH22x', b'eth0', IFF_TAP | IFF_NO_PI))
        return fd
    finally:
        setns(home, 'the original network namespace')


def main():
    names = sys.argv[1:]
    if not names:
        sys.exit('usage: wan-link.py NETNS...')
    home = os.open('/proc/self/ns/net', os.O_RDONLY)
    taps = [open_tap(name, home) for name in names]
    os.close(home)
    index_of = {fd: i for i, fd in enumerate(taps)}
    one_way = 0.0
    loss = 0.0
    bits_per_s = 0.0
    free_at = [0.0] * len(taps)  # when each site's port has sent what it holds
    cut = set()
    muted = set()
    where = {}  # MAC address -> site index
    queue = []  # (due, seq, target index, frame)
    seq = 0
    stdin = sys.stdin.fileno()
    os.set_blocking(stdin, False)
    pending = b''
    print('ok ready', flush=True)
    while True:
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            _, _, source, target, frame = heapq.heappop(queue)
            if target in cut or source in cut:
                continue
            try:
                os.write(taps[target], frame)
            except BlockingIOError:
                pass  # the receiving queue is full: the frame is lost, as on a congested port
            except OSError:
                pass  # the receiving device is down (EIO): lost, as on an unplugged port
        timeout = max(0.0, queue[0][0] - now) if queue else None
        readable, _, _ = select.select([stdin, *taps], [], [], timeout)
        for fd in readable:
            if fd == stdin:
                chunk = os.read(stdin, 4096)
                if not chunk:
                    return
                pending += chunk
                while b'\n' in pending:
                    line, pending = pending.split(b'\n', 1)
                    words = line.decode().split()
                    if not words:
                        continue
                    if words[0] == 'shape':
                        one_way = float(words[1]) / 2000.0
                        loss = float(words[2]) / 100.0
                        bits_per_s = float(words[3]) * 1e6 if len(words) > 3 else 0.0
                    elif words[0] == 'cut':
                        cut.add(int(words[1]))
                    elif words[0] == 'heal':
                        cut.discard(int(words[1]))
                    elif words[0] == 'mute':
                        muted.add(int(words[1]))
                    elif words[0] == 'unmute':
                        muted.discard(int(words[1]))
                    else:
                        print(f'error unknown command {line.decode()!r}', flush=True)
                        continue
                    print(f'ok {line.decode()}', flush=True)
                continue
            source = index_of[fd]
            # Everything waiting on this device: one select can be followed by many frames.
            for _ in range(256):
                try:
                    frame = os.read(fd, FRAME_MAX)
                except BlockingIOError:
                    break
                if len(frame) < 14 or source in cut or source in muted:
                    continue
                where[frame[6:12]] = source
                known = where.get(frame[0:6])
                targets = [known] if known is not None and known != source and not frame[0] & 1 else [i for i in range(len(taps)) if i != source]
                arrived = time.monotonic()
                for target in targets:
                    if target in cut or (loss > 0 and random.random() < loss):
                        continue
                    sent = arrived
                    if bits_per_s > 0:
                        start = max(arrived, free_at[target])
                        if start - arrived > QUEUE_S:
                            continue
                        sent = start + len(frame) * 8 / bits_per_s
                        free_at[target] = sent
                    seq += 1
                    heapq.heappush(queue, (sent + one_way, seq, source, target, frame))


if __name__ == '__main__':
    main()
