/** Ids (UUIDv7) and the store's clock. */
import { randomFillSync } from 'node:crypto';

let lastIdMs = 0;
let idSequence = 0;

/**
 * Random bytes for ids, drawn 4 KiB at a time: one call into the CSPRNG per
 * 256 ids instead of one per id (as `crypto.randomUUID` does by default).
 */
const randomPool = Buffer.alloc(4096);
let randomOffset = randomPool.length;

/** 16 fresh random bytes, the caller's to overwrite (a view of the pool, never handed out twice). */
function random16(): Buffer {
  if (randomOffset === randomPool.length) {
    randomFillSync(randomPool);
    randomOffset = 0;
  }
  const bytes = randomPool.subarray(randomOffset, randomOffset + 16);
  randomOffset += 16;
  return bytes;
}

/**
 * A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then a 12-bit sequence
 * (method 1 of the RFC: random start each millisecond, +1 within it, so ids
 * made by one process sort in the order they were made), then 62 random bits.
 */
export function uuidv7(): string {
  const bytes = random16();
  const now = Date.now();
  if (now > lastIdMs) {
    lastIdMs = now;
    idSequence = (((bytes[6] ?? 0) << 8) | (bytes[7] ?? 0)) & 0x7ff; // leave room to count up
  } else if (++idSequence > 0xfff) {
    lastIdMs += 1;
    idSequence = 0;
  }
  let ms = lastIdMs;
  for (let i = 5; i >= 0; i -= 1) {
    bytes[i] = ms % 256;
    ms = Math.floor(ms / 256);
  }
  bytes[6] = 0x70 | (idSequence >> 8);
  bytes[7] = idSequence & 0xff;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

let lastTime = 0;

/**
 * Epoch ms that never goes backwards and never repeats within this process, so
 * that two changes to conversations are always ordered. Under a burst of
 * writes it may run a little ahead of the wall clock, which catches up.
 */
export function now(): number {
  const time = Date.now();
  lastTime = time > lastTime ? time : lastTime + 1;
  return lastTime;
}

/** Epoch ms that never goes backwards, repeats allowed: for the hot path (streaming text), which must not push {@link now} ahead. */
export function wallNow(): number {
  return Math.max(Date.now(), lastTime);
}
