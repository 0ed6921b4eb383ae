import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { HypervisorError } from '../errors'
import { rpcTarget, syncGuestClock } from '../libvirt/guest-clock'
import { DomainReads, XML_INACTIVE, XML_INACTIVE_SECURE } from '../libvirt/rpc/domain-reads'
import { Virsh } from '../libvirt/lifecycle-virsh'
import { backingFiles, relinkBackingFiles } from '../libvirt/lifecycle-disk-chain'
import { domainResources, type Resources } from '../libvirt/lifecycle-resources'
import { diskFiles, domainName, rewriteSourcePaths } from '../libvirt/lifecycle-xml'
import { watchLiveArrival } from '../libvirt/arrival-watch'
import { LiveDestination } from '../libvirt/live-destination'
import { LiveSource, resumeAtSource, type LiveOffer } from '../libvirt/live-source'
import { LibvirtControl } from './libvirt-control'
import { readFolderDescriptor, writeFolderDescriptor, type ResourceOutcome, type RunAction, type RunState } from './vm-control'
import { DESCRIPTOR, DOMAIN_XML, FEED_CURSOR, isSafeFileName, KPI_CHANNEL, SAVED_STATE } from './vm-folder'
import type { Capacity, Demand, VmFile, VmHost } from './vm-host'

export interface LibvirtVmHostOptions {
  id: string
  /** libvirt connection URI, e.g. qemu:///system or qemu+unix:///system?socket=PATH. */
  uri: string
  /** VM `ID` lives in `vmDir/ID/`: its disks, saved state, descriptor; received VMs are put there too. */
  vmDir: string
  maxVms: number
  /** Memory and vCPUs its VMs may have in all; default: the machine's (`virsh nodeinfo`). */
  memoryMiB?: number
  vcpus?: number
  /**
   * 'live' (default): a running VM migrates live where the destination can take it that way, and
   * leaves by 'save' otherwise. Cold migration: 'save' suspends to a saved state file (the VM resumes
   * where it was), 'shutdown' powers it off.
   */
  leaveBy?: 'live' | 'save' | 'shutdown'
  /** Live migration: the longest pause for the switchover (default 300 ms). */
  maxDowntimeMs?: number
  /** Live migration: how long it may take before it is aborted (default: 800 s per GiB of memory and disks). */
  completionTimeoutMs?: number
  /** Live migration: the most it sends, in MiB/s, for the memory and for each disk (default: unlimited). */
  migrationBandwidthMiBs?: number
  /** Live migration: the downtime limit ramps up to maxDowntimeMs while the memory moves (default: off, the maximum from the start). */
  downtimeRamp?: boolean
  /** How long a guest gets to power off before it is destroyed ('shutdown' only). */
  shutdownTimeoutMs?: number
  /** How long a defined VM gets to reach the running state. */
  runningTimeoutMs?: number
  /** How long, after the VM stopped to leave, the host's agent gets to leave its final feed cursor (default 5 s). */
  handoverTimeoutMs?: number
  log?: (line: string) => void
}

/** A domain with the KPI feed channel has a host agent that leaves its final cursor (agent/feed/feed-handover.ts). */
const KPI_CHANNEL_NAME = `name='${KPI_CHANNEL}'`
const RESERVED = new Set([DOMAIN_XML, SAVED_STATE, DESCRIPTOR, FEED_CURSOR])
/** What the `.leaving` marker holds for a live leaving (a cold one holds the state it left from). */
const LEFT_LIVE = 'live'

/**
 * A VM host backed by a libvirt connection; the libvirt domain is named after the VM id.
 * Book-keeping folders under vmDir: `.incoming/ID/` (a transfer in progress), `.leaving/ID` (prepared
 * for leaving; holds the state it left from, or "live"), `.confirming/ID` (a confirm that has not finished:
 * abandon undoes it, `has` ignores it) and `.arriving/ID` (a live migration coming in: the incoming
 * domain is the migration's until confirm; abandon destroys it, `has` ignores it).
 */
export class LibvirtVmHost implements VmHost {
  readonly id: string
  /** Life-cycle changes (save, restore, define, start, ...). */
  private readonly virsh: Virsh
  /** Reads (state, XML, resources) over libvirt's remote protocol. */
  private readonly reads: DomainReads
  private machine: Promise<Resources> | undefined
  /** Run state and resources of a running domain (the Control interface). */
  private readonly control: LibvirtControl

  constructor (private readonly options: LibvirtVmHostOptions) {
    if (options.id === '') throw new Error('LibvirtVmHost: id must not be empty')
    if (!Number.isSafeInteger(options.maxVms) || options.maxVms < 0) throw new Error(`LibvirtVmHost: maxVms must be a count, got ${String(options.maxVms)}`)
    this.id = options.id
    this.virsh = new Virsh(options.uri)
    this.reads = new DomainReads(rpcTarget(options.uri))
    this.control = new LibvirtControl(options.uri, options.shutdownTimeoutMs)
  }

  async readDescriptor (vmId: string): Promise<unknown> {
    return readFolderDescriptor(this.vmPath(vmId))
  }

  async writeDescriptor (vmId: string, descriptor: unknown): Promise<void> {
    await writeFolderDescriptor(this.vmPath(vmId), descriptor)
  }

  async applyResources (vmId: string, demand: Demand): Promise<ResourceOutcome> {
    return this.control.applyResources(vmId, demand)
  }

  async changeRunState (vmId: string, action: RunAction): Promise<RunState> {
    return this.control.changeRunState(vmId, action)
  }

  /** Every domain on the connection counts, ours or not: they share the machine. */
  async capacity (): Promise<Capacity> {
    const domains = await this.reads.domainResources()
    const total = await this.total()
    const sum = (key: keyof Resources): number => domains.reduce((s, d) => s + d[key], 0)
    return { used: domains.length, max: this.options.maxVms, free: { memoryMiB: total.memoryMiB - sum('memoryMiB'), vcpus: total.vcpus - sum('vcpus') } }
  }

  async demand (vmId: string): Promise<Demand | undefined> {
    if (await this.reads.state(vmId) === undefined) return undefined
    return domainResources(await this.reads.xml(vmId, XML_INACTIVE))
  }

  /**
   * The connection has a domain of that name (not one a confirm is still setting up). Hosts that share
   * a libvirtd share its names too: none of them is offered a VM another one holds.
   */
  async has (vmId: string): Promise<boolean> {
    this.vmPath(vmId)
    return await this.reads.state(vmId) !== undefined && !await exists(this.marker('.confirming', vmId)) && !await exists(this.marker('.arriving', vmId))
  }

  async leavesLive (vmId: string): Promise<boolean> {
    return (this.options.leaveBy ?? 'live') === 'live' && await this.reads.state(vmId) === 'running'
  }

  async beginLiveLeaving (vmId: string, migrationId: string): Promise<LiveSource> {
    this.vmPath(vmId)
    const leaving = this.marker('.leaving', vmId)
    await mkdir(dirname(leaving), { recursive: true })
    await writeFile(leaving, `${LEFT_LIVE}\n`)
    try {
      return await LiveSource.begin({ uri: this.options.uri, domain: vmId, id: migrationId, maxDowntimeMs: this.options.maxDowntimeMs, bandwidthMiBs: this.options.migrationBandwidthMiBs, completionTimeoutMs: this.options.completionTimeoutMs, downtimeRamp: this.options.downtimeRamp, log: (line) => this.options.log?.(`host ${this.id}: ${line}`) })
    } catch (err) {
      // Nothing started: the VM runs on here as before.
      await rm(leaving, { force: true })
      throw err
    }
  }

  async prepareLiveArrival (vmId: string, migrationId: string, offer: LiveOffer): Promise<LiveDestination> {
    const arriving = this.marker('.arriving', vmId)
    await mkdir(dirname(arriving), { recursive: true })
    await writeFile(arriving, `${Date.now()}\n`)
    const destination = await LiveDestination.prepare({ uri: this.options.uri, id: migrationId, domain: vmId, dir: this.vmPath(vmId), offer })
    // Watched from Prepare on, so the watch listens before Finish resumes the domain here: a guest that
    // resets or stops right after it arrived is then logged as that, not only found shut off later.
    void watchLiveArrival({ uri: this.options.uri, domain: vmId, log: (line) => this.options.log?.(`host ${this.id}: ${line}`) }).done
    return destination
  }

  async prepareForLeaving (vmId: string): Promise<void> {
    const dir = this.vmPath(vmId)
    const state = await this.reads.state(vmId)
    if (state === undefined) throw new Error(`no domain ${vmId} on host ${this.id}`)
    const leaving = this.marker('.leaving', vmId)
    if (!await exists(leaving)) {
      await mkdir(dirname(leaving), { recursive: true })
      await writeFile(leaving, `${state}\n`)
    }
    if (state !== 'shut off') {
      const stopping = Date.now()
      if (this.options.leaveBy !== 'shutdown') {
        // Written under another name first: a save cut short must never be taken for a whole one.
        const partial = join(dir, `${SAVED_STATE}.partial`)
        await rm(partial, { force: true })
        await this.virsh.run('save', vmId, partial)
        await rename(partial, join(dir, SAVED_STATE))
      } else {
        await this.shutDown(vmId)
      }
      const xml = await this.writeDomainXml(vmId)
      if (xml.includes(KPI_CHANNEL_NAME) || xml.includes(KPI_CHANNEL_NAME.replaceAll("'", '"'))) await this.awaitFeedCursor(vmId, stopping)
      return
    }
    await this.writeDomainXml(vmId)
  }

  /**
   * The agent's last ack may still have been on its way to the guest when the VM stopped: its final
   * cursor, written when the feed ended, tells the next host's agent where to go on. Without it in
   * time the guest's own acknowledged position is the fallback (rows may then reach two agents).
   */
  private async awaitFeedCursor (vmId: string, since: number): Promise<void> {
    const path = join(this.vmPath(vmId), FEED_CURSOR)
    const until = Date.now() + (this.options.handoverTimeoutMs ?? 5000)
    for (;;) {
      const written = await stat(path).then((s) => s.mtimeMs, () => undefined)
      if (written !== undefined && written >= since) {
        const final = await readFile(path, 'utf8').then((text) => (JSON.parse(text) as { final?: unknown }).final === true, () => false)
        if (final) return
      }
      if (Date.now() >= until) break
      await sleep(100)
    }
    // An older one must not travel (nor change under the manifest if the agent writes it late).
    await rm(path, { force: true })
    this.options.log?.(`host ${this.id}: no final feed cursor from the host's agent for ${vmId} within ${this.options.handoverTimeoutMs ?? 5000} ms: the guest's acknowledged position is the fallback`)
  }

  async stayHere (vmId: string): Promise<void> {
    const dir = this.vmPath(vmId)
    const leaving = this.marker('.leaving', vmId)
    const before = (await readFile(leaving, 'utf8').catch(() => undefined))?.trim()
    if (before === undefined) return
    if (before === LEFT_LIVE) {
      // A live migration cancelled: libvirt leaves the domain paused here once its job ends; it resumes.
      if (await this.reads.state(vmId) !== undefined && !await resumeAtSource({ uri: this.options.uri, domain: vmId })) throw new HypervisorError('NOT_RUNNING', `domain ${vmId} did not resume after its live migration was cancelled`)
      await rm(leaving, { force: true })
      return
    }
    if (before !== 'shut off' && await this.reads.state(vmId) === 'shut off') {
      if (await exists(join(dir, SAVED_STATE))) {
        await this.virsh.run('restore', join(dir, SAVED_STATE), before === 'paused' ? '--paused' : '--running')
        if (before !== 'paused') void syncGuestClock({ uri: this.options.uri, domain: vmId, log: this.options.log })
      } else {
        await this.virsh.run('start', vmId)
      }
    }
    // A saved state left behind would, restored later, roll the disks back.
    await rm(join(dir, SAVED_STATE), { force: true })
    await rm(join(dir, DOMAIN_XML), { force: true })
    await rm(join(dir, FEED_CURSOR), { force: true })
    await rm(leaving, { force: true })
  }

  async listFiles (vmId: string): Promise<VmFile[]> {
    const dir = this.vmPath(vmId)
    const state = await this.reads.state(vmId)
    if (state === undefined) throw new Error(`no domain ${vmId} on host ${this.id}`)
    if (state !== 'shut off') throw new Error(`domain ${vmId} is ${state}: prepare it for leaving before listing its files`)
    const xml = await this.writeDomainXml(vmId)
    const paths = [join(dir, DOMAIN_XML)]
    for (const disk of diskFiles(xml)) {
      if (dirname(disk) !== dir) throw new HypervisorError('UNSUPPORTED_VM', `disk ${basename(disk)} of ${vmId} is outside its VM directory`)
      // A qcow2 overlay travels with its base images (they may live anywhere, e.g. a shared image
      // cache: only copied, never removed here); the Destination gets them all in the VM directory.
      for (const image of [disk, ...await backingFiles(disk)]) {
        if (RESERVED.has(basename(image)) || !isSafeFileName(basename(image))) throw new HypervisorError('UNSUPPORTED_VM', `disk file name ${JSON.stringify(basename(image))} of ${vmId} is reserved or not a plain name`)
        paths.push(image)
      }
    }
    for (const name of [SAVED_STATE, DESCRIPTOR, FEED_CURSOR]) if (await exists(join(dir, name))) paths.push(join(dir, name))
    const files: VmFile[] = []
    for (const path of new Set(paths)) {
      const name = basename(path)
      if (files.some((f) => f.name === name)) throw new HypervisorError('UNSUPPORTED_VM', `two files of ${vmId} are named ${JSON.stringify(name)}: the transfer carries flat names`)
      files.push({ name, size: (await stat(path)).size, path })
    }
    return files.sort((a, b) => a.name.localeCompare(b.name))
  }

  async receive (vmId: string): Promise<string> {
    const dir = this.marker('.incoming', vmId)
    await mkdir(dir, { recursive: true })
    return dir
  }

  async confirm (vmId: string, descriptor?: unknown): Promise<void> {
    if (await exists(this.marker('.arriving', vmId))) return await this.confirmLiveArrival(vmId, descriptor)
    const dir = this.vmPath(vmId)
    const incoming = this.marker('.incoming', vmId)
    const confirming = this.marker('.confirming', vmId)
    if (!await exists(confirming)) {
      if (!await exists(incoming)) {
        if (await this.has(vmId)) return await this.keepRunning(vmId, { start: true }) // confirmed before
        throw new Error(`nothing was received for ${vmId} on host ${this.id}`)
      }
      // Never take over a domain this host already runs under the same name.
      if (await this.reads.state(vmId) !== undefined) throw new Error(`host ${this.id} already has a domain named ${vmId}`)
      await mkdir(dirname(confirming), { recursive: true })
      await writeFile(confirming, `${Date.now()}\n`)
    }
    try {
      if (await exists(incoming)) {
        await rm(dir, { recursive: true, force: true })
        await rename(incoming, dir)
      }
      // The host's agent follows VM folders that have a descriptor (agent/discovery): a VM placed
      // without descriptor.json among its files gets the one its Migration request carried.
      if (isObject(descriptor) && !await exists(join(dir, DESCRIPTOR))) await writeFile(join(dir, DESCRIPTOR), `${JSON.stringify(descriptor, null, 2)}\n`)
      const xml = rewriteSourcePaths(await readFile(join(dir, DOMAIN_XML), 'utf8'), dir)
      if (domainName(xml) !== vmId) throw new HypervisorError('UNSUPPORTED_VM', `the received domain XML names ${String(domainName(xml))}, not ${vmId}`)
      await writeFile(join(dir, DOMAIN_XML), xml)
      for (const disk of diskFiles(xml)) await relinkBackingFiles(disk, dir)
      await this.virsh.run('define', join(dir, DOMAIN_XML))
      let restored = false
      if (await this.reads.state(vmId) === 'shut off') {
        const saved = join(dir, SAVED_STATE)
        if (await exists(saved)) {
          restored = true
          // The saved state carries the XML QEMU ran with: its paths are the Source's too.
          const live = join(dir, 'restore.xml')
          await writeFile(live, rewriteSourcePaths(await this.virsh.run('save-image-dumpxml', saved, '--security-info'), dir))
          await this.virsh.run('restore', saved, '--xml', live, '--running')
        } else {
          await this.virsh.run('start', vmId)
        }
      }
      await this.waitRunning(vmId)
      // The restored guest's clock stands where it was saved: set it from ours, in the background (the VM already runs).
      if (restored) void syncGuestClock({ uri: this.options.uri, domain: vmId, log: this.options.log })
      await rm(join(dir, SAVED_STATE), { force: true })
      await rm(join(dir, 'restore.xml'), { force: true })
      await rm(confirming, { force: true })
    } catch (err) {
      // Back to "received, not confirmed": no domain, the files in .incoming for a retry or abandon.
      await this.virsh.destroyIfActive(vmId).catch(() => {})
      await this.virsh.undefineIfDefined(vmId).catch(() => {})
      if (!await exists(incoming) && await exists(dir)) await rename(dir, incoming).catch(() => {})
      await rm(confirming, { force: true })
      throw err
    }
  }

  /** A live migration's Finish made the domain run here already: it only becomes this host's. */
  private async confirmLiveArrival (vmId: string, descriptor: unknown): Promise<void> {
    const dir = this.vmPath(vmId)
    // Shut off already, it is refused (abandon destroys it): the Source still holds the VM, memory and all.
    await this.keepRunning(vmId, { start: false })
    if (isObject(descriptor) && !await exists(join(dir, DESCRIPTOR))) await writeFile(join(dir, DESCRIPTOR), `${JSON.stringify(descriptor, null, 2)}\n`)
    await rm(this.marker('.arriving', vmId), { force: true })
  }

  async abandon (vmId: string): Promise<void> {
    const dir = this.vmPath(vmId)
    const arriving = this.marker('.arriving', vmId)
    if (await exists(arriving)) {
      // A live migration that was not committed: whatever arrived (a domain Finish resumed included) goes.
      await this.virsh.destroyIfActive(vmId)
      await this.virsh.undefineIfDefined(vmId)
      await rm(dir, { recursive: true, force: true })
      await rm(arriving, { force: true })
    }
    const confirming = this.marker('.confirming', vmId)
    if (await exists(confirming)) {
      // A confirm cut short (the process died): the domain and its folder are the transfer's, not a VM's here.
      await this.virsh.destroyIfActive(vmId)
      await this.virsh.undefineIfDefined(vmId)
      await rm(dir, { recursive: true, force: true })
      await rm(confirming, { force: true })
    }
    await rm(this.marker('.incoming', vmId), { recursive: true, force: true })
  }

  async release (vmId: string): Promise<void> {
    const dir = this.vmPath(vmId)
    // After a live migration's Confirm the domain is gone already: one remote-protocol read instead of virsh processes.
    const state = await this.reads.state(vmId)
    if (state !== undefined && state !== 'shut off') await this.virsh.run('destroy', vmId)
    if (state !== undefined) await this.virsh.run('undefine', vmId, '--managed-save')
    await rm(dir, { recursive: true, force: true })
    await rm(this.marker('.leaving', vmId), { force: true })
  }

  private async total (): Promise<Resources> {
    const { memoryMiB, vcpus } = this.options
    if (memoryMiB !== undefined && vcpus !== undefined) return { memoryMiB, vcpus }
    // The machine does not change while we run: ask libvirt once (a failed answer is asked again).
    this.machine ??= this.reads.nodeInfo().catch((err) => { this.machine = undefined; throw err })
    const machine = await this.machine
    return { memoryMiB: memoryMiB ?? machine.memoryMiB, vcpus: vcpus ?? machine.vcpus }
  }

  private async writeDomainXml (vmId: string): Promise<string> {
    // --security-info: the Destination needs the whole definition (e.g. a VNC password) to define it.
    const xml = await this.reads.xml(vmId, XML_INACTIVE_SECURE)
    await writeFile(join(this.vmPath(vmId), DOMAIN_XML), xml)
    return xml
  }

  private async shutDown (vmId: string): Promise<void> {
    await this.virsh.run('shutdown', vmId).catch(() => {})
    const until = Date.now() + (this.options.shutdownTimeoutMs ?? 60_000)
    while (Date.now() < until) {
      if (await this.reads.state(vmId) === 'shut off') return
      await sleep(250)
    }
    await this.virsh.destroyIfActive(vmId)
  }

  /**
   * A confirmed VM is this host's to run, whatever stopped it since it arrived: a commit repeated after
   * the site's process died (the first one had confirmed it) may find it paused, or shut off (its
   * domain went down with that process or with its guest). Paused, it resumes; shut off, it starts
   * from its disks when `start` (the memory that came live is lost, and the VM runs at exactly one place).
   */
  private async keepRunning (vmId: string, o: { start: boolean }): Promise<void> {
    const state = await this.reads.state(vmId)
    const action = state === 'paused' ? 'resume' : state === 'shut off' && o.start ? 'start' : undefined
    if (action !== undefined) {
      // libvirt's reason (crashed, destroyed, shutdown, ...) says what stopped it.
      const reason = (await this.virsh.run('domstate', '--reason', vmId).catch(() => state!)).trim()
      this.options.log?.(`host ${this.id}: ${vmId} is ${reason} though it was confirmed here: ${action}`)
      await this.virsh.run(action, vmId)
    }
    await this.waitRunning(vmId)
  }

  private async waitRunning (vmId: string): Promise<void> {
    const until = Date.now() + (this.options.runningTimeoutMs ?? 30_000)
    let state = await this.reads.state(vmId)
    while (state !== 'running' && Date.now() < until) {
      await sleep(200)
      state = await this.reads.state(vmId)
    }
    if (state !== 'running') throw new HypervisorError('NOT_RUNNING', `domain ${vmId} is ${String(state)}, not running`)
  }

  private vmPath (vmId: string): string {
    if (!isSafeFileName(vmId)) throw new Error(`VM id ${JSON.stringify(vmId)} is not a plain name`)
    return join(this.options.vmDir, vmId)
  }

  private marker (folder: '.incoming' | '.leaving' | '.confirming' | '.arriving', vmId: string): string {
    return join(this.vmPath(vmId), '..', folder, vmId)
  }
}

function isObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

async function exists (path: string): Promise<boolean> {
  return await stat(path).then(() => true, () => false)
}

function sleep (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
