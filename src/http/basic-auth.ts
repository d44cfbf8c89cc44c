import { createHash } from 'node:crypto';
import bcrypt from 'bcryptjs';

/** Successful checks remembered, so a scraper does not pay bcrypt's cost on every scrape. */
const CACHE_LIMIT = 256;

/** The user and password of an `Authorization: Basic ...` header; undefined when there is none or it is malformed. */
export function basicCredentials(header: string | undefined): { user: string; password: string } | undefined {
  if (!header) return undefined;
  const m = /^Basic[ \t]+([A-Za-z0-9+/=]+)[ \t]*$/i.exec(header);
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/**
 * Checks basic auth credentials against bcrypt hashes. A user that does not exist is checked
 * against another user's hash and then refused, so it costs as much as a wrong password and
 * the response time does not tell which user names exist.
 */
export class BasicAuth {
  private readonly granted = new Set<string>();
  private readonly decoy: string;

  constructor(private readonly users: ReadonlyMap<string, string>) {
    // the costliest hash: an unknown user never answers faster than a known one
    this.decoy = [...users.values()].sort((a, b) => Number(b.slice(4, 6)) - Number(a.slice(4, 6)))[0] ?? '';
  }

  get enabled(): boolean {
    return this.users.size > 0;
  }

  async check(header: string | undefined): Promise<boolean> {
    if (!this.enabled) return true;
    const creds = basicCredentials(header);
    if (!creds) return false;
    const known = this.users.get(creds.user);
    const hash = known ?? this.decoy;
    const key = createHash('sha256').update(creds.user).update('\0').update(creds.password).update('\0').update(hash).digest('base64');
    if (known !== undefined && this.granted.has(key)) return true;
    const match = await bcrypt.compare(creds.password, hash);
    if (!match || known === undefined) return false;
    if (this.granted.size >= CACHE_LIMIT) this.granted.clear();
    this.granted.add(key);
    return true;
  }
}
