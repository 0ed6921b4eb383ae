import { readFile } from 'node:fs/promises'
import { ConfigError } from '../errors'
import { parseSiteConfig, type SiteConfig } from './config'

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
  return parseSiteConfig(value, file)
}
