import { createHash, randomBytes } from 'node:crypto'
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

/** A fake VM: a directory of random files (the libvirt issue makes it a real VM). */
export async function makeVmDir (dir: string, sizes: Record<string, number>): Promise<Record<string, string>> {
  await mkdir(dir, { recursive: true })
  const digests: Record<string, string> = {}
  for (const [name, size] of Object.entries(sizes)) {
    const data = randomBytes(size)
    await writeFile(join(dir, name), data)
    digests[name] = createHash('sha256').update(data).digest('hex')
  }
  return digests
}

/** name → sha256 of every file in a directory (dot files excluded). */
export async function digestsOf (dir: string): Promise<Record<string, string>> {
  const digests: Record<string, string> = {}
  for (const name of (await readdir(dir)).sort()) {
    if (name.startsWith('.')) continue
    digests[name] = createHash('sha256').update(await readFile(join(dir, name))).digest('hex')
  }
  return digests
}
