/**
 * The Source's half of a live migration in a process of its own, so a test can SIGKILL it mid-Perform
 * as a site daemon dies: argv URI DOMAIN ID; sends {offer} after Begin, takes {cookie} for Perform,
 * sends {progress} while it runs and {performed} after.
 */
import { LiveSource } from '../../../../host/libvirt/live-source'

async function main (): Promise<void> {
  const [uri, domain, id] = process.argv.slice(2)
  const source = await LiveSource.begin({ uri, domain, id })
  process.send?.({ offer: { ...source.offer, cookie: source.offer.cookie.toString('base64') } })
  process.once('message', (m: { cookie: string }) => {
    source.perform(Buffer.from(m.cookie, 'base64'), { onProgress: (p) => process.send?.({ progress: p }), progressEveryMs: 100 })
      .then(() => process.send?.({ performed: true }), (err: Error) => process.send?.({ failed: err.message }))
  })
}

main().catch((err) => { console.error(err); process.exit(1) })
