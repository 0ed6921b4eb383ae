import t from 'tap'
import { readdir, readFile } from 'node:fs/promises'
import { dirname, join, relative, resolve } from 'node:path'
import { REPO_ROOT } from '../support/dist-paths'

// DESIGN.md: the layers never import packaging/ (its dispatcher imports them, so an import back is a
// cycle); they throw errors with a `code` and the dispatcher turns codes into exit statuses.

const LAYERS = ['agent', 'guestfs', 'host', 'protocol']

async function sources (dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true })
  const nested = await Promise.all(entries.map((e) => e.isDirectory() ? sources(join(dir, e.name)) : Promise.resolve(e.name.endsWith('.ts') ? [join(dir, e.name)] : [])))
  return nested.flat()
}

/** Every module a file names: static and dynamic imports, export-from, require. */
function specifiers (text: string): string[] {
  const found: string[] = []
  for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+|\brequire\s*\(\s*)['"]([^'"]+)['"]/g)) found.push(m[1])
  return found
}

t.test('the specifier scan sees every import form', async (t) => {
  t.same(specifiers(`import a from '../x'\nimport { b } from "../y"\nexport * from '../z'\nconst c = await import('../w')\nimport '../v'\nrequire('../u')`),
    ['../x', '../y', '../z', '../w', '../v', '../u'])
})

t.test('no file in agent/, guestfs/, host/ or protocol/ imports packaging/', async (t) => {
  const packaging = join(REPO_ROOT, 'packaging')
  const offenders: string[] = []
  let files = 0
  for (const layer of LAYERS) {
    for (const file of await sources(join(REPO_ROOT, layer))) {
      files++
      for (const spec of specifiers(await readFile(file, 'utf8'))) {
        const target = resolve(dirname(file), spec)
        if (spec.startsWith('.') && (target === packaging || target.startsWith(`${packaging}/`))) offenders.push(`${relative(REPO_ROOT, file)} imports ${spec}`)
      }
    }
  }
  t.ok(files > 50, `${files} files checked`)
  t.same(offenders, [], 'no imports of packaging/')
})
