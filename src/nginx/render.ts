/**
 * Renders the bucket-dependent part of the nginx configuration from a validated Config: an
 * `upstream` block per bucket and the maps from the bucket name (the sharder's X-Shard-Bucket
 * answer) to that upstream. Pure: no files, no clock, so the output is reproducible and
 * re-rendering an unchanged sharder.yml gives the same bytes.
 *
 * Everything written into the output is checked against a strict character set first, even
 * though validation already restricts it: a value that reached nginx syntax unchecked could add
 * directives (`include`, `$variables`, `;`), so the renderer does not rely on its caller.
 */
import { isIPv6 } from 'node:net';
import { ConfigError, type ConfigProblem } from '../errors.js';
import type { BucketConfig, Config, ListenAddress } from '../config/types.js';
import { NAME_PATTERN, UPSTREAM_HOST, parseListen } from '../config/rules.js';

/** Idle keep-alive connections each nginx worker keeps to the sharder (auth subrequests). */
export const SHARDER_KEEPALIVE = 32;
/** Idle keep-alive connections each nginx worker keeps to each hub. */
export const BUCKET_KEEPALIVE = 16;
/** Upstream the map answers for a bucket nginx does not know (a 502 naming it in nginx's error log). */
export const UNKNOWN_BUCKET_UPSTREAM = 'sharder_unknown_bucket';

/** Words that have a meaning of their own as a `map` source value; escaped with "\". */
const MAP_RESERVED = new Set(['default', 'hostnames', 'include', 'volatile']);

export interface RenderOptions {
  /** Kind whose buckets nginx routes; default: the configuration's default_kind. */
  kind?: string | undefined;
  /** Addresses nginx reaches the sharder at (HOST:PORT); default: from `listen`. */
  sharders?: readonly string[] | undefined;
}

export interface Rendered {
  text: string;
  /** Things the operator should know (buckets skipped), one line each. */
  warnings: string[];
}

interface Target {
  scheme: 'http' | 'https';
  /** host:port as nginx's `server` takes it. */
  address: string;
  /** Host name for TLS (SNI and certificate check). */
  host: string;
}

/** The upstream URL of a bucket as nginx needs it, or a problem message. */
export function upstreamTarget(url: string): Target | string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return `must be an http:// or https:// URL, got ${JSON.stringify(url)}`;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    return `must use http:// or https:// for nginx, got ${JSON.stringify(url)}`;
  if (!UPSTREAM_HOST.test(u.hostname) || (u.hostname.startsWith('[') && !isIPv6(u.hostname.slice(1, -1)))) {
    return (
      `host ${JSON.stringify(u.hostname)} cannot be written into nginx configuration: use a host name or IP ` +
      'address'
    );
  }
  if (u.username || u.password || u.search || u.hash)
    return 'must be scheme://host:port only (no credentials, query or fragment) for nginx';
  if (u.pathname !== '/') {
    return `has the path ${JSON.stringify(u.pathname)}: nginx passes each request's URI to the hub unchanged, so the upstream must be scheme://host:port (set the hub's base_url instead)`;
  }
  const scheme = u.protocol === 'https:' ? 'https' : 'http';
  const port = u.port === '' ? (scheme === 'https' ? '443' : '80') : u.port;
  return { scheme, address: `${u.hostname}:${port}`, host: u.hostname.replace(/^\[|\]$/g, '') };
}

/** A listen address as nginx should dial it: wildcard addresses mean "this host". */
export function sharderAddress(a: ListenAddress): string | undefined {
  if (a.port === 0) return undefined;
  const host = a.host === '0.0.0.0' ? '127.0.0.1' : a.host === '::' ? '::1' : a.host;
  return isIPv6(host) ? `[${host}]:${a.port}` : `${host}:${a.port}`;
}

/**
 * Text from outside (the config file's path) as it may appear in a `#` comment: nginx ends a
 * comment at a line feed, so a path holding one could add directives. Such text (control
 * characters, line separators, backslashes) is written JSON-quoted, on one line; plain text
 * is written as it is.
 */
export function commentText(text: string): string {
  if (!/[\x00-\x1f\x7f-\x9f\\\u2028\u2029]/.test(text)) return text;
  // JSON escapes C0 controls, quotes and backslashes; DEL, C1 controls and the Unicode line
  // separators it leaves as they are.
  return JSON.stringify(text).replace(
    /[\x7f-\x9f\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

const mapKey = (name: string): string => (MAP_RESERVED.has(name.toLowerCase()) ? `\\${name}` : name);

/** Renders the upstreams and maps for one kind. Throws ConfigError listing every problem. */
export function renderNginxConfig(config: Config, opts: RenderOptions = {}): Rendered {
  const source = config.file ?? 'configuration';
  const sourceComment = commentText(source);
  const problems: ConfigProblem[] = [];
  const add = (key: string, message: string): void => {
    problems.push({ source, key, message });
  };

  const kindName = opts.kind ?? config.defaultKind;
  const kind = config.kinds.get(kindName);
  if (!kind)
    throw new ConfigError([
      { source, key: 'kinds', message: `has no kind "${kindName}" (have: ${[...config.kinds.keys()].join(', ')})` },
    ]);
  if (!NAME_PATTERN.test(kind.name)) add(`kinds.${kind.name}`, 'is not a valid kind name');

  const sharders: string[] = [];
  if (opts.sharders && opts.sharders.length > 0) {
    for (const s of opts.sharders) {
      const a = parseListen(s);
      const addr = typeof a === 'string' ? undefined : sharderAddress(a);
      if (addr === undefined || !UPSTREAM_HOST.test(addr.replace(/:\d+$/, '')))
        add('--sharder', `${JSON.stringify(s)} is not HOST:PORT with a port other than 0`);
      else sharders.push(addr);
    }
  } else {
    const addr = sharderAddress(config.listen);
    if (addr === undefined)
      add('listen', 'has port 0, so nginx cannot know where the sharder listens: pass --sharder HOST:PORT');
    else sharders.push(addr);
  }

  const routed: { bucket: BucketConfig; target: Target; upstream: string }[] = [];
  const skipped: BucketConfig[] = [];
  const seen = new Map<string, number>();
  kind.buckets.forEach((b, i) => {
    const key = `kinds.${kind.name}.buckets[${i}]`;
    if (!NAME_PATTERN.test(b.name))
      return add(`${key}.name`, `${JSON.stringify(b.name)} cannot be written into nginx configuration`);
    // nginx compares map source values and upstream names ignoring case.
    const first = seen.get(b.name.toLowerCase());
    if (first !== undefined) {
      return add(
        `${key}.name`,
        `"${b.name}" differs from "${kind.buckets[first]!.name}" (buckets[${first}]) only in letter case: ` +
          'nginx matches bucket names ignoring case, so rename one',
      );
    }
    seen.set(b.name.toLowerCase(), i);
    if (b.upstream === null) return void skipped.push(b);
    const target = upstreamTarget(b.upstream);
    if (typeof target === 'string') return add(`${key}.upstream`, target);
    routed.push({ bucket: b, target, upstream: `sharder_${kind.name}_${b.name}` });
  });
  if (problems.length > 0) throw new ConfigError(problems);

  const out: string[] = [];
  const line = (s = ''): number => out.push(s);
  line(`# Rendered by \`sharder nginx-config\` from ${sourceComment} (kind "${kind.name}"). Do not edit:`);
  line('# change sharder.yml, render again, then `nginx -t && nginx -s reload`.');
  line(
    `# The sharder reads the identity from the ${config.identity.header} header: sharder-auth.conf must send it there.`,
  );
  line();
  line('# The sharder itself: the auth_request target.');
  line('upstream sharder {');
  for (const s of sharders) line(`    server ${s};`);
  line(`    keepalive ${SHARDER_KEEPALIVE};`);
  line('}');
  line();
  line(`# One upstream per bucket of kind "${kind.name}" (draining buckets too: their users stay).`);
  for (const r of routed) {
    line(`upstream ${r.upstream} {`);
    line(`    server ${r.target.address};`);
    line(`    keepalive ${BUCKET_KEEPALIVE};`);
    line('}');
  }
  for (const b of skipped)
    line(`# bucket ${b.name}: no upstream in ${sourceComment}; nginx cannot route its users (they get 502)`);
  line();
  const width = Math.max(8, ...routed.map((r) => mapKey(r.bucket.name).length));
  const pad = (s: string): string => s.padEnd(width);
  line('# X-Shard-Bucket (from the auth subrequest) -> upstream, scheme and TLS name.');
  line('map $sharder_bucket $sharder_upstream {');
  line(`    ${pad('default')} ${UNKNOWN_BUCKET_UPSTREAM};`);
  for (const r of routed) line(`    ${pad(mapKey(r.bucket.name))} ${r.upstream};`);
  line('}');
  line('map $sharder_bucket $sharder_upstream_scheme {');
  line(`    ${pad('default')} http;`);
  for (const r of routed) if (r.target.scheme === 'https') line(`    ${pad(mapKey(r.bucket.name))} https;`);
  line('}');
  line('map $sharder_bucket $sharder_upstream_host {');
  line(`    ${pad('default')} "";`);
  for (const r of routed) if (r.target.scheme === 'https') line(`    ${pad(mapKey(r.bucket.name))} ${r.target.host};`);
  line('}');

  const warnings = skipped.map(
    (b) => `bucket ${b.name} of kind ${kind.name} has no upstream: nginx cannot route its users`,
  );
  return { text: `${out.join('\n')}\n`, warnings };
}
