import type { ProcessingFunction } from '../processing/functions'
import type { Sample } from '../processing/window'

/**
 * One delivery, as pushed to consumers (issue 3 §4): raw deliveries carry `samples`, processed
 * ones `value`, sealed ones `sealed` (base64) instead of either. `id` is stable, so a consumer
 * that sees a delivery twice can drop the repeat.
 */
export interface Delivery {
  id: string
  vm: string
  metric: string
  format: 'raw' | 'processed'
  function?: ProcessingFunction
  from: number
  to: number
  samples?: Sample[]
  value?: number
  sealed?: string
}
