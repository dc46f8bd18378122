/**
 * Test-only ELF64 little-endian reader: section bytes by name and the
 * symbol table, just enough to pull `.BTF` / `.BTF.ext` / program bytes out
 * of a fixture and to lay out DATASECs. Not a loader (that is lib/elf).
 * @module
 */

/** A symbol with the name of the section it is defined in. */
export interface ElfSymbol {
  readonly name: string;
  readonly section: string;
  readonly value: number;
  readonly size: number;
}

/** Sections (by name) and symbols of a fixture object. */
export interface ElfObject {
  readonly sections: Map<string, Uint8Array>;
  readonly symbols: ElfSymbol[];
}

/** Reads an ELF64 LE relocatable object. */
export function readElf(file: Uint8Array): ElfObject {
  const v = new DataView(file.buffer, file.byteOffset, file.byteLength);
  if (v.getUint32(0, false) !== 0x7f454c46 || file[4] !== 2 || file[5] !== 1) {
    throw new Error("not an ELF64 little-endian object");
  }
  const shoff = Number(v.getBigUint64(0x28, true));
  const shentsize = v.getUint16(0x3a, true);
  const shnum = v.getUint16(0x3c, true);
  const shstrndx = v.getUint16(0x3e, true);
  const headers = Array.from({ length: shnum }, (_, i) => {
    const at = shoff + i * shentsize;
    return {
      name: v.getUint32(at, true),
      type: v.getUint32(at + 4, true),
      offset: Number(v.getBigUint64(at + 0x18, true)),
      size: Number(v.getBigUint64(at + 0x20, true)),
      link: v.getUint32(at + 0x28, true),
    };
  });
  const cstr = (base: number, off: number) => {
    let end = base + off;
    while (file[end] !== 0) end++;
    return new TextDecoder().decode(file.subarray(base + off, end));
  };
  const names = headers.map((h) => cstr(headers[shstrndx].offset, h.name));
  const SHT_SYMTAB = 2;
  const SHT_NOBITS = 8;
  const sections = new Map<string, Uint8Array>();
  headers.forEach((h, i) => {
    if (i === 0) return;
    sections.set(
      names[i],
      h.type === SHT_NOBITS
        ? new Uint8Array(h.size)
        : file.subarray(h.offset, h.offset + h.size),
    );
  });
  const symbols: ElfSymbol[] = [];
  const symtab = headers.find((h) => h.type === SHT_SYMTAB);
  if (symtab) {
    const strBase = headers[symtab.link].offset;
    for (
      let at = symtab.offset + 24;
      at < symtab.offset + symtab.size;
      at += 24
    ) {
      const shndx = v.getUint16(at + 6, true);
      symbols.push({
        name: cstr(strBase, v.getUint32(at, true)),
        section: shndx > 0 && shndx < shnum ? names[shndx] : "",
        value: Number(v.getBigUint64(at + 8, true)),
        size: Number(v.getBigUint64(at + 16, true)),
      });
    }
  }
  return { sections, symbols };
}
