/**
 * Every user-facing error the exporter raises, in one table: a stable code, and a message
 * template. Tests check each code's message.
 */
export const ERROR_CODES = {
  KGE_FLAG_UNKNOWN: (flag: string) => `unknown flag ${/^[\x21-\x7e]*$/.test(flag) ? flag : JSON.stringify(flag)} (see --help)`,
  KGE_FLAG_MISSING_VALUE: (flag: string, accepts: string) => `${flag} needs a value: ${accepts}`,
  KGE_FLAG_INVALID: (flag: string, value: string, accepts: string) => `${flag}: invalid value ${JSON.stringify(value)}; accepts ${accepts}`,
  KGE_ENV_INVALID: (env: string, flag: string, value: string, accepts: string) =>
    `${env} (for ${flag}): invalid value ${JSON.stringify(value)}; accepts ${accepts}`,
  KGE_FLAG_REQUIRES: (flag: string, needs: string) => `${flag} has no effect without ${needs}`,
  KGE_FLAG_CONFLICT: (flag: string, other: string) => `${flag} must not be longer than ${other}`,
  KGE_FLAG_UNEXPECTED_ARGUMENT: (arg: string) => `unexpected argument ${JSON.stringify(arg)}: flags start with -- (see --help)`,
  KGE_WEB_CONFIG_INVALID: (file: string, detail: string) => `web config ${file}: ${detail}`,
  KGE_DCGM_COUNTERS_INVALID: (flag: string, file: string, detail: string) => `${flag} ${/^[\x21-\x7e]*$/.test(file) ? file : JSON.stringify(file)}: ${detail}`,
  KGE_COLLECTOR_NEEDED: (off: string, neededBy: readonly string[]) =>
    `--no-collector.${off}: ${neededBy.join(' and ')} read${neededBy.length === 1 ? 's' : ''} what it collects (the MIG mode and MIG instances of each GPU); turn ${neededBy.length === 1 ? 'it' : 'them'} off too (${neededBy.map((n) => `--no-collector.${n}`).join(' ')}) or keep ${off} on`,
  KGE_MAX_LABELS_TOO_LOW: (flag: string, value: number, needed: number, scheme: string) =>
    `${flag}=${value} is below the ${needed} labels a device series of the ${scheme} scheme can carry without pod labels (name, device, MIG instance, event, pod, replica and DRA labels)`,
  KGE_WEB_CONFIG_TLS_SWITCH: (file: string, serving: 'HTTP' | 'HTTPS') =>
    `web config ${file}: turning TLS on or off needs a restart (the listener serves ${serving}); keeping the last good config`,
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class ExporterError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ExporterError';
  }
}

export function exporterError<C extends ErrorCode>(code: C, ...args: Parameters<(typeof ERROR_CODES)[C]>): ExporterError {
  const template = ERROR_CODES[code] as (...a: unknown[]) => string;
  return new ExporterError(code, template(...args));
}
