/**
 * A CPU profiler a bench process starts and stops on request over IPC (see
 * profile.ts), so that a profile covers the measured window only.
 */
import * as fs from "node:fs"
import { Session } from "node:inspector/promises"

let session: Session | undefined

export const startProfile = async (): Promise<string> => {
  session = new Session()
  session.connect()
  await session.post("Profiler.enable")
  await session.post("Profiler.start")
  return "started"
}

/** Stops the profiler and writes the profile to `file` (a .cpuprofile). */
export const stopProfile = async (file: string): Promise<string> => {
  if (session === undefined) return "not started"
  const { profile } = await session.post("Profiler.stop")
  fs.writeFileSync(file, JSON.stringify(profile))
  session.disconnect()
  session = undefined
  return file
}
