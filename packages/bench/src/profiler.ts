/**
 * A CPU profiler a bench process starts and stops on request over IPC (see
 * profile.ts), so that a profile covers the measured window only. With
 * `PROFILE_ALLOC=1` in the environment it samples allocations instead
 * (V8's sampling heap profiler, every 4 KiB allocated on average), written
 * as a .heapprofile.
 */
import * as fs from "node:fs"
import { Session } from "node:inspector/promises"

let session: Session | undefined
const alloc = process.env.PROFILE_ALLOC === "1"

export const startProfile = async (): Promise<string> => {
  session = new Session()
  session.connect()
  if (alloc) {
    await session.post("HeapProfiler.enable")
    // Objects collected before the profile is taken are kept in it: this
    // counts what was allocated, not what survived.
    await session.post("HeapProfiler.startSampling", { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true })
  } else {
    await session.post("Profiler.enable")
    await session.post("Profiler.start")
  }
  return "started"
}

/** Stops the profiler and writes the profile to `file` (a .cpuprofile, or a .heapprofile). */
export const stopProfile = async (file: string): Promise<string> => {
  if (session === undefined) return "not started"
  if (alloc) {
    const { profile } = await session.post("HeapProfiler.stopSampling")
    file = file.replace(/\.cpuprofile$/, ".heapprofile")
    fs.writeFileSync(file, JSON.stringify(profile))
  } else {
    const { profile } = await session.post("Profiler.stop")
    fs.writeFileSync(file, JSON.stringify(profile))
  }
  session.disconnect()
  session = undefined
  return file
}
