import { existsSync } from 'node:fs'
import { chromium, type Browser } from 'playwright-core'
import type { Teardownable } from './teardownable'

/** Debian's chromium (packaging/setup.sh installs it): playwright-core drives it, nothing is downloaded. */
export const CHROMIUM = '/usr/bin/chromium'

// What runs on this machine (see /work/.library/env/machines): no sandbox as root, no GPU, and no
// traffic of the browser's own (updates, sync, QUIC probes): only the pages a test opens.
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync']

/**
 * A headless chromium with a fresh profile (playwright makes a new --user-data-dir per launch),
 * closed in teardown and then killed by its PID if it is still there, also when the test fails.
 */
export async function launchChromium (t: Teardownable): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run packaging/setup.sh (it installs Debian's chromium)`)
  const server = await chromium.launchServer({ executablePath: CHROMIUM, headless: true, args: ARGS })
  const pid = server.process().pid
  t.teardown(async () => {
    await server.close().catch(() => {})
    if (pid !== undefined && isRunning(pid)) process.kill(pid, 'SIGKILL')
  })
  return await chromium.connect(server.wsEndpoint())
}

function isRunning (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
