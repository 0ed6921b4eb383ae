import { parseArgs } from 'node:util'
import { mountGuestfs } from './mount'

/** A command line that cannot be run as given; fedvm's dispatcher knows it by its code and shows the usage. */
class UsageError extends Error {
  readonly code = 'usage'
}

/** `fedvm guestfs mount`: serves the KPI filesystem in the foreground until SIGINT or SIGTERM. */
export async function run (argv: string[]): Promise<void> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { db: { type: 'string' }, sync: { type: 'string', default: 'normal' }, feed: { type: 'string' } },
  })
  const [verb, mountpoint, ...extra] = positionals
  if (verb !== 'mount') throw new UsageError(`unknown guestfs command "${verb ?? ''}"`)
  if (!mountpoint || extra.length > 0) throw new UsageError('give exactly one MOUNTPOINT')
  if (!values.db) throw new UsageError('--db FILE is required')
  if (values.sync !== 'normal' && values.sync !== 'full') throw new UsageError(`--sync must be normal or full, not "${values.sync}"`)

  const guestfs = await mountGuestfs({ mountpoint, dbFile: values.db, sync: values.sync, feed: values.feed })
  process.stderr.write(`guestfs: mounted ${mountpoint} (database ${values.db})\n`)
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve)
    process.once('SIGTERM', resolve)
  })
  await guestfs.close()
  process.stderr.write(`guestfs: unmounted ${mountpoint}\n`)
}
