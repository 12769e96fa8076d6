/**
 * The `cas-migrator` executable: parse the command line, run, exit with the
 * command's code (2 for bad usage). Logs, and any unexpected failure, go to
 * stderr.
 *
 * @module
 */
// First: it listens for Ctrl-C while the other modules load.
import { replayEarlySignal } from "./EarlySignals.ts"
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Cause, Effect, Exit, Runtime } from "effect"
import { CliError, Command } from "effect/cli"
import { VERSION } from "../Version.ts"
import { cli, ExitCode } from "./Cli.ts"
import * as StderrLogger from "./StderrLogger.ts"

const isUsageError = (cause: Cause.Cause<unknown>) => CliError.isCliError(Cause.squash(cause))

const teardown: Runtime.Teardown = (exit, onExit) =>
  Exit.isFailure(exit) && isUsageError(exit.cause) ? onExit(ExitCode.Unusable) : Runtime.defaultTeardown(exit, onExit)

Command.run(cli, { version: VERSION }).pipe(
  // The command line reports its own usage errors; anything else unexpected is logged here.
  Effect.tapCause((cause) =>
    Cause.hasInterruptsOnly(cause) || isUsageError(cause) ? Effect.void : Effect.logError("cas-migrator failed", cause)
  ),
  Effect.provide([NodeServices.layer, StderrLogger.layer]),
  NodeRuntime.runMain({ teardown, disableErrorReporting: true }),
)
replayEarlySignal()
