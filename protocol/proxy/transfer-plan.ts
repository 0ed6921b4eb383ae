/**
 * What a source proxy serves for one transfer, fixed when the Source prepared it: the VM's files
 * (names, sizes and where they are) and the chunk size of the manifest. Serving only opens and
 * reads these paths; nothing asks the host again while the data flows.
 */
export interface PlannedFile {
  name: string
  size: number
  /** Where the proxy reads the file from; never sent to another site. */
  path: string
  /**
   * The chunk digests the source computed so far (null: not read yet), kept with the token so a
   * restarted source still vouches for what a destination received before (the resume reuses it).
   */
  chunks?: Array<string | null>
}

export interface TransferPlan {
  chunkBytes: number
  files: PlannedFile[]
}

export function chunkCount (size: number, chunkBytes: number): number {
  return Math.ceil(size / chunkBytes)
}
