import { ProtocolError, toProtocolError } from '../errors'
import { demandOf, vmsThatFit } from '../roles/room'
import type { Demand } from '../../host/vm-folder/vm-host'
import { newToken } from '../proxy/tokens'
import type { Caller, SiteContext } from '../site/site-context'
import { objectBody, stringListField, vmIdField } from './body-fields'
import { parseOffers, type Offer } from './offer'

/**
 * Migration request handler (paper III-C, at the Destination): offers for each local host with room,
 * then, when policy allows, the offers of partners asked in parallel (this site as Intermediary,
 * each wrapped in a route of ours so the asker never learns where they lead), then exposure policy.
 */
export async function handleMigrationRequest (site: SiteContext, caller: Caller, rawBody: unknown, options: { delegate: boolean }): Promise<{ offers: Offer[] }> {
  const body = objectBody(rawBody)
  const vmId = vmIdField(body)
  const exclude = new Set(stringListField(body, 'exclude'))
  if (caller.sender !== site.id && !site.config.policy.acceptFrom.includes(caller.sender)) {
    throw new ProtocolError('not-permitted', `this site does not accept VMs from ${caller.sender}`)
  }
  const descriptor = body.descriptor ?? null
  const local = await localOffers(site, caller, vmId, descriptor, demandOf(descriptor))
  let delegated: Array<{ partner: string, offer: Offer }> = []
  if (options.delegate && site.config.policy.delegate && site.mayForward(caller)) {
    delegated = await askPartners(site, caller, vmId, rawBody, exclude)
  }
  const expose = site.config.policy.expose
  const exposed = expose === 'all' ? delegated : expose === 'local' ? [] : delegated.filter((d) => expose.includes(d.partner))
  const wrapped = exposed.map(({ partner, offer }) => wrapOffer(site, caller, vmId, partner, offer))
  site.log({ event: 'migration-request', from: caller.sender, vm: vmId, local: local.length, delegated: delegated.length, exposed: local.length + wrapped.length })
  return { offers: [...local, ...wrapped] }
}

/** One offer per host that has room for the VM's demand (VM slots, memory, vCPUs); a host that cannot say is skipped. */
async function localOffers (site: SiteContext, caller: Caller, vmId: string, descriptor: unknown, demand: Demand): Promise<Offer[]> {
  const offers: Offer[] = []
  for (const host of site.hosts.values()) {
    let free: number
    try {
      if (await host.has(vmId)) continue
      free = vmsThatFit(await host.capacity(), demand)
    } catch (err) {
      site.log({ event: 'host-unavailable', host: host.id, error: (err as Error).message })
      continue
    }
    if (free < 1) continue
    const token = newToken()
    site.state.putToken({
      token, role: 'destination', proxy: site.chooseProxy(), vmId, hostId: host.id, boundTo: caller.sender, descriptor,
      manifest: null, state: 'open', expiresAt: Date.now() + site.config.limits.tokenTtlMs, locationVersion: null, requester: caller.sender,
    })
    offers.push({ ref: token, sealKey: site.sealPublicKey, tlsFingerprint: site.tls.fingerprint, depth: 0, free })
  }
  return offers
}

/** The Controller's step 2 as an Intermediary does it: every eligible partner at once; a failing partner only costs its offers. */
export async function askPartners (site: SiteContext, caller: Caller | undefined, vmId: string, body: unknown, exclude: Set<string>): Promise<Array<{ partner: string, offer: Offer }>> {
  const passed = caller === undefined ? new Set([site.id]) : site.passedSites(caller)
  const partners = site.config.partners.filter((p) => !passed.has(p.id) && !exclude.has(p.id) && p.id !== caller?.sender)
  const answers = await Promise.all(partners.map(async (p) => {
    try {
      return parseOffers(await site.send(p.id, 'migration-request', body, caller)).map((offer) => ({ partner: p.id, offer }))
    } catch (err) {
      site.log({ event: 'partner-failed', op: 'migration-request', partner: p.id, code: toProtocolError(err).code })
      return []
    }
  }))
  return answers.flat()
}

function wrapOffer (site: SiteContext, caller: Caller, vmId: string, partner: string, offer: Offer): Offer {
  const ref = newToken()
  site.state.putRoute({ ref, kind: 'offer', vmId, partner, partnerRef: offer.ref, requester: caller.sender, locationVersion: null, expiresAt: Date.now() + site.config.limits.tokenTtlMs })
  return { ...offer, ref, depth: offer.depth + 1 }
}
