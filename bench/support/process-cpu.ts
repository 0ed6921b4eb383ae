/**
 * CPU time a process used (user + system, its threads included) and that of the children it has
 * waited for (virsh, qemu-img a site daemon runs), from /proc/PID/stat, in ms.
 */
import { readFile } from 'node:fs/promises'

const TICKS_PER_S = 100 // USER_HZ on Linux (getconf CLK_TCK)

export async function processCpuMs (pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
  // Fields after the command name, which may itself hold spaces and parentheses: state is field 3.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const ticks = [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i]), 0) // utime stime cutime cstime (fields 14-17)
  return Math.round((ticks * 1000) / TICKS_PER_S)
}
