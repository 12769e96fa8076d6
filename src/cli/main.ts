/**
 * The `cas-migrator` executable.
 *
 * @module
 */
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Effect } from "effect"
import { Command } from "effect/cli"
import { cli } from "./Cli.ts"
import { VERSION } from "../Version.ts"

Command.run(cli, { version: VERSION }).pipe(Effect.provide(NodeServices.layer), NodeRuntime.runMain)
