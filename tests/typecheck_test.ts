// The scripts no test imports statically — benchmarks and scenario scripts
// (tests load scenarios dynamically) — must type-check too.
import { equal } from "node:assert/strict";

Deno.test("bench/ and scenarios/ type-check", async () => {
  const root = new URL("../", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["check", "--quiet", "bench/", "scenarios/"],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  equal(out.code, 0, new TextDecoder().decode(out.stderr));
});
