/**
 * The `cas-migrator` executable: parse the command line, run, exit with the
 * command's code (2 for bad usage).
 *
 * @module
 */
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Cause, Effect, Exit, Runtime } from "effect"
import { CliError, Command } from "effect/cli"
import { VERSION } from "../Version.ts"
import { cli, ExitCode } from "./Cli.ts"
import * as StderrLogger from "./StderrLogger.ts"

const teardown: Runtime.Teardown = (exit, onExit) =>
  Exit.isFailure(exit) && CliError.isCliError(Cause.squash(exit.cause))
    ? onExit(ExitCode.Unusable)
    : Runtime.defaultTeardown(exit, onExit)

Command.run(cli, { version: VERSION }).pipe(
  Effect.provide([NodeServices.layer, StderrLogger.layer]),
  NodeRuntime.runMain({ teardown, disableErrorReporting: true }),
)
