import t from 'tap'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FEDVM_JS } from '../../support/dist-paths'
import { TestMount, runFedvm } from '../../support/guestfs-mount'

// Contract 1: "Encrypted table: ts INTEGER NOT NULL, data BLOB NOT NULL." "Encrypted files are
// stored as given. `fedvm seal --to PRIMARY_PUBLIC_KEY` (stdin → stdout) seals a value for the
// primary site (libsodium sealed box); `fedvm unseal --key PRIMARY_SECRET_KEY` opens it."

const VALUE = 'current_users,revenue\n17,1234.5\n'

async function keygen (dir: string): Promise<{ publicKey: string, secretKeyFile: string }> {
  const result = await runFedvm(['keygen', '--out', dir])
  if (result.code !== 0) throw new Error(`keygen failed: ${result.stderr}`)
  // seal.pub holds the sealing public key (base64) that VM owners seal KPIs for.
  return { publicKey: (await readFile(join(dir, 'seal.pub'), 'utf8')).trim(), secretKeyFile: join(dir, 'seal.key') }
}

// Keys are made once for the file (keygen also makes a TLS identity, which is slow on a busy machine).
let keysDir = ''
let primary: { publicKey: string, secretKeyFile: string }
let otherSecretKeyFile = ''
t.before(async () => {
  keysDir = await mkdtemp(join(tmpdir(), 'fedvm-guestfs-keys-'))
  primary = await keygen(join(keysDir, 'primary'))
  // Any 32 bytes are an X25519 secret key: a key of another site.
  otherSecretKeyFile = join(keysDir, 'other-seal.key')
  await writeFile(otherSecretKeyFile, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 })
})
t.teardown(() => rm(keysDir, { recursive: true, force: true }))

t.test('encrypted round trip: an app seals, the row holds the sealed bytes exactly, only the secret key opens them', async (t) => {
  const mount = await TestMount.create(t)

  // The application: seal with the primary's public key, keep a copy, write the sealed bytes into encrypted/.
  const sealedCopy = join(mount.dir, 'sealed.bin')
  const app = await mount.sh('printf %s "$VALUE" | node "$FEDVM" seal --to "$KEY" > "$COPY" && cat "$COPY" > encrypted/revenue',
    { VALUE, FEDVM: FEDVM_JS(), KEY: primary.publicKey, COPY: sealedCopy })
  t.equal(app.code, 0, app.stderr)
  const sealed = await readFile(sealedCopy)
  t.equal(sealed.length, Buffer.byteLength(VALUE) + 48, 'a sealed box: the value plus 48 bytes')
  t.notOk(sealed.includes(Buffer.from('1234.5')), 'the sealed bytes do not show the value')

  t.same(mount.columns('revenue').map(({ name, type, notnull }) => ({ name, type, notnull })), [
    { name: 'ts', type: 'INTEGER', notnull: 1 },
    { name: 'data', type: 'BLOB', notnull: 1 },
  ], 'the encrypted table is (ts INTEGER NOT NULL, data BLOB NOT NULL)')
  const rows = mount.query<{ kind: string, data: Buffer }>('SELECT typeof(data) AS kind, data FROM revenue')
  t.equal(rows.length, 1, 'one row')
  t.equal(rows[0].kind, 'blob')
  t.ok(Buffer.compare(rows[0].data, sealed) === 0, 'the row holds the sealed bytes exactly')
  t.ok(Buffer.compare(await mount.app.read(mount.path('encrypted', 'revenue')), sealed) === 0, 'and the file reads back as them')
  t.equal((await mount.app.stat(mount.path('encrypted', 'revenue'))).size, sealed.length)

  const opened = await runFedvm(['unseal', '--key', primary.secretKeyFile], rows[0].data)
  t.equal(opened.code, 0, opened.stderr)
  t.equal(opened.stdout.toString(), VALUE, 'the primary\'s secret key opens the row')

  const wrong = await runFedvm(['unseal', '--key', otherSecretKeyFile], rows[0].data)
  t.not(wrong.code, 0, 'another secret key fails')
  t.match(wrong.stderr, /cannot open/, wrong.stderr)
  t.equal(wrong.stdout.length, 0, 'and prints nothing of the value')

  const tampered = Buffer.from(rows[0].data)
  tampered[tampered.length - 1] ^= 1
  const altered = await runFedvm(['unseal', '--key', primary.secretKeyFile], tampered)
  t.not(altered.code, 0, 'an altered box fails even with the right key')
})

t.test('sealing straight into the mount; encrypted content is stored as given, not parsed', async (t) => {
  const mount = await TestMount.create(t)
  const app = await mount.sh('printf "%s" "$VALUE" | node "$FEDVM" seal --to "$KEY" > encrypted/direct', { VALUE, FEDVM: FEDVM_JS(), KEY: join(keysDir, 'primary', 'seal.pub') })
  t.equal(app.code, 0, app.stderr)
  const [row] = mount.query<{ data: Buffer }>('SELECT data FROM direct')
  t.equal((await runFedvm(['unseal', '--key', primary.secretKeyFile], row.data)).stdout.toString(), VALUE, 'opens to the value')

  // Any bytes at all: newlines, commas, NUL, invalid UTF-8, more than two "lines".
  const raw = Buffer.concat([Buffer.from('a,b\n1\n2\n3\n\0\xff'), Buffer.alloc(64, 0xfe)])
  t.equal(await mount.app.outcome({ op: 'write', path: mount.path('encrypted', 'raw'), data: { base64: raw.toString('base64') } }), 'ok')
  const [stored] = mount.query<{ data: Buffer }>('SELECT data FROM raw')
  t.ok(Buffer.compare(stored.data, raw) === 0, 'stored byte for byte')
  t.same(mount.columns('raw').map((c) => c.name), ['ts', 'data'])
})

t.test('encrypted content shorter than a sealed box (48 bytes) is EINVAL and stores nothing', async (t) => {
  const mount = await TestMount.create(t)
  const short = { base64: Buffer.alloc(47, 1).toString('base64') }
  t.equal(await mount.app.outcome({ op: 'write', path: mount.path('encrypted', 'short'), data: short }), 'close EINVAL')
  t.equal(await mount.app.outcome({ op: 'write', path: mount.path('encrypted', 'short'), data: 'plain text\n' }), 'close EINVAL', 'plain text by mistake')
  t.same(mount.kpiTables(), [])
  t.match(await mount.logLines(/refused encrypted\/short/, 2), [/too short for a sealed box/, /too short/])
})
