/**
 * The house style of the GPU dashboards, on @grafana/grafana-foundation-sdk's typed builders:
 * panel builders preset with our sizes, units, colours and options (callers go on chaining the
 * SDK's own methods: `.unit('celsius').min(0)`), Prometheus targets, variables and the link
 * between the dashboards. Every panel and target reads the `datasource` variable, never a fixed
 * data source uid.
 */
import type * as cog from '@grafana/grafana-foundation-sdk/cog';
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as bargauge from '@grafana/grafana-foundation-sdk/bargauge';
import * as prometheus from '@grafana/grafana-foundation-sdk/prometheus';
import * as stat from '@grafana/grafana-foundation-sdk/stat';
import * as table from '@grafana/grafana-foundation-sdk/table';
import * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';

/** Width of Grafana's grid (the SDK lays panels out on it, wrapping at 24 columns). */
export const GRID_COLUMNS = 24;
/** Every panel and target names its data source through the dashboard's `datasource` variable. */
export const DATASOURCE: common.DataSourceRef = { type: 'prometheus', uid: '${datasource}' };

export interface Query {
  expr: string;
  /** Legend ({{label}} templates) or, in tables, the column name of the value. */
  legend?: string;
  /** In tables: the unit of this query's value column (the panel's unit otherwise). */
  unit?: string;
}

/** In tables: label columns to rename (label: column name) or to leave out. */
export interface TableColumns {
  rename?: Record<string, string>;
  hide?: readonly string[];
}

/** Absolute thresholds: green, then orange from `warnAt` and red from `badAt`. */
export function thresholds(levels: { warnAt?: number; badAt?: number } = {}): dashboard.ThresholdsConfigBuilder {
  const steps: dashboard.Threshold[] = [{ color: 'green', value: null }];
  if (levels.warnAt !== undefined) steps.push({ color: 'orange', value: levels.warnAt });
  if (levels.badAt !== undefined) steps.push({ color: 'red', value: levels.badAt });
  return new dashboard.ThresholdsConfigBuilder().mode(dashboard.ThresholdsMode.Absolute).steps(steps);
}

const refId = (i: number): string => String.fromCharCode(65 + i);

/**
 * Prometheus targets A, B, ... on ${datasource}: range queries for time series, instant ones
 * (one value per series at the end of the range) for stats, bar gauges and tables.
 */
function targets(queries: Query[], kind: 'range' | 'instant' | 'table'): prometheus.DataqueryBuilder[] {
  return queries.map((q, i) => {
    const t = new prometheus.DataqueryBuilder()
      .refId(refId(i))
      .datasource(DATASOURCE)
      .editorMode(prometheus.QueryEditorMode.Code)
      .expr(q.expr)
      .legendFormat(q.legend ?? '__auto');
    (kind === 'range' ? t.range() : t.instant()).format(kind === 'table' ? prometheus.PromQueryFormat.Table : prometheus.PromQueryFormat.TimeSeries);
    return t;
  });
}

const colors = (mode: dashboard.FieldColorModeId): dashboard.FieldColorBuilder => new dashboard.FieldColorBuilder().mode(mode);
const lastNotNull = (): common.ReduceDataOptionsBuilder => new common.ReduceDataOptionsBuilder().calcs(['lastNotNull']).fields('').values(false);

/** Series stacked on each other (totals), or not. */
export function stacking(mode: common.StackingMode): common.StackingConfigBuilder {
  return new common.StackingConfigBuilder().mode(mode).group('A');
}

/** Lines over the time range, 12 columns wide, the legend shown (the SDK's default hides it). */
export function timeseriesPanel(title: string, description: string, queries: Query[]): timeseries.PanelBuilder {
  return new timeseries.PanelBuilder()
    .title(title)
    .description(description)
    .datasource(DATASOURCE)
    .span(12)
    .height(8)
    .targets(targets(queries, 'range'))
    .unit('none')
    .thresholds(thresholds())
    .colorScheme(colors(dashboard.FieldColorModeId.PaletteClassic))
    .drawStyle(common.GraphDrawStyle.Line)
    .lineInterpolation(common.LineInterpolation.Linear)
    .lineWidth(1)
    .fillOpacity(10)
    .showPoints(common.VisibilityMode.Never)
    .spanNulls(false)
    .stacking(stacking(common.StackingMode.None))
    .legend(new common.VizLegendOptionsBuilder().displayMode(common.LegendDisplayMode.List).placement(common.LegendPlacement.Bottom).showLegend(true))
    .tooltip(new common.VizTooltipOptionsBuilder().mode(common.TooltipDisplayMode.Multi).sort(common.SortOrder.Descending));
}

/** Totals stacked on each other (more opaque fill). */
export function stackedTimeseriesPanel(title: string, description: string, queries: Query[]): timeseries.PanelBuilder {
  return timeseriesPanel(title, description, queries).fillOpacity(30).stacking(stacking(common.StackingMode.Normal));
}

/** States (0/1, counts) drawn as steps. */
export function steppedTimeseriesPanel(title: string, description: string, queries: Query[]): timeseries.PanelBuilder {
  return timeseriesPanel(title, description, queries).lineInterpolation(common.LineInterpolation.StepAfter);
}

/** One number (the last value), 4 columns wide, coloured by its thresholds. */
export function statPanel(title: string, description: string, queries: Query[]): stat.PanelBuilder {
  return new stat.PanelBuilder()
    .title(title)
    .description(description)
    .datasource(DATASOURCE)
    .span(4)
    .height(4)
    .targets(targets(queries, 'instant'))
    .unit('none')
    .thresholds(thresholds())
    .colorScheme(colors(dashboard.FieldColorModeId.Thresholds))
    .reduceOptions(lastNotNull())
    .colorMode(common.BigValueColorMode.Value)
    .graphMode(common.BigValueGraphMode.Area)
    .justifyMode(common.BigValueJustifyMode.Auto)
    .orientation(common.VizOrientation.Auto)
    .textMode(common.BigValueTextMode.Auto);
}

/** Horizontal bars, one per series (the last value). */
export function bargaugePanel(title: string, description: string, queries: Query[]): bargauge.PanelBuilder {
  return new bargauge.PanelBuilder()
    .title(title)
    .description(description)
    .datasource(DATASOURCE)
    .span(12)
    .height(8)
    .targets(targets(queries, 'instant'))
    .unit('none')
    .thresholds(thresholds())
    .colorScheme(colors(dashboard.FieldColorModeId.Thresholds))
    .reduceOptions(lastNotNull())
    .orientation(common.VizOrientation.Horizontal)
    .displayMode(common.BarGaugeDisplayMode.Gradient)
    .showUnfilled(true)
    .minVizHeight(10)
    .minVizWidth(0);
}

/**
 * A table, full width: one row per label set, a column per query (named by its legend), no
 * time column (instant queries in table format, merged and organized).
 */
export function tablePanel(title: string, description: string, queries: Query[], columns: TableColumns = {}): table.PanelBuilder {
  const renameByName: Record<string, string> = { ...columns.rename };
  const excludeByName: Record<string, boolean> = { Time: true };
  for (const name of columns.hide ?? []) excludeByName[name] = true;
  queries.forEach((q, i) => {
    renameByName[queries.length === 1 ? 'Value' : `Value #${refId(i)}`] = q.legend ?? 'value';
  });
  const panel = new table.PanelBuilder()
    .title(title)
    .description(description)
    .datasource(DATASOURCE)
    .span(GRID_COLUMNS)
    .height(8)
    .targets(targets(queries, 'table'))
    .unit('none')
    .thresholds(thresholds())
    .colorScheme(colors(dashboard.FieldColorModeId.Thresholds))
    .showHeader(true)
    .cellHeight(common.TableCellHeight.Sm)
    .footer(new common.TableFooterOptionsBuilder().show(false).reducer(['sum']))
    .withTransformation({ id: 'merge', options: {} })
    .withTransformation({ id: 'organize', options: { excludeByName, renameByName } });
  queries.forEach((q, i) => {
    if (q.unit) panel.overrideByQuery(refId(i), [{ id: 'unit', value: q.unit }]);
  });
  return panel;
}

/** A row (expanded: its panels follow it on the dashboard). */
export function row(title: string): dashboard.RowBuilder {
  return new dashboard.RowBuilder(title).collapsed(false);
}

/** The Prometheus data source picker every panel reads (`${datasource}`). */
export function datasourceVariable(): dashboard.DatasourceVariableBuilder {
  return new dashboard.DatasourceVariableBuilder('datasource')
    .label('Data source')
    .type('prometheus')
    .hide(dashboard.VariableHide.DontHide)
    .includeAll(false)
    .multi(false)
    .regex('');
}

/**
 * A label_values(...) variable on ${datasource}, refreshed with the time range. Multi-value
 * ones have All, meaning any value, not also the empty one (series that no pod holds).
 */
export function queryVariable(name: string, label: string, query: string, opts: { multi: boolean; numeric?: boolean }): dashboard.QueryVariableBuilder {
  const v = new dashboard.QueryVariableBuilder(name)
    .label(label)
    .datasource(DATASOURCE)
    .definition(query)
    // the plain string form, which every Grafana version reads
    .query(query)
    .hide(dashboard.VariableHide.DontHide)
    .includeAll(opts.multi)
    .multi(opts.multi)
    .options([])
    .refresh(dashboard.VariableRefresh.OnTimeRangeChanged)
    .regex('')
    .sort(opts.numeric ? dashboard.VariableSort.NumericalAsc : dashboard.VariableSort.AlphabeticalAsc);
  return opts.multi ? v.allValue('.+') : v;
}

/**
 * The dropdown of every dashboard tagged kube-gpu-exporter, carrying the variables and time.
 * The SDK's DashboardLinkBuilder always writes `placement: "inControlsMenu"` (its only value),
 * which Grafana 12 reads as "hide the link in the dashboard controls menu"; left out, the link
 * shows in the dashboard's top bar as in every Grafana version.
 */
export function gpuDashboardsLink(): cog.Builder<dashboard.DashboardLink> {
  const link = new dashboard.DashboardLinkBuilder('GPU dashboards')
    .type(dashboard.DashboardLinkType.Dashboards)
    .tags(['kube-gpu-exporter'])
    .asDropdown(true)
    .includeVars(true)
    .keepTime(true)
    .icon('external link')
    .targetBlank(false)
    .tooltip('')
    .url('');
  return {
    build: () => {
      const { placement: _inControlsMenu, ...built } = link.build();
      return built;
    },
  };
}

/** A GPU dashboard: the settings the three share, the data source variable first. */
export function gpuDashboard(uid: string, title: string): dashboard.DashboardBuilder {
  return new dashboard.DashboardBuilder(title)
    .uid(uid)
    .editable()
    .tooltip(dashboard.DashboardCursorSync.Crosshair)
    .version(1)
    .refresh('30s')
    .time({ from: 'now-6h', to: 'now' })
    .timezone('browser')
    .fiscalYearStartMonth(0)
    .liveNow(false)
    .link(gpuDashboardsLink())
    .withVariable(datasourceVariable())
    .annotations([]);
}

/**
 * The dashboard JSON: the SDK's model with panel ids 1, 2, ... in order (the SDK leaves ids to
 * Grafana, which would number them on import; the JSON files carry them).
 */
export function buildDashboard(builder: dashboard.DashboardBuilder): dashboard.Dashboard {
  const d = builder.build();
  let id = 0;
  for (const p of d.panels ?? []) p.id = ++id;
  return d;
}
