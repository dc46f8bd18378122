/**
 * bpfsim's command line. Thin by design: parsing and printing live in
 * `lib/cli/`, one file per command; the work is done by the library.
 *
 * Run `deno run -A cli.ts --help` for the commands.
 * @module
 */
import { main } from "./lib/cli/main.ts";

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    // An error that is not the user's: say so plainly, without a stack trace.
    console.error(`bpfsim: internal error: ${(e as Error).message ?? e}`);
    Deno.exit(70);
  }
}
