import { createHash } from 'node:crypto'
import { createServer as createHttpServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import bcrypt from 'bcryptjs'
import type { WebConfig } from './web-config'

/**
 * An HTTP server for a scrape endpoint, as its web config asks: HTTPS with `tls`, and basic
 * authentication against bcrypt hashes with `users`. A bcrypt check costs tens of milliseconds on
 * purpose, so a verified (user, password, hash) is remembered by its SHA-256, as exporter-toolkit
 * does; a scraper every few seconds then costs one check, not one per scrape.
 */
export function createWebServer (config: WebConfig | undefined, handler: RequestListener): Server {
  const users = config?.users
  const guarded: RequestListener = users === undefined ? handler : (req, res) => {
    authorized(users, req).then((ok) => {
      if (ok) handler(req, res)
      else refuse(res)
    }, () => refuse(res))
  }
  return config?.tls === undefined ? createHttpServer(guarded) : createHttpsServer({ cert: config.tls.cert, key: config.tls.key }, guarded)
}

const verified = new Set<string>()
const MAX_REMEMBERED = 1000

async function authorized (users: ReadonlyMap<string, string>, req: IncomingMessage): Promise<boolean> {
  const header = req.headers.authorization
  if (header === undefined || !/^Basic [A-Za-z0-9+/=]+$/i.test(header)) return false
  const text = Buffer.from(header.slice(6), 'base64').toString('utf8')
  const colon = text.indexOf(':')
  if (colon < 0) return false
  const user = text.slice(0, colon)
  const password = text.slice(colon + 1)
  const hash = users.get(user)
  if (hash === undefined) {
    // As long as a check of a known user: the answer's timing does not tell which users exist.
    await bcrypt.compare(password, DUMMY_HASH)
    return false
  }
  const key = createHash('sha256').update(`${user}\u0000${password}\u0000${hash}`).digest('hex')
  if (verified.has(key)) return true
  if (!await bcrypt.compare(password, hash)) return false
  if (verified.size >= MAX_REMEMBERED) verified.clear()
  verified.add(key)
  return true
}

/** A bcrypt hash (cost 10) of a random string, for refusing unknown users in the same time. */
const DUMMY_HASH = '$2b$10$eKlSrwO0L5wSokPrudHkBuOPB9DHjrnVsHnwjAbMTekFN2jzaXpXq'

function refuse (res: ServerResponse): void {
  res.writeHead(401, { 'www-authenticate': 'Basic realm="fedvm", charset="UTF-8"', 'content-type': 'text/plain' }).end('unauthorized\n')
}
