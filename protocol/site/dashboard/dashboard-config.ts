import { isAbsolute, resolve } from 'node:path'
import { z } from 'zod'
import { parseListenAddress } from '../../http/listen-address'

/**
 * The site config's `dashboard` section: where the read-only web page listens, or "off" (the
 * default: a site opens no port it was not asked for, and three sites on one machine would otherwise
 * fight over one default port). Bound anywhere but loopback it needs a web config (TLS, basic auth):
 * the page lists the site's VMs and their KPIs, which are for the site's operators only.
 */
export function dashboardSchema (base: string) {
  return z.strictObject({
    listen: z.union([z.literal('off'), z.string()], { error: 'must be "off" or HOST:PORT' })
      .refine((value) => value === 'off' || parseListenAddress(value) !== undefined, { error: (issue) => `${JSON.stringify(issue.input)} is neither "off" nor HOST:PORT (port 0 to 65535)` }),
    /** exporter-toolkit's web.config.yml form (http/web-config.ts); relative to the site config's folder. */
    webConfig: z.string({ error: 'must be a path to a web config file' }).min(1, 'must be a path to a web config file')
      .transform((value) => isAbsolute(value) ? value : resolve(base, value)).optional(),
    /** Whether the KPI charts show sealed values opened with this site's seal.key (only the primary site holds one). */
    sealed: z.boolean({ error: 'must be true or false' }).default(false),
  }, { error: 'must be an object' }).superRefine((dashboard, ctx) => {
    if (dashboard.listen === 'off' || dashboard.webConfig !== undefined || isLoopbackListen(dashboard.listen)) return
    ctx.addIssue({ code: 'custom', path: ['webConfig'], message: `is needed when listen (${dashboard.listen}) is not a loopback address: a web config with basic_auth_users (and tls_server_config)` })
  }).default({ listen: 'off', sealed: false })
}

export type DashboardConfig = z.infer<ReturnType<typeof dashboardSchema>>

/** A listen address that does not parse is refused by `listen` itself, so it counts as loopback here. */
export function isLoopbackListen (listen: string): boolean {
  const host = parseListenAddress(listen)?.host
  return host === undefined || host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)
}
