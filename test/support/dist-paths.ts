import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'

/** The repository root: the nearest folder above this file that holds package.json (works from test/ and dist/test/). */
function findRepoRoot (): string {
  let dir = __dirname
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir)
    if (parent === dir) throw new Error(`no package.json above ${__dirname}`)
    dir = parent
  }
  return dir
}

export const REPO_ROOT = findRepoRoot()

/**
 * A compiled file under dist/ (run `node_modules/.bin/tsc -p .` first; `npm test` does). Child
 * processes run compiled JavaScript: fedvm itself, and the fs-worker.
 */
export function distFile (...parts: string[]): string {
  const file = join(REPO_ROOT, 'dist', ...parts)
  if (!existsSync(file)) throw new Error(`${file} is missing: build first with node_modules/.bin/tsc -p .`)
  return file
}

export const FEDVM_JS = (): string => distFile('packaging', 'bin', 'fedvm.js')
