import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { colourOn, ConsoleSpanProcessor, ConsoleWarnings, maskSecrets } from '../../exporters/console';
import { ATTR } from '../../src/attributes';
import { internSite } from '../../src/callsite';

describe('code frames of warnings', () => {
  it('mask credentials written into the code', () => {
    expect(maskSecrets("knex({ client: 'pg', connection: 'postgres://app:s3cr3t@db1:5432/app' })")).toBe(
      "knex({ client: 'pg', connection: 'postgres://app:***@db1:5432/app' })",
    );
    expect(maskSecrets("new Pool({ host: 'db', password: 'hunter2', user: 'app' })")).toBe(
      "new Pool({ host: 'db', password: '***', user: 'app' })",
    );
    expect(maskSecrets('const API_KEY = "abc123"; token=xyz')).toBe('const API_KEY = "***"; token=***');
    const query = "await pool.query('SELECT name FROM items WHERE id = $1', [id]);";
    expect(maskSecrets(query)).toBe(query);
  });

  it('show the lines around the site, masked, unless turned off', () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'qt-frame-')), 'app.js');
    fs.writeFileSync(file, "const url = 'postgres://u:pw@h/d';\nconst db = connect(url);\nawait db.query(sql);\n");
    const hazard = {
      code: 'write_on_replica' as const,
      severity: 'error' as const,
      message: 'm',
      site: internSite(file, 3, 1),
    };
    const context = { bound: 'b', ran: 'r', scope: 's' };
    const printed: string[] = [];
    new ConsoleWarnings((text) => printed.push(text)).warn(hazard, context);
    expect(printed[0]).toContain('> 3 | await db.query(sql);'.replace('> 3', '>    3'));
    expect(printed[0]).toContain('postgres://u:***@h/d');
    expect(printed[0]).not.toContain('pw@');
    const withoutFrames: string[] = [];
    new ConsoleWarnings((text) => withoutFrames.push(text), false).warn(hazard, context);
    expect(withoutFrames[0]).not.toContain('| ');
    expect(printed[0]).not.toContain('\u001b['); // not a terminal: no colour
    const coloured: string[] = [];
    new ConsoleWarnings((text) => coloured.push(text), true, true).warn(hazard, context);
    expect(coloured[0]).toContain('\u001b[31mquerytrail error\u001b[39m: \u001b[1mwrite_on_replica\u001b[22m');
    expect(coloured[0].replace(/\u001b\[\d+m/g, '')).toBe(printed[0]); // the same text
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
  });

  it('colour only a terminal, and never with NO_COLOR', () => {
    const previous = process.env.NO_COLOR;
    delete process.env.NO_COLOR;
    expect([colourOn({ isTTY: true }), colourOn({ isTTY: false }), colourOn({})]).toEqual([true, false, false]);
    process.env.NO_COLOR = '1';
    expect(colourOn({ isTTY: true })).toBe(false);
    if (previous === undefined) delete process.env.NO_COLOR;
    else process.env.NO_COLOR = previous;
  });
});

describe('QUERYTRAIL_CONSOLE=spans', () => {
  it('says where and in which phase each query was built: its own phase when no construction phase is sent', () => {
    const printed: string[] = [];
    const provider = new BasicTracerProvider({ spanProcessors: [new ConsoleSpanProcessor((l) => printed.push(l))] });
    const tracer = provider.getTracer('querytrail-test');
    const ran = { [ATTR.RAN_ALIAS]: 'main', [ATTR.RAN_ROLE]: 'primary', [ATTR.EXECUTION_PHASE]: 'request' };
    const site = { [ATTR.CODE_FILE_PATH]: '/app/routes.js', [ATTR.CODE_LINE_NUMBER]: 12 };
    tracer.startSpan('SELECT items', { attributes: { ...ran, ...site } }).end();
    const initBuilt = { [ATTR.CONSTRUCTION_FILE]: '/app/data.js', [ATTR.CONSTRUCTION_LINE]: 3 };
    const attributes = { ...ran, ...site, ...initBuilt, [ATTR.CONSTRUCTION_PHASE]: 'init' };
    tracer.startSpan('SELECT items', { attributes }).end();
    // built a line above, in the file that ran it: no construction file is sent
    tracer.startSpan('SELECT items', { attributes: { ...ran, ...site, [ATTR.CONSTRUCTION_LINE]: 11 } }).end();
    expect(printed[0]).toMatch(
      /^querytrail span: SELECT items [\d.]+ms ran on main \(primary\) built at \/app\/routes\.js:12 \(request\)\n$/,
    );
    expect(printed[1]).toMatch(/ built at \/app\/data\.js:3 \(init\)\n$/);
    expect(printed[2]).toMatch(/ built at \/app\/routes\.js:11 \(request\)\n$/);
  });
});
