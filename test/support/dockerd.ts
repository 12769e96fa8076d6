/**
 * A real Docker daemon for a test: Debian's dockerd 20.10 started on a data
 * root with a storage driver (scripts/infra/dockerd/start.sh), a `docker`
 * client bound to it, and the daemon stopped however the test ends.
 *
 * @module
 */
import assert from "node:assert/strict"
import { spawnSync } from "node:child_process"
import * as path from "node:path"
import process from "node:process"
import { repo, sh, tempDir } from "./cli.ts"

const infra = path.join(repo, "scripts/infra/dockerd")

/** Whether Debian's dockerd is installed (npm test installs it). */
export const haveDockerd = spawnSync("sh", ["-c", "command -v dockerd && command -v containerd"]).status === 0

export interface Dockerd {
  /** Runs `docker ARGS`; fails the test unless it exits 0; its stdout. */
  readonly docker: (...args: Array<string>) => string
  /** Runs `docker ARGS` and returns the whole result. */
  readonly tryDocker: (...args: Array<string>) => { status: number | null; stdout: string; stderr: string }
  /** The daemon's state directory (its containerd socket is under the run directory named in `run-dir`). */
  readonly state: string
}

/** Runs `body` with a daemon on `dataRoot` using `driver`; stops it after. */
export const withDockerd = <A>(dataRoot: string, driver: string, body: (daemon: Dockerd) => A): A => {
  const state = path.join(tempDir("dockerd"), "state")
  const host = sh(`bash "$1/start.sh" "$2" "$3" "$4"`, infra, state, dataRoot, driver).trim()
  const tryDocker = (...args: Array<string>) => {
    const result = spawnSync("docker", args, { encoding: "utf8", env: { ...process.env, DOCKER_HOST: host } })
    return { status: result.status, stdout: result.stdout, stderr: result.stderr }
  }
  const docker = (...args: Array<string>) => {
    const result = tryDocker(...args)
    assert.equal(result.status, 0, `docker ${args.join(" ")}: ${result.stderr}`)
    return result.stdout
  }
  try {
    return body({ docker, tryDocker, state })
  } finally {
    spawnSync("bash", [path.join(infra, "stop.sh"), state])
  }
}
