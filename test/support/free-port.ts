import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'

/**
 * A loopback TCP port that was free a moment ago, for servers the test does not start itself (the
 * agent, nats-server). It is chosen below the kernel's ephemeral range: a port from that range
 * (what listen(0) hands out) is also the source port of any outgoing connection on the machine, and
 * in a full parallel run one took a nats-server's port between the choice and the server's bind
 * ("bind: address already in use"), or while a test restarted the server on the same port.
 */
export async function freePort (): Promise<number> {
  const [ephemeralLow] = ephemeralRange()
  const low = Math.max(10_000, ephemeralLow - 20_000)
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = low + Math.floor(Math.random() * (ephemeralLow - low))
    if (await bindable(port)) return port
  }
  throw new Error(`no free loopback port in ${low}..${ephemeralLow - 1} after 50 tries`)
}

function ephemeralRange (): [number, number] {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number)
    if (Number.isInteger(low) && Number.isInteger(high) && low > 11_000) return [low, high]
  } catch {}
  return [32768, 60999]
}

async function bindable (port: number): Promise<boolean> {
  const server = createServer()
  const listening = await new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => resolve(true))
  })
  if (listening) await new Promise<void>((resolve) => server.close(() => resolve()))
  return listening
}
