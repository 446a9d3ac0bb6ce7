// npm run dashboard: writes dashboards/querytrail.json from dashboards/querytrail.ts.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { querytrailDashboard } from './querytrail';

export const DASHBOARD_FILE = path.join(__dirname, 'querytrail.json');

export function dashboardJson(): string {
  return `${JSON.stringify(querytrailDashboard(), null, 2)}\n`;
}

if (require.main === module) fs.writeFileSync(DASHBOARD_FILE, dashboardJson());
