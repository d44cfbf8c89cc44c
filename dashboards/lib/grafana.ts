/**
 * A small builder for Grafana dashboard JSON (schemaVersion 39): panels are declared as data
 * (title, type, queries, unit) and laid out in rows on the 24-column grid; every panel and
 * query reads the `datasource` variable, never a fixed data source uid.
 */

export const SCHEMA_VERSION = 39;
export const GRID_COLUMNS = 24;
/** Every panel and target names its data source through the dashboard's `datasource` variable. */
export const DATASOURCE = { type: 'prometheus', uid: '${datasource}' } as const;

export type PanelType = 'timeseries' | 'stat' | 'table' | 'bargauge';

export interface Query {
  expr: string;
  /** Legend ({{label}} templates) or, in tables, the column name of the value. */
  legend?: string;
  /** One value per series at the end of the range (stat, table, bargauge) instead of a range. */
  instant?: boolean;
}

export interface PanelSpec {
  type: PanelType;
  title: string;
  description: string;
  queries: Query[];
  /** Grafana unit id: percentunit (0-1), celsius, watt, mbytes (MiB), bytes, hertz, kwatth, none. */
  unit?: string;
  min?: number;
  max?: number;
  decimals?: number;
  /** Values from which the stat turns orange and red (absolute thresholds). */
  warnAt?: number;
  badAt?: number;
  /** Stack the series of a timeseries. */
  stacked?: boolean;
  /** Draw a timeseries as steps (states such as throttle reasons). */
  stepped?: boolean;
  width?: number;
  height?: number;
}

export interface RowSpec {
  title: string;
  panels: PanelSpec[];
}

export interface VariableSpec {
  name: string;
  label: string;
  /** A label_values(...) query. */
  query: string;
  multi: boolean;
  /** Sort values as numbers (GPU indices) instead of alphabetically. */
  numeric?: boolean;
}

export interface DashboardSpec {
  uid: string;
  title: string;
  description: string;
  tags: string[];
  variables: VariableSpec[];
  rows: RowSpec[];
  time?: { from: string; to: string };
}

type Json = Record<string, unknown>;

const DEFAULT_SIZE: Record<PanelType, { width: number; height: number }> = {
  stat: { width: 4, height: 4 },
  timeseries: { width: 12, height: 8 },
  bargauge: { width: 12, height: 8 },
  table: { width: 24, height: 8 },
};

function thresholds(p: PanelSpec): Json {
  const steps: Json[] = [{ color: 'green', value: null }];
  if (p.warnAt !== undefined) steps.push({ color: 'orange', value: p.warnAt });
  if (p.badAt !== undefined) steps.push({ color: 'red', value: p.badAt });
  return { mode: 'absolute', steps };
}

function fieldDefaults(p: PanelSpec): Json {
  const d: Json = { unit: p.unit ?? 'none', thresholds: thresholds(p), color: { mode: p.type === 'timeseries' ? 'palette-classic' : 'thresholds' } };
  if (p.min !== undefined) d.min = p.min;
  if (p.max !== undefined) d.max = p.max;
  if (p.decimals !== undefined) d.decimals = p.decimals;
  if (p.type === 'timeseries') {
    d.custom = {
      drawStyle: 'line',
      lineInterpolation: p.stepped ? 'stepAfter' : 'linear',
      lineWidth: 1,
      fillOpacity: p.stacked ? 30 : 10,
      showPoints: 'never',
      spanNulls: false,
      stacking: { mode: p.stacked ? 'normal' : 'none', group: 'A' },
    };
  }
  return d;
}

const REDUCE_LAST = { calcs: ['lastNotNull'], fields: '', values: false };

function panelOptions(p: PanelSpec): Json {
  switch (p.type) {
    case 'timeseries':
      return { legend: { displayMode: 'list', placement: 'bottom', showLegend: true }, tooltip: { mode: 'multi', sort: 'desc' } };
    case 'stat':
      return { reduceOptions: REDUCE_LAST, colorMode: 'value', graphMode: 'area', justifyMode: 'auto', orientation: 'auto', textMode: 'auto' };
    case 'bargauge':
      return { reduceOptions: REDUCE_LAST, orientation: 'horizontal', displayMode: 'gradient', showUnfilled: true, minVizHeight: 10, minVizWidth: 0 };
    case 'table':
      return { showHeader: true, cellHeight: 'sm', footer: { show: false, reducer: ['sum'], fields: '' } };
  }
}

function target(q: Query, i: number, type: PanelType): Json {
  const instant = q.instant ?? type !== 'timeseries';
  return {
    refId: String.fromCharCode(65 + i),
    datasource: DATASOURCE,
    editorMode: 'code',
    expr: q.expr,
    legendFormat: q.legend ?? '__auto',
    range: !instant,
    instant,
    format: type === 'table' ? 'table' : 'time_series',
  };
}

/** Tables: one row per label set, a column per query (named by its legend), no time column. */
function tableTransformations(p: PanelSpec): Json[] {
  if (p.type !== 'table') return [];
  const renameByName: Record<string, string> = {};
  p.queries.forEach((q, i) => {
    renameByName[p.queries.length === 1 ? 'Value' : `Value #${String.fromCharCode(65 + i)}`] = q.legend ?? 'value';
  });
  return [
    { id: 'merge', options: {} },
    { id: 'organize', options: { excludeByName: { Time: true }, renameByName } },
  ];
}

/** Builds the dashboard JSON: rows in order, panels left to right, wrapping at 24 columns. */
export function buildDashboard(spec: DashboardSpec): Json {
  let id = 0;
  let y = 0;
  const panels: Json[] = [];
  for (const row of spec.rows) {
    panels.push({ id: ++id, type: 'row', title: row.title, collapsed: false, gridPos: { h: 1, w: GRID_COLUMNS, x: 0, y }, panels: [] });
    y += 1;
    let x = 0;
    let lineHeight = 0;
    for (const p of row.panels) {
      const { width, height } = { width: p.width ?? DEFAULT_SIZE[p.type].width, height: p.height ?? DEFAULT_SIZE[p.type].height };
      if (x + width > GRID_COLUMNS) {
        y += lineHeight;
        x = 0;
        lineHeight = 0;
      }
      const transformations = tableTransformations(p);
      panels.push({
        id: ++id,
        type: p.type,
        title: p.title,
        description: p.description,
        datasource: DATASOURCE,
        gridPos: { h: height, w: width, x, y },
        targets: p.queries.map((q, i) => target(q, i, p.type)),
        fieldConfig: { defaults: fieldDefaults(p), overrides: [] },
        options: panelOptions(p),
        ...(transformations.length ? { transformations } : {}),
      });
      x += width;
      lineHeight = Math.max(lineHeight, height);
    }
    y += lineHeight;
  }
  return {
    uid: spec.uid,
    title: spec.title,
    description: spec.description,
    tags: spec.tags,
    editable: true,
    graphTooltip: 1,
    schemaVersion: SCHEMA_VERSION,
    version: 1,
    refresh: '30s',
    time: spec.time ?? { from: 'now-6h', to: 'now' },
    timepicker: {},
    timezone: 'browser',
    fiscalYearStartMonth: 0,
    liveNow: false,
    links: [{ type: 'dashboards', title: 'GPU dashboards', tags: ['kube-gpu-exporter'], asDropdown: true, includeVars: true, keepTime: true, icon: 'external link', targetBlank: false, tooltip: '', url: '' }],
    templating: {
      list: [
        { name: 'datasource', label: 'Data source', type: 'datasource', query: 'prometheus', current: {}, hide: 0, includeAll: false, multi: false, options: [], refresh: 1, regex: '', skipUrlSync: false },
        ...spec.variables.map((v) => ({
          name: v.name,
          label: v.label,
          type: 'query',
          datasource: DATASOURCE,
          definition: v.query,
          // the plain string form, which every Grafana version reads
          query: v.query,
          current: {},
          hide: 0,
          includeAll: v.multi,
          multi: v.multi,
          // "All" means any value, not also the empty one (series that no pod holds).
          ...(v.multi ? { allValue: '.+' } : {}),
          options: [],
          refresh: 2,
          regex: '',
          skipUrlSync: false,
          sort: v.numeric ? 3 : 1,
        })),
      ],
    },
    annotations: { list: [] },
    panels,
  };
}
