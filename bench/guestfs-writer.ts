// One writer process of bench/guestfs: loops open(O_TRUNC|O_CREAT) + write(~60 B two-line CSV) + close()
// on one file for a fixed time, timing every close(). Prints one JSON line with its figures.
import { closeSync, constants, openSync, writeSync } from 'node:fs'

const [file, durationMs, writerId] = process.argv.slice(2)
const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC
const closeNs: number[] = []
const deadline = performance.now() + Number(durationMs)
let closes = 0
const started = performance.now()
while (performance.now() < deadline) {
  const content = `current_users,load_average,writer\n${100000 + closes},0.${closes % 100},${writerId}\n`
  const fd = openSync(file, flags, 0o644)
  writeSync(fd, content)
  const before = process.hrtime.bigint()
  closeSync(fd)
  closeNs.push(Number(process.hrtime.bigint() - before))
  closes++
}
const elapsedMs = performance.now() - started
closeNs.sort((a, b) => a - b)
const quantile = (q: number) => closeNs[Math.min(closeNs.length - 1, Math.floor(q * closeNs.length))] / 1000
process.stdout.write(JSON.stringify({ closes, elapsedMs, closeP50Us: quantile(0.5), closeP99Us: quantile(0.99) }) + '\n')
