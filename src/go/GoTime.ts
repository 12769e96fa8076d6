/**
 * Go 1.5's `time.Time` in JSON, as Docker 1.10 decoded and re-encoded image
 * `created` times: `UnmarshalJSON` parses RFC 3339 (so `null` is an error, as
 * in the `nullcreated` golden), `MarshalJSON` prints RFC 3339 with trailing
 * fraction zeros trimmed and a zero offset as `Z` (Go's `Z07:00` prints `Z`
 * for any zero offset, whatever the zone, so the result does not depend on the
 * machine's time zone).
 *
 * @example
 * ```ts
 * formatGoTime(parseGoTime("2015-06-01T10:00:00.120000+02:00")) // "2015-06-01T10:00:00.12+02:00"
 * ```
 * @module
 */

/** A time as Go keeps it for printing: wall-clock fields in its zone, and the zone's offset in seconds. */
export interface GoTime {
  readonly year: number
  readonly month: number
  readonly day: number
  readonly hour: number
  readonly minute: number
  readonly second: number
  readonly nanosecond: number
  readonly offsetSeconds: number
}

/** Go's zero `time.Time`: what a missing `created` decodes to. */
export const ZERO_TIME: GoTime = {
  year: 1,
  month: 1,
  day: 1,
  hour: 0,
  minute: 0,
  second: 0,
  nanosecond: 0,
  offsetSeconds: 0,
}

/** A value Go's time parser rejects, with Go's message. */
export class GoTimeError extends Error {
  override readonly name = "GoTimeError"
}

const LAYOUT = "2006-01-02T15:04:05Z07:00"
const isLeap = (year: number) => year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)
const daysIn = (month: number, year: number) =>
  month === 2 ? (isLeap(year) ? 29 : 28) : [4, 6, 9, 11].includes(month) ? 30 : 31

/** `time.Parse(RFC3339, value)` as Go 1.5 does it (fractional seconds accepted, `Z` or `±hh:mm`). */
export const parseGoTime = (value: string): GoTime => {
  const fail = (detail: string): never => {
    throw new GoTimeError(`parsing time ${JSON.stringify(value)} as "${LAYOUT}": ${detail}`)
  }
  let at = 0
  const digits = (count: number, element: string): number => {
    const text = value.slice(at, at + count)
    if (text.length !== count || !/^[0-9]+$/.test(text)) fail(`cannot parse ${JSON.stringify(value.slice(at))} as "${element}"`)
    at += count
    return Number(text)
  }
  const literal = (text: string) => {
    if (value.slice(at, at + text.length) !== text) fail(`cannot parse ${JSON.stringify(value.slice(at))} as "${text}"`)
    at += text.length
  }
  const year = digits(4, "2006")
  literal("-")
  const month = digits(2, "01")
  literal("-")
  const day = digits(2, "02")
  literal("T")
  const hour = digits(2, "15")
  literal(":")
  const minute = digits(2, "04")
  literal(":")
  const second = digits(2, "05")
  let nanosecond = 0
  if (value[at] === "." && /[0-9]/.test(value[at + 1] ?? "")) {
    let end = at + 1
    while (/[0-9]/.test(value[end] ?? "")) end++
    nanosecond = Number(value.slice(at + 1, Math.min(end, at + 10)).padEnd(9, "0"))
    at = end
  }
  let offsetSeconds = 0
  if (value[at] === "Z") {
    at++
  } else {
    const sign = value[at]
    if (sign !== "+" && sign !== "-") fail(`cannot parse ${JSON.stringify(value.slice(at))} as "Z07:00"`)
    at++
    const hours = digits(2, "Z07:00")
    literal(":")
    const minutes = digits(2, "Z07:00")
    offsetSeconds = (sign === "-" ? -1 : 1) * (hours * 3600 + minutes * 60)
  }
  if (at !== value.length) fail(`extra text: ${value.slice(at)}`)
  if (month < 1 || month > 12) fail("month out of range")
  if (hour > 23) fail("hour out of range")
  if (minute > 59) fail("minute out of range")
  if (second > 59) fail("second out of range")
  if (day < 1 || day > daysIn(month, year)) fail("day out of range")
  return { year, month, day, hour, minute, second, nanosecond, offsetSeconds }
}

/** `Time.UnmarshalJSON`: the raw JSON token must be a quoted RFC 3339 string (`null` fails, as in Go 1.5). */
export const unmarshalGoTime = (rawToken: string, text: string | undefined): GoTime => {
  if (text === undefined) {
    throw new GoTimeError(`parsing time ${JSON.stringify(rawToken)} as "\\"${LAYOUT}\\"": cannot parse ${JSON.stringify(rawToken)} as "\\""`)
  }
  return parseGoTime(text)
}

const pad = (n: number, width: number) => String(n).padStart(width, "0")

/** `Time.MarshalJSON`'s text (without quotes): RFC 3339 with nanoseconds, trailing zeros trimmed. */
export const formatGoTime = (time: GoTime): string => {
  if (time.year < 0 || time.year >= 10000) throw new GoTimeError("Time.MarshalJSON: year outside of range [0,9999]")
  const fraction = time.nanosecond === 0 ? "" : "." + pad(time.nanosecond, 9).replace(/0+$/, "")
  const offset = time.offsetSeconds
  const zone = offset === 0
    ? "Z"
    : `${offset < 0 ? "-" : "+"}${pad(Math.floor(Math.abs(offset) / 3600), 2)}:${pad(Math.floor(Math.abs(offset) % 3600 / 60), 2)}`
  return `${pad(time.year, 4)}-${pad(time.month, 2)}-${pad(time.day, 2)}T${pad(time.hour, 2)}:${pad(time.minute, 2)}:` +
    `${pad(time.second, 2)}${fraction}${zone}`
}
