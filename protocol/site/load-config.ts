import { readFile } from 'node:fs/promises'
import { ConfigError } from '../errors'
import { parseSiteConfig, type SiteConfig } from './config'

/** Reads and checks a site config; every ConfigError names the file, then the field. */
export async function loadSiteConfig (file: string): Promise<SiteConfig> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw new ConfigError(file, 'cannot be read', { cause: err })
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    throw new ConfigError(file, `is not valid JSON (${(err as Error).message})`, { cause: err })
  }
  try {
    return parseSiteConfig(value, file)
  } catch (err) {
    // The message names the file too: a command line or a journal line then says where to look.
    if (err instanceof ConfigError) throw new ConfigError(file, err.message, { cause: err })
    throw err
  }
}
