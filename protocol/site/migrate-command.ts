import { run as runSite } from './site-command'

/** `fedvm migrate --config FILE --vm ID`: the Controller, same as `fedvm site migrate`. */
export function run (argv: string[]): Promise<number> {
  return runSite(['migrate', ...argv])
}
