// Writer process of bench/agent: writes `count` KPI rows (value = row number) at `rate` rows/s, and
// prints when each close() returned (ms on the shared clock). With `direct URL`, it POSTs each value
// straight to the receiver instead (the baseline: the same delivery without fedvm in between).
import { writeFileSync } from 'node:fs'

const [mode, target, count, rate] = process.argv.slice(2)
const now = () => performance.timeOrigin + performance.now()
const closedAt: number[] = []

async function main (): Promise<void> {
  const n = Number(count)
  const intervalMs = 1000 / Number(rate)
  const start = now()
  for (let i = 1; i <= n; i++) {
    const due = start + i * intervalMs
    while (now() < due) await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - now() - 1)))
    if (mode === 'fedvm') {
      writeFileSync(target, `bench_value\n${i}\n`)
      closedAt.push(now())
    } else {
      const sent = now()
      await fetch(target, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: `direct:${i}`, samples: [{ ts: sent, value: i }] }) })
      closedAt.push(sent)
    }
  }
  process.stdout.write(JSON.stringify({ closedAt }) + '\n')
}

main().catch((err) => { console.error(err); process.exitCode = 1 })
