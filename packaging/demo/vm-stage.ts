import type { Children } from './children'
import type { Stage } from './story'

export async function vmStage (_children: Children, _root: string, _say: (line: string) => void): Promise<Stage> {
  throw new Error('--vm: not yet')
}
