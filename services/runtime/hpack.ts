/**
 * HPACK (RFC 7541) for the gRPC client: a decoder with its dynamic table and Huffman strings, and an
 * encoder that writes literals without indexing, so it keeps no state the peer must mirror.
 *
 * Header names and values are handled as Latin-1 strings: HTTP/2 field bytes map one to one onto
 * string characters, and gRPC's own fields are ASCII.
 */

/** A header field: name and value. */
export type HeaderField = readonly [name: string, value: string];

/** Thrown for a header block that breaks RFC 7541; the connection cannot go on (COMPRESSION_ERROR). */
export class HpackError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "HpackError";
  }
}

/** RFC 7541 Appendix A. */
const STATIC_TABLE: readonly HeaderField[] = [
  [":authority", ""],
  [":method", "GET"],
  [":method", "POST"],
  [":path", "/"],
  [":path", "/index.html"],
  [":scheme", "http"],
  [":scheme", "https"],
  [":status", "200"],
  [":status", "204"],
  [":status", "206"],
  [":status", "304"],
  [":status", "400"],
  [":status", "404"],
  [":status", "500"],
  ["accept-charset", ""],
  ["accept-encoding", "gzip, deflate"],
  ["accept-language", ""],
  ["accept-ranges", ""],
  ["accept", ""],
  ["access-control-allow-origin", ""],
  ["age", ""],
  ["allow", ""],
  ["authorization", ""],
  ["cache-control", ""],
  ["content-disposition", ""],
  ["content-encoding", ""],
  ["content-language", ""],
  ["content-length", ""],
  ["content-location", ""],
  ["content-range", ""],
  ["content-type", ""],
  ["cookie", ""],
  ["date", ""],
  ["etag", ""],
  ["expect", ""],
  ["expires", ""],
  ["from", ""],
  ["host", ""],
  ["if-match", ""],
  ["if-modified-since", ""],
  ["if-none-match", ""],
  ["if-range", ""],
  ["if-unmodified-since", ""],
  ["last-modified", ""],
  ["link", ""],
  ["location", ""],
  ["max-forwards", ""],
  ["proxy-authenticate", ""],
  ["proxy-authorization", ""],
  ["range", ""],
  ["referer", ""],
  ["refresh", ""],
  ["retry-after", ""],
  ["server", ""],
  ["set-cookie", ""],
  ["strict-transport-security", ""],
  ["transfer-encoding", ""],
  ["user-agent", ""],
  ["vary", ""],
  ["via", ""],
  ["www-authenticate", ""],
];

/** Index of the first static entry with each name, for literals with an indexed name. */
const STATIC_NAME_INDEX = new Map<string, number>();
STATIC_TABLE.forEach(([name], i) => {
  if (!STATIC_NAME_INDEX.has(name)) STATIC_NAME_INDEX.set(name, i + 1);
});

/**
 * Code lengths of the Huffman code of RFC 7541 Appendix B for symbols 0-255 and EOS (256), one
 * character each ("A" is 5 bits, "Z" 30). The code is canonical: codes of one length are
 * consecutive, in symbol order, so the lengths are all the table needs.
 */
const HUFFMAN_LENGTHS = "ISXXXXXXXTZXXZXXXXXXXXZXXXXXXXXXBFFHIBDGFFDGDBBBAAABBBBBBBCDKBHFIBCCCCC" +
  "CCCCCCCCCCCCCCCCCDCDIOIJBKABABABBBACCBBBABCBAABCCCCCKGJIXPRPPRRRSRSSSSSTSTTRSTSSSSQRSRSSTRQPRR" +
  "SSQSRRTQRSSQQRQSRSSPRRRSRRSVVPORSRUVVVWWVTUOQVWWVWTQQVVXWWWPTPQRQQSRRUUTTVSVWVVWWWWWXWWWWWVZ";
const EOS = 256;
const MAX_CODE_LENGTH = 30;

/** Canonical decoding tables: per length, the first code, where its symbols start, how many. */
const huffman = (() => {
  const lengths = Array.from(HUFFMAN_LENGTHS, (char) => char.charCodeAt(0) - 60);
  const count = new Int32Array(MAX_CODE_LENGTH + 1);
  for (const length of lengths) count[length]++;
  const symbols = new Uint16Array(lengths.length);
  const firstIndex = new Int32Array(MAX_CODE_LENGTH + 1);
  const firstCode = new Int32Array(MAX_CODE_LENGTH + 1);
  let index = 0;
  let code = 0;
  for (let length = 1; length <= MAX_CODE_LENGTH; length++) {
    firstIndex[length] = index;
    firstCode[length] = code;
    for (let symbol = 0; symbol < lengths.length; symbol++) {
      if (lengths[symbol] === length) symbols[index++] = symbol;
    }
    code = (code + count[length]) << 1;
  }
  return { count, symbols, firstIndex, firstCode };
})();

/** Decodes a Huffman-coded string (RFC 7541 section 5.2). */
export function huffmanDecode(bytes: Uint8Array): string {
  const { count, symbols, firstIndex, firstCode } = huffman;
  let text = "";
  let code = 0;
  let length = 0;
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i];
    for (let bit = 7; bit >= 0; bit--) {
      code = (code << 1) | ((byte >> bit) & 1);
      length++;
      const offset = code - firstCode[length];
      if (offset >= 0 && offset < count[length]) {
        const symbol = symbols[firstIndex[length] + offset];
        if (symbol === EOS) throw new HpackError("Huffman string contains EOS");
        text += String.fromCharCode(symbol);
        code = 0;
        length = 0;
      } else if (length === MAX_CODE_LENGTH) {
        throw new HpackError("Invalid Huffman code");
      }
    }
  }
  // What is left must be padding: fewer than 8 bits, all ones (the start of EOS).
  if (length > 7 || code !== (1 << length) - 1) throw new HpackError("Invalid Huffman padding");
  return text;
}

function latin1(bytes: Uint8Array, start: number, end: number): string {
  let text = "";
  for (let i = start; i < end; i++) text += String.fromCharCode(bytes[i]);
  return text;
}

/** Size of an entry in the dynamic table (RFC 7541 section 4.1). */
function entrySize(name: string, value: string): number {
  return name.length + value.length + 32;
}

/** Decodes header blocks of one connection, keeping the dynamic table in step with the peer. */
export class HpackDecoder {
  /** Newest first. */
  readonly #dynamic: HeaderField[] = [];
  #size = 0;
  #maxSize: number;
  /** The limit our SETTINGS_HEADER_TABLE_SIZE allows the peer. */
  readonly #allowedMaxSize: number;
  #offset = 0;
  #block: Uint8Array = new Uint8Array(0);

  constructor(maxTableSize = 4096) {
    this.#maxSize = maxTableSize;
    this.#allowedMaxSize = maxTableSize;
  }

  /**
   * Decodes one complete header block (HEADERS plus CONTINUATION payloads). Throws once the
   * decoded list passes `maxListSize` (RFC 9113's measure: name and value lengths plus 32 per
   * field), so a small block of references to large table entries cannot expand without bound.
   */
  decode(block: Uint8Array, maxListSize = Infinity): HeaderField[] {
    this.#block = block;
    this.#offset = 0;
    const fields: HeaderField[] = [];
    let fieldSeen = false;
    let listSize = 0;
    let counted = 0;
    const count = () => {
      for (; counted < fields.length; counted++) {
        listSize += fields[counted][0].length + fields[counted][1].length + 32;
      }
      if (listSize > maxListSize) {
        throw new HpackError(`Header list larger than ${maxListSize} bytes`);
      }
    };
    while (this.#offset < block.length) {
      count();
      const byte = block[this.#offset];
      if (byte & 0x80) {
        fields.push(this.#entry(this.#integer(7)));
        fieldSeen = true;
      } else if (byte & 0x40) {
        const field = this.#literal(6);
        this.#insert(field);
        fields.push(field);
        fieldSeen = true;
      } else if (byte & 0x20) {
        // A size update may only open a block.
        if (fieldSeen) throw new HpackError("Dynamic table size update after a field");
        const size = this.#integer(5);
        if (size > this.#allowedMaxSize) {
          throw new HpackError(`Dynamic table size ${size} is over ${this.#allowedMaxSize}`);
        }
        this.#maxSize = size;
        this.#evict();
      } else {
        // Literal without indexing (0000) or never indexed (0001): both have a 4-bit prefix.
        fields.push(this.#literal(4));
        fieldSeen = true;
      }
    }
    count();
    this.#block = new Uint8Array(0);
    return fields;
  }

  #entry(index: number): HeaderField {
    if (index === 0) throw new HpackError("Header index 0");
    if (index <= STATIC_TABLE.length) return STATIC_TABLE[index - 1];
    const field = this.#dynamic[index - STATIC_TABLE.length - 1];
    if (field === undefined) throw new HpackError(`Header index ${index} is not in the table`);
    return field;
  }

  #literal(prefixBits: number): HeaderField {
    const index = this.#integer(prefixBits);
    const name = index === 0 ? this.#string() : this.#entry(index)[0];
    return [name, this.#string()];
  }

  #insert(field: HeaderField): void {
    const size = entrySize(field[0], field[1]);
    if (size > this.#maxSize) {
      // An entry larger than the table empties it and is not added (RFC 7541 section 4.4).
      this.#dynamic.length = 0;
      this.#size = 0;
      return;
    }
    this.#dynamic.unshift(field);
    this.#size += size;
    this.#evict();
  }

  #evict(): void {
    while (this.#size > this.#maxSize) {
      const [name, value] = this.#dynamic.pop()!;
      this.#size -= entrySize(name, value);
    }
  }

  #integer(prefixBits: number): number {
    const block = this.#block;
    const mask = (1 << prefixBits) - 1;
    let value = block[this.#offset++] & mask;
    if (value < mask) return value;
    let shift = 0;
    for (;;) {
      if (this.#offset >= block.length) throw new HpackError("Truncated integer");
      const byte = block[this.#offset++];
      value += (byte & 0x7f) * 2 ** shift;
      shift += 7;
      if ((byte & 0x80) === 0) break;
      if (shift > 28) throw new HpackError("Integer too large");
    }
    return value;
  }

  #string(): string {
    const block = this.#block;
    if (this.#offset >= block.length) throw new HpackError("Truncated string");
    const huffmanCoded = (block[this.#offset] & 0x80) !== 0;
    const length = this.#integer(7);
    const start = this.#offset;
    const end = start + length;
    if (end > block.length) throw new HpackError("Truncated string");
    this.#offset = end;
    return huffmanCoded ? huffmanDecode(block.subarray(start, end)) : latin1(block, start, end);
  }
}

/**
 * Encodes fields as literals without indexing (an indexed name where the static table has it),
 * without Huffman coding; `:method: POST` and `:scheme: http` as their static entries.
 */
export function encodeHeaders(fields: readonly HeaderField[]): Uint8Array {
  const bytes: number[] = [];
  for (const [name, value] of fields) {
    if (name === ":method" && value === "POST") bytes.push(0x83);
    else if (name === ":scheme" && value === "http") bytes.push(0x86);
    else {
      const index = STATIC_NAME_INDEX.get(name);
      if (index === undefined) {
        bytes.push(0x00);
        pushString(bytes, name);
      } else pushInteger(bytes, index, 4, 0x00);
      pushString(bytes, value);
    }
  }
  return new Uint8Array(bytes);
}

function pushInteger(bytes: number[], value: number, prefixBits: number, flags: number): void {
  const mask = (1 << prefixBits) - 1;
  if (value < mask) {
    bytes.push(flags | value);
    return;
  }
  bytes.push(flags | mask);
  value -= mask;
  while (value >= 0x80) {
    bytes.push((value & 0x7f) | 0x80);
    value = Math.floor(value / 0x80);
  }
  bytes.push(value);
}

function pushString(bytes: number[], text: string): void {
  pushInteger(bytes, text.length, 7, 0x00);
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code > 0xff) throw new RangeError(`Header text is not Latin-1: "${text}"`);
    bytes.push(code);
  }
}
