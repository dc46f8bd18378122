/**
 * Access to the committed fixture objects (tests/fixtures) and the oracle's
 * recorded verdicts beside them. Test helper, not a test.
 * @module
 */
import { loadObject, type LoadOptions } from "../../lib/elf/object.ts";
import type { ObjectFile } from "../../lib/elf/types.ts";

/** Directory of the fixtures, with a trailing slash. */
export const FIXTURES: URL = new URL("../fixtures/", import.meta.url);

/** Bytes of a fixture object, e.g. `readFixture("maps_btf.o")`. */
export function readFixture(path: string): Uint8Array {
  return Deno.readFileSync(new URL(path, FIXTURES));
}

/** Loads a fixture object; `path` is relative to tests/fixtures and names it in errors. */
export function loadFixture(path: string, options?: LoadOptions): ObjectFile {
  return loadObject(readFixture(path), path, options);
}

/** One line of `oracle verify` output. */
export interface OracleVerdict {
  readonly object: string;
  readonly program: string | null;
  readonly section: string | null;
  readonly verdict: "accept" | "reject";
  readonly errno: number;
  readonly insns: number | null;
  /** The log's `processed N insns` figure (absent when the load failed first). */
  readonly processed?: number;
  readonly message: string;
}

/** The recorded `oracle verify` lines of an object (`X.o` → `X.oracle.json`). */
export function readOracle(objectPath: string): OracleVerdict[] {
  const text = Deno.readTextFileSync(
    new URL(objectPath.replace(/\.o$/, ".oracle.json"), FIXTURES),
  );
  return text.split("\n").filter((l) => l.trim() !== "").map((l) =>
    JSON.parse(l) as OracleVerdict
  );
}

/** Paths (relative to tests/fixtures) of every object with a recorded verdict. */
export function objectsWithOracle(): string[] {
  const out: string[] = [];
  const walk = (dir: URL, prefix: string) => {
    for (const e of Deno.readDirSync(dir)) {
      if (e.isDirectory) {
        walk(new URL(`${e.name}/`, dir), `${prefix}${e.name}/`);
      } else if (e.name.endsWith(".oracle.json")) {
        out.push(`${prefix}${e.name.replace(/\.oracle\.json$/, ".o")}`);
      }
    }
  };
  walk(FIXTURES, "");
  return out.sort();
}
