import { run as runSite } from './site-command'

/** `fedvm migrate --config FILE --vm ID`: the Controller's own command line, the same as `fedvm site migrate`. */
export function run (argv: string[]): Promise<void> {
  return runSite(['migrate', ...argv])
}
