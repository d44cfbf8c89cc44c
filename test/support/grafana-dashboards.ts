/** Reading Grafana dashboard JSON: its panels, queries and variables. */

export type Json = Record<string, any>;

/** Grafana's own variables that queries may use. */
export const GRAFANA_BUILTINS = new Set(['__rate_interval', '__interval', '__interval_ms', '__range', '__range_s', '__range_ms', '__rate_interval_ms']);

/** Every panel, including those nested in collapsed rows. */
export function allPanels(dashboard: Json): Json[] {
  return ((dashboard.panels ?? []) as Json[]).flatMap((p) => [p, ...((p.panels ?? []) as Json[])]);
}

export interface DashboardQuery {
  dashboard: string;
  panel: string;
  refId: string;
  expr: string;
}

/** Every target expression of every panel. */
export function panelQueries(dashboard: Json): DashboardQuery[] {
  return allPanels(dashboard).flatMap((p) =>
    ((p.targets ?? []) as Json[]).map((t) => ({ dashboard: dashboard.title as string, panel: p.title as string, refId: t.refId as string, expr: t.expr as string })),
  );
}

/** The query text of a query variable (object or plain string form). */
export function variableQuery(v: Json): string {
  return typeof v.query === 'string' ? v.query : (v.query?.query as string);
}

export function variables(dashboard: Json): Json[] {
  return (dashboard.templating?.list ?? []) as Json[];
}

/** Names of the variables a text refers to ($name, ${name}, ${name:format}, [[name]]). */
export function variableRefs(text: string): string[] {
  return [...text.matchAll(/\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]/g)].map((m) => (m[1] ?? m[2] ?? m[3])!);
}

/** Replaces every variable by its value (a whole name: $__rate_interval is not $__rate); an unknown one is an error. */
/**
 * The demo's pods for panels about containers holding a whole GPU (the right-sizing row), as a
 * multi-value selection renders (a|b): one that fits a slice only, one that also fits a shared
 * GPU. The tests' usual selection (inference/chat-api, a replica of the shared GPU 4) has none.
 */
export const WHOLE_GPU_SELECTION: Record<string, string> = { namespace: 'ml-research', pod: '(vision-finetune-7c9f4|notebook-bob)' };

/** The variables to run a panel's queries with: `values`, or for a right-sizing panel, the whole-GPU pod's. */
export function selectionFor(panel: string, values: Record<string, string>): Record<string, string> {
  return /right-sizing/i.test(panel) ? { ...values, ...WHOLE_GPU_SELECTION } : values;
}

export function substitute(text: string, values: Record<string, string>): string {
  return text.replace(/\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]/g, (whole, a?: string, b?: string, c?: string) => {
    const name = (a ?? b ?? c)!;
    const v = values[name];
    if (v === undefined) throw new Error(`no value for variable $${name} in: ${text}`);
    return v;
  });
}

/** label_values(selector, label) parsed, or undefined for another kind of variable query. */
export function labelValuesQuery(query: string): { match: string; label: string } | undefined {
  const m = /^label_values\((.+),\s*(\w+)\)$/.exec(query.trim());
  return m ? { match: m[1]!.trim(), label: m[2]! } : undefined;
}
