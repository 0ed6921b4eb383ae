/**
 * libvirt's migration cookies (the XML each phase hands the other side) carry the sending host's
 * `<hostname>` and `<hostuuid>`. Across a site boundary neither may travel: each side replaces them
 * before its cookie leaves. libvirt only checks that the two ends' host UUIDs differ (equal ones
 * mean "migrating to the same host"), so a random UUID per migration and side keeps that check
 * meaningful while naming nothing.
 */
import { randomUUID } from 'node:crypto'

/** What every neutralised cookie says its host is called. */
export const NEUTRAL_HOSTNAME = 'fedvm-site'

const HOSTNAME = /<hostname>[^<]*<\/hostname>/g
const HOSTUUID = /<hostuuid>[^<]*<\/hostuuid>/g

/** The cookie with its host name and host UUID replaced (`hostUuid` default: a fresh random one). */
export function neutraliseCookie (cookie: Buffer, hostUuid: string = randomUUID()): Buffer {
  if (cookie.length === 0) return cookie
  const text = cookie.toString('utf8')
  return Buffer.from(text.replace(HOSTNAME, `<hostname>${NEUTRAL_HOSTNAME}</hostname>`).replace(HOSTUUID, `<hostuuid>${hostUuid}</hostuuid>`), 'utf8')
}
