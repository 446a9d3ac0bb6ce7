/**
 * The querytrail Grafana dashboard, as code (@grafana/grafana-foundation-sdk). `npm run dashboard` writes
 * dashboards/querytrail.json; a test checks that the committed file is what this generates, that every
 * query is valid PromQL (promtool) and that every metric it reads is one the agent exports.
 */
import {
  GraphDrawStyle,
  ReduceDataOptionsBuilder,
  StackingConfigBuilder,
  StackingMode,
} from '@grafana/grafana-foundation-sdk/common';
import {
  Dashboard,
  DashboardBuilder,
  DashboardLinkBuilder,
  DashboardLinkType,
  DatasourceVariableBuilder,
  QueryVariableBuilder,
  RowBuilder,
  ThresholdsConfigBuilder,
  ThresholdsMode,
  VariableRefresh,
  VariableSort,
} from '@grafana/grafana-foundation-sdk/dashboard';
import { DataqueryBuilder } from '@grafana/grafana-foundation-sdk/prometheus';
import { PanelBuilder as StatPanelBuilder } from '@grafana/grafana-foundation-sdk/stat';
import { PanelBuilder as TimeseriesPanelBuilder } from '@grafana/grafana-foundation-sdk/timeseries';

const DATASOURCE = { type: 'prometheus', uid: '${datasource}' };
/** Dashboard variables in the queries: `$service` is Prometheus's `job` label, `$route` express's template. */
const SERVICE = 'job=~"$service"';
const IN_ROUTE = `${SERVICE}, route=~"$route"`;
/** Queries per second, from the duration histogram's count. */
const queryRate = (filter = SERVICE) => `rate(db_client_operation_duration_count{${filter}}[$__rate_interval])`;
/** Per second, over the dashboard's rate interval, of querytrail's own histogram of queries per request. */
const perRequest = (series: 'bucket' | 'sum' | 'count') =>
  `rate(querytrail_request_queries_${series}{${IN_ROUTE}}[$__rate_interval])`;

/** Every PromQL expression of the dashboard, by panel title (the test checks them with promtool). */
export const PANEL_QUERIES: Record<string, string[]> = {};

function query(panel: string, expr: string, legend: string, exemplar = false): DataqueryBuilder {
  (PANEL_QUERIES[panel] ??= []).push(expr);
  return new DataqueryBuilder().expr(expr).legendFormat(legend).exemplar(exemplar).range();
}

/** Tempo's TraceQL in Grafana Explore: the traces whose spans carry this hazard code. */
function tracesOfHazard(code: string): DashboardLinkBuilder {
  const traceql = `{ event.querytrail.hazard.code = "${code}" }`;
  const panes = { a: { datasource: 'tempo', queries: [{ refId: 'A', queryType: 'traceql', query: traceql }] } };
  return new DashboardLinkBuilder('Traces with this hazard (Tempo)')
    .type(DashboardLinkType.Link)
    .url(`/explore?schemaVersion=1&panes=${encodeURIComponent(JSON.stringify(panes))}`)
    .targetBlank(true);
}

function timeseries(title: string, description: string): TimeseriesPanelBuilder {
  return new TimeseriesPanelBuilder().title(title).description(description).datasource(DATASOURCE).height(8).span(12);
}

function countStat(title: string, description: string, code: string): StatPanelBuilder {
  return new StatPanelBuilder()
    .title(title)
    .description(description)
    .datasource(DATASOURCE)
    .height(4)
    .span(6)
    .withTarget(
      query(title, `sum(increase(querytrail_hazards_total{${SERVICE}, code="${code}"}[$__range])) or vector(0)`, code),
    )
    .reduceOptions(new ReduceDataOptionsBuilder().calcs(['lastNotNull']))
    .thresholds(
      new ThresholdsConfigBuilder().mode(ThresholdsMode.Absolute).steps([
        { value: null, color: 'green' },
        { value: 1, color: 'red' },
      ]),
    )
    .dataLinks([tracesOfHazard(code)]);
}

export function querytrailDashboard(): Dashboard {
  for (const key of Object.keys(PANEL_QUERIES)) delete PANEL_QUERIES[key];
  const stacked = new StackingConfigBuilder().mode(StackingMode.Normal);
  return new DashboardBuilder('querytrail: where queries are built, bound and run')
    .uid('querytrail')
    .tags(['querytrail', 'database', 'opentelemetry'])
    .description('Query hazards, where queries really ran (the server says), and redundant queries per route.')
    .refresh('30s')
    .time({ from: 'now-6h', to: 'now' })
    .timezone('browser')
    .withVariable(new DatasourceVariableBuilder('datasource').label('Prometheus').type('prometheus'))
    .withVariable(
      new QueryVariableBuilder('service')
        .label('Service')
        .datasource(DATASOURCE)
        .query('label_values(db_client_operation_duration_count, job)')
        .refresh(VariableRefresh.OnTimeRangeChanged)
        .sort(VariableSort.AlphabeticalAsc)
        .multi(true)
        .includeAll(true)
        .allValue('.*'),
    )
    .withVariable(
      new QueryVariableBuilder('route')
        .label('Route')
        .datasource(DATASOURCE)
        .query(`label_values(querytrail_request_queries_count{${SERVICE}}, route)`)
        .refresh(VariableRefresh.OnTimeRangeChanged)
        .sort(VariableSort.AlphabeticalAsc)
        .multi(true)
        .includeAll(true)
        .allValue('.*'),
    )
    .withRow(new RowBuilder('Hazards'))
    .withPanel(
      countStat(
        'Writes sent to replicas',
        'Writes sent over a connection whose server says it is a hot standby (SQLSTATE 25006).',
        'write_on_replica',
      ),
    )
    .withPanel(
      countStat(
        'Bound ≠ ran',
        'Queries on a database whose server answered in another role than the one declared for it.',
        'bound_ran_mismatch',
      ),
    )
    .withPanel(
      countStat(
        'Init-time queries in requests',
        'Query objects built at start-up that ran in a request.',
        'init_query_in_request',
      ),
    )
    .withPanel(
      countStat(
        'Cross-database queries',
        'Queries embedding a part bound to another database.',
        'cross_database_query',
      ),
    )
    .withPanel(
      timeseries('Hazards by code and route', 'Every hazard querytrail reported, per code and route.')
        .withTarget(
          query(
            'Hazards by code and route',
            `sum by (code, route) (increase(querytrail_hazards_total{${IN_ROUTE}}[$__rate_interval]))`,
            '{{code}} {{route}}',
          ),
        )
        .stacking(stacked)
        .drawStyle(GraphDrawStyle.Bars)
        .span(24),
    )
    .withRow(new RowBuilder('Where queries run'))
    .withPanel(
      timeseries(
        'Queries by construction phase',
        'Queries per second by where their query object was built: init (module load), request or job.',
      )
        .withTarget(
          query(
            'Queries by construction phase',
            `sum by (querytrail_construction_phase) (${queryRate()})`,
            '{{querytrail_construction_phase}}',
          ),
        )
        .unit('reqps'),
    )
    .withPanel(
      timeseries(
        'Queries by the role the server reported',
        'Queries per second by database and by what its server said.',
      )
        .withTarget(
          query(
            'Queries by the role the server reported',
            `sum by (db_namespace, querytrail_ran_role) (${queryRate()})`,
            '{{db_namespace}} {{querytrail_ran_role}}',
          ),
        )
        .unit('reqps'),
    )
    .withPanel(
      timeseries(
        'Query duration by role (p95)',
        'db.client.operation.duration, 95th percentile, by the role the server reported; exemplars link to traces.',
      )
        .withTarget(
          query(
            'Query duration by role (p95)',
            'histogram_quantile(0.95, sum by (le, querytrail_ran_role) ' +
              `(rate(db_client_operation_duration_bucket{${SERVICE}}[$__rate_interval])))`,
            '{{querytrail_ran_role}}',
            true,
          ),
        )
        .unit('s'),
    )
    .withPanel(
      timeseries('Failed queries by error type', 'Failed queries per second by SQLSTATE (25006: a write on a replica).')
        .withTarget(
          query(
            'Failed queries by error type',
            `sum by (error_type, querytrail_ran_role) (${queryRate(`${SERVICE}, error_type!=""`)})`,
            '{{error_type}} on {{querytrail_ran_role}}',
          ),
        )
        .unit('reqps'),
    )
    .withRow(new RowBuilder('Redundant queries'))
    .withPanel(
      timeseries(
        'Queries per request by route',
        'querytrail.request.queries: how many queries a request runs, by route.',
      )
        .withTarget(
          query(
            'Queries per request by route',
            `histogram_quantile(0.95, sum by (le, route) (${perRequest('bucket')}))`,
            'p95 {{route}}',
          ),
        )
        .withTarget(
          query(
            'Queries per request by route',
            `sum by (route) (${perRequest('sum')}) / sum by (route) (${perRequest('count')})`,
            'mean {{route}}',
          ),
        ),
    )
    .withPanel(
      timeseries('N+1 and duplicate queries by route', 'Potential N+1 loops and repeated identical reads, by route.')
        .withTarget(
          query(
            'N+1 and duplicate queries by route',
            'sum by (code, route) (increase(querytrail_hazards_total' +
              `{${IN_ROUTE}, code=~"n_plus_one|duplicate_query"}[$__rate_interval]))`,
            '{{code}} {{route}}',
          ),
        )
        .dataLinks([tracesOfHazard('n_plus_one')]),
    )
    .build();
}
