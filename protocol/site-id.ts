/** A site's id, as keyrings, signed hops, configs and NATS subjects name it: lower-case letters, digits, "." and "-". */
export const SITE_ID = /^[a-z0-9][a-z0-9.-]{0,62}$/

export function isSiteId (text: string): boolean {
  return SITE_ID.test(text)
}
