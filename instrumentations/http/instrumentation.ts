import { diag, trace } from '@opentelemetry/api';
import {
  InstrumentationBase,
  InstrumentationNodeModuleDefinition,
  InstrumentationConfig,
  isWrapped,
} from '@opentelemetry/instrumentation';
import { guarded } from '../../src/guard';
import { getRuntime } from '../../src/runtime';
import { RequestLike, RequestScope, requestScope, withScope } from '../../src/scope';
import { VERSION } from '../../src/version';

type Emit = (this: unknown, event: string | symbol, ...args: unknown[]) => boolean;
interface ServerModule {
  Server: { prototype: { emit: Emit } };
}

const SCOPING = Symbol('querytrail.http.scoping');

/**
 * Marks every incoming HTTP request as a querytrail `request` scope, with or without
 * @opentelemetry/instrumentation-http, and records no span of its own.
 *
 * The OTel HTTP instrumentation starts each request from a fresh context (the propagated one), so our
 * wrapper must run inside its wrapper. It also unwraps any shimmer-wrapped `emit` before wrapping, so
 * ours is installed without shimmer's markers: the OTel one then wraps it instead of removing it.
 */
export class HttpScopeInstrumentation extends InstrumentationBase<InstrumentationConfig> {
  private scoping = false;

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
            this.scoping = true;
            const proto = moduleExports.Server.prototype;
            if (hasOurWrapper(proto.emit)) return moduleExports;
            if (isWrapped(proto.emit)) {
              diag.warn(
                'querytrail: http.Server emit was wrapped before querytrail; create HttpScopeInstrumentation ' +
                  'before HttpInstrumentation so queries know their request',
              );
            }
            proto.emit = this.scopeRequests(proto.emit);
            return moduleExports;
          },
          () => {
            // Another wrapper may sit on top of ours, so ours is not removed, only made a pass-through.
            this.scoping = false;
          },
        ),
    );
  }

  private scopeRequests(original: Emit): Emit {
    const instrumentation = this;
    const emit = function (this: unknown, event: string | symbol, ...args: unknown[]) {
      if (event !== 'request' || !instrumentation.scoping) return original.call(this, event, ...args);
      const scope = guarded('http request scope', () => startRequest(args[0] as RequestLike, args[1]));
      if (scope === undefined) return original.call(this, event, ...args);
      return withScope(scope, () => original.call(this, event, ...args));
    };
    Object.defineProperty(emit, SCOPING, { value: true });
    return emit;
  }
}

interface ResponseLike {
  prependListener?(event: 'close', listener: () => void): unknown;
}

/**
 * The request's scope, with the HTTP server span (OTel's HTTP instrumentation runs outside this wrapper).
 * Its end is heard before that instrumentation's own 'close' listener ends the span, so the span still
 * takes the request's query count and time.
 */
function startRequest(request: RequestLike, response: unknown): RequestScope {
  const scope = requestScope(request, trace.getActiveSpan());
  (response as ResponseLike | undefined)?.prependListener?.('close', () =>
    guarded('http request end', () => getRuntime().tracker.scopeEnded(scope)),
  );
  return scope;
}

function hasOurWrapper(emit: Emit): boolean {
  for (let fn: unknown = emit; typeof fn === 'function'; fn = (fn as { __original?: unknown }).__original) {
    if ((fn as unknown as Record<symbol, unknown>)[SCOPING]) return true;
  }
  return false;
}
