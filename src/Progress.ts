/**
 * A one-line progress display on stderr for long runs, drawn only when
 * stderr is a terminal: bytes hashed, MB/s, layers done/total, ETA.
 *
 * @module
 */
import process from "node:process"

const MB = 1e6
const REDRAW_MS = 200

/** The progress line currently on screen, so that a log line can take its place and give it back. */
export const statusLine = {
  current: undefined as Progress | undefined,
  /** Writes `text` (ending in a newline) to stderr above the progress line. */
  write(text: string): void {
    const active = statusLine.current
    active?.clear()
    process.stderr.write(text)
    active?.redraw()
  },
}

export class Progress {
  private bytes = 0
  private layersDone = 0
  private layersTotal = 0
  private estimatedBytes = 0
  private readonly started = performance.now()
  private lastDraw = 0
  private drawn = false

  constructor(private readonly enabled: boolean = process.stderr.isTTY === true) {
    if (enabled) statusLine.current = this
  }

  /** Draws the line again (after a log line took its place). */
  redraw(): void {
    this.draw(true)
  }

  /** Removes the line for good. */
  stop(): void {
    this.clear()
    if (statusLine.current === this) statusLine.current = undefined
  }

  plan(layers: number, estimatedBytes: number): void {
    this.layersTotal = layers
    this.estimatedBytes = estimatedBytes
    this.draw(true)
  }

  addBytes(bytes: number): void {
    this.bytes += bytes
    this.draw(false)
  }

  layerDone(): void {
    this.layersDone++
    this.draw(false)
  }

  /** Bytes hashed so far and seconds since the start. */
  get totals(): { readonly bytes: number; readonly seconds: number } {
    return { bytes: this.bytes, seconds: (performance.now() - this.started) / 1000 }
  }

  /** Removes the line so that what follows starts clean. */
  clear(): void {
    if (this.enabled && this.drawn) process.stderr.write("\r\x1b[2K")
    this.drawn = false
  }

  private draw(force: boolean): void {
    if (!this.enabled) return
    const now = performance.now()
    if (!force && now - this.lastDraw < REDRAW_MS) return
    this.lastDraw = now
    const seconds = (now - this.started) / 1000
    const rate = seconds > 0 ? this.bytes / seconds : 0
    const remaining = this.estimatedBytes - this.bytes
    const eta = rate > 0 && remaining > 0 ? ` ETA ${formatDuration(remaining / rate)}` : ""
    const line = `${(this.bytes / MB).toFixed(0)} MB, ${(rate / MB).toFixed(0)} MB/s, ` +
      `layers ${this.layersDone}/${this.layersTotal}${eta}`
    process.stderr.write(`\r\x1b[2K${line}`)
    this.drawn = true
  }
}

const formatDuration = (seconds: number): string => {
  const s = Math.ceil(seconds)
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`
}
