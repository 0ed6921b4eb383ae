import type { KpiDir } from '../kpi-names'
import { pathKey } from './paths'

export interface StagedFile {
  content: Buffer
  mtimeMs: number
}

/** Staging files live only in memory until renamed onto a KPI name (then they become one row). */
export class StagingArea {
  private readonly files = new Map<string, StagedFile>()

  get (dir: KpiDir, name: string): StagedFile | undefined {
    return this.files.get(pathKey(dir, name))
  }

  set (dir: KpiDir, name: string, content: Buffer): void {
    this.files.set(pathKey(dir, name), { content, mtimeMs: Date.now() })
  }

  delete (dir: KpiDir, name: string): boolean {
    return this.files.delete(pathKey(dir, name))
  }

  names (dir: KpiDir): string[] {
    const prefix = `${dir}/`
    return [...this.files.keys()].filter((key) => key.startsWith(prefix)).map((key) => key.slice(prefix.length))
  }
}
