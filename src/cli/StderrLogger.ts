/**
 * Log lines go to stderr (stdout carries `--json` output only), above the
 * progress line when one is drawn: `<time> <LEVEL> <message>`.
 *
 * @module
 */
import { Cause, Logger } from "effect"
import { statusLine } from "../Progress.ts"

const render = (message: unknown): string =>
  Array.isArray(message) ? message.map(render).join(" ") : typeof message === "string" ? message : String(message)

/** The CLI's logger. */
export const stderrLogger = Logger.make((options) => {
  const cause = options.cause.reasons.length > 0 ? `\n${Cause.pretty(options.cause)}` : ""
  statusLine.write(`${options.date.toISOString()} ${options.logLevel.toUpperCase()} ${render(options.message)}${cause}\n`)
})

/** Replaces the default loggers with `stderrLogger`. */
export const layer = Logger.layer([stderrLogger])
