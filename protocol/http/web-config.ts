import { readFile } from 'node:fs/promises'
import { dirname, isAbsolute, resolve } from 'node:path'
import { parse } from 'yaml'
import { z } from 'zod'
import { ConfigError } from '../errors'
import { issueField, issueMessage } from '../zod-issues'

/** A bcrypt hash as htpasswd -B and Prometheus' exporter-toolkit write it ($2a$, $2b$ or $2y$, cost, 53 characters). */
const BCRYPT = /^\$2[aby]\$[0-9]{2}\$[./A-Za-z0-9]{53}$/

/**
 * A web config file in the form of Prometheus' exporter-toolkit (`web.config.yml`), the part of it a
 * /metrics endpoint uses: `tls_server_config` (cert_file, key_file) turns on HTTPS, and
 * `basic_auth_users` (user: bcrypt hash) turns on basic authentication. Unknown keys are refused by
 * name rather than ignored: a misspelt key would otherwise leave the endpoint open.
 */
const WebConfigSchema = z.strictObject({
  tls_server_config: z.strictObject({
    cert_file: z.string().min(1),
    key_file: z.string().min(1),
  }).optional(),
  basic_auth_users: z.record(z.string().min(1).refine((user) => !user.includes(':'), 'a user name cannot hold ":"'),
    z.string().regex(BCRYPT, 'must be a bcrypt hash (htpasswd -nBC 10 USER, the part after ":")')).optional(),
}).nullable()

export interface WebConfig {
  tls?: { cert: Buffer, key: Buffer }
  /** user → bcrypt hash */
  users?: ReadonlyMap<string, string>
}

/** Reads and checks a web config file; cert and key paths are taken from the file's folder. The first problem is a ConfigError naming its key. */
export async function loadWebConfig (file: string): Promise<WebConfig> {
  let value: unknown
  try {
    value = parse(await readFile(file, 'utf8'))
  } catch (err) {
    throw new ConfigError(file, `cannot read the web config: ${(err as Error).message}`, { cause: err })
  }
  const parsed = WebConfigSchema.safeParse(value)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw new ConfigError(`${file}: ${issueField(issue)}`, issueMessage(issue))
  }
  const config = parsed.data ?? {}
  const base = dirname(resolve(file))
  const at = (path: string): string => isAbsolute(path) ? path : resolve(base, path)
  const result: WebConfig = {}
  if (config.tls_server_config !== undefined) {
    const { cert_file: certFile, key_file: keyFile } = config.tls_server_config
    const read = async (path: string, key: string): Promise<Buffer> => {
      try {
        return await readFile(at(path))
      } catch (err) {
        throw new ConfigError(`${file}: tls_server_config.${key}`, `cannot read ${at(path)}: ${(err as Error).message}`, { cause: err })
      }
    }
    result.tls = { cert: await read(certFile, 'cert_file'), key: await read(keyFile, 'key_file') }
  }
  if (config.basic_auth_users !== undefined) result.users = new Map(Object.entries(config.basic_auth_users))
  return result
}
