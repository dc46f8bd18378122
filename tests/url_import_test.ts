// Imports mod.ts by URL from a local HTTP server, in a fresh process with no
// deno.json around it, as a user's script would (`import … from "<url>/mod.ts"`).
import { equal, ok as assert } from "node:assert/strict";
import { fileURLToPath as fromFileUrl } from "node:url";

const root = fromFileUrl(new URL("../", import.meta.url));

Deno.test("mod.ts works imported by URL with no deno.json", async () => {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (req) => {
      const path = decodeURIComponent(new URL(req.url).pathname);
      if (path.includes("..")) return new Response("bad path", { status: 400 });
      try {
        const body = await Deno.readFile(root + path.slice(1));
        return new Response(body, {
          headers: { "content-type": "application/typescript" },
        });
      } catch {
        return new Response("not found", { status: 404 });
      }
    },
  );
  const port = server.addr.port;
  const dir = await Deno.makeTempDir();
  try {
    const script = `${dir}/user.ts`;
    await Deno.writeTextFile(
      script,
      `import { assemble, disassemble, runProgram } from "http://127.0.0.1:${port}/mod.ts";
const prog = assemble("r0 = 6\\nr0 *= 7\\nexit\\n");
console.log(disassemble(prog).join("\\n"));
console.log("r0=" + runProgram(prog).r0);
`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--no-config",
        "--no-lock",
        `--allow-import=127.0.0.1:${port}`,
        "--quiet",
        script,
      ],
      cwd: dir,
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    const stderr = new TextDecoder().decode(out.stderr);
    equal(out.code, 0, `child failed: ${stderr}`);
    assert(stdout.includes("0: (b7) r0 = 6"), stdout);
    assert(stdout.includes("r0=42"), stdout);
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
