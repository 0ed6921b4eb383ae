import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { seriesValue, type AgentProcess } from '../../support/agent-process'
import type { AgentSetup } from '../../support/agent-setup'
import { FakeGuest, type PeerConnection } from '../../support/fake-feed-peers'
import { FEDVM_JS } from '../../../support/dist-paths'
import type { Teardownable } from '../../../support/teardownable'

// What the dead-letter tests share: the real agent fed by a guest the test plays, one delivery per
// row, and `fedvm agent dead-letters` run as the operator runs it (its own process).

/** Each committed row is sent at once as one raw delivery: a row the test writes is a delivery it can follow. */
export const RAW = { metric: 'kpi:k.v', monitoringIntervalMs: 0, deliveryIntervalMs: 0, format: 'raw' }
const EPOCH = 'abcdefabcdefabcd'

/** A committed row of KPI `k` whose value is its seq, with data time `ts`. */
export function rowLine (seq: number, ts: number): string {
  return JSON.stringify({ v: 1, t: 'row', seq: String(seq), kpi: 'k', ts, cols: ['v'], vals: [seq] }) + '\n'
}

/** The guest's stats line answering the agent's hello: `last` rows committed so far. */
function statsLine (last: number, hello: unknown): string {
  return JSON.stringify({ v: 1, t: 'stats', committed: last, refused: 0, last: String(last), epoch: EPOCH, acked: '0', hello }) + '\n'
}

const run = promisify(execFile)

/** `fedvm agent dead-letters --config FILE ARGS...`; rejects with its exit `code` and `stderr` when it fails. */
export function deadLettersCommand (configFile: string, ...args: string[]): Promise<{ stdout: string, stderr: string }> {
  return run(process.execPath, [FEDVM_JS(), 'agent', 'dead-letters', '--config', configFile, ...args])
}

/** Its output, one object a line: the entries listed, or those `--requeue` moved. */
export async function deadLetterLines (configFile: string, ...args: string[]): Promise<Array<Record<string, any>>> {
  return (await deadLettersCommand(configFile, ...args)).stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, any>)
}

/**
 * The agent of `setup` (its config written) delivering to one consumer, fed by a guest the test
 * plays: `agent` and `connection` are the ones running now (a test stops and starts it again).
 */
export class GuestFedAgent {
  agent!: AgentProcess
  connection!: PeerConnection

  private constructor (private readonly setup: AgentSetup, private readonly guest: FakeGuest, readonly consumer: string) {}

  /** Listens as the guest, starts the agent and answers its hello (nothing committed yet). */
  static async start (t: Teardownable, setup: AgentSetup, consumer: string): Promise<GuestFedAgent> {
    const fed = new GuestFedAgent(setup, await FakeGuest.listen(t, setup.feedPath), consumer)
    await fed.restart(0)
    return fed
  }

  /** Starts the agent (again) and answers its hello: `last` rows committed so far. */
  async restart (last: number): Promise<void> {
    this.agent = await this.setup.startAgent()
    this.connection = await this.guest.next()
    this.connection.write(statsLine(last, (await this.connection.line(0)).id))
  }

  /** A /metrics series of the running agent: the consumer's unless other labels are given. */
  async metric (name: string, labels: Record<string, string> = { consumer: this.consumer }): Promise<number | undefined> {
    return seriesValue(await this.agent.metrics(), name, labels)
  }

  /** The running agent's last log lines, for a wait's failure message. */
  readonly context = (): string => this.agent.log().split('\n').slice(-10).join('\n')

  /** `fedvm agent dead-letters` for this agent's config: the entries listed, or with `--requeue` those moved. */
  deadLetters (...args: string[]): Promise<Array<Record<string, any>>> {
    return deadLetterLines(this.setup.configFile, ...args)
  }
}
