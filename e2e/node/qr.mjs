// The phone's camera, for the end-to-end tests: decodes a QR code from an
// RGBA image (a rendering of devicegate-login's terminal output) with jsQR,
// an independent decoder, and prints {"ok":true,"text":…} or {"ok":false}.
// Usage: node qr.mjs IMAGE.rgba WIDTH HEIGHT
import jsQR from 'jsqr';
import { readFileSync } from 'node:fs';

const [file, width, height] = process.argv.slice(2);
const pixels = new Uint8ClampedArray(readFileSync(file));
const found = jsQR(pixels, Number(width), Number(height), { inversionAttempts: 'attemptBoth' });
process.stdout.write(JSON.stringify(found ? { ok: true, text: found.data } : { ok: false }) + '\n');
