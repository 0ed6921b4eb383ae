/**
 * NATS subjects for monitoring deliveries: `<prefix>.<site>.<host>.<vm>`, one subject per site, host
 * and VM, so a site's stream takes `<prefix>.<site>.>` and nats-server's subject permissions limit
 * each host's user to `<prefix>.<site>.<host>.>`; the site then checks that the host holds the VM.
 * A host that does not name itself publishes to `<prefix>.<site>.<vm>` (taken only by a site whose
 * ingest authentication is off).
 * Site and VM ids become single subject tokens: '.', '*', '>' and whitespace have meanings in
 * subjects, so every byte outside [A-Za-z0-9_-] is written as ~HH (its UTF-8 bytes in hex; '~'
 * itself too). The encoding is reversible and keeps distinct ids distinct.
 */
export const DEFAULT_SUBJECT_PREFIX = 'fedvm.deliveries'

const PREFIX = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/

export function isSubjectPrefix (prefix: string): boolean {
  return PREFIX.test(prefix)
}

export function subjectToken (id: string): string {
  if (id.length === 0) throw new Error('an empty id has no subject token')
  let token = ''
  for (const ch of id) {
    if (/[A-Za-z0-9_-]/.test(ch)) token += ch
    else for (const byte of Buffer.from(ch, 'utf8')) token += `~${byte.toString(16).toUpperCase().padStart(2, '0')}`
  }
  return token
}

/** The id a token stands for; throws on a token subjectToken() would not have written. */
export function tokenToId (token: string): string {
  const bytes: number[] = []
  for (let i = 0; i < token.length; i++) {
    if (token[i] === '~') {
      const hex = token.slice(i + 1, i + 3)
      if (!/^[0-9A-F]{2}$/.test(hex)) throw new Error(`bad escape in subject token ${JSON.stringify(token)}`)
      bytes.push(parseInt(hex, 16))
      i += 2
    } else {
      bytes.push(token.charCodeAt(i))
    }
  }
  const id = Buffer.from(bytes).toString('utf8')
  // Canonical form only: one id, one token (no "~41" for "A", no broken UTF-8).
  if (id.length === 0 || subjectToken(id) !== token) throw new Error(`not a canonical subject token: ${JSON.stringify(token)}`)
  return id
}

/** The subject one VM's deliveries are published to. */
export function deliverySubject (prefix: string, site: string, vm: string): string {
  return `${prefix}.${subjectToken(site)}.${subjectToken(vm)}`
}

/** The subject one VM's deliveries are published to by the host that runs it. */
export function hostDeliverySubject (prefix: string, site: string, host: string, vm: string): string {
  return `${prefix}.${subjectToken(site)}.${subjectToken(host)}.${subjectToken(vm)}`
}

/** Every subject one host of a site may publish to (what its nats-server user is allowed). */
export function hostSubjects (prefix: string, site: string, host: string): string {
  return `${prefix}.${subjectToken(site)}.${subjectToken(host)}.>`
}

/** The host (when the subject names one) and the VM of a delivery subject of this site; undefined when it is none. */
export function parseDeliverySubject (prefix: string, site: string, subject: string): { host?: string, vm: string } | undefined {
  const head = `${prefix}.${subjectToken(site)}.`
  if (!subject.startsWith(head)) return undefined
  const tokens = subject.slice(head.length).split('.')
  try {
    if (tokens.length === 1) return { vm: tokenToId(tokens[0]) }
    if (tokens.length === 2) return { host: tokenToId(tokens[0]), vm: tokenToId(tokens[1]) }
  } catch {
    return undefined
  }
  return undefined
}

/** Every subject of one site's deliveries (its stream's subject filter). */
export function siteSubjects (prefix: string, site: string): string {
  return `${prefix}.${subjectToken(site)}.>`
}

/** The VM id a delivery subject names, or undefined when the subject is not one of the site's. */
export function vmOfSubject (prefix: string, site: string, subject: string): string | undefined {
  const head = `${prefix}.${subjectToken(site)}.`
  if (!subject.startsWith(head)) return undefined
  const token = subject.slice(head.length)
  if (token.length === 0 || token.includes('.')) return undefined
  try {
    return tokenToId(token)
  } catch {
    return undefined
  }
}
