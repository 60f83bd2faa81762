import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { keyFileText } from '../store/key-file.ts';

/** The layout's version byte: a later layout (another cipher, a rotated key) can be told apart. */
const V1 = 1;
const NONCE = 12;
const TAG = 16;

/** The associated data that binds a sealed value to its owner and name (neither can hold a NUL). */
const boundTo = (owner: string, name: string) => Buffer.from(`${owner}\0${name}`);

/**
 * Seals secret values with AES-256-GCM under the data dir's key (`secrets.key`, 0600, made at first start).
 * Each value is bound to its owner and name (the AEAD's associated data), so a sealed value copied onto
 * another row, or another tenant's, does not open.
 */
export class SecretBox {
  private key: Buffer;

  constructor(key: Buffer) {
    if (key.length !== 32) throw new Error(`the secrets key must be 32 bytes, not ${key.length}`);
    this.key = key;
  }

  /** The key kept in `<dataDir>/secrets.key`, made on first use. */
  static load(dataDir: string): SecretBox {
    return new SecretBox(Buffer.from(keyFileText(dataDir, 'secrets.key'), 'hex'));
  }

  /** `value` sealed for `owner`'s secret `name`: version, nonce, tag, ciphertext. */
  seal(owner: string, name: string, value: string): Buffer {
    const nonce = randomBytes(NONCE);
    const cipher = createCipheriv('aes-256-gcm', this.key, nonce);
    cipher.setAAD(boundTo(owner, name));
    const body = Buffer.concat([cipher.update(value, 'utf8'), cipher.final()]);
    return Buffer.concat([Buffer.from([V1]), nonce, cipher.getAuthTag(), body]);
  }

  /** The value, or undefined when `sealed` is not this owner's secret `name` under this key. */
  open(owner: string, name: string, sealed: Uint8Array): string | undefined {
    const buf = Buffer.from(sealed);
    if (buf.length < 1 + NONCE + TAG || buf[0] !== V1) return undefined;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, buf.subarray(1, 1 + NONCE));
      decipher.setAAD(boundTo(owner, name));
      decipher.setAuthTag(buf.subarray(1 + NONCE, 1 + NONCE + TAG));
      return Buffer.concat([decipher.update(buf.subarray(1 + NONCE + TAG)), decipher.final()]).toString('utf8');
    } catch {
      return undefined;
    }
  }
}
