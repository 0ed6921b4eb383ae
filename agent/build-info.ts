import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'

/** fedvm's version from package.json, found by walking up (the code runs from dist/ or, in tests, from source). */
function readVersion (): string {
  for (let dir = __dirname; dir !== dirname(dir); dir = dirname(dir)) {
    const file = join(dir, 'package.json')
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string, version?: string }
      if (pkg.name === 'fedvm' && pkg.version) return pkg.version
    }
  }
  return 'unknown'
}

export const VERSION = readVersion()
