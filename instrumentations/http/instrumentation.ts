import { InstrumentationBase, InstrumentationNodeModuleDefinition, InstrumentationConfig, isWrapped } from '@opentelemetry/instrumentation';
import { guarded } from '../../src/guard';
import { RequestLike, requestScope, withScope } from '../../src/scope';
import { VERSION } from '../../src/version';

type Emit = (this: unknown, event: string | symbol, ...args: unknown[]) => boolean;
interface ServerModule {
  Server: { prototype: { emit: Emit } };
}

/**
 * Marks every incoming HTTP request as a querytrail `request` scope, with or without
 * @opentelemetry/instrumentation-http. It records no span of its own. Registered before the OTel HTTP
 * instrumentation, its wrapper runs inside that one's, so the scope sits in the request span's context.
 */
export class HttpScopeInstrumentation extends InstrumentationBase<InstrumentationConfig> {
  constructor(config: InstrumentationConfig = {}) {
    super('querytrail-http-scope', VERSION, config);
  }

  protected override init() {
    return ['http', 'https'].map(
      (name) =>
        new InstrumentationNodeModuleDefinition(
          name,
          ['*'],
          (moduleExports: ServerModule) => {
            const proto = moduleExports.Server.prototype;
            if (isWrapped(proto.emit)) this._unwrap(proto, 'emit');
            this._wrap(proto, 'emit', (original: Emit) => scopeRequests(original));
            return moduleExports;
          },
          (moduleExports: ServerModule | undefined) => {
            if (moduleExports) this._unwrap(moduleExports.Server.prototype, 'emit');
          },
        ),
    );
  }
}

function scopeRequests(original: Emit): Emit {
  return function emit(this: unknown, event: string | symbol, ...args: unknown[]) {
    if (event !== 'request') return original.call(this, event, ...args);
    const scope = guarded('http request scope', () => requestScope(args[0] as RequestLike));
    if (scope === undefined) return original.call(this, event, ...args);
    return withScope(scope, () => original.call(this, event, ...args));
  };
}
